"""Hard negatives: clean training crops on which a model already fires.

Random clean crops are mostly easy (sky, walls): the model learns nothing from them that stops
it flagging the rare texture that looks like a mark (fine print on a sign, a fence, foliage
against a bright sky). Mining scores many clean crops with the weights a run starts from and
keeps the ones with the most confidently flagged pixels, to be shown again and again as clean.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from training.examples import augment_photo, draw_photo, random_crop, to_tensor


def candidate_crops(
    photos: Sequence[np.ndarray],
    rng: np.random.Generator,
    count: int,
    crop_size: int,
    min_scale: float,
    photo_weights: np.ndarray | None = None,
) -> np.ndarray:
    """``count`` clean crops drawn and augmented as training draws them (photos uniformly, or
    with ``photo_weights``): (N, S, S, 3) uint8."""
    crops = []
    for _ in range(count):
        photo = draw_photo(photos, rng, photo_weights)
        crop = random_crop(photo, rng, crop_size, scale=rng.uniform(min_scale, 1.0))
        crops.append(augment_photo(crop, rng))
    return np.stack(crops)


def firing_scores(
    probability: Callable[[torch.Tensor], torch.Tensor],
    crops: np.ndarray,
    threshold: float,
    batch_size: int = 32,
) -> np.ndarray:
    """Share of each crop's pixels whose watermark probability is above ``threshold``.

    probability: (B, 3, H, W) float in [0, 1] -> (B, 1, H, W) probability. Returns (N,) float.
    """
    scores = []
    with torch.inference_mode():
        for start in range(0, len(crops), batch_size):
            maps = probability(to_tensor(crops[start : start + batch_size]))
            scores.append((maps > threshold).float().mean(dim=(1, 2, 3)).cpu().numpy())
    return np.concatenate(scores)


def hard_negatives(crops: np.ndarray, scores: np.ndarray, keep: int) -> np.ndarray:
    """The ``keep`` crops the model fires on most, most-fired first; crops it does not fire on
    at all are never kept (they are no harder than any random crop). (K, S, S, 3) uint8."""
    order = np.argsort(-scores, kind="stable")[:keep]
    return crops[order[scores[order] > 0]]


def mine_hard_negatives(
    probability: Callable[[torch.Tensor], torch.Tensor],
    photos: Sequence[np.ndarray],
    rng: np.random.Generator,
    pool: int,
    keep: int,
    crop_size: int,
    min_scale: float,
    threshold: float,
    photo_weights: np.ndarray | None = None,
) -> np.ndarray:
    """Score ``pool`` random clean crops and keep the ``keep`` the model fires on most."""
    crops = candidate_crops(photos, rng, pool, crop_size, min_scale, photo_weights)
    return hard_negatives(crops, firing_scores(probability, crops, threshold), keep)
