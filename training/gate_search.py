"""Choose the served region gate for a checkpoint, on marks the evaluation never scores.

The gate (handler/model-config.yaml: ``seed_threshold``, ``region_confidence`` and the other
keys of handler/pipeline.py and handler/regions.py) decides which detected regions may change.
Each candidate of ``gate_search.grid`` in params.yaml cleans, through handler/engine.py as
served:

- ``count`` marked held-out crops at ``crop_size``: the PSNR gain over the input, overall and
  per style, and detection F1;
- ``full_count`` marks on whole held-out photos at their own size: the gain per style;
- ``clean_count`` watermark-free crops: the share of pixels flagged;
- the same whole photos without a mark: the largest share flagged of any one of them.

Its marks come from each of ``gate_search.seeds`` (the counts above are per seed), none of which
may be ``evaluate.seed``: a gate chosen on the evaluation's own marks would be scored on what it
was fitted to. One seed was not enough: the gate chosen on seed 1 alone, whose regions' means
sat at its threshold on icon wallpapers, inpainted icons of seeds 3 and 5.

The chosen candidate is the one with the largest gain at ``crop_size`` among those that flag at
most ``max_clean_flagged`` of clean pixels (of the crops together, and of each unmarked whole
photo), leave no style below its input at full resolution, no full-size photo more than
``max_photo_loss_db`` below it and no crop more than ``max_crop_loss_db`` ("never worse than
the input", photo by photo: a style's mean hid a held-out wallpaper whose own icons were
inpainted, -5.4 dB, and the 256 mean a crop of another whose icons were, -16 dB), and change no
more than ``max_outside_pixels`` pixels of any full-size photo or crop in patches away from its
mark (a small icon of a wallpaper inpainted away costs its photo 0.00 dB). When none
passes, none is chosen and the command exits 1: the checkpoint is not fit to serve with any
gate tried. A grid that lists several ``precision`` values scores each gate under each, and a
gate passes only under all of them (``MACHINE_KEYS``): the served precision is the machine's.

    python -m training.gate_search --params params.yaml --photos data/photos \
        --checkpoint model/clearmark.pt --serving-config handler/model-config.yaml \
        --out metrics/gate
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from scipy import ndimage

from handler.engine import Engine
from training.checkpoint import load_detector, load_model
from training.evaluate import (
    clean_examples,
    full_resolution_examples,
    large_photos,
    score_clean,
    scoring_arguments,
    serving_settings,
    style_indices,
    tile_share,
    unmarked_full_size,
)
from training.examples import load_marks, load_photo_folder, validation_examples
from training.metrics import PSNR_CAP_DB, mask_f1, psnr
from training.model import Detector, WatermarkRemover
from training.synth import MarkAssets, WatermarkedExample

# A changed patch within this many pixels of the mark belongs to it: the decided regions are
# grown by a pixel (handler/pipeline.py grow_pixels), and JPEG spreads a mark's edge over the
# blocks it touches, colour in 16x16 ones (4:2:0). At 3 the rule refused a gate for cleaning
# a removed corner mark's JPEG ringing (patches of 1-14 pixels, 3.2-8.6 pixels from the mark,
# changed by at most 9 levels); the wallpaper icons it is for were 770-892 pixel patches,
# 32-201 pixels away, changed by up to 36 levels (2026-12-06, model/candidates/README.md).
OUTSIDE_MARGIN = 16


@dataclass(frozen=True)
class MarkedSets:
    """The three held-out sets every candidate is scored on."""

    crops: list[WatermarkedExample]
    full: list[WatermarkedExample]
    clean: list[np.ndarray]
    clean_full: list[np.ndarray]  # the large photos whole, without a mark


def candidates(grid: dict[str, Sequence[Any]], serving: dict[str, Any]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, as overrides of the handler's settings; a key
    the handler does not have is an error, not a silent no-op."""
    unknown = sorted(set(grid) - set(serving))
    if unknown:
        raise ValueError(f"gate_search.grid keys not in model-config.yaml's handler: {unknown}")
    keys = sorted(grid)
    return [
        dict(zip(keys, values, strict=True)) for values in itertools.product(*map(grid.get, keys))
    ]


