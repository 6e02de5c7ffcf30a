"""One blend per marked cluster, fitted from the band just inside the mask's edge, and inverted.

A semi-transparent mark of one colour is ``observed = (1 - alpha) * photo + alpha * colour``
with one ``alpha`` and one ``colour`` for the whole mark (its anti-aliased edge aside). Just
inside the mask's edge, the photo under the mark is still close to what inpainting from the
pixels around predicts (Telea's fill is good near the edge and poor deep inside), so over that
band ``observed ~ slope * fill + offset`` per channel, with one ``slope = 1 - alpha`` and
``offset = alpha * colour``. Fitted there, the blend inverts the whole inside of the mask and
gives back the photo's own detail, where inpainting or the learned restorer can only guess it.

It runs on masks that are sent (handler/pipeline.py remove_watermark), not on detected ones.
The fit is used only when it is plainly right: enough band pixels, a band whose fill varies
enough for the slope to be told from the offset, a small residual even once the inversion
amplifies it by ``1 / slope``, and an inverted inside that stands out from the fill at low
frequency less than the mark did. Multi-coloured marks, opaque ones and marks on flat fields
fail one of these and keep the fill they had, as does a mask painted loosely around a mark (its
band lies on the photo: alpha near 0). Pure numpy/OpenCV.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# The band: mask pixels this far (in pixels, L2) from the nearest unmasked one. Nearer, the
# mark's anti-aliased edge has less than its full alpha, and a mask painted a little loose
# holds unmarked pixels; farther, Telea's fill drifts. On held-out crops with their true masks
# grown by 2 pixels (a loose mask), 2-4 pixels lost 0.003 dB to the restorer alone on average,
# 3-5 gained 0.10; on the true masks 2-4 gained 0.16, 3-5 0.13 (model/candidates/README.md).
BAND = (3.0, 5.0)
# Only pixels at least this deep are inverted: the edge keeps the fill (its alpha is partial).
INVERT_DEPTH = 3.0
MIN_BAND_PIXELS = 30
# The fitted alpha must lie in this range: below, there is next to nothing to invert; above,
# inversion amplifies noise (and JPEG) by more than 1 / (1 - 0.9) = 10x.
ALPHA_RANGE = (0.05, 0.9)
# A fitted colour this far outside [0, 1] is not a colour.
COLOUR_SLACK = 0.1
# Reweighted least squares: the band crosses the photo's own edges, where the fill is wrong.
ROBUST_ITERATIONS = 4
HUBER = 1.5
# The low-pass scale of the plausibility check, in pixels (sigma).
LOW_PASS_SIGMA = 4.0
# The checks that the fit is plainly right: the fill's standard deviation over the band in its
# widest channel; the fit's residual as the inversion amplifies it (Blend.residual), 0-1 scale;
# and the inverted inside's low-pass distance from the fill as a share of the observed one's.
MIN_SPREAD = 0.05
MAX_ERROR = 0.03
MAX_LOW_PASS_RATIO = 0.7


@dataclass(frozen=True)
class Blend:
    alpha: float
    colour: np.ndarray  # (3,) in about [0, 1]
    residual: float  # RMS over the fit's inliers / (1 - alpha), 0-1 scale


def fit_blend(observed: np.ndarray, fill: np.ndarray) -> Blend:
    """The blend (one alpha, one colour) that best maps ``fill`` (N, 3) onto ``observed``
    (N, 3), both float in [0, 1]: observed ~ (1 - alpha) * fill + alpha * colour, fitted by
    Huber-reweighted least squares over the three channels at once. The residual is the
    inliers' RMS, amplified as the inversion amplifies it, by 1 / (1 - alpha).

    The fill is smoother than the photo it stands for, which pulls the fitted 1 - alpha towards
    0 (alpha 0.44 for a mark of 0.4 on a photo in the tests). Regressing the other way round
    (the inverse on the observed pixels) removes that pull but fitted held-out crops worse: on
    450 crops of seeds 1 and 3 with their true masks, +0.11 dB over the restorer against +0.16
    this way, and a crop 0.38 dB below it against 0.17."""
    n = len(observed)
    design = np.zeros((3 * n, 4))
    for channel in range(3):
        rows = slice(channel * n, (channel + 1) * n)
        design[rows, 0] = fill[:, channel]
        design[rows, 1 + channel] = 1.0
    target = observed.T.reshape(-1).astype(np.float64)
    weight = np.ones(3 * n)
    for _ in range(ROBUST_ITERATIONS):
        root = np.sqrt(weight)
        solution, *_ = np.linalg.lstsq(design * root[:, None], target * root, rcond=None)
        error = np.abs(target - design @ solution)
        scale = 1.4826 * np.median(error) + 1e-4
        weight = np.minimum(1.0, HUBER * scale / np.maximum(error, 1e-9))
    error = np.abs(target - design @ solution)
    inliers = weight >= 1.0
    residual = float(np.sqrt(np.mean(error[inliers] ** 2))) if inliers.any() else np.inf
    slope, offset = float(solution[0]), solution[1:]
    if slope <= 1e-6:
        return Blend(1.0, np.zeros(3, np.float32), np.inf)
    alpha = 1.0 - slope
    colour = offset / alpha if abs(alpha) > 1e-6 else np.zeros(3)
    return Blend(alpha, colour.astype(np.float32), residual / slope)


def _low_pass(image: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(image, (0, 0), sigmaX=LOW_PASS_SIGMA)


@dataclass(frozen=True)
class Fitted:
    """A cluster's blend that passed every check, and what inverting it gives."""

    blend: Blend
    where: np.ndarray  # (h, w) bool: the pixels to take from ``inverted``
    inverted: np.ndarray  # (h, w, 3) float in [0, 1]: the photo with the blend taken out


