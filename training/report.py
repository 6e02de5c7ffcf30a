"""metrics/eval.json as the Markdown tables the README shows, with the quality targets checked.

python -m training.report metrics/eval.json
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from training.metrics import REMOVAL_LEFT, REMOVAL_WHOLE

# Issue 10's targets on the held-out evaluation, everything as served.
TARGETS = {
    "gap_closed": 0.5,  # share of the input -> Telea-with-the-true-mask PSNR gap, every style
    "f1": 0.75,  # mask F1 at 256
    "clean_mean_abs_change": 0.3,  # 0..255 units
    "clean_mask_coverage": 0.005,  # share of pixels
}
METHOD_NAMES = {
    "model": "clearmark",
    "restore_true_mask": "clearmark's restoration, true mask",
    "input": "input (do nothing)",
    "telea_true_mask": "Telea inpainting, true mask",
}
COLUMNS = (
    ("psnr", "PSNR dB", 2),
    ("ssim", "SSIM", 4),
    ("rmse_w", "RMSEw", 2),
    ("psnr_w", "PSNR in mask dB", 2),
    ("f1", "mask F1", 3),
    ("iou", "mask IoU", 3),
    ("precision", "precision", 3),
    ("recall", "recall", 3),
)


def _cell(value: float | None, digits: int) -> str:
    return "" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _methods_table(scores: dict[str, Any]) -> list[str]:
    """One row per method, every score column."""
    lines = [
        "| method | " + " | ".join(name for _, name, _ in COLUMNS) + " |",
        "|---" * (len(COLUMNS) + 1) + "|",
    ]
    for method, label in METHOD_NAMES.items():
        row = scores[method]
        cells = " | ".join(_cell(row.get(key), digits) for key, _, digits in COLUMNS)
        lines.append(f"| {label} | {cells} |")
    return lines


def _style_table(scores: dict[str, Any]) -> list[str]:
    """Per style: PSNR of every method, the gap closed and clearmark's mask F1."""
    lines = [
        "| style | input | clearmark | restoration, true mask | Telea, true mask "
        "| gap closed | mask F1 |",
        "|---|---|---|---|---|---|---|",
    ]
    for style, s in scores["per_style"].items():
        lines.append(
            f"| {style} | {s['input']['psnr']:.2f} | {s['model']['psnr']:.2f} "
            f"| {s['restore_true_mask']['psnr']:.2f} | {s['telea_true_mask']['psnr']:.2f} "
            f"| {_cell(s['gap_closed'], 2)} | {s['model']['f1']:.3f} |"
        )
    return lines


def _ungated_lines(section: dict[str, Any], clean: dict[str, Any] | None) -> list[str]:
    """What the detector finds before the region gate, overall and per style, and on
    watermark-free images when ``clean`` is given (evaluations from before it was measured
    have no such line)."""
    if "ungated" not in section:
        return []
    u = section["ungated"]
    line = (
        f"The detector alone (every pixel above the mask threshold, no region gate): mask F1 "
        f"{u['f1']:.3f}, precision {u['precision']:.3f}, recall {u['recall']:.3f}"
    )
    if "per_style" in u:
        line += (
            " (recall per style: "
            + ", ".join(f"{style} {s['recall']:.2f}" for style, s in u["per_style"].items())
            + ")"
        )
    if clean is not None:
        line += (
            f"; on the watermark-free images it flags {clean['ungated_coverage']:.2%} of the pixels"
        )
    return [line + ".", ""]


def _unsure_lines(section: dict[str, Any]) -> list[str]:
    """What the page shows a person: the mask with the regions the network saw and left (in
    amber, added with Pick or Add all); evaluations from before it was measured have none."""
    if "with_unsure" not in section:
        return []
    w = section["with_unsure"]
    return [
        f"The mask with what the network saw and left (the page's amber regions, "
        f"`/api/v1/detect?unsure=true`): recall {w['recall']:.3f}, precision "
        f"{w['precision']:.3f}; {w['marks_rescued']} of the {section['examples']} marks have "
        "less than half of their pixels in the mask and half or more in the two together.",
        "",
    ]


def _photo_lines(summary: dict[str, Any]) -> list[str]:
    """Photo by photo, which marked photos came back worse than their input, and how many marks
    were removed whole, partly or left (evaluations from before each was measured have no such
    line)."""
    parts, removed = [], []
    for name, key in (("256", "protocol_256"), ("full resolution", "full_resolution")):
        section = summary[key]
        if "worst_gain" in section:
            parts.append(
                f"{name}: {section['photos_worse']} of {section['examples']} "
                f"(the worst {section['worst_gain']:+.2f} dB)"
            )
        if "marks_whole" in section:
            removed.append(
                f"{name}: {section['marks_whole']} whole, {section['marks_partly']} partly, "
                f"{section['marks_left']} left"
            )
    if not parts:
        return []
    lines = ["Photos that came back worse than their input, " + "; ".join(parts) + ".", ""]
    if removed:
        lines += [
            f"Marks removed whole (at least {REMOVAL_WHOLE:.0%} of their pixels changed), partly, "
            f"or left (under {REMOVAL_LEFT:.0%}), " + "; ".join(removed) + ".",
            "",
        ]
    return lines


