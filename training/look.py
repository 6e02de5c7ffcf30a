"""The evaluation's full-size photos as served, cropped at 100% where they changed: to look at.

PSNR over a whole photo hides what a person sees: a smeared band through a pattern can score
above the input. For each of the evaluate section's full-resolution examples (the same marks
as ``dvc repro evaluate``), this cleans the photo through handler/engine.py as served and
writes ``<index>-<style>.png``: the watermarked input, clearmark's output and the clean photo
side by side, a ``side``-pixel square each, centred on the pixels that changed (on the mark
when nothing did). ``look.md`` lists per photo the gain over the input, the changed pixels'
precision and recall against the true mask, and Telea given the true mask.

    python -m training.look --params params.yaml --photos data/photos \\
        --checkpoint model/clearmark.pt --restorer model/restorer.pt \\
        --serving-config handler/model-config.yaml --out var/look

With ``--true-mask`` each photo is sent with its true mask, as a person sends a mask through
the API's ``mask`` part: what restoration alone makes of the mark.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from PIL import Image

from handler.engine import Cleaned, Engine
from training.baselines import telea_inpaint
from training.checkpoint import load_detector, load_model
from training.evaluate import (
    full_resolution_examples,
    large_photos,
    scoring_arguments,
    serving_settings,
)
from training.examples import load_marks, load_photo_folder
from training.metrics import mask_precision, mask_recall, psnr
from training.synth import WatermarkedExample


def window(focus: np.ndarray, side: int) -> tuple[int, int]:
    """(top, left) of the ``side`` square inside ``focus``'s (H, W) frame centred on the
    median of its True pixels (the frame's centre when there are none)."""
    height, width = focus.shape
    if focus.any():
        ys, xs = np.nonzero(focus)
        cy, cx = int(np.median(ys)), int(np.median(xs))
    else:
        cy, cx = height // 2, width // 2
    top = max(0, min(height - side, cy - side // 2))
    left = max(0, min(width - side, cx - side // 2))
    return top, left


def changed_pixels(example: WatermarkedExample, output: np.ndarray) -> np.ndarray:
    """(H, W) bool: the pixels ``output`` changed in the watermarked input."""
    changed: np.ndarray = np.any(output != example.watermarked, axis=2)
    return changed


def cleaned(engine: Engine, example: WatermarkedExample, true_mask: bool) -> Cleaned:
    """``example`` cleaned as served: detected, or restored on its true mask."""
    [served] = engine.clean([example.watermarked], [example.mask] if true_mask else None)
    return served


def photo_row(
    example: WatermarkedExample, output: np.ndarray, changed: np.ndarray, telea: np.ndarray
) -> dict[str, float]:
    """One photo's numbers: PSNR of the input, the output and Telea with the true mask, and
    the ``changed`` pixels' share of the mark (recall) and the mark's share of them
    (precision; NaN when nothing changed)."""
    return {
        "input_psnr": psnr(example.watermarked, example.clean),
        "psnr": psnr(output, example.clean),
        "telea_true_mask_psnr": psnr(telea, example.clean),
        "changed_pixels": int(changed.sum()),
        "precision": mask_precision(changed, example.mask) if changed.any() else math.nan,
        "recall": mask_recall(changed, example.mask),
    }


def side_by_side(
    example: WatermarkedExample, output: np.ndarray, changed: np.ndarray, side: int
) -> np.ndarray:
    """Input, output and clean photo, each cropped to the same ``side`` square, centred on
    the ``changed`` pixels (on the mark when there are none)."""
    top, left = window(changed if changed.any() else example.mask, side)
    crops = [
        a[top : top + side, left : left + side]
        for a in (example.watermarked, output, example.clean)
    ]
    return np.concatenate(crops, axis=1)


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown, one line a photo."""
    lines = [
        "| photo | style | size | input dB | clearmark dB | Telea, true mask dB | changed pixels "
        "| precision | recall |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['style']} | {r['size']} | {r['input_psnr']:.2f} | {r['psnr']:.2f} "
            f"| {r['telea_true_mask_psnr']:.2f} | {r['changed_pixels']:,} | {r['precision']:.2f} "
            f"| {r['recall']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = scoring_arguments(__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the crops, look.md")
    parser.add_argument("--side", type=int, default=384, help="crop side in pixels")
    parser.add_argument(
        "--true-mask", action="store_true", help="send each photo with its true mask"
    )
    args = parser.parse_args(argv)
    params = yaml.safe_load(args.params.read_text())["evaluate"]
    photos = load_photo_folder(args.photos / "val")
    examples = full_resolution_examples(
        large_photos(photos, params["full_min_megapixels"]),
        load_marks(args.photos / "marks.json", "val"),
        params["full_count"],
        params["seed"],
    )
    restorer = None if args.restorer is None else load_model(args.restorer)
    engine = Engine.from_settings(
        load_detector(args.checkpoint), torch.device("cpu"), serving_settings(args.serving_config),
        restorer,
    )  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for index, example in enumerate(examples):
        served = cleaned(engine, example, args.true_mask)
        changed = changed_pixels(example, served.output)
        name = f"{index}-{example.style}"
        Image.fromarray(side_by_side(example, served.output, changed, args.side)).save(
            args.out / f"{name}.png"
        )
        height, width = example.clean.shape[:2]
        telea = telea_inpaint(example.watermarked, example.mask)
        row = photo_row(example, served.output, changed, telea)
        rows.append({"name": name, "style": example.style, "size": f"{width}x{height}", **row})
        print(table(rows[-1:]).splitlines()[-1], flush=True)
    (args.out / "look.json").write_text(json.dumps(rows, indent=2) + "\n")
    (args.out / "look.md").write_text(table(rows))


if __name__ == "__main__":
    main()
