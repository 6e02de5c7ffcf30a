import numpy as np
import pytest
from PIL import Image

from tests.images import photo
from training.fonts import matplotlib_fonts
from training.synth import (
    ALPHABET,
    MASK_THRESHOLD,
    OPACITY,
    STYLES,
    MarkAssets,
    add_watermark,
    blend,
    crossing_lines,
    jpeg_roundtrip,
    logo_sprite,
    text_sprite,
    unmarked,
    watermark_mask,
)


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    """DejaVu fonts and one coloured icon: a red disc with a blue centre on transparency."""
    icon = np.zeros((64, 64, 4), np.uint8)
    yy, xx = np.mgrid[:64, :64]
    r = np.hypot(yy - 32, xx - 32)
    icon[r < 28] = (255, 0, 0, 255)
    icon[r < 10] = (0, 0, 255, 255)
    path = tmp_path_factory.mktemp("icons") / "disc.png"
    Image.fromarray(icon, "RGBA").save(path)
    return MarkAssets(fonts=tuple(matplotlib_fonts()), logos=(path,))


@pytest.fixture(scope="module")
def clean():
    return photo(200, 300)


@pytest.mark.parametrize("style", STYLES)
def test_same_seed_same_bytes(clean, assets, style):
    a = add_watermark(clean, np.random.default_rng(7), assets, style)
    b = add_watermark(clean, np.random.default_rng(7), assets, style)
    assert a.watermarked.tobytes() == b.watermarked.tobytes()
    assert np.array_equal(a.mask, b.mask) and np.array_equal(a.alpha, b.alpha)
    assert a.style == style


def test_different_seeds_differ(clean, assets):
    marks = {
        add_watermark(clean, np.random.default_rng(s), assets).mask.tobytes() for s in range(5)
    }
    assert len(marks) == 5


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("seed", range(4))
def test_mask_marks_exactly_the_changed_pixels(clean, assets, style, seed):
    ex = add_watermark(clean, np.random.default_rng(seed), assets, style, jpeg_probability=0)
    assert ex.watermarked.shape == clean.shape and ex.watermarked.dtype == np.uint8
    assert np.array_equal(ex.mask, watermark_mask(ex.watermarked, clean))
    assert ex.mask.any(), "every example carries a visible mark"
    untouched = ex.alpha == 0
    assert np.array_equal(ex.watermarked[untouched], clean[untouched])
    assert not ex.mask[untouched].any()
    assert ex.alpha.min() >= 0 and ex.alpha.max() <= OPACITY[1] + 1e-6
    assert ex.colour.shape == clean.shape and ex.colour.min() >= 0 and ex.colour.max() <= 1
    # The labels explain the image: blending the clean photo with them gives it back.
    assert np.array_equal(blend(clean, ex.alpha, ex.colour), ex.watermarked)


def test_styles_put_marks_where_they_belong(clean, assets):
    def marked_share(style, seed):
        ex = add_watermark(clean, np.random.default_rng(seed), assets, style, jpeg_probability=0)
        return ex.alpha > 0

    for seed in range(4):
        grid = marked_share("grid", seed)
        quadrants = [grid[:100, :150], grid[:100, 150:], grid[100:, :150], grid[100:, 150:]]
        assert all(q.any() for q in quadrants), "a grid covers the whole image"
    for seed in range(4):
        corner = marked_share("corner", seed)
        rows, cols = np.nonzero(corner)
        margin = 0.05 * 200 + 2  # the largest margin, in pixels, plus antialiasing
        assert min(rows.min(), 199 - rows.max()) <= margin, "against the top or the bottom"
        assert min(cols.min(), 299 - cols.max()) <= margin, "against the left or the right"
        assert rows.max() - rows.min() < 0.2 * 200, "small: a line of text or a small logo"
        centre = marked_share("centre", seed)
        rows, cols = np.nonzero(centre)
        assert abs(rows.mean() - 100) < 30 and abs(cols.mean() - 150) < 40


def test_jpeg_compresses_the_input_but_not_the_labels(clean, assets):
    plain = add_watermark(clean, np.random.default_rng(3), assets, "text", jpeg_probability=0)
    jpeg = add_watermark(clean, np.random.default_rng(3), assets, "text", jpeg_probability=1)
    assert np.array_equal(plain.mask, jpeg.mask) and np.array_equal(plain.alpha, jpeg.alpha)
    assert not np.array_equal(plain.watermarked, jpeg.watermarked)
    error = np.abs(jpeg.watermarked.astype(int) - plain.watermarked).mean()
    assert 0 < error < 6, "compression noise, not a different image"