def held_out_sets(
    photos: Sequence[np.ndarray], assets: MarkAssets, params: dict[str, Any]
) -> MarkedSets:
    """The gate_search section's sets, from the held-out photos and marks: for each of its
    ``seeds``, ``count`` crops, ``full_count`` full-size photos and ``clean_count`` clean crops
    of its own marks and places; the large photos whole and unmarked once (they are the same
    photos whatever the seed)."""
    seeds = params["seeds"]
    large = large_photos(photos, params["full_min_megapixels"])
    crops: list[WatermarkedExample] = []
    full: list[WatermarkedExample] = []
    clean: list[np.ndarray] = []
    for seed in seeds:
        crops += validation_examples(photos, assets, params["count"], params["crop_size"], seed)
        full += full_resolution_examples(large, assets, params["full_count"], seed)
        clean += clean_examples(photos, params["clean_count"], params["crop_size"], seed)
    return MarkedSets(crops, full, clean, unmarked_full_size(large, seeds[0]))


def _gains(engine: Engine, examples: Sequence[WatermarkedExample]) -> dict[str, Any]:
    """Mean PSNR gain over the input, overall and per style, the smallest of any one image,
    F1 of the final masks, the share of tiles detected at full size (1 for images run whole):
    the time large photos take, and the most pixels any image changed away from its mark."""
    gains, masks, tiles, outside = [], [], [], []
    for ex in examples:
        [served] = engine.clean([ex.watermarked])
        gains.append(gain_db(ex, served.output))
        masks.append(mask_f1(served.mask, ex.mask))
        tiles.append(tile_share(engine, ex.watermarked, served.tiles))
        outside.append(changed_outside(ex, served.output))
    per_style = {
        style: float(np.mean([gains[i] for i in indices]))
        for style, indices in style_indices(examples).items()
    }
    return {
        "gain": float(np.mean(gains)),
        "worst_gain": float(min(gains)),
        "per_style": per_style,
        "f1": float(np.mean(masks)),
        "tile_share": float(np.mean(tiles)),
        "worst_outside": int(max(outside, default=0)),
    }


def gain_db(example: WatermarkedExample, output: np.ndarray) -> float:
    """PSNR of ``output`` over the watermarked input's, against the clean image, each capped at
    PSNR_CAP_DB (an exact restoration would be infinite)."""
    before = min(PSNR_CAP_DB, psnr(example.watermarked, example.clean))
    return min(PSNR_CAP_DB, psnr(output, example.clean)) - before


def changed_outside(example: WatermarkedExample, output: np.ndarray) -> int:
    """Pixels of ``output`` changed farther than OUTSIDE_MARGIN pixels from the mark (its alpha
    above 0): something of the photo's own restored away, such as a small icon of a wallpaper,
    which costs a whole-photo PSNR almost nothing but is damage a person sees, or photo content
    joined to the mark in one region (line art crossed by a word; until 2026-12-06 a changed
    patch that touched the mark's neighbourhood was not counted, and the evaluation found two
    such)."""
    return int(np.count_nonzero(far_changes(example, output)))


def far_changes(example: WatermarkedExample, output: np.ndarray) -> np.ndarray:
    """Where ``output`` changed ``example`` farther than OUTSIDE_MARGIN pixels from its mark:
    (H, W) bool, the pixels changed_outside counts (training/gate_look.py shows them)."""
    near = ndimage.binary_dilation(example.alpha > 0, iterations=OUTSIDE_MARGIN)
    changed = np.any(output != example.watermarked, axis=-1)
    return changed & ~near


