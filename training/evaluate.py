"""The evaluate stage: score a checkpoint on held-out photos marked with held-out fonts and logos.

Everything is scored as the service runs it (handler/engine.py with the settings of
handler/model-config.yaml: bfloat16, coarse-to-fine detection, regions, restoration), and
four methods by the same code on the same images: clearmark, clearmark's restoration stage
given the TRUE mask, the watermarked input itself, and OpenCV's Telea inpainting given the TRUE
mask (what inpainting tools do at best). Three sets:

- ``protocol_256``: ``count`` images of ``crop_size`` (256, the papers' protocol), the styles
  taking turns, scored overall and per style, with detection F1/IoU/precision/recall;
- ``full_resolution``: ``full_count`` marks on the whole held-out photos of at least
  ``full_min_megapixels``, at their own size, the styles taking turns;
- ``clean_photos``: ``clean_count`` watermark-free images: how much the service changes them.

Writes ``metrics/eval.json``, ``metrics/examples/`` (watermarked/clean pairs to try the service
with, and grid.png: input | output | predicted mask | clean, one row per style) and
``metrics/eval.md`` (the README's table, rendered by training.report).

    python -m training.evaluate --params params.yaml --photos data/photos \
        --checkpoint training/runs/best.pt --serving-config handler/model-config.yaml \
        --out metrics
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from PIL import Image

from handler.engine import Engine
from handler.regions import tile_origins
from training.baselines import telea_inpaint
from training.checkpoint import load_detector, load_model
from training.examples import (
    load_marks,
    load_photo_folder,
    random_crop,
    validation_examples,
)
from training.metrics import (
    clean_photo_scores,
    image_scores,
    mask_scores,
    removal_counts,
    summarise,
)
from training.model import Detector, WatermarkRemover
from training.model import predict as run_model
from training.report import eval_table
from training.synth import STYLES, MarkAssets, WatermarkedExample, add_watermark, unmarked

EXAMPLE_PAIRS = 3  # watermarked/clean pairs written out for trying the service
# What is scored on every marked image, by the same code:
# - "model": clearmark as served (detection, regions, restoration, composite: handler/engine.py
#   with the handler's settings);
# - "restore_true_mask": clearmark's restoration stage alone, given the true mask;
# - "input": the watermarked image itself (do nothing);
# - "telea_true_mask": OpenCV Telea inpainting given the true mask.
METHODS = ("model", "restore_true_mask", "input", "telea_true_mask")


def score_marked(
    engine: Engine, examples: Sequence[WatermarkedExample]
) -> tuple[dict[str, Any], list[np.ndarray], list[np.ndarray]]:
    """Every method on every example: overall and per-style means, plus clearmark's outputs and
    final masks."""
    rows: dict[str, list[dict[str, float]]] = {m: [] for m in METHODS}
    outputs, masks, tile_shares, shown = [], [], [], []
    for ex in examples:
        [served] = engine.clean([ex.watermarked], unsure=[True])
        assert served.unsure is not None
        # What the page shows a person: the mask, and in amber what the network saw and left.
        shown.append(mask_scores(served.mask | served.unsure, ex.mask))
        [given] = engine.clean([ex.watermarked], [ex.mask])
        outputs.append(served.output)
        masks.append(served.mask)
        tile_shares.append(tile_share(engine, ex.watermarked, served.tiles))
        rows["model"].append(image_scores(served.output, ex.clean, ex.mask, served.mask))
        rows["restore_true_mask"].append(image_scores(given.output, ex.clean, ex.mask))
        rows["input"].append(image_scores(ex.watermarked, ex.clean, ex.mask))
        telea = telea_inpaint(ex.watermarked, ex.mask)
        rows["telea_true_mask"].append(image_scores(telea, ex.clean, ex.mask))
    result = method_summaries(rows)
    result |= photo_losses(rows)
    result["per_style"] = {
        style: method_summaries({m: [rows[m][i] for i in indices] for m in METHODS})
        for style, indices in style_indices(examples).items()
    }
    result["examples"] = len(examples)
    result["tile_share"] = float(np.mean(tile_shares))
    result["with_unsure"] = with_unsure(rows["model"], shown)
    return result, outputs, masks


def with_unsure(
    served: Sequence[dict[str, float]], shown: Sequence[dict[str, float]]
) -> dict[str, float]:
    """The mask with the unsure regions (``shown``: mask_scores of the two together, image by
    image) against the mask alone (``served``: its image_scores): their means, and how many
    marks the mask holds less than half of and the two together half or more (a person can add
    them with a click or two on the page)."""
    rescued = sum(s["recall"] < 0.5 <= w["recall"] for s, w in zip(served, shown, strict=True))
    return {**summarise(list(shown)), "marks_rescued": int(rescued)}


def photo_losses(rows: dict[str, list[dict[str, float]]]) -> dict[str, float]:
    """Per photo, not per style: the smallest gain of clearmark over the input (dB, 0 when it
    changed nothing) and how many photos came back worse than they went in (a style's mean can
    hide one photo that lost several dB); how many marks were removed whole, partly or left."""
    gains = [m["psnr"] - i["psnr"] for m, i in zip(rows["model"], rows["input"], strict=True)]
    return {
        "worst_gain": float(min(gains)),
        "photos_worse": int(sum(g < 0 for g in gains)),
        **removal_counts([m["recall"] for m in rows["model"]]),
    }


def style_indices(examples: Sequence[WatermarkedExample]) -> dict[str, list[int]]:
    """The positions of each style's examples, styles in STYLES order (only those present)."""
    indices: dict[str, list[int]] = {style: [] for style in STYLES}
    for i, ex in enumerate(examples):
        indices[ex.style].append(i)
    return {style: found for style, found in indices.items() if found}


