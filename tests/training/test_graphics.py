"""The vector-art backgrounds (training/graphics.py) and the prepare stage's bank of them."""

import numpy as np
from PIL import Image

from training.graphics import graphic
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
        assert written == {"train_leaves": 2, "train_graphics": graphics}
    names = sorted(p.name for p in (tmp_path / "b" / "train").glob("graphic-*.png"))
    assert names == ["graphic-00000.png", "graphic-00001.png"]
    for name in ("leaves-00000.png", "leaves-00001.png"):
        a = np.asarray(Image.open(tmp_path / "a" / "train" / name))
        b = np.asarray(Image.open(tmp_path / "b" / "train" / name))
        assert np.array_equal(a, b)
    with Image.open(tmp_path / "b" / "train" / "graphic-00000.png") as img:
        assert img.size == (48, 48) and img.mode == "RGB"