def _clean_full_lines(summary: dict[str, Any]) -> list[str]:
    """The large held-out photos whole and unmarked (evaluations from before it was measured
    have no such line)."""
    if "clean_full_size" not in summary:
        return []
    c = summary["clean_full_size"]
    return [
        f"**Watermark-free photos at full size** (the {c['examples']} large held-out photos, "
        f"unmarked, as served): mean absolute change {c['mean_abs_change']:.2f}/255, pixels "
        f"flagged {c['mask_coverage']:.2%}, the most of any photo "
        f"{c['worst_mask_coverage']:.2%}.",
        "",
    ]


def _check(met: bool) -> str:
    return "met" if met else "missed"


def target_checks(summary: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    """(target, required, measured, met) for each of issue 10's targets."""
    checks = []
    for name, key in (("256", "protocol_256"), ("full resolution", "full_resolution")):
        for style, s in summary[key]["per_style"].items():
            gain = s["model"]["psnr"] - s["input"]["psnr"]
            checks.append(
                (f"not worse than the input, {style}, {name}", ">= +0.00 dB",
                 f"{gain:+.2f} dB", gain >= 0)
            )  # fmt: skip
    for name, key in (("256", "protocol_256"), ("full resolution", "full_resolution")):
        for style, s in summary[key]["per_style"].items():
            ours, telea = s["restore_true_mask"]["psnr"], s["telea_true_mask"]["psnr"]
            checks.append(
                (f"restoration beats Telea given the true mask, {style}, {name}",
                 f"> {telea:.2f} dB", f"{ours:.2f} dB", ours > telea)
            )  # fmt: skip
    for name, key in (("256", "protocol_256"), ("full resolution", "full_resolution")):
        for style, s in summary[key]["per_style"].items():
            closed = s["gap_closed"]
            checks.append(
                (f"half the gap to Telea-with-the-true-mask closed, {style}, {name}",
                 f">= {TARGETS['gap_closed']:.2f}", _cell(closed, 2),
                 not math.isnan(closed) and closed >= TARGETS["gap_closed"])
            )  # fmt: skip
    f1 = summary["protocol_256"]["model"]["f1"]
    clean = summary["clean_photos"]
    checks += [
        ("mask F1 (256)", f">= {TARGETS['f1']}", f"{f1:.3f}", f1 >= TARGETS["f1"]),
        ("watermark-free photos: mean absolute change", f"< {TARGETS['clean_mean_abs_change']}/255",
         f"{clean['mean_abs_change']:.2f}/255",
         clean["mean_abs_change"] < TARGETS["clean_mean_abs_change"]),
        ("watermark-free photos: pixels flagged", f"< {TARGETS['clean_mask_coverage']:.1%}",
         f"{clean['mask_coverage']:.2%}", clean["mask_coverage"] < TARGETS["clean_mask_coverage"]),
    ]  # fmt: skip
    if "clean_full_size" in summary:
        worst = summary["clean_full_size"]["worst_mask_coverage"]
        checks.append(
            ("watermark-free full-size photos: pixels flagged, the worst photo",
             f"< {TARGETS['clean_mask_coverage']:.1%}", f"{worst:.2%}",
             worst < TARGETS["clean_mask_coverage"])
        )  # fmt: skip
    return checks


def eval_table(summary: dict[str, Any]) -> str:
    """The README's evaluation section body, from eval.json's contents."""
    p256, full, clean = summary["protocol_256"], summary["full_resolution"], summary["clean_photos"]
    lines = [
        f"**256x256 protocol** ({p256['examples']} held-out images, held-out fonts and logos; "
        "as served):",
        "",
        *_methods_table(p256),
        "",
        *_ungated_lines(p256, clean),
        *_unsure_lines(p256),
        "Per style, PSNR dB (gap closed: clearmark's gain over the input as a share of Telea's "
        "with the true mask):",
        "",
        *_style_table(p256),
        "",
        f"**Full resolution** ({full['examples']} marks on whole held-out photos, "
        f"{full['megapixels']:.1f} megapixels on average; as served: "
        f"{full['tile_share']:.0%} of the tiles detected at full size):",
        "",
        *_methods_table(full),
        "",
        *_ungated_lines(full, None),
        *_unsure_lines(full),
        *_style_table(full),
        "",
        *_photo_lines(summary),
        f"**Watermark-free images** ({clean['examples']}, as served): mean absolute change "
        f"{clean['mean_abs_change']:.2f}/255, pixels flagged {clean['mask_coverage']:.2%}.",
        "",
        *_clean_full_lines(summary),
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
