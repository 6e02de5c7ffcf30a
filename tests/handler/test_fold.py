"""handler/fold.py: a tiled mark's copies folded into one over their lattice, the network (here a
stand-in that sees bright pixels) asked about the fold, and every copy masked whole with the
fold's shape, where the network sees only part of each copy in the photo."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy import ndimage

from handler.fold import FoldConfig, fold, folded_copies, folded_shape
from handler.pipeline import Candidates, PipelineConfig, candidate_regions, decide_regions
from handler.tiled import Lattice

STEP_ROWS, STEP_COLS = 30, 40
HEIGHT, WIDTH = 150, 200
# One copy: two bars 10 x 8 pixels, 4 apart (the two words of a mark), 20 wide in all.
COPY = np.zeros((10, 20), bool)
COPY[:, :8] = True
COPY[:, 12:] = True
CFG = FoldConfig(fold_count=4, fold_min_pixels=40, fold_margin=3, fold_context=16)


def tiled_photo(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(a photo of noise under a white mark tiled every 30 rows and 40 columns, the mark's
    pixels): every copy whole in the photo."""
    rng = np.random.default_rng(seed)
    photo = rng.integers(0, 150, (HEIGHT, WIDTH, 3)).astype(np.uint8)
    mark = np.zeros((HEIGHT, WIDTH), bool)
    for top in range(5, HEIGHT - 10, STEP_ROWS):
        for left in range(6, WIDTH - 20, STEP_COLS):
            mark[top : top + 10, left : left + 20] = COPY
    photo[mark] = 255
    return photo, mark


def seen_in_part(mark: np.ndarray, rest: float) -> np.ndarray:
    """The network's map of the photo: sure of each copy's left bar, ``rest`` on its right."""
    probability = np.where(mark, 0.9, 0.02).astype(np.float32)
    for left in range(6, WIDTH - 20, STEP_COLS):
        probability[:, left + 12 : left + 20][mark[:, left + 12 : left + 20]] = rest
    return probability


def half_seen(rest: float = 0.45) -> tuple[np.ndarray, np.ndarray, np.ndarray, Candidates]:
    """(the tiled photo, its mark, the map seen_in_part makes of it, that map's regions)."""
    photo, mark = tiled_photo()
    probability = seen_in_part(mark, rest)
    return photo, mark, probability, candidate_regions(probability, PipelineConfig())


def bright(image: np.ndarray) -> np.ndarray:
    """A stand-in for the network: sure of white pixels, of nothing else."""
    grey = image.astype(np.float32).mean(axis=-1)
    out: np.ndarray = np.clip((grey - 180) / 60, 0, 1) * 0.95
    return out


def test_the_fold_keeps_the_mark_and_takes_the_median_of_the_photo_under_it():
    photo, _ = tiled_photo()
    window = (slice(35, 45), slice(46, 66))  # one whole copy
    median, count = fold(photo, window, np.array([[STEP_ROWS, 0.0], [0.0, STEP_COLS]]), 2)
    assert np.all(median[COPY] == 255)
    # Off the mark, the median of 16 noise pixels in [0, 150): near 75, never the mark.
    assert 55 < float(median[~COPY].mean()) < 95
    # Of the 25 moves, those beyond the photo's edge are left out: 2 rows up (35 - 60 < 0) and
    # 2 columns left (46 - 80 < 0).
    assert np.all(count == 16)


def test_every_copy_is_masked_whole_though_the_network_saw_half_of_each():
    photo, mark, probability, regions = half_seen()
    assert (regions[0] & mark).sum() < 0.6 * mark.sum()  # the left bars only
    copies = folded_copies(photo, probability, regions, bright, CFG, 0.5)
    assert np.array_equal(copies, mark)


def test_a_fold_the_network_is_unsure_of_or_unlike_the_copy_is_refused():
    photo, mark, probability, regions = half_seen()
    # Unsure of the fold (a wallpaper's own repeated icons fold so): nothing kept.
    unsure = replace(CFG, fold_region_confidence=0.96)
    assert not folded_copies(photo, probability, regions, bright, unsure, 0.5).any()
    # The right bars unseen in the photo: the network saw nothing of them on the copies, so
    # the fold's right bars are dropped (fold_seen) and the left ones kept. Kept, the fold (both
    # bars) is less like what the network saw there than the likeness asks, and is taken whole
    # at a likeness it meets.
    _, _, half, regions = half_seen(rest=0.0)
    assert np.array_equal(folded_copies(photo, half, regions, bright, CFG, 0.5), half > 0.5)
    unseen = replace(CFG, fold_seen=0.0)
    assert not folded_copies(photo, half, regions, bright, unseen, 0.5).any()
    loose = replace(unseen, fold_likeness=0.5)
    assert np.array_equal(folded_copies(photo, half, regions, bright, loose, 0.5), mark)


def test_too_few_copies_to_fold_are_refused():
    photo, mark = tiled_photo()
    lattice = Lattice(
        origin=np.array([40.0, 56.0]),
        basis=np.array([[STEP_ROWS, 0.0], [0.0, STEP_COLS]]),
        box=(slice(35, 45), slice(46, 54)),
        shape=np.ones((10, 8), bool),
    )
    seen = seen_in_part(mark, rest=0.45)
    found = folded_shape(photo, seen, lattice, bright, CFG, 0.5)
    assert found is not None
    window, shape, _ = found
    assert np.array_equal(shape, mark[window])
    fewer = replace(CFG, fold_min_samples=26)
    assert folded_shape(photo, seen, lattice, bright, fewer, 0.5) is None


def test_folding_off_finds_nothing_and_copies_join_the_decided_mask_grown():
    photo, mark, probability, regions = half_seen()
    off = replace(CFG, fold_count=0)
    assert not folded_copies(photo, probability, regions, bright, off, 0.5).any()
    # The gate keeps none of the bars (mean 0.9 < 0.95); the copies are kept, grown by a pixel.
    cfg = PipelineConfig(region_confidence=0.95, grow_pixels=1)
    assert not decide_regions(probability, cfg).any()
    decided = decide_regions(probability, cfg, copies=mark)
    assert decided[mark].all() and decided.sum() > mark.sum()
    assert np.array_equal(decided, ndimage.binary_dilation(mark, np.ones((3, 3), bool)))


@pytest.mark.parametrize("reach", [0, 1])
def test_a_lattice_of_one_step_folds_along_it(reach: int):
    photo, _ = tiled_photo()
    window = (slice(35, 45), slice(46, 66))
    _, count = fold(photo, window, np.array([[0.0, STEP_COLS]]), reach)
    assert count.max() == 2 * reach + 1
