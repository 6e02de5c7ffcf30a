"""Photos into watermarked examples: random training batches and the fixed validation set."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy.ndimage import gaussian_filter

from training.synth import (
    STYLES,
    MarkAssets,
    WatermarkedExample,
    add_watermark,
    blend,
    crossing_lines,
    stroke_coverage,
    unmarked,
)


def random_crop(photo: np.ndarray, rng: np.random.Generator, size: int, scale: float) -> np.ndarray:
    """A size x size crop of ``photo`` seen at ``scale`` (< 1 zooms out), randomly flipped."""
    height, width = photo.shape[:2]
    window = min(height, width, max(size, round(size / scale)))
    top = int(rng.integers(0, height - window + 1))
    left = int(rng.integers(0, width - window + 1))
    crop = photo[top : top + window, left : left + window]
    if window != size:
        crop = np.asarray(
            Image.fromarray(crop).resize((size, size), Image.Resampling.BICUBIC, reducing_gap=3.0)
        )
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return np.ascontiguousarray(crop)


def augment_photo(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Vary a clean crop's colours and orientation, so that no colour or brightness of the few
    training photos can pass for a sign of a watermark. (H, W, 3) uint8 in and out."""
    if rng.random() < 0.5:
        crop = crop[..., rng.permutation(3)]
    if rng.random() < 0.5:
        crop = np.rot90(crop, k=int(rng.integers(1, 4)))
    levels = crop.astype(np.float32) / 255
    levels = levels ** rng.uniform(0.6, 1.6)  # gamma
    levels = (levels - 0.5) * rng.uniform(0.7, 1.3) + 0.5 + rng.uniform(-0.15, 0.15)
    return np.ascontiguousarray(np.clip(levels * 255 + 0.5, 0, 255).astype(np.uint8))


