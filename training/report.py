"""metrics/eval.json as the Markdown tables the README shows, with the quality targets checked.

python -m training.report metrics/eval.json
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

# Issue 3's targets on the held-out validation (256x256 protocol unless said).
TARGETS = {
    "psnr": 38.0,  # dB, SLBR's level on CLWD
    "ssim": 0.98,
    "psnr_gain": 10.0,  # dB above the input
    "f1": 0.85,  # mask F1 (DENet on LOGO-H: 0.87)
    "iou": 0.75,
    "full_resolution_gain_gap": 1.0,  # dB: full-size gain within this of the 256x256 gain
    "clean_mean_abs_change": 0.5,  # 0..255 units
    "clean_mask_coverage": 0.005,  # share of pixels
}
COLUMNS = (
    ("psnr", "PSNR dB", 2),
    ("ssim", "SSIM", 4),
    ("rmse", "RMSE", 2),
    ("rmse_w", "RMSEw", 2),
    ("psnr_w", "PSNR in mask dB", 2),
    ("iou", "mask IoU", 3),
    ("f1", "mask F1", 3),
)
METHOD_NAMES = {
    "model": "clearmark",
    "input": "input (do nothing)",
    "telea_true_mask": "Telea inpainting, true mask",
}


def _cell(value: float | None, digits: int) -> str:
    return "" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _methods_table(scores: dict[str, Any], extra: dict[str, str] | None = None) -> list[str]:
    """One row per method; ``extra`` adds rows {label: key of scores}."""
    lines = [
        "| method | " + " | ".join(name for _, name, _ in COLUMNS) + " |",
        "|---" * (len(COLUMNS) + 1) + "|",
    ]
    rows = {**{label: method for method, label in METHOD_NAMES.items()}, **(extra or {})}
    for label, method in rows.items():
        row = scores[method]
        lines.append(
            f"| {label} | "
            + " | ".join(_cell(row.get(key), digits) for key, _, digits in COLUMNS)
            + " |"
        )
    return lines


def _check(met: bool) -> str:
    return "met" if met else "missed"


def target_checks(summary: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    """(target, required, measured, met) for each of issue 3's targets."""
    p256, full, clean = summary["protocol_256"], summary["full_resolution"], summary["clean_photos"]
    model = p256["model"]
    gap = abs(full["served_psnr_gain"] - p256["psnr_gain"])
    checks = [
        ("PSNR (256)", f">= {TARGETS['psnr']} dB", f"{model['psnr']:.2f} dB",
         model["psnr"] >= TARGETS["psnr"]),
        ("SSIM (256)", f">= {TARGETS['ssim']}", f"{model['ssim']:.4f}",
         model["ssim"] >= TARGETS["ssim"]),
        ("PSNR gain over input (256)", f">= {TARGETS['psnr_gain']} dB",
         f"{p256['psnr_gain']:+.2f} dB", p256["psnr_gain"] >= TARGETS["psnr_gain"]),
        ("mask F1 (256)", f">= {TARGETS['f1']}", f"{model['f1']:.3f}",
         model["f1"] >= TARGETS["f1"]),
        ("mask IoU (256)", f">= {TARGETS['iou']}", f"{model['iou']:.3f}",
         model["iou"] >= TARGETS["iou"]),
    ]  # fmt: skip
    for style, scores in p256["per_style"].items():
        ours, telea = scores["model"]["rmse_w"], scores["telea_true_mask"]["rmse_w"]
        checks.append(
            (f"RMSEw below Telea's, {style}", f"< {telea:.2f}", f"{ours:.2f}", ours < telea)
        )
    checks += [
        ("full-resolution gain within 1 dB of the 256 gain",
         f"<= {TARGETS['full_resolution_gain_gap']} dB apart",
         f"{full['served_psnr_gain']:+.2f} vs {p256['psnr_gain']:+.2f} dB",
         gap <= TARGETS["full_resolution_gain_gap"]),
        ("watermark-free photos: mean absolute change", f"< {TARGETS['clean_mean_abs_change']}/255",
         f"{clean['mean_abs_change']:.2f}/255",
         clean["mean_abs_change"] < TARGETS["clean_mean_abs_change"]),
        ("watermark-free photos: predicted mask coverage",
         f"< {TARGETS['clean_mask_coverage']:.1%}", f"{clean['mask_coverage']:.2%}",
         clean["mask_coverage"] < TARGETS["clean_mask_coverage"]),
    ]  # fmt: skip
    return checks


def eval_table(summary: dict[str, Any]) -> str:
    """The README's evaluation section body, from eval.json's contents."""
    p256, full, clean = summary["protocol_256"], summary["full_resolution"], summary["clean_photos"]
    lines = [
        f"**256x256 protocol** ({p256['examples']} held-out images, held-out fonts and logos):",
        "",
        *_methods_table(p256),
        "",
        "**Per style** (PSNR dB of input / clearmark / Telea with the true mask; RMSEw of "
        "clearmark / Telea; clearmark's mask F1):",
        "",
        "| style | PSNR input | PSNR clearmark | PSNR Telea | RMSEw clearmark | RMSEw Telea "
        "| mask F1 |",
        "|---|---|---|---|---|---|---|",
    ]
    for style, s in p256["per_style"].items():
        lines.append(
            f"| {style} | {s['input']['psnr']:.2f} | {s['model']['psnr']:.2f} "
            f"| {s['telea_true_mask']['psnr']:.2f} | {s['model']['rmse_w']:.2f} "
            f"| {s['telea_true_mask']['rmse_w']:.2f} | {s['model']['f1']:.3f} |"
        )
    lines += [
        "",
        f"**Full resolution** ({full['examples']} marks on whole held-out photos, "
        f"{full['megapixels']:.1f} megapixels on average; clearmark run whole, and as served: "
        "bfloat16, region by region or whole, pixels below the keep threshold untouched):",
        "",
        *_methods_table(full, {"clearmark as served": "served"}),
        "",
        f"As served, {full['served']['tile_share']:.0%} of the tiles were restored on average (a "
        "photo whose marked tiles would cost more runs whole and counts as all of them); the "
        f"served output is {full['served']['psnr_to_whole']:.1f} dB PSNR from the float32 "
        "whole-image output.",
        "",
        f"**Watermark-free images** ({clean['examples']}, cleaned as served): mean absolute change "
        f"{clean['mean_abs_change']:.2f}/255, predicted mask coverage "
        f"{clean['mask_coverage']:.2%}.",
        "",
        f"Model: {summary['parameters']:,} parameters, "
        f"{summary['gflop_per_megapixel']:.1f} GFLOP per megapixel.",
        "",
        "| target | required | measured | |",
        "|---|---|---|---|",
    ]
    for name, required, measured, met in target_checks(summary):
        lines.append(f"| {name} | {required} | {measured} | {_check(met)} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("eval_json", type=Path)
    args = parser.parse_args()
    print(eval_table(json.loads(args.eval_json.read_text())), end="")


if __name__ == "__main__":
    main()