def tile_share(engine: Engine, image: np.ndarray, tiles: Sequence[tuple[int, int]] | None) -> float:
    """The share of ``image``'s tiles ``engine`` detected at full size (``tiles``: Cleaned's;
    None when the image ran whole, which counts as all of them)."""
    if tiles is None:
        return 1.0
    height, width = image.shape[:2]
    return len(tiles) / len(tile_origins(height, width, engine.regions.tile))


def method_summaries(rows: dict[str, list[dict[str, float]]]) -> dict[str, Any]:
    """Each method's means, clearmark's PSNR gain over the input, and ``gap_closed``: the share
    of the PSNR distance from the input to Telea with the true mask that clearmark covers."""
    summary: dict[str, Any] = {m: summarise(rows[m]) for m in METHODS}
    summary["psnr_gain"] = summary["model"]["psnr"] - summary["input"]["psnr"]
    gap = summary["telea_true_mask"]["psnr"] - summary["input"]["psnr"]
    summary["gap_closed"] = summary["psnr_gain"] / gap if gap > 0 else math.nan
    return summary


def ungated_masks(engine: Engine, images: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The detector alone: each image's pixels above the pipeline's mask_threshold, before
    any region is gated (what the gate has to work with), (H, W) bool each."""
    detections = engine.detect([engine.tensor(image) for image in images])
    return [d.probability > engine.pipeline.mask_threshold for d, _ in detections]


def score_ungated(engine: Engine, examples: Sequence[WatermarkedExample]) -> dict[str, Any]:
    """Mask F1/IoU/precision/recall of ungated_masks against the true masks (image means),
    overall and under ``per_style``: whether a style's marks are missed by the gate or already
    by the detector."""
    found = ungated_masks(engine, [ex.watermarked for ex in examples])
    rows = [mask_scores(f, ex.mask) for f, ex in zip(found, examples, strict=True)]
    per_style = {
        style: summarise([rows[i] for i in indices])
        for style, indices in style_indices(examples).items()
    }
    return {**summarise(rows), "per_style": per_style}


def score_clean(
    engine: Engine, photos: Sequence[np.ndarray], ungated: bool = True
) -> dict[str, float]:
    """Mean change and final mask coverage on watermark-free images (0..255 units, 0..1),
    cleaned as the service cleans them (``engine``), the largest coverage of any one image
    (``worst_mask_coverage``: a mean over many crops hides one photo's false regions), and,
    when ``ungated``, the share of pixels the detector alone flags before the gate
    (``ungated_coverage``)."""
    rows = []
    for photo in photos:
        [cleaned] = engine.clean([photo])
        rows.append(clean_photo_scores(cleaned.output, photo, cleaned.mask))
    if ungated:
        for row, found in zip(rows, ungated_masks(engine, photos), strict=True):
            row["ungated_coverage"] = float(found.mean())
    worst = max(row["mask_coverage"] for row in rows)
    return {**summarise(rows), "worst_mask_coverage": worst, "examples": len(rows)}


def full_resolution_examples(
    photos: Sequence[np.ndarray], assets: MarkAssets, count: int, seed: int
) -> list[WatermarkedExample]:
    """``count`` marks on whole photos at their own size, the styles taking turns."""
    rng = np.random.default_rng(seed)
    return [
        add_watermark(photos[i % len(photos)], rng, assets, style=STYLES[i % len(STYLES)])
        for i in range(count)
    ]


def unmarked_full_size(photos: Sequence[np.ndarray], seed: int) -> list[np.ndarray]:
    """Each photo whole and without a mark, JPEG-compressed as often as marked ones: large
    watermark-free photos, where a wallpaper's own icons and dots can pass for a mark."""
    rng = np.random.default_rng(seed)
    return [unmarked(photo, rng).watermarked for photo in photos]


def large_photos(photos: Sequence[np.ndarray], min_megapixels: float) -> list[np.ndarray]:
    """The photos of at least min_megapixels, for the full-resolution set; none is an error."""
    large = [p for p in photos if p.shape[0] * p.shape[1] >= min_megapixels * 1e6]
    if not large:
        raise ValueError(f"no held-out photo has {min_megapixels} megapixels")
    return large


def clean_examples(
    photos: Sequence[np.ndarray], count: int, size: int, seed: int
) -> list[np.ndarray]:
    """Watermark-free crops, JPEG-compressed as often as marked ones: the model's input."""
    rng = np.random.default_rng(seed)
    return [
        unmarked(
            random_crop(photos[i % len(photos)], rng, size, rng.uniform(0.2, 1.0)), rng
        ).watermarked
        for i in range(count)
    ]


@torch.inference_mode()
def model_cost(model: Detector, side: int = 1024) -> dict[str, float]:
    """Parameter count and forward GFLOP per megapixel (a multiply-add counts as 2 FLOP)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        run_model(model, torch.zeros(1, 3, side, side))
    return {
        "parameters": sum(p.numel() for p in model.parameters()),
        "gflop_per_megapixel": counter.get_total_flops() / 1e9 / (side * side / 1e6),
    }


def example_grid(
    examples: Sequence[WatermarkedExample],
    outputs: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
) -> np.ndarray:
    """Rows of input | output | predicted mask | clean, (H * rows, W * 4, 3) uint8."""
    rows = []
    for ex, output, mask in zip(examples, outputs, masks, strict=False):
        mask_rgb = np.repeat(mask[..., None].astype(np.uint8) * 255, 3, axis=-1)
        rows.append(np.concatenate([ex.watermarked, output, mask_rgb, ex.clean], axis=1))
    return np.concatenate(rows, axis=0)


def evaluate(
    model: Detector,
    val_photos: Sequence[np.ndarray],
    assets: MarkAssets,
    params: dict[str, Any],
    serving: dict[str, Any],
    restorer: WatermarkRemover | None = None,
) -> tuple[dict[str, Any], list[WatermarkedExample], list[np.ndarray], list[np.ndarray]]:
    """All three sets from the evaluate section of params.yaml, served with the learned
    ``restorer`` when given; also returns the 256x256 examples with the model's outputs and
    masks (for the pictures)."""
    cost = model_cost(model)
    # The service's engine: it takes the model over (channels-last, eval mode).
    engine = Engine.from_settings(model, torch.device("cpu"), serving, restorer)
    examples = validation_examples(
        val_photos, assets, params["count"], params["crop_size"], params["seed"]
    )
    protocol, outputs, masks = score_marked(engine, examples)
    protocol["ungated"] = score_ungated(engine, examples)
    large = large_photos(val_photos, params["full_min_megapixels"])
    full_examples = full_resolution_examples(large, assets, params["full_count"], params["seed"])
    full, _, _ = score_marked(engine, full_examples)
    full["ungated"] = score_ungated(engine, full_examples)
    full["megapixels"] = float(np.mean([ex.clean.size / 3e6 for ex in full_examples]))
    clean = score_clean(
        engine,
        clean_examples(val_photos, params["clean_count"], params["crop_size"], params["seed"]),
    )
    clean_full = score_clean(engine, unmarked_full_size(large, params["seed"]), ungated=False)
    summary = {
        "protocol_256": protocol,
        "full_resolution": full,
        "clean_photos": clean,
        "clean_full_size": clean_full,
        **cost,
    }
    return summary, examples, outputs, masks


def serving_settings(model_config: Path) -> dict[str, Any]:
    """The ``handler`` section of the handler's model-config.yaml."""
    return dict(yaml.safe_load(model_config.read_text()).get("handler", {}))


def scoring_arguments(description: str) -> argparse.ArgumentParser:
    """The arguments of a command that scores a checkpoint on the held-out photos as served
    (this stage, training/gate_search.py)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--photos", type=Path, required=True, help="the prepare stage's output")
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument(
        "--serving-config", type=Path, required=True, help="handler/model-config.yaml"
    )
    parser.add_argument(
        "--restorer", type=Path, default=None,
        help="training/restorer.py's weights (model/restorer.pt); default: the classical floor",
    )  # fmt: skip
    return parser


def main() -> None:
    parser = scoring_arguments(__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    params = yaml.safe_load(args.params.read_text())["evaluate"]
    model = load_detector(args.checkpoint)
    summary, examples, outputs, masks = evaluate(
        model,
        load_photo_folder(args.photos / "val"),
        load_marks(args.photos / "marks.json", "val"),
        params,
        serving_settings(args.serving_config),
        None if args.restorer is None else load_model(args.restorer),
    )
    (args.out / "examples").mkdir(parents=True, exist_ok=True)
    (args.out / "eval.json").write_text(json.dumps(summary, indent=2) + "\n")
    (args.out / "eval.md").write_text(eval_table(summary))
    for i, ex in enumerate(examples[:EXAMPLE_PAIRS]):
        Image.fromarray(ex.watermarked).save(args.out / "examples" / f"{i}-watermarked.png")
        Image.fromarray(ex.clean).save(args.out / "examples" / f"{i}-clean.png")
    # One row per style: the first examples, as styles take turns.
    grid = example_grid(examples[: len(STYLES)], outputs, masks)
    Image.fromarray(grid).save(args.out / "examples" / "grid.png")
    print(eval_table(summary))


if __name__ == "__main__":
    main()