def mosaic(crop: np.ndarray, other: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``crop`` with the part of it on one side of a random straight line (any angle, through a
    point of its middle half) replaced by ``other`` (the same shape): a picture no training
    photo is, with an edge between two photos that is not a mark. With a few dozen real photos
    the detector learnt them whole (sure of marks on them, unsure of marks on held-out ones:
    model/candidates/README.md, the region verifier); pieces of two at once cannot be learnt
    so."""
    height, width = crop.shape[:2]
    angle = rng.uniform(0, np.pi)
    cy, cx = rng.uniform(0.25, 0.75) * height, rng.uniform(0.25, 0.75) * width
    ys, xs = np.mgrid[:height, :width]
    side = (xs - cx) * np.cos(angle) + (ys - cy) * np.sin(angle) > 0
    return np.where(side[..., None], other, crop)


def veil(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``crop`` under a smooth veil of light (haze, mist, glare) or of shade (a vignette):
    ``crop (1 - a) + colour a`` with ``a`` a field without edges (a ramp in any direction mixed
    with a few broad bumps), up to 0.15-0.7. It is the blend a semi-transparent watermark makes,
    with no shape: the served detector flagged a held-out photo's hazy lake as one large white
    mark (16.4% of that photo's clean pixels above 0.5: python -m training.generalisation), and
    hazy distances are in most landscape photos. (H, W, 3) uint8 in and out."""
    height, width = crop.shape[:2]
    ys, xs = np.mgrid[:height, :width] / max(height, width)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = xs * np.cos(angle) + ys * np.sin(angle)
    # A few broad bumps: a 2-5 cell grid of noise enlarged smoothly to the crop.
    cells = int(rng.integers(2, 6))
    bumps = Image.fromarray(rng.standard_normal((cells, cells)).astype(np.float32), mode="F")
    bumps = np.asarray(bumps.resize((width, height), Image.Resampling.BICUBIC))

    def unit(field: np.ndarray) -> np.ndarray:
        return (field - field.min()) / max(float(np.ptp(field)), 1e-6)

    share = rng.uniform(0, 1)
    field = unit(share * unit(ramp) + (1 - share) * unit(bumps)) ** rng.uniform(0.5, 2.0)
    alpha = rng.uniform(0.15, 0.7) * field
    if rng.random() < 0.8:  # light: haze and mist are white to bluish grey
        colour = np.clip(rng.uniform(0.75, 1.0) + rng.uniform(-0.05, 0.05, 3), 0, 1)
    else:  # shade
        colour = rng.uniform(0.0, 0.2, 3)
    return blend(crop, alpha, colour)


def filaments(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``crop`` with thin light strokes drawn over it as part of the clean picture: hairs, seed
    fluff, spider silk and wires against a blurred ground, light trails, the rays of a sun star
    (two times in five, 6-19 strokes from one point; else 1-5 anywhere). Half the time the ground
    is first thrown out of focus, as behind a macro subject. Thin light curves are what a white
    text mark is drawn with, few training photos have any, and the served detector took a
    held-out macro photo's seed filaments for a mark: the false alarm that holds the gate's region
    confidence at 0.9 (handler/model-config.yaml). (H, W, 3) uint8 in and out."""
    height, width = crop.shape[:2]
    picture = crop.astype(np.float32) / 255
    if rng.random() < 0.5:
        sigma = rng.uniform(1.5, 6.0)
        picture = gaussian_filter(picture, (sigma, sigma, 0))
    side = max(height, width)
    radiating = rng.random() < 0.4
    hub = rng.uniform(0.1, 0.9, 2) * (width, height)
    for _ in range(int(rng.integers(6, 20) if radiating else rng.integers(1, 6))):
        angle = rng.uniform(0, 2 * np.pi)
        if radiating:  # each stroke starts at the hub
            length = rng.uniform(0.1, 0.5) * side
            centre = hub + length / 2 * np.array([np.cos(angle), np.sin(angle)])
            bend = rng.uniform(-0.2, 0.2)
        else:
            length = rng.uniform(0.2, 1.2) * side
            centre = rng.uniform(0, 1, 2) * (width, height)
            bend = rng.uniform(-0.6, 0.6)
        thickness = rng.uniform(0.4, 2.5)
        cov = stroke_coverage(
            (height, width), (centre[0], centre[1]), length, angle, bend, thickness
        )
        if rng.random() < 0.4:  # a glow around it
            cov = np.maximum(cov, gaussian_filter(cov, rng.uniform(1, 3)) * 0.8)
        cov = cov * rng.uniform(0.5, 1.0)
        if rng.random() < 0.85:  # white to a faint tint
            colour = np.clip(rng.uniform(0.85, 1.0) + rng.uniform(-0.08, 0.08, 3), 0, 1)
        else:
            colour = rng.uniform(0, 1, 3)
        picture = picture * (1 - cov[..., None]) + colour.astype(np.float32) * cov[..., None]
    return np.clip(picture * 255 + 0.5, 0, 255).astype(np.uint8)


def draw_photo(
    photos: Sequence[np.ndarray], rng: np.random.Generator, weights: np.ndarray | None = None
) -> np.ndarray:
    """One of ``photos``, uniformly or with probabilities ``weights`` (sampling_weights)."""
    if weights is None:
        return photos[int(rng.integers(len(photos)))]
    return photos[int(rng.choice(len(photos), p=weights))]


def training_examples(
    photos: Sequence[np.ndarray],
    assets: MarkAssets,
    rng: np.random.Generator,
    count: int,
    crop_size: int,
    min_scale: float,
    mark_reference_sizes: tuple[int, int],
    clean_fraction: float,
    negatives: np.ndarray | None = None,
    negative_fraction: float = 0.0,
    photo_weights: np.ndarray | None = None,
    crossing_fraction: float = 0.0,
    mosaic_fraction: float = 0.0,
    veil_fraction: float = 0.0,
    filament_fraction: float = 0.0,
) -> list[WatermarkedExample]:
    """Random augmented crops, each with marks sized as if on an image whose short side is drawn
    log-uniformly from ``mark_reference_sizes``: a crop is a window of a photo of any size, so
    marks come at every scale they take at full resolution (thin small text on a 12-megapixel
    photo, a centred logo larger than the crop). A ``clean_fraction`` of them carry no mark, so
    the model learns to leave clean photos alone; of those, ``negative_fraction`` are hard
    negatives (training/negatives.py: (K, S, S, 3) crops a model fired on), turned at random.
    Photos are drawn uniformly, or with ``photo_weights`` (sampling_weights) when given. A
    ``crossing_fraction`` of the marked ones get thin lines of the photo under their mark
    (synth.crossing_lines); at 0 the draws are those of a run without it. A ``mosaic_fraction``
    of the crops, marked or not, are two photos' crops joined along a line (mosaic); at 0 it
    takes no draw, so the draws are those of a run without it. A ``veil_fraction`` of the crops
    lie under a smooth veil (veil) before any mark is added: part of the clean picture, never
    of the mark; at 0 it takes no draw. So do a ``filament_fraction`` with thin light strokes
    (filaments), drawn after any veil."""
    low, high = mark_reference_sizes

    def augmented_crop() -> np.ndarray:
        photo = draw_photo(photos, rng, photo_weights)
        crop = augment_photo(
            random_crop(photo, rng, crop_size, scale=rng.uniform(min_scale, 1.0)), rng
        )
        if veil_fraction > 0 and rng.random() < veil_fraction:
            crop = veil(crop, rng)
        if filament_fraction > 0 and rng.random() < filament_fraction:
            crop = filaments(crop, rng)
        return crop

    examples = []
    for _ in range(count):
        crop = augmented_crop()
        if mosaic_fraction > 0 and rng.random() < mosaic_fraction:
            crop = mosaic(crop, augmented_crop(), rng)
        if rng.random() < clean_fraction:
            if negatives is not None and len(negatives) and rng.random() < negative_fraction:
                crop = negatives[int(rng.integers(len(negatives)))]
                crop = np.ascontiguousarray(np.rot90(crop, k=int(rng.integers(4))))
            examples.append(unmarked(crop, rng))
        else:
            reference = round(math.exp(rng.uniform(math.log(low), math.log(high))))
            example = add_watermark(crop, rng, assets, reference_size=reference)
            if crossing_fraction > 0 and rng.random() < crossing_fraction:
                example = crossing_lines(example, rng)
            examples.append(example)
    return examples


def validation_examples(
    photos: Sequence[np.ndarray],
    assets: MarkAssets,
    count: int,
    crop_size: int,
    seed: int,
    styles: Sequence[str] = STYLES,
) -> list[WatermarkedExample]:
    """The fixed, seeded validation set: the same photos, assets and seed always give the same
    examples. Styles take turns, so each is scored on count / len(styles) examples; each image is
    a random window of a photo (a fifth of it to all of it) resized to crop_size, as the papers
    resize whole photos to 256x256."""
    rng = np.random.default_rng(seed)
    examples = []
    for i in range(count):
        crop = random_crop(photos[i % len(photos)], rng, crop_size, scale=rng.uniform(0.2, 1.0))
        examples.append(add_watermark(crop, rng, assets, style=styles[i % len(styles)]))
    return examples


def to_tensor(images: Sequence[np.ndarray]) -> torch.Tensor:
    """(H, W, 3) uint8 arrays -> (B, 3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div(255)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) float in [0, 1] -> (B, H, W, 3) uint8."""
    return images.clamp(0, 1).mul(255).round().byte().permute(0, 2, 3, 1).cpu().numpy()


def collate(examples: Sequence[WatermarkedExample]) -> dict[str, torch.Tensor]:
    """Stack examples into training tensors, all float32 NCHW."""
    return {
        "watermarked": to_tensor([e.watermarked for e in examples]),
        "clean": to_tensor([e.clean for e in examples]),
        "mask": torch.from_numpy(np.stack([e.mask for e in examples])).float()[:, None],
        "alpha": torch.from_numpy(np.stack([e.alpha for e in examples]))[:, None],
        "colour": torch.from_numpy(np.stack([e.colour for e in examples])).permute(0, 3, 1, 2),
    }


def _photo_files(folder: Path) -> list[Path]:
    files = sorted(folder.glob("*.png"))
    if not files:
        raise FileNotFoundError(f"no photos in {folder}: run the prepare stage first")
    return files


def load_photo_folder(folder: Path) -> list[np.ndarray]:
    """The PNGs the prepare stage wrote, in name order: (H, W, 3) uint8 each."""
    return [np.asarray(Image.open(f).convert("RGB")) for f in _photo_files(folder)]


def photo_names(folder: Path) -> list[str]:
    """The names (without .png) of load_photo_folder's photos, in the same order."""
    return [f.stem for f in _photo_files(folder)]


def photo_sources(folder: Path) -> tuple[str, ...]:
    """Where each of load_photo_folder's photos came from, in the same order: the prepare
    stage's name prefix ("leaves", "texture", "wallpaper", "skimage", ...)."""
    return tuple(name.split("-", 1)[0] for name in photo_names(folder))


def sampling_weights(sources: Sequence[str], shares: dict[str, float]) -> np.ndarray:
    """Per-photo probabilities that give each source its share of the draws, split evenly
    among its photos; "other" is every source ``shares`` does not name. Shares of sources with
    no photo are dropped and the rest renormalised.

    Why: the training folder is 97% procedural leaves and textures, on which Telea fills badly;
    a restorer drawn uniformly from it learnt corrections that help there and hurt on the
    smoother real photos it is validated and used on."""
    named = [s if s in shares else "other" for s in sources]
    if "other" in named and "other" not in shares:
        missing = sorted({s for s in sources if s not in shares})
        raise ValueError(f"no share for the photo sources {missing} (name them or 'other')")
    counts = {s: named.count(s) for s in set(named)}
    weights = np.array([shares[s] / counts[s] for s in named], dtype=np.float64)
    if weights.sum() <= 0:
        raise ValueError(f"the shares {shares} give no photo a chance")
    return weights / weights.sum()


def load_marks(path: Path, split: str) -> MarkAssets:
    """The fonts and logos the prepare stage assigned to ``split`` ("train" or "val")."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} missing: run the prepare stage first")
    marks = json.loads(path.read_text())[split]
    return MarkAssets(
        fonts=tuple(Path(f) for f in marks["fonts"]), logos=tuple(Path(f) for f in marks["logos"])
    )


@dataclass(frozen=True)
class TrainingInputs:
    """What a training loop reads from the prepare stage's output."""

    train_photos: list[np.ndarray]
    val_photos: list[np.ndarray]
    train_assets: MarkAssets
    val_assets: MarkAssets
    train_sources: tuple[str, ...]  # photo_sources of train_photos


def load_training_inputs(photos: Path) -> TrainingInputs:
    """Both splits' photos and marks from the prepare stage's output folder."""
    return TrainingInputs(
        load_photo_folder(photos / "train"),
        load_photo_folder(photos / "val"),
        load_marks(photos / "marks.json", "train"),
        load_marks(photos / "marks.json", "val"),
        photo_sources(photos / "train"),
    )
