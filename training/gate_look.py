"""Where a gate changes pixels away from the mark, on the gate search's sets, cropped at 100%.

A gate search row (training/gate_search.py) says how many pixels of its worst full-size photo
and crop a gate changed away from the mark, not where or what: a JPEG fringe, an icon of a
wallpaper or a light streak of the photo only a look tells apart. For each image of the search's
sets (the same seeds and counts) on which the gate, given as overrides of the served settings,
changes such pixels, this writes ``<set>-<index>-<style>.png``: the watermarked input, the
output, the clean image and those pixels in white, a ``side``-pixel square each, centred on
them. ``look.md`` lists the images with the count, where it lies and the gain over the input.

    python -m training.gate_look --params params.yaml --photos data/photos \\
        --checkpoint model/clearmark.pt --restorer model/restorer.pt \\
        --serving-config handler/model-config.yaml \\
        --gate '{region_confidence: 0.88}' --out var/gate-look
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from PIL import Image

from handler.engine import Engine
from training.checkpoint import load_detector, load_model
from training.evaluate import scoring_arguments, serving_settings
from training.examples import load_marks, load_photo_folder
from training.gate_search import (
    candidates,
    far_changes,
    gain_db,
    held_out_sets,
    search_params,
)
from training.synth import WatermarkedExample

SETS = ("full", "crops")


def window(far: np.ndarray, side: int) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the ``side`` square (the image's size where it is smaller)
    centred on the median of ``far``'s pixels and kept inside the image."""
    height, width = far.shape
    ys, xs = np.nonzero(far)
    rows, cols = min(side, height), min(side, width)
    top = int(np.clip(int(np.median(ys)) - rows // 2, 0, height - rows))
    left = int(np.clip(int(np.median(xs)) - cols // 2, 0, width - cols))
    return top, left, rows, cols


def panel(
    example: WatermarkedExample, output: np.ndarray, far: np.ndarray, side: int
) -> np.ndarray:
    """Input, output, clean and the far pixels (white), side by side: (S, 4 S, 3) uint8."""
    top, left, rows, cols = window(far, side)
    box = (slice(top, top + rows), slice(left, left + cols))
    marked = np.repeat(far[box][..., None], 3, axis=2).astype(np.uint8) * 255
    return np.concatenate([example.watermarked[box], output[box], example.clean[box], marked], 1)


def look(
    engine: Engine, examples: Sequence[WatermarkedExample], name: str, out: Path, side: int
) -> list[dict[str, Any]]:
    """Clean each example as ``engine`` serves; write a panel of each that changed pixels away
    from its mark. One row per such example."""
    rows = []
    for index, example in enumerate(examples):
        [served] = engine.clean([example.watermarked])
        far = far_changes(example, served.output)
        if not far.any():
            continue
        image = f"{name}-{index:02d}-{example.style}.png"
        Image.fromarray(panel(example, served.output, far, side)).save(out / image)
        ys, xs = np.nonzero(far)
        rows.append({
            "image": image,
            "size": f"{far.shape[1]}x{far.shape[0]}",
            "pixels": int(far.sum()),
            "at": (int(np.median(ys)), int(np.median(xs))),
            "gain": gain_db(example, served.output),
        })  # fmt: skip
    return rows


def report(gate: dict[str, Any], rows: Sequence[dict[str, Any]]) -> str:
    """look.md: the gate and one line per image that changed pixels away from its mark."""
    lines = [f"Gate (over the served settings): {gate}", ""]
    if not rows:
        return "\n".join([*lines, "No image changed a pixel away from its mark.", ""])
    lines += ["| image | size | changed away from the mark | at (row, column) | gain |",
              "|---|---|---|---|---|"]  # fmt: skip
    for row in rows:
        lines.append(
            f"| {row['image']} | {row['size']} | {row['pixels']:,} px | {row['at']} "
            f"| {row['gain']:+.2f} dB |"
        )
    return "\n".join([*lines, ""])


def main(argv: list[str] | None = None) -> int:
    parser = scoring_arguments(__doc__.splitlines()[0])
    parser.add_argument(
        "--gate", default="{}", help="YAML mapping of handler settings over the served ones"
    )
    parser.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS))
    parser.add_argument("--side", type=int, default=300, help="panel side in pixels")
    parser.add_argument("--out", type=Path, required=True, help="folder for the panels, look.md")
    args = parser.parse_args(argv)
    gate = yaml.safe_load(args.gate)
    if not isinstance(gate, dict):
        parser.error(f"--gate must be a YAML mapping of handler settings, not {args.gate!r}")
    serving = serving_settings(args.serving_config)
    try:
        [overrides] = candidates({key: [value] for key, value in gate.items()}, serving)
    except ValueError as error:
        parser.error(str(error))
    params = search_params(yaml.safe_load(args.params.read_text()))
    sets = held_out_sets(
        load_photo_folder(args.photos / "val"),
        load_marks(args.photos / "marks.json", "val"),
        params,
    )
    engine = Engine.from_settings(
        load_detector(args.checkpoint),
        torch.device("cpu"),
        {**serving, **overrides},
        None if args.restorer is None else load_model(args.restorer),
    )
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.sets:
        rows += look(engine, sets.full if name == "full" else sets.crops, name, args.out, args.side)
    (args.out / "look.md").write_text(report(overrides, rows))
    print(report(overrides, rows), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
