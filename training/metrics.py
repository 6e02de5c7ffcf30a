"""Scores for blind visible-watermark removal, following the SLBR/SplitNet/WDNet/DENet protocol.

Images are uint8 RGB arrays (H, W, 3); masks are bool arrays (H, W), True where the mark is.
Every function returns a plain float (or a dict of them) and rounds nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from skimage.metrics import structural_similarity

# The papers compute RMSE on [0, 1] images and multiply by 256 (SLBR's ``compute_RMSE``), so
# their RMSE is 256/255 of an RMSE in 0..255 units. rmse and rmse_w use that scale to be
# comparable with the published tables.
PAPER_RMSE_SCALE = 256.0 / 255.0

# An identical pair has infinite PSNR; summarise caps each PSNR here before averaging so one
# perfect image cannot make a mean infinite. 100 dB is an MSE of 6.5e-6 in 0..255 units, far
# beyond any real restoration, so the cap only ever touches exact copies.
PSNR_CAP_DB = 100.0

# A mark counts as removed whole when at least this share of its pixels was changed, as left
# when less than REMOVAL_LEFT was; between the two it was partly removed, which a person sees
# as a mark with holes ("(c) 2025 Studio" coming back as "(c) 2 5 Stu"), and PSNR counts as a gain.
REMOVAL_WHOLE = 0.9
REMOVAL_LEFT = 0.1


def _squared_error(image: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per-pixel, per-channel squared difference in 0..255 units, float64 (H, W, 3)."""
    return (image.astype(np.float64) - reference.astype(np.float64)) ** 2


def _masked_mse(image: np.ndarray, reference: np.ndarray, mask: np.ndarray) -> float:
    """Mean squared error over the pixels inside mask (all channels); NaN when mask is empty."""
    inside = _squared_error(image, reference)[mask]  # (N, 3)
    return float(inside.mean()) if inside.size else math.nan


def _psnr_from_mse(mse: float) -> float:
    """PSNR in dB of a 0..255 MSE: inf for 0, NaN passes through."""
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def psnr(image: np.ndarray, reference: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB for uint8 images; inf when identical."""
    return _psnr_from_mse(float(np.mean(_squared_error(image, reference))))


def psnr_masked(image: np.ndarray, reference: np.ndarray, mask: np.ndarray) -> float:
    """PSNR in dB over the pixels inside mask; inf when identical there, NaN when mask is empty."""
    return _psnr_from_mse(_masked_mse(image, reference, mask))


def ssim(image: np.ndarray, reference: np.ndarray) -> float:
    """Mean SSIM over the three channels: Gaussian window (sigma 1.5), K1 0.01, K2 0.03, range 255.

    The images need at least 11 pixels on each side (the Gaussian window's size).
    """
    return float(
        structural_similarity(
            image,
            reference,
            channel_axis=-1,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=255,
        )
    )


def rmse(image: np.ndarray, reference: np.ndarray) -> float:
    """Root-mean-square error over all pixels and channels, on the papers' scale.

    The scale is 256 x the RMSE of [0, 1] images (= 256/255 x the RMSE in 0..255 units).
    """
    return math.sqrt(np.mean(_squared_error(image, reference))) * PAPER_RMSE_SCALE


def rmse_w(image: np.ndarray, reference: np.ndarray, mask: np.ndarray) -> float:
    """The papers' RMSEw: RMSE over the pixels inside the true mark mask (all channels).

    Same scale as rmse: 256 x the RMSE of [0, 1] images. NaN when the mask is empty.
    """
    return math.sqrt(_masked_mse(image, reference, mask)) * PAPER_RMSE_SCALE


def mask_iou(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of two boolean masks; 1.0 when both are empty."""
    union = np.logical_or(predicted, truth).sum()
    return 1.0 if union == 0 else float(np.logical_and(predicted, truth).sum() / union)


def mask_f1(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Pixel F1 (Dice) of two boolean masks; 1.0 when both are empty, 0.0 when only one is."""
    sizes = int(predicted.sum()) + int(truth.sum())
    return 1.0 if sizes == 0 else 2 * float(np.logical_and(predicted, truth).sum()) / sizes


def mask_precision(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Share of the predicted pixels that are marked; 1.0 when nothing is predicted."""
    found = int(predicted.sum())
    return 1.0 if found == 0 else float(np.logical_and(predicted, truth).sum() / found)


def mask_recall(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Share of the marked pixels that are predicted; 1.0 when nothing is marked."""
    marked = int(truth.sum())
    return 1.0 if marked == 0 else float(np.logical_and(predicted, truth).sum() / marked)


def removal_counts(recalls: Sequence[float]) -> dict[str, int]:
    """How many marks were removed whole, partly or left, from the share of each mark's pixels
    the remover changed (its mask recall)."""
    shares = np.asarray(recalls, dtype=np.float64)
    whole = int(np.count_nonzero(shares >= REMOVAL_WHOLE))
    left = int(np.count_nonzero(shares < REMOVAL_LEFT))
    return {"marks_whole": whole, "marks_partly": len(shares) - whole - left, "marks_left": left}


def image_scores(
    output: np.ndarray,
    clean: np.ndarray,
    true_mask: np.ndarray,
    predicted_mask: np.ndarray | None = None,
) -> dict[str, float]:
    """All scores of one restored image against its clean original.

    Keys: psnr, ssim, rmse, rmse_w, psnr_w (PSNR inside true_mask); iou, f1, precision and
    recall of predicted_mask against true_mask when a predicted mask is given.
    """
    scores = {
        "psnr": psnr(output, clean),
        "ssim": ssim(output, clean),
        "rmse": rmse(output, clean),
        "rmse_w": rmse_w(output, clean, true_mask),
        "psnr_w": psnr_masked(output, clean, true_mask),
    }
    if predicted_mask is not None:
        scores.update(mask_scores(predicted_mask, true_mask))
    return scores


def mask_scores(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """iou, f1, precision and recall of a predicted mask against the true one."""
    return {
        "iou": mask_iou(predicted, truth),
        "f1": mask_f1(predicted, truth),
        "precision": mask_precision(predicted, truth),
        "recall": mask_recall(predicted, truth),
    }


def clean_photo_scores(
    output: np.ndarray, photo: np.ndarray, predicted_mask: np.ndarray
) -> dict[str, float]:
    """How much a remover damages a photo that carries no watermark.

    mean_abs_change: mean |output - photo| over all pixels and channels, 0..255 units.
    mask_coverage: fraction of pixels predicted as mark, 0..1.
    """
    change = np.abs(output.astype(np.float64) - photo.astype(np.float64))
    return {
        "mean_abs_change": float(change.mean()),
        "mask_coverage": float(np.mean(predicted_mask)),
    }


def summarise(rows: list[dict[str, float]]) -> dict[str, float]:
    """Mean of each key over the rows, ignoring NaN (NaN when a key has no number at all).

    Keys starting with "psnr" are capped at PSNR_CAP_DB before averaging: the exact rule (PSNR
    of the mean MSE) would need the MSEs, which the rows do not carry.
    """
    values: dict[str, list[float]] = {}
    for row in rows:
        for key, value in row.items():
            values.setdefault(key, []).append(value)
    summary = {}
    for key, column in values.items():
        numbers = np.array([v for v in column if not math.isnan(v)], dtype=np.float64)
        if key.startswith("psnr"):
            numbers = np.minimum(numbers, PSNR_CAP_DB)
        summary[key] = float(numbers.mean()) if numbers.size else math.nan
    return summary