def score(engine: Engine, sets: MarkedSets) -> dict[str, Any]:
    """One candidate's numbers on the three sets."""
    crops = _gains(engine, sets.crops)
    full = _gains(engine, sets.full)
    clean = score_clean(engine, sets.clean)
    clean_full = score_clean(engine, sets.clean_full, ungated=False)
    return {
        "gain": crops["gain"],
        "per_style": crops["per_style"],
        "f1": crops["f1"],
        "worst_crop": crops["worst_gain"],
        "full_gain": full["gain"],
        "full_per_style": full["per_style"],
        "full_worst_photo": full["worst_gain"],
        "full_tile_share": full["tile_share"],
        "full_outside": full["worst_outside"],
        "crop_outside": crops["worst_outside"],
        "clean_flagged": clean["mask_coverage"],
        "clean_full_flagged": clean_full["worst_mask_coverage"],
    }


@dataclass(frozen=True)
class Limits:
    """What a gate may cost: the share of clean pixels it flags (of the crops together and of
    each unmarked whole photo), and how far below its input one full-size photo, and one crop,
    may come back (dB)."""

    max_clean_flagged: float
    max_photo_loss_db: float
    max_crop_loss_db: float
    # Pixels one marked image (a full-size photo, a crop) may have changed away from its mark.
    max_outside_pixels: int


def passes(row: dict[str, Any], limits: Limits) -> bool:
    """Flags few enough clean pixels, on crops and on each whole photo; no style is worse than
    its input at full size, no full-size photo or crop more than its limit, and no full-size
    photo or crop has more than its limit changed away from its mark."""
    return (
        row["clean_flagged"] <= limits.max_clean_flagged
        and row["clean_full_flagged"] <= limits.max_clean_flagged
        and min(row["full_per_style"].values()) >= 0.0
        and row["full_worst_photo"] >= -limits.max_photo_loss_db
        and row["worst_crop"] >= -limits.max_crop_loss_db
        and row["full_outside"] <= limits.max_outside_pixels
        and row["crop_outside"] <= limits.max_outside_pixels
    )


# Settings the machine decides rather than the gate: with precision auto the network's maps are
# bfloat16 on one machine and float32 on another, and a threshold a region's mean sits on flips
# with them (2026-12-07: a blurred logo inpainted as a blotch in float32 only). A grid that
# lists several precisions scores each gate under each, and the gate must pass under all.
MACHINE_KEYS = ("precision",)


def choose(rows: Sequence[dict[str, Any]], limits: Limits) -> dict[str, Any] | None:
    """The passing gate with the largest gain at crop size, or None when none passes. Ties
    (settings crops never reach, such as candidate_threshold) go to the larger full-size
    gain, then to the fewer tiles detected at full size. The rows of one gate under each of
    MACHINE_KEYS' values count as one: it passes when every one of them passes, and is judged
    by its worst (its gate without those keys)."""
    gates: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        gate = {k: v for k, v in row["gate"].items() if k not in MACHINE_KEYS}
        gates.setdefault(json.dumps(gate, sort_keys=True, default=str), []).append(row)
    fit = [group for group in gates.values() if all(passes(r, limits) for r in group)]
    if not fit:
        return None

    def merit(group: list[dict[str, Any]]) -> tuple[float, float, float]:
        return (
            min(r["gain"] for r in group),
            min(r["full_gain"] for r in group),
            -max(r.get("full_tile_share", 0.0) for r in group),
        )

    best = max(fit, key=merit)
    worst = min(best, key=lambda r: (r["gain"], r["full_gain"]))
    return {**worst, "gate": {k: v for k, v in worst["gate"].items() if k not in MACHINE_KEYS}}


class SharedForwards(Engine):
    """An engine that remembers its network's forwards in ``forwards``, shared by every
    candidate: a gate changes what happens after the network, never what it is given, so
    candidates after the first only decide and restore regions. (A candidate_threshold sends
    other tiles to full size: their forwards are new, the rest still shared.) The engine's own
    settings are part of the key: mirror_views or precision change what a forward returns."""

    forwards: dict[bytes, torch.Tensor]

    def network(self, batch: torch.Tensor) -> torch.Tensor:
        digest = hashlib.blake2b(repr(self.cfg).encode(), digest_size=16)
        digest.update(batch.cpu().numpy().tobytes())
        key = digest.digest()
        if key not in self.forwards:
            self.forwards[key] = super().network(batch)
        return self.forwards[key]


