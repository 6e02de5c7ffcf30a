"""The vector-art backgrounds (training/graphics.py) and the prepare stage's bank of them."""

import numpy as np
from PIL import Image

from training.graphics import extrude, graphic, icon_wallpaper, pixelate, tonal_colour
from training.prepare import prepare_leaves


def _photos():
    rng = np.random.default_rng(5)
    return [rng.integers(0, 256, (30, 40, 3), dtype=np.uint8) for _ in range(3)]


def test_graphic_is_seeded_and_sized():
    photos = _photos()
    a = graphic(np.random.default_rng([0, 1]), 96, photos)
    b = graphic(np.random.default_rng([0, 1]), 96, photos)
    c = graphic(np.random.default_rng([0, 2]), 96, photos)
    assert a.shape == (96, 96, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_graphic_is_mostly_smooth_field_with_sharp_shapes():
    photos = _photos()
    smooth, sharp = [], []
    for i in range(20):
        picture = graphic(np.random.default_rng([3, i]), 128, photos).astype(np.float32)
        step = np.abs(np.diff(picture, axis=1)).max(axis=-1)
        smooth.append(np.mean(step < 4))  # the gradient field and shapes' insides
        sharp.append(step.max())
    # Large flat fields (a wallpaper), yet every picture has at least one crisp edge: a shape
    # painted fully opaque, not a faint blend.
    assert np.median(smooth) > 0.6
    assert min(sharp) > 40


def test_prepare_writes_graphics_without_changing_the_leaves(tmp_path):
    photos = _photos()
    for out, graphics in ((tmp_path / "a", 0), (tmp_path / "b", 2)):
        (out / "train").mkdir(parents=True)
        for i, photo in enumerate(photos):
            Image.fromarray(photo).save(out / "train" / f"photo{i}.png")
        written = prepare_leaves(2, 48, 0, tmp_path / "no-debian", out, workers=1,
                                 graphics=graphics)  # fmt: skip
        assert written == {
            "train_leaves": 2, "train_graphics": graphics, "train_icon_wallpapers": 0
        }  # fmt: skip
    names = sorted(p.name for p in (tmp_path / "b" / "train").glob("graphic-*.png"))
    assert names == ["graphic-00000.png", "graphic-00001.png"]
    for name in ("leaves-00000.png", "leaves-00001.png"):
        a = np.asarray(Image.open(tmp_path / "a" / "train" / name))
        b = np.asarray(Image.open(tmp_path / "b" / "train" / name))
        assert np.array_equal(a, b)
    with Image.open(tmp_path / "b" / "train" / "graphic-00000.png") as img:
        assert img.size == (48, 48) and img.mode == "RGB"


def _red_square_icon(folder):
    """An opaque red 32x32 icon file with a transparent border, as theme icons have."""
    icon = np.zeros((32, 32, 4), np.uint8)
    icon[4:28, 4:28] = (255, 0, 0, 255)
    path = folder / "red.png"
    Image.fromarray(icon, "RGBA").save(path)
    return path


def test_icon_wallpaper_paints_icons_fully_opaque(tmp_path):
    icon = _red_square_icon(tmp_path)
    grey = [np.full((30, 40, 3), 128, np.uint8)]
    pictures = [icon_wallpaper(np.random.default_rng([0, i]), 96, grey, [icon]) for i in range(12)]
    assert all(p.shape == (96, 96, 3) and p.dtype == np.uint8 for p in pictures)
    again = icon_wallpaper(np.random.default_rng([0, 0]), 96, grey, [icon])
    assert np.array_equal(pictures[0], again)
    # On a grey field, pure red only comes from an icon the field does not show through (a
    # logo mark at synth.OPACITY's 0.9 would leave it at most (242, 13, 13)).
    red = [np.all(p == (255, 0, 0), axis=-1).sum() for p in pictures]
    assert sum(r > 0 for r in red) >= 6


def _wallpapers(icon, styled, tonal):
    grey = [np.full((30, 40, 3), 128, np.uint8)]
    rngs = [np.random.default_rng([1, i]) for i in range(12)]
    kinds = {"styled_share": styled, "tonal_share": tonal}
    return [icon_wallpaper(rng, 96, grey, [icon], **kinds) for rng in rngs]


def test_styled_icon_wallpapers_keep_opaque_icon_colour_and_differ_from_flat_ones(tmp_path):
    icon = _red_square_icon(tmp_path)
    flat, styled = _wallpapers(icon, 0.0, 0.0), _wallpapers(icon, 1.0, 0.0)
    assert sum(not np.array_equal(a, b) for a, b in zip(flat, styled, strict=True)) >= 10
    # Slabs, shadows and lines darken; the icon's own faces stay the paint they were.
    red = [np.all(p == (255, 0, 0), axis=-1).sum() for p in styled]
    assert sum(r > 0 for r in red) >= 4


def test_tonal_icon_wallpapers_paint_icons_in_the_fields_own_colour(tmp_path):
    # On a grey field a red icon drawn tonally is grey too: a shade of the field, no colour.
    icon = _red_square_icon(tmp_path)
    for picture in _wallpapers(icon, 0.0, 1.0):
        rgb = picture.astype(int)
        assert np.all(rgb.max(-1) - rgb.min(-1) <= 2)
    assert any(np.all(p == (255, 0, 0), axis=-1).any() for p in _wallpapers(icon, 0.0, 0.0))


def test_tonal_colour_is_the_field_at_the_icon_shifted_by_the_shade():
    canvas = np.zeros((4, 6, 3), np.uint8)
    canvas[1, 5] = (100, 150, 250)
    canvas = Image.fromarray(canvas)
    assert np.allclose(tonal_colour(canvas, 5.0, 1.0, 0.1), (100 / 255 + 0.1, 150 / 255 + 0.1, 1.0))
    assert np.allclose(
        tonal_colour(canvas, 9.0, 1.2, -0.5), (0.0, 150 / 255 - 0.5, 250 / 255 - 0.5)
    )


def test_pixelate_draws_square_cells():
    rng = np.random.default_rng(0)
    icon = Image.fromarray(rng.integers(0, 256, (32, 32, 4), dtype=np.uint8), "RGBA")
    cells = np.asarray(pixelate(icon, 8))
    assert cells.shape == (32, 32, 4)
    blocks = cells.reshape(8, 4, 8, 4, 4)
    assert np.all(blocks == blocks[:, :1, :, :1])  # every 4x4 cell is one colour
    assert len(np.unique(cells.reshape(-1, 4), axis=0)) > 32  # and the cells differ


def test_extrude_stacks_a_darker_side_behind_the_face(tmp_path):
    with Image.open(_red_square_icon(tmp_path)) as img:
        icon = img.convert("RGBA")
    slab = np.asarray(extrude(icon, 5, 0.0, 0.5))  # towards +x
    assert slab.shape == (32, 37, 4)
    assert np.all(slab[4:28, 4:28, :3] == (255, 0, 0))  # the face, where it was
    assert np.all(slab[4:28, 28:33, :3] == (128, 0, 0))  # the side, half as bright
    assert np.all(slab[4:28, 28:33, 3] == 255) and np.all(slab[:, 33:, 3] == 0)


def test_prepare_writes_icon_wallpapers_only_with_icon_files(tmp_path):
    photos = _photos()
    icon = _red_square_icon(tmp_path)
    for out, icons in ((tmp_path / "a", []), (tmp_path / "b", [icon])):
        (out / "train").mkdir(parents=True)
        for i, photo in enumerate(photos):
            Image.fromarray(photo).save(out / "train" / f"photo{i}.png")
        written = prepare_leaves(0, 48, 0, tmp_path / "no-debian", out, workers=1,
                                 icon_wallpapers=2, icons=icons)  # fmt: skip
        assert written["train_icon_wallpapers"] == len(icons) * 2
    assert not list((tmp_path / "a" / "train").glob("icons-*"))
    names = sorted(p.name for p in (tmp_path / "b" / "train").glob("icons-*.png"))
    assert names == ["icons-00000.png", "icons-00001.png"]