def invert_fitted(photo: np.ndarray, fill: np.ndarray, region: np.ndarray) -> Fitted | None:
    """One cluster's fitted blend and its inversion: ``photo`` and ``fill`` (h, w, 3) float in
    [0, 1], ``region`` (h, w) bool its mask pixels. None where the fit is not plainly right:
    nothing is inverted there."""
    depth = cv2.distanceTransform(region.astype(np.uint8), cv2.DIST_L2, 3)
    band = region & (depth >= BAND[0]) & (depth <= BAND[1])
    if np.count_nonzero(band) < MIN_BAND_PIXELS:
        return None
    # On a flat field every (alpha, colour) along a line fits: the slope needs the fill to vary.
    if float(fill[band].std(axis=0).max()) < MIN_SPREAD:
        return None
    blend = fit_blend(photo[band], fill[band])
    if not ALPHA_RANGE[0] <= blend.alpha <= ALPHA_RANGE[1]:
        return None
    if blend.colour.min() < -COLOUR_SLACK or blend.colour.max() > 1 + COLOUR_SLACK:
        return None
    if blend.residual > MAX_ERROR:
        return None
    inverted = invert(photo, blend)
    low_fill = _low_pass(fill)
    moved = np.abs(_low_pass(np.where(region[..., None], inverted, photo)) - low_fill)[region]
    before = np.abs(_low_pass(photo) - low_fill)[region]
    if moved.mean() > MAX_LOW_PASS_RATIO * before.mean():
        return None
    return Fitted(blend, region & (depth >= INVERT_DEPTH), inverted)


def invert_blend(image: np.ndarray, alpha: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """The clean image under a blend: image (H, W, 3) float in [0, 1], alpha (H, W) (or one
    alpha, 0-d), colour (H, W, 3) or (3,) -> (H, W, 3) float in [0, 1]."""
    a = alpha[..., None]
    clean: np.ndarray = np.clip((image - a * colour) / np.maximum(1 - a, 1e-3), 0, 1)
    return clean


def invert(photo: np.ndarray, blend: Blend) -> np.ndarray:
    """``photo`` (h, w, 3) float in [0, 1] with one fitted ``blend`` taken out."""
    return invert_blend(photo, np.asarray(blend.alpha, np.float32), blend.colour)