def search(
    model: Detector,
    sets: MarkedSets,
    serving: dict[str, Any],
    grid: dict[str, Sequence[Any]],
    limits: Limits,
    restorer: WatermarkRemover | None = None,
) -> dict[str, Any]:
    """Every candidate scored (restored by ``restorer`` when given), and the chosen one (None
    when none passes)."""
    rows = []
    forwards: dict[bytes, torch.Tensor] = {}
    for overrides in candidates(grid, serving):
        settings = {**serving, **overrides}
        engine = SharedForwards.from_settings(model, torch.device("cpu"), settings, restorer)
        engine.forwards = forwards
        row = {"gate": overrides, **score(engine, sets)}
        rows.append(row)
        print(table([row], limits, header=len(rows) == 1), end="", flush=True)
    chosen = choose(rows, limits)
    return {"candidates": rows, "chosen": None if chosen is None else chosen["gate"]}


def table(rows: Sequence[dict[str, Any]], limits: Limits, header: bool = True) -> str:
    """Markdown: one line per candidate, gains in dB, the clean shares in percent."""
    lines = []
    if header:
        lines += [
            "| gate | gain | F1 | worst crop | full-res gain | worst full-res style "
            "| worst full-res photo | changed outside the mark, worst full-size photo "
            "| changed outside the mark, worst crop "
            "| full-size tiles | clean flagged | unmarked whole photo flagged | passes |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
    for row in rows:
        gate = ", ".join(f"{key} {value}" for key, value in row["gate"].items())
        worst = min(row["full_per_style"], key=row["full_per_style"].get)
        lines.append(
            f"| {gate} | {row['gain']:+.2f} | {row['f1']:.3f} | {row['worst_crop']:+.2f} "
            f"| {row['full_gain']:+.2f} "
            f"| {worst} {row['full_per_style'][worst]:+.2f} | {row['full_worst_photo']:+.2f} "
            f"| {row['full_outside']:,} px | {row['crop_outside']:,} px "
            f"| {row.get('full_tile_share', math.nan):.0%} | {100 * row['clean_flagged']:.2f}% "
            f"| {100 * row['clean_full_flagged']:.2f}% "
            f"| {'yes' if passes(row, limits) else 'no'} |"
        )
    return "\n".join(lines) + "\n"


def search_limits(section: dict[str, Any]) -> Limits:
    """The gate_search section's limits."""
    return Limits(
        section["max_clean_flagged"],
        section["max_photo_loss_db"],
        section["max_crop_loss_db"],
        section["max_outside_pixels"],
    )


def search_params(params: dict[str, Any]) -> dict[str, Any]:
    """params.yaml's gate_search section, refused when one of its seeds is the evaluation's."""
    section = dict(params["gate_search"])
    if params["evaluate"]["seed"] in section["seeds"]:
        raise ValueError(
            f"gate_search.seeds {section['seeds']} hold evaluate.seed: the gate would be chosen "
            "on the marks it is then scored on"
        )
    return section


def main(argv: list[str] | None = None) -> int:
    parser = scoring_arguments(__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for gate.json, gate.md")
    args = parser.parse_args(argv)
    params = search_params(yaml.safe_load(args.params.read_text()))
    limits = search_limits(params)
    sets = held_out_sets(
        load_photo_folder(args.photos / "val"),
        load_marks(args.photos / "marks.json", "val"),
        params,
    )
    result = search(
        load_detector(args.checkpoint),
        sets,
        serving_settings(args.serving_config),
        params["grid"],
        limits,
        None if args.restorer is None else load_model(args.restorer),
    )
    result["checkpoint"] = str(args.checkpoint)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gate.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "gate.md").write_text(table(result["candidates"], limits))
    print(f"chosen: {result['chosen']}")
    return 0 if result["chosen"] is not None else 1


if __name__ == "__main__":
    sys.exit(main())