def test_jpeg_roundtrip_keeps_the_size():
    image = photo(37, 53)
    out = jpeg_roundtrip(image, 75)
    assert out.shape == image.shape and out.dtype == np.uint8


def test_outlined_text_has_two_colours(assets):
    colours = set()
    for seed in range(40):
        sprite = text_sprite(np.random.default_rng(seed), assets.fonts, 30, np.ones(3, np.float32))
        solid = sprite[..., 3] > 0.99
        colours.add(tuple(np.unique(np.round(sprite[solid][:, :3].mean(axis=1)))))
    assert (1.0,) in colours, "plain white text"
    assert any(0.0 in c and 1.0 in c for c in colours), "white text with a black outline or shadow"


def test_logo_sprites_keep_icon_colours_or_use_the_mark_colour(assets):
    green = np.array([0, 1, 0], np.float32)
    seen = set()
    for seed in range(30):
        sprite = logo_sprite(np.random.default_rng(seed), assets.logos, 48, green)
        assert max(sprite.shape[:2]) <= 49
        solid = sprite[sprite[..., 3] > 0.99][:, :3]
        seen.update(tuple(c) for c in np.round(solid).astype(int).tolist())
    assert {(1, 0, 0), (0, 0, 1)} <= seen, "the icon in its own colours"
    assert (0, 1, 0) in seen, "a silhouette or drawn emblem in the mark colour"


def test_fonts_draw_the_whole_alphabet():
    assert "©" in ALPHABET and "@" in ALPHABET and "{" not in ALPHABET


def test_blend_matches_the_formula():
    clean = np.array([[[200, 100, 0]]], dtype=np.uint8)
    out = blend(clean, np.array([[0.5]], dtype=np.float32), np.array([1.0, 1.0, 1.0]))
    assert out.tolist() == [[[228, 178, 128]]]  # (200 + 255) / 2 = 227.5 -> 228


def test_watermark_mask_threshold():
    clean = np.zeros((1, 2, 3), dtype=np.uint8)
    marked = np.array([[[MASK_THRESHOLD, 0, 0], [MASK_THRESHOLD + 1, 0, 0]]], dtype=np.uint8)
    assert watermark_mask(marked, clean).tolist() == [[False, True]]


def test_unmarked_example_has_nothing_to_remove(clean):
    ex = unmarked(clean, np.random.default_rng(0), jpeg_probability=0)
    assert np.array_equal(ex.watermarked, clean) and not ex.mask.any() and not ex.alpha.any()
    assert ex.style == "none"


def test_unknown_style_is_refused(clean, assets):
    with pytest.raises(ValueError, match="unknown watermark style"):
        add_watermark(clean, np.random.default_rng(0), assets, "hologram")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_crossing_lines_are_the_photos_and_touch_the_mark(clean, assets, seed):
    rng = np.random.default_rng(seed)
    ex = add_watermark(clean, rng, assets, style="text", jpeg_probability=0.0)
    crossed = crossing_lines(ex, np.random.default_rng(seed), jpeg_probability=0.0)
    drawn = np.abs(crossed.clean.astype(int) - ex.clean.astype(int)).max(axis=-1) > 0
    # Lines were drawn into the clean photo, through the mark's pixels, and reach beyond it.
    assert drawn.any() and (drawn & ex.mask).any() and (drawn & ~ex.mask).any()
    # The mark is blended again over the new photo; the mask is still only what it changed.
    assert np.array_equal(crossed.watermarked, blend(crossed.clean, ex.alpha, ex.colour))
    assert np.array_equal(crossed.mask, watermark_mask(crossed.watermarked, crossed.clean))
    assert not (crossed.mask & (ex.alpha == 0)).any()
    again = crossing_lines(ex, np.random.default_rng(seed), jpeg_probability=0.0)
    assert np.array_equal(again.watermarked, crossed.watermarked)


def test_crossing_lines_leave_an_unmarked_photo_alone(clean):
    ex = unmarked(clean, np.random.default_rng(0), jpeg_probability=0.0)
    assert crossing_lines(ex, np.random.default_rng(0)) is ex
