"""The blend fitted just inside a mark's edge (handler/blendfit.py), on marks whose blend is
known exactly: it is found and inverted where it is plainly right, and refused where not."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy import ndimage

from handler.blendfit import fit_blend, invert, invert_fitted
from handler.pipeline import CONNECTIVITY, Detection, PipelineConfig, remove_watermark, telea
from tests.images import photo

RADIUS = PipelineConfig().inpaint_radius


def blended(clean: np.ndarray, alpha: np.ndarray, colour) -> np.ndarray:
    """uint8 clean * (1 - alpha) + colour * alpha, rounded; colour (3,) or (H, W, 3) in [0, 1]."""
    a = alpha[..., None]
    return np.round(clean * (1 - a) + 255 * np.asarray(colour) * a).astype(np.uint8)


def disc(height: int, width: int, radius: float) -> np.ndarray:
    rows, cols = np.ogrid[:height, :width]
    return (rows - height / 2) ** 2 + (cols - width / 2) ** 2 <= radius**2


def fit_inputs(marked: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The photo and the fill the pipeline gives the fit: Telea from one pixel outside."""
    grown = ndimage.binary_dilation(mask, CONNECTIVITY)
    fill = telea(marked, grown, RADIUS)
    return marked.astype(np.float32) / 255, fill.astype(np.float32) / 255


def nothing_detected(image: np.ndarray) -> Detection:
    height, width = image.shape[:2]
    return Detection(
        probability=np.zeros((height, width), np.float32),
        alpha=np.zeros((height, width), np.float32),
        colour=np.zeros((height, width, 3), np.float32),
    )


@pytest.fixture(scope="module")
def coffee() -> np.ndarray:
    return photo(96, 128, "skimage-coffee")


def test_the_fit_recovers_a_known_blend_despite_outliers():
    rng = np.random.default_rng(0)
    fill = rng.uniform(0, 1, (400, 3)).astype(np.float32)
    colour = np.array([0.9, 0.8, 0.1], dtype=np.float32)
    observed = 0.65 * fill + 0.35 * colour
    observed[:40] = rng.uniform(0, 1, (40, 3))  # a tenth where the fill was wrong
    blend = fit_blend(observed, fill)
    assert blend.alpha == pytest.approx(0.35, abs=0.01)
    assert np.allclose(blend.colour, colour, atol=0.03)
    assert blend.residual < 0.005


@pytest.mark.parametrize("opacity, colour", [(0.4, (1.0, 1.0, 1.0)), (0.6, (0.0, 0.0, 0.0))])
def test_a_semi_transparent_mark_is_inverted_back_to_the_photo(coffee, opacity, colour):
    mask = disc(96, 128, 30)
    marked = blended(coffee, opacity * mask, colour)
    photo_f, fill = fit_inputs(marked, mask)
    fitted = invert_fitted(photo_f, fill, mask)
    assert fitted is not None
    # Found leaning opaque: Telea's fill is smoother than the photo it stands for.
    assert opacity <= fitted.blend.alpha <= opacity + 0.08
    # The inside is inverted, the 3-pixel edge ring is left to the restoration.
    where = fitted.where
    assert where.sum() > 0.75 * mask.sum() and not where[~mask].any()
    assert np.array_equal(fitted.inverted, invert(photo_f, fitted.blend))
    error = np.abs(np.round(fitted.inverted * 255) - coffee)[where]
    filled = np.abs(fill * 255 - coffee)[where]
    assert error.mean() < 4 and error.mean() < filled.mean() / 4


def test_a_mark_on_a_flat_field_is_not_fitted():
    flat = np.full((96, 128, 3), 120, dtype=np.uint8)
    mask = disc(96, 128, 30)
    assert invert_fitted(*fit_inputs(blended(flat, 0.4 * mask, (1, 1, 1)), mask), mask) is None


def test_a_many_coloured_mark_is_not_fitted(coffee):
    mask = disc(96, 128, 30)
    rng = np.random.default_rng(1)
    # An icon in its own colours: the colour changes every 8 pixels.
    colours = np.kron(rng.uniform(0, 1, (12, 16, 3)), np.ones((8, 8, 1)))
    marked = blended(coffee, 0.5 * mask, colours)
    assert invert_fitted(*fit_inputs(marked, mask), mask) is None


def test_a_nearly_opaque_mark_is_not_inverted(coffee):
    mask = disc(96, 128, 30)
    marked = blended(coffee, 0.97 * mask, (1, 1, 1))
    assert invert_fitted(*fit_inputs(marked, mask), mask) is None


def test_thin_strokes_have_no_band_to_fit(coffee):
    mask = np.zeros((96, 128), dtype=bool)
    mask[20:76, 30:33] = mask[20:76, 60:63] = True  # 3-pixel strokes: nothing 3-5 px deep
    assert invert_fitted(*fit_inputs(blended(coffee, 0.4 * mask, (1, 1, 1)), mask), mask) is None


def test_a_given_mask_is_inverted_and_nothing_else_changes(coffee):
    mask = disc(96, 128, 30)
    marked = blended(coffee, 0.4 * mask, (1, 1, 1))
    cfg = replace(PipelineConfig(), invert_max_alpha=0.0)  # the floor: Telea's fill
    nothing = nothing_detected(marked)
    floor, _ = remove_watermark(marked, nothing, cfg, mask)
    fitted, _ = remove_watermark(marked, nothing, replace(cfg, blend_fit=True), mask)
    assert np.array_equal(fitted[~mask], marked[~mask])
    error = np.abs(fitted.astype(int) - coffee)[mask].mean()
    assert error < np.abs(floor.astype(int) - coffee)[mask].mean() / 3


def test_detected_regions_are_never_inverted(coffee):
    mask = disc(96, 128, 30)
    marked = blended(coffee, 0.4 * mask, (1, 1, 1))
    detection = nothing_detected(marked)
    detection.probability[mask] = 1.0  # the network is sure of exactly the mark
    cfg = replace(PipelineConfig(), invert_max_alpha=0.0, grow_pixels=0)
    floor, decided = remove_watermark(marked, detection, cfg)
    fitted, _ = remove_watermark(marked, detection, replace(cfg, blend_fit=True))
    assert np.array_equal(decided, mask)
    assert np.array_equal(fitted, floor)
