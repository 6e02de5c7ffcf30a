import numpy as np
import pytest

from tests.images import photo
from training.fonts import bundled_fonts
from training.synth import MASK_THRESHOLD, add_watermark, blend, unmarked, watermark_mask


@pytest.fixture(scope="module")
def fonts():
    return bundled_fonts()


@pytest.fixture(scope="module")
def clean():
    return photo(200, 300)


def test_same_seed_same_bytes(clean, fonts):
    a = add_watermark(clean, np.random.default_rng(7), fonts)
    b = add_watermark(clean, np.random.default_rng(7), fonts)
    assert a.watermarked.tobytes() == b.watermarked.tobytes()
    assert np.array_equal(a.mask, b.mask)
    assert np.array_equal(a.alpha, b.alpha)


def test_different_seeds_differ(clean, fonts):
    marks = {add_watermark(clean, np.random.default_rng(s), fonts).mask.tobytes() for s in range(5)}
    assert len(marks) == 5


@pytest.mark.parametrize("seed", range(12))
def test_mask_marks_exactly_the_changed_pixels(clean, fonts, seed):
    ex = add_watermark(clean, np.random.default_rng(seed), fonts)
    assert ex.watermarked.shape == clean.shape and ex.watermarked.dtype == np.uint8
    diff = np.abs(ex.watermarked.astype(int) - clean.astype(int)).max(axis=-1)
    assert np.array_equal(ex.mask, diff > MASK_THRESHOLD)
    assert ex.mask.any(), "every example carries a visible mark"
    # Pixels the mark does not touch come back bit-identical.
    untouched = ex.alpha == 0
    assert untouched.mean() > 0.3
    assert np.array_equal(ex.watermarked[untouched], clean[untouched])
    assert ex.mask[ex.alpha > 0].mean() <= 1.0 and not ex.mask[untouched].any()
    assert ex.alpha.min() >= 0 and ex.alpha.max() <= 0.85 + 1e-6


def test_blend_matches_the_formula():
    clean = np.array([[[200, 100, 0]]], dtype=np.uint8)
    out = blend(clean, np.array([[0.5]], dtype=np.float32), np.array([1.0, 1.0, 1.0]))
    assert out.tolist() == [[[228, 178, 128]]]  # (200 + 255) / 2 = 227.5 -> 228


def test_watermark_mask_threshold():
    clean = np.zeros((1, 2, 3), dtype=np.uint8)
    marked = np.array([[[MASK_THRESHOLD, 0, 0], [MASK_THRESHOLD + 1, 0, 0]]], dtype=np.uint8)
    assert watermark_mask(marked, clean).tolist() == [[False, True]]


def test_unmarked_example_has_nothing_to_remove(clean):
    ex = unmarked(clean)
    assert np.array_equal(ex.watermarked, clean) and not ex.mask.any() and not ex.alpha.any()
