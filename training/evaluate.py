"""The evaluate stage: score a checkpoint on the fixed, seeded validation set of held-out photos.

Writes ``metrics/eval.json`` (PSNR of the watermarked input and of the model's output against
the clean image, mask IoU) and ``metrics/examples/``: a few watermarked/clean pairs to try the
service with, and a grid (input | output | predicted mask | clean) to look at.

    python -m training.evaluate --params params.yaml --photos data/photos/val \
        --checkpoint training/runs/best.pt --out metrics
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import yaml
from PIL import Image

from training.checkpoint import load_model
from training.examples import load_photo_folder, to_tensor, to_uint8, validation_examples
from training.fonts import bundled_fonts
from training.metrics import mask_iou, psnr
from training.model import WatermarkRemover, remove_watermark
from training.synth import WatermarkedExample

EXAMPLE_PAIRS = 3  # watermarked/clean pairs written out for trying the service
GRID_ROWS = 6


@torch.inference_mode()
def evaluate(
    model: WatermarkRemover, examples: Sequence[WatermarkedExample]
) -> tuple[dict[str, float], list[np.ndarray], list[np.ndarray]]:
    """Mean metrics over the examples, and per example the output and predicted mask (uint8)."""
    outputs, masks, rows = [], [], []
    for ex in examples:
        pred = remove_watermark(model, to_tensor([ex.watermarked]))
        output = to_uint8(pred.output)[0]
        predicted_mask = pred.mask[0, 0].numpy() > 0.5
        outputs.append(output)
        masks.append(predicted_mask)
        rows.append(
            {
                "psnr_input": psnr(ex.watermarked, ex.clean),
                "psnr_output": psnr(output, ex.clean),
                "mask_iou": mask_iou(predicted_mask, ex.mask),
            }
        )
    summary = {key: float(np.mean([r[key] for r in rows])) for key in rows[0]}
    summary["psnr_gain"] = summary["psnr_output"] - summary["psnr_input"]
    summary["examples"] = len(rows)
    return summary, outputs, masks


@torch.inference_mode()
def model_cost(model: WatermarkRemover, side: int = 1024) -> dict[str, float]:
    """Parameter count and forward GFLOP per megapixel (a multiply-add counts as 2 FLOP)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        remove_watermark(model, torch.zeros(1, 3, side, side))
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--photos", type=Path, required=True, help="held-out photos folder")
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    params = yaml.safe_load(args.params.read_text())["evaluate"]
    examples = validation_examples(
        load_photo_folder(args.photos),
        bundled_fonts(),
        params["count"],
        params["crop_size"],
        params["seed"],
    )
    model = load_model(args.checkpoint)
    summary, outputs, masks = evaluate(model, examples)
    summary.update(model_cost(model))
    (args.out / "examples").mkdir(parents=True, exist_ok=True)
    (args.out / "eval.json").write_text(json.dumps(summary, indent=2) + "\n")
    for i, ex in enumerate(examples[:EXAMPLE_PAIRS]):
        Image.fromarray(ex.watermarked).save(args.out / "examples" / f"{i}-watermarked.png")
        Image.fromarray(ex.clean).save(args.out / "examples" / f"{i}-clean.png")
    grid = example_grid(examples[:GRID_ROWS], outputs, masks)
    Image.fromarray(grid).save(args.out / "examples" / "grid.png")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
