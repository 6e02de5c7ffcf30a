"""Where the detector stops generalising: new photos, or new marks?

``python -m training.generalisation --checkpoint model/clearmark.pt --photos data/photos``
scores the detector alone (every pixel above the served mask_threshold, no gate) on the
validation protocol's crops (training/examples.py validation_examples) made four ways: the
real training photos or the held-out ones, under the training fonts and icons or the held-out
ones. A gap between the photo rows is a detector that learnt its training photos; a gap
between the mark columns, one that learnt its fonts and icons. It then scores each held-out
photo alone (held-out marks): which pictures the detector misses marks on, and which it fires
on where there is no mark.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from handler.engine import MIRROR_VIEWS, Engine, EngineConfig
from handler.pipeline import PipelineConfig
from training.checkpoint import load_detector
from training.evaluate import serving_settings, style_indices
from training.examples import (
    collate,
    load_marks,
    load_photo_folder,
    photo_names,
    photo_sources,
    validation_examples,
)
from training.metrics import mask_f1, mask_recall
from training.photos import MADE_SOURCES
from training.synth import STYLES, MarkAssets, WatermarkedExample


def real_photos(photos: Sequence[np.ndarray], sources: Sequence[str]) -> list[np.ndarray]:
    """The training photos whose source is not one of MADE_SOURCES (training/photos.py): what
    the held-out photos are compared with."""
    return [p for p, s in zip(photos, sources, strict=True) if s not in MADE_SOURCES]


@torch.inference_mode()
def probabilities(
    engine: Engine, examples: Sequence[WatermarkedExample], batch: int = 20
) -> np.ndarray:
    """(N, H, W) watermark probability of each example, from the served forward
    (handler/engine.py Engine.network: its precision and mirror_views)."""
    maps = []
    for start in range(0, len(examples), batch):
        images = collate(examples[start : start + batch])["watermarked"]
        maps.append(engine.network(images.to(engine.device))[:, 0].cpu().numpy())
    return np.concatenate(maps)


def style_f1(
    probability: np.ndarray, examples: Sequence[WatermarkedExample], threshold: float
) -> dict[str, float]:
    """Pooled pixel F1 of ``probability`` > ``threshold`` against the true masks: over all the
    examples ("all") and per style."""
    found = probability > threshold
    truth = np.stack([ex.mask for ex in examples])
    scores = {"all": mask_f1(found, truth)}
    for style, picked in style_indices(examples).items():
        scores[style] = mask_f1(found[picked], truth[picked])
    return scores


def photo_rows(
    probability: np.ndarray,
    examples: Sequence[WatermarkedExample],
    photo_count: int,
    threshold: float,
) -> list[dict[str, float]]:
    """Per photo (validation_examples cycles through the photos: example i is on photo
    i % photo_count): pooled F1 and recall of its marks, and the share of its unmarked pixels
    above ``threshold``."""
    found = probability > threshold
    truth = np.stack([ex.mask for ex in examples])
    rows = []
    for k in range(photo_count):
        mine = slice(k, len(examples), photo_count)
        f, t = found[mine], truth[mine]
        rows.append({
            "f1": mask_f1(f, t),
            "recall": mask_recall(f, t),
            "flagged": float((f & ~t).sum() / max(int((~t).sum()), 1)),
        })  # fmt: skip
    return rows


def cross_maps(
    engine: Engine,
    photos: dict[str, Sequence[np.ndarray]],
    marks: dict[str, MarkAssets],
    count: int,
    crop_size: int,
    seed: int,
) -> dict[tuple[str, str], tuple[list[WatermarkedExample], np.ndarray]]:
    """For every (photos, marks) pair of the named sets: its ``count`` validation crops and
    the model's probability maps of them (the tables below score both)."""
    cells = {}
    for photo_name, photo_set in photos.items():
        for mark_name, assets in marks.items():
            examples = validation_examples(photo_set, assets, count, crop_size, seed)
            cells[photo_name, mark_name] = (examples, probabilities(engine, examples))
    return cells


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--photos", type=Path, required=True, help="the prepare stage's output")
    parser.add_argument("--count", type=int, default=200, help="crops per combination")
    parser.add_argument("--crop-size", type=int, default=256)
    # Another seed than the training validation's (1) and the evaluation's.
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--serving-config", type=Path, default=Path("handler/model-config.yaml"),
        help="its mask_threshold is the detector's",
    )  # fmt: skip
    parser.add_argument(
        "--mirror-views", choices=MIRROR_VIEWS,
        help="the detector's views (handler/engine.py mirror_views); default: the config's",
    )  # fmt: skip
    args = parser.parse_args(argv)
    settings = serving_settings(args.serving_config)
    threshold = PipelineConfig.from_settings(settings).mask_threshold
    engine_cfg = EngineConfig.from_settings(settings)
    if args.mirror_views is not None:
        engine_cfg = replace(engine_cfg, mirror_views=args.mirror_views)
    val_folder = args.photos / "val"
    names = photo_names(val_folder)
    if args.count < len(names):
        parser.error(f"--count must be at least the {len(names)} held-out photos")
    torch.manual_seed(0)
    engine = Engine(load_detector(args.checkpoint), torch.device("cpu"), engine_cfg)
    train_folder = args.photos / "train"
    photos = {
        "training photos (real ones)": real_photos(
            load_photo_folder(train_folder), photo_sources(train_folder)
        ),
        "held-out photos": load_photo_folder(val_folder),
    }
    marks = {
        "training marks": load_marks(args.photos / "marks.json", "train"),
        "held-out marks": load_marks(args.photos / "marks.json", "val"),
    }
    cells = cross_maps(engine, photos, marks, args.count, args.crop_size, args.seed)
    print(
        f"Detector alone (pixels above {threshold}, mirror_views {engine_cfg.mirror_views}), "
        f"pooled F1, {args.count} crops each:\n"
    )
    print("| photos | marks | all | " + " | ".join(STYLES) + " |")
    print("|---|---|---|" + "---|" * len(STYLES))
    for (photo_name, mark_name), (examples, probability) in cells.items():
        scores = style_f1(probability, examples, threshold)
        row_text = " | ".join(f"{scores.get(s, float('nan')):.2f}" for s in ("all", *STYLES))
        print(f"| {photo_name} ({len(photos[photo_name])}) | {mark_name} | {row_text} |")
    held_out = photos["held-out photos"]
    # As many crops of each photo: the first of the held-out pair's (the validation crops are
    # drawn in sequence, so they are what a draw of this many would give).
    count = len(held_out) * (args.count // len(held_out))
    examples, probability = cells["held-out photos", "held-out marks"]
    rows = photo_rows(probability[:count], examples[:count], len(held_out), threshold)
    print(f"\nEach held-out photo, held-out marks ({count // len(held_out)} crops each):\n")
    print("| photo | F1 | recall | unmarked pixels flagged |")
    print("|---|---|---|---|")
    for name, row in zip(names, rows, strict=True):
        print(f"| {name} | {row['f1']:.2f} | {row['recall']:.2f} | {100 * row['flagged']:.2f}% |")


if __name__ == "__main__":
    main()
