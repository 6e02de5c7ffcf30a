"""Training draws by photo source (training/examples.py photo_sources, sampling_weights)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.images import photo
from training.examples import (
    filaments,
    load_photo_folder,
    mosaic,
    photo_sources,
    sampling_weights,
    training_examples,
    veil,
)


def test_sources_are_the_prepare_stages_name_prefixes_in_load_order(tmp_path):
    names = ["texture-gimp-wood", "leaves-00001", "skimage-coffee", "leaves-00000"]
    for i, name in enumerate(names):
        Image.fromarray(np.full((4, 4, 3), i, np.uint8)).save(tmp_path / f"{name}.png")
    photos = load_photo_folder(tmp_path)
    assert photo_sources(tmp_path) == ("leaves", "leaves", "skimage", "texture")
    assert [int(p[0, 0, 0]) for p in photos] == [3, 1, 2, 0]  # the same name order


def test_each_source_gets_its_share_split_evenly_among_its_photos():
    sources = ["leaves", "leaves", "leaves", "texture", "skimage", "wallpaper"]
    weights = sampling_weights(sources, {"leaves": 0.3, "texture": 0.2, "other": 0.5})
    assert weights.sum() == pytest.approx(1.0)
    assert weights.tolist() == pytest.approx([0.1, 0.1, 0.1, 0.2, 0.25, 0.25])
    # A source with no photo drops out and the others are renormalised.
    assert sampling_weights(["leaves", "skimage"], {"leaves": 1, "texture": 2, "other": 1}
                            ).tolist() == pytest.approx([0.5, 0.5])  # fmt: skip


def test_unnamed_sources_without_an_other_share_are_refused():
    with pytest.raises(ValueError, match="skimage"):
        sampling_weights(["leaves", "skimage"], {"leaves": 1.0})
    with pytest.raises(ValueError, match="no photo a chance"):
        sampling_weights(["leaves"], {"leaves": 0.0})


def test_training_draws_follow_the_weights(assets):
    photos = [photo(32, 32, "skimage-coffee"), np.zeros((32, 32, 3), np.uint8)]
    rng = np.random.default_rng(0)
    examples = training_examples(photos, assets, rng, 40, 32, 1.0, (256, 256), clean_fraction=1.0,
                                 photo_weights=np.array([0.0, 1.0]))  # fmt: skip
    # Every draw is the black photo (augmented: gamma and contrast keep it flat).
    assert all(np.ptp(e.clean) == 0 for e in examples)


def draws(assets, photos, clean_fraction, **kwargs):
    """Twelve training examples of 32-pixel crops from ``photos``, always from seed 4."""
    rng = np.random.default_rng(4)
    return training_examples(photos, assets, rng, 12, 32, 1.0, (64, 64), clean_fraction, **kwargs)


@pytest.mark.parametrize(
    "fraction", ["crossing_fraction", "mosaic_fraction", "veil_fraction", "filament_fraction"]
)
def test_a_fraction_of_zero_draws_what_a_run_without_it_draws(assets, fraction):
    photos = [photo(64, 64, "skimage-coffee"), np.full((48, 48, 3), 220, np.uint8)]
    for clean_fraction in (0.0, 0.5):
        plain = draws(assets, photos, clean_fraction)
        zero = draws(assets, photos, clean_fraction, **{fraction: 0.0})
        for a, b in zip(plain, zero, strict=True):
            assert np.array_equal(a.watermarked, b.watermarked)
            assert np.array_equal(a.clean, b.clean)


def test_crossing_lines_change_the_photo_under_the_mark_not_the_mark(assets):
    photos = [photo(64, 64, "skimage-coffee")]
    plain, crossed = draws(assets, photos, 0.0), draws(assets, photos, 0.0, crossing_fraction=1.0)
    # At 1 the first crop (drawn alike until then) gains lines under its mark: only its photo
    # changed, the mark is the same.
    assert not np.array_equal(plain[0].clean, crossed[0].clean)
    assert np.array_equal(plain[0].alpha, crossed[0].alpha)


def test_mosaic_joins_two_crops_along_one_straight_line():
    rng = np.random.default_rng(5)
    for _ in range(20):
        joined = mosaic(np.zeros((40, 60, 3), np.uint8), np.full((40, 60, 3), 200, np.uint8), rng)
        other = joined[..., 0] == 200
        # Both photos show, each a real share of the crop (the line passes its middle half).
        assert 0.1 < other.mean() < 0.9
        assert set(np.unique(joined).tolist()) == {0, 200}
        # One straight edge: each row (and column) crosses it at most once.
        rows = np.abs(np.diff(other.astype(int), axis=1)).sum(axis=1)
        cols = np.abs(np.diff(other.astype(int), axis=0)).sum(axis=0)
        assert rows.max() <= 1 and cols.max() <= 1


def test_mosaic_crops_hold_two_photos(assets):
    photos = [np.full((48, 48, 3), 40, np.uint8), np.full((48, 48, 3), 220, np.uint8)]
    plain, joined = draws(assets, photos, 1.0), draws(assets, photos, 1.0, mosaic_fraction=1.0)
    # Flat photos: one level per crop alone, and two where crops of both photos were joined
    # (a crop joined to another of the same photo keeps one, at most a colour shift apart).
    assert all(len(np.unique(e.clean.reshape(-1, 3), axis=0)) == 1 for e in plain)
    assert sum(len(np.unique(e.clean.reshape(-1, 3), axis=0)) == 2 for e in joined) >= 4


def test_a_veil_is_a_smooth_blend_without_edges():
    rng = np.random.default_rng(6)
    flat = np.full((96, 128, 3), 60, np.uint8)
    lighter = darker = 0
    for _ in range(30):
        veiled = veil(flat, rng).astype(int)
        change = veiled - 60
        # Somewhere it is a real veil (alpha 0.15-0.7 at its strongest)...
        assert np.abs(change).max() >= 0.15 * 60 - 1
        lighter += change.max() > 0
        darker += change.min() < 0
        # ...and nowhere an edge: neighbouring pixels differ by a few levels at most, where the
        # faintest mark (alpha 0.15) steps by 0.15 x (255 - 60) = 29 levels at its edge.
        assert np.abs(np.diff(veiled, axis=0)).max() <= 8
        assert np.abs(np.diff(veiled, axis=1)).max() <= 8
    assert lighter > darker > 0  # mostly haze, sometimes shade


def test_veiled_crops_are_clean_pictures_not_marks(assets):
    photos = [np.full((48, 48, 3), 90, np.uint8)]
    clean = draws(assets, photos, 1.0, veil_fraction=1.0)
    # The veil is part of the picture (a flat photo is no longer flat), never of the mask.
    assert sum(np.ptp(e.clean) > 0 for e in clean) >= 10
    # (JPEG-compressed as often as marked crops: the watermarked crop is the clean one, within
    # compression's error.)
    assert all(not e.mask.any() for e in clean)
    assert all(np.abs(e.watermarked.astype(int) - e.clean).max() <= 15 for e in clean)
    marked = draws(assets, photos, 0.0, veil_fraction=1.0)
    for e in marked:
        assert np.ptp(e.clean) > 0
        # The mask is the mark alone: where it is empty the watermarked crop is the veiled one
        # (within JPEG's error and the faintest fringes of the mark).
        assert np.abs(e.watermarked.astype(int) - e.clean)[~e.mask].mean() < 3


def test_filaments_are_thin_light_strokes_over_the_picture():
    rng = np.random.default_rng(8)
    flat = np.full((96, 128, 3), 60, np.uint8)
    lighter = radiating = 0
    for _ in range(30):
        drawn = filaments(flat, rng).astype(int)
        change = np.abs(drawn - 60).max(axis=2)
        touched = change > 15
        # Strokes, not patches: some pixels change a lot, and only a thin share of the crop.
        assert change.max() >= 0.4 * (255 - 60) - 1
        assert 0 < touched.mean() < 0.2
        lighter += (drawn - 60).sum() > 0
        # A bundle from one point (a seed head, a sun star) covers more than 5 strokes would.
        radiating += touched.mean() > 0.04
    assert lighter >= 24  # white to faint tints, mostly; sometimes any colour
    assert radiating >= 3


def test_filaments_are_the_picture_not_the_mark(assets):
    photos = [np.full((48, 48, 3), 90, np.uint8)]
    clean = draws(assets, photos, 1.0, filament_fraction=1.0)
    assert sum(np.ptp(e.clean) > 0 for e in clean) >= 10
    assert all(not e.mask.any() for e in clean)
    for e in draws(assets, photos, 0.0, filament_fraction=1.0):
        assert np.ptp(e.clean) > 0
        # Marked crops: the mask is where the mark lies, never a stroke beside it.
        assert e.mask.any() and not (e.mask & (e.alpha == 0)).any()
