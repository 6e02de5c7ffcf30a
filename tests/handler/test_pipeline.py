"""The mask-first pipeline after detection, on synthetic marks whose blend is known exactly:
which regions are kept, how they are restored, and that nothing else changes."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy import ndimage

from handler.pipeline import (
    CONNECTIVITY,
    Detection,
    PipelineConfig,
    candidate_regions,
    clusters,
    decide_regions,
    invert_blend,
    remove_watermark,
    restore_regions,
    telea,
    unsure_regions,
)
from tests.images import photo

CFG = PipelineConfig()
WHITE = np.array([1.0, 1.0, 1.0], dtype=np.float32)


def square(mask: np.ndarray, top: int, left: int, side: int) -> np.ndarray:
    """The bool (H, W) of mask's shape with a side x side square at (top, left)."""
    out = np.zeros(mask.shape, dtype=bool)
    out[top : top + side, left : left + side] = True
    return out


def frame_alpha(height: int, width: int, opacity: float, box: tuple[int, int, int, int],
                stroke: int = 4) -> np.ndarray:  # fmt: skip
    """(H, W) float32 alpha of a rectangular outline (like the strokes of a glyph) at
    ``opacity`` inside box = (top, left, bottom, right), 0 elsewhere."""
    top, left, bottom, right = box
    alpha = np.zeros((height, width), dtype=np.float32)
    alpha[top:bottom, left : left + stroke] = opacity
    alpha[top:bottom, right - stroke : right] = opacity
    alpha[top : top + stroke, left:right] = opacity
    alpha[bottom - stroke : bottom, left:right] = opacity
    return alpha


def blend(clean: np.ndarray, alpha: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """The watermarked uint8 image: clean * (1 - alpha) + colour * alpha, rounded."""
    a = alpha[..., None]
    return np.round(clean * (1 - a) + 255 * colour * a).astype(np.uint8)


def detection(alpha: np.ndarray, colour: np.ndarray, probability: float = 0.0) -> Detection:
    height, width = alpha.shape
    return Detection(
        probability=np.full((height, width), probability, dtype=np.float32),
        alpha=alpha,
        colour=np.broadcast_to(colour, (height, width, 3)).astype(np.float32),
    )


@pytest.fixture(scope="module")
def gravel() -> np.ndarray:
    """A strongly textured background, where inpainting cannot guess the detail."""
    return photo(64, 80, "skimage-gravel")


# --- decide ---------------------------------------------------------------------------------


def test_a_confident_region_is_kept_and_weak_or_tiny_ones_are_dropped():
    probability = np.zeros((40, 60), dtype=np.float32)
    confident = square(probability, 2, 2, 5)
    no_seed = square(probability, 2, 20, 5)  # above mask_threshold but never sure
    weak_mean = square(probability, 2, 40, 6)  # one sure pixel in a barely-candidate region
    tiny = square(probability, 25, 2, 2)  # 4 pixels < min_region_pixels, however sure
    probability[confident] = 0.95
    probability[no_seed] = 0.75
    probability[weak_mean] = 0.55
    probability[4, 42] = 0.99
    probability[tiny] = 0.99
    mask = decide_regions(probability, PipelineConfig(grow_pixels=0))
    assert mask.dtype == bool and mask.shape == (40, 60)
    assert np.array_equal(mask, confident)


def test_each_region_is_judged_by_its_own_peak_mean_and_size():
    # Many regions of random probability, against a plain loop over them.
    rng = np.random.default_rng(4)
    probability = ndimage.gaussian_filter(rng.random((120, 160)), 2).astype(np.float32)
    probability = (probability - probability.min()) / np.ptp(probability)
    cfg = PipelineConfig(seed_threshold=0.8, region_confidence=0.62, grow_pixels=0)
    labels, count = ndimage.label(probability > cfg.mask_threshold, structure=CONNECTIVITY)
    want = np.zeros(probability.shape, dtype=bool)
    for index in range(1, count + 1):
        values = probability[labels == index]
        if values.max() >= 0.8 and values.mean() >= 0.62 and values.size >= 6:
            want |= labels == index
    kept = len(np.unique(labels[want]))
    assert 0 < kept < count // 2  # the gate both keeps and drops regions here
    assert np.array_equal(decide_regions(probability, cfg), want)


def test_small_isolated_clusters_are_dropped_and_a_word_of_small_glyphs_is_kept():
    probability = np.zeros((60, 100), dtype=np.float32)
    glyphs = [square(probability, 10, left, 7) for left in (10, 22, 34)]  # 49 px, 5 apart
    dot = square(probability, 40, 70, 9)  # 81 px, alone
    for region in [*glyphs, dot]:
        probability[region] = 0.97
    cfg = PipelineConfig(grow_pixels=0, min_cluster_pixels=100, cluster_margin=4)
    word = glyphs[0] | glyphs[1] | glyphs[2]
    assert np.array_equal(decide_regions(probability, cfg), word)
    everything = decide_regions(probability, replace(cfg, min_cluster_pixels=0))
    assert np.array_equal(everything, word | dot)
    # Glyphs further apart than 2 x cluster_margin are clusters of their own: all too small.
    assert not decide_regions(probability, replace(cfg, cluster_margin=2)).any()


def busy_photo(unsure: int) -> np.ndarray:
    """A 128x128 probability map: one mark the loose gate keeps (mean 0.9, a 0.97 seed) and
    ``unsure`` 5x5 regions it does not (mean 0.7), the network half-firing on the photo."""
    probability = np.zeros((128, 128), dtype=np.float32)
    probability[10:20, 10:40] = 0.9
    probability[15, 20] = 0.97
    for k in range(unsure):
        top, left = 40 + 12 * (k // 8), 10 + 12 * (k % 8)
        probability[top : top + 5, left : left + 5] = 0.7
    return probability


BUSY = PipelineConfig(
    seed_threshold=0.95, region_confidence=0.88, busy_regions=2.0, busy_region_confidence=0.92,
    busy_min_pixels=20, grow_pixels=0,
)  # fmt: skip


def test_on_a_busy_photo_regions_need_the_busy_confidence():
    # 128x128 is a quarter of BUSY_AREA: up to 0.5 unsure regions are quiet, one is busy.
    mark = busy_photo(0) > 0.8
    assert np.array_equal(decide_regions(busy_photo(0), BUSY), mark)
    assert not decide_regions(busy_photo(1), BUSY).any()
    # Off, or with a mark sure enough for a busy photo, the mark stays.
    assert np.array_equal(decide_regions(busy_photo(10), replace(BUSY, busy_regions=0)), mark)
    sure = busy_photo(10)
    sure[mark] = 0.95
    assert np.array_equal(decide_regions(sure, BUSY), mark)


def test_the_busy_rule_counts_per_pixel_examined_and_ignores_specks():
    # Six unsure regions: busy over the map's 16,384 pixels, quiet over a photo whose windows
    # examined four 256x256 areas (up to eight allowed).
    probability = busy_photo(6)
    mark = busy_photo(0) > 0.8
    assert not decide_regions(probability, BUSY).any()
    assert np.array_equal(decide_regions(probability, BUSY, examined=4 * 256 * 256), mark)
    # Unsure regions smaller than busy_min_pixels (25 here) do not count.
    assert np.array_equal(decide_regions(probability, replace(BUSY, busy_min_pixels=26)), mark)


def test_a_part_of_a_kept_region_the_network_is_unsure_of_is_dropped():
    # One region: a sure mark in the photo's corner (0.99) and a line of the photo it touches
    # (0.8, 2 pixels thick, 130 long). Its mean (0.919) passes 0.9, so all of it is kept ...
    probability = np.zeros((100, 160), dtype=np.float32)
    mark = square(probability, 0, 0, 20)
    line = np.zeros_like(mark)
    line[9:11, 20:150] = True
    probability[mark], probability[line] = 0.99, 0.8
    cfg = PipelineConfig(seed_threshold=0.95, region_confidence=0.9, grow_pixels=0)
    assert np.array_equal(decide_regions(probability, cfg), mark | line)
    # ... unless every pixel needs that mean over the kept pixels of the 15x15 square around
    # it: the line stays only where that square reaches into the mark (columns 20-26 and a
    # little further), the mark whole.
    kept = decide_regions(probability, replace(cfg, local_window=15, local_confidence=0.9))
    assert np.array_equal(kept & mark, mark)
    assert kept[9:11, 20:22].all()
    assert not kept[:, 30:].any()
    # A sure line is kept however long.
    probability[line] = 0.97
    kept = decide_regions(probability, replace(cfg, local_window=15, local_confidence=0.9))
    assert np.array_equal(kept, mark | line)


def test_the_unsure_inside_of_a_sure_outline_is_kept():
    # A large flat mark: the network is sure of its outline (0.99), less of its inside (0.8),
    # which looks like any flat field. The inside is enclosed by the sure part, so it stays.
    probability = np.zeros((100, 100), dtype=np.float32)
    mark = square(probability, 10, 10, 70)
    probability[mark] = 0.99
    inside = square(probability, 16, 16, 58)
    probability[inside] = 0.8
    cfg = PipelineConfig(seed_threshold=0.95, region_confidence=0.8, grow_pixels=0)
    local = replace(cfg, local_window=15, local_confidence=0.9)
    assert np.array_equal(decide_regions(probability, local), mark)
    # Open the outline on one side and the inside is no longer enclosed: its unsure middle goes.
    probability[16:74, 74:80] = 0.8
    kept = decide_regions(probability, local)
    assert not kept[45, 45]
    assert kept[10:14, 10:80].all()  # the outline's outer rows


def test_unsure_regions_beside_the_mask_are_kept_by_the_near_rule():
    # A sure letter (0.97), two letters beside it the network is less sure of (0.85 and 0.72,
    # 4 and 23 pixels of gap between), one as unsure far away (0.85), a sure speck beside it.
    # (A region within n pixels has a gap of n - 1 pixels.)
    probability = np.zeros((40, 120), dtype=np.float32)
    sure = square(probability, 10, 10, 8)
    close = square(probability, 10, 22, 8)  # within 5 pixels of the sure letter
    fainter = square(probability, 10, 41, 8)  # within 12 of ``close``, 24 of the sure one
    far = square(probability, 10, 90, 8)
    speck = square(probability, 22, 12, 2)  # 4 pixels < min_region_pixels
    for region, value in [(sure, 0.97), (close, 0.85), (fainter, 0.72), (far, 0.85)]:
        probability[region] = value
    probability[speck] = 0.99
    cfg = PipelineConfig(seed_threshold=0.95, region_confidence=0.9, grow_pixels=0)
    assert np.array_equal(decide_regions(probability, cfg), sure)
    near = replace(cfg, near_pixels=5, near_confidence=0.8)
    assert np.array_equal(decide_regions(probability, near), sure | close)
    # The rule reaches from the decided mask only, not from what it adds itself.
    reach = replace(near, near_pixels=24, near_confidence=0.7)
    assert np.array_equal(decide_regions(probability, reach), sure | close | fainter)
    assert np.array_equal(decide_regions(probability, replace(reach, near_pixels=23)), sure | close)
    # Nothing is added to a photo where nothing was kept.
    probability[sure] = 0.85
    assert not decide_regions(probability, reach).any()


def test_a_large_region_of_a_photo_looked_at_twice_needs_less_confidence():
    # A large mark (70x70) the network is fairly sure of (0.87), a small region as sure beside
    # it; the gate asks 0.9 of every region.
    probability = np.zeros((100, 200), dtype=np.float32)
    large = square(probability, 10, 10, 70)
    small = square(probability, 10, 120, 20)
    probability[large], probability[small] = 0.87, 0.87
    probability[40, 40] = probability[15, 125] = 0.99  # each region's sure seed
    cfg = PipelineConfig(
        seed_threshold=0.95, region_confidence=0.9, grow_pixels=0, large_region_pixels=1000,
        large_region_confidence=0.85,
    )  # fmt: skip
    assert not decide_regions(probability, cfg).any()
    assert np.array_equal(decide_regions(probability, cfg, looked_twice=True), large)
    off = replace(cfg, large_region_pixels=0)
    assert not decide_regions(probability, off, looked_twice=True).any()
    # Its parts less sure than the large regions' mean go by the local rule: a 4-pixel-wide
    # strip of line art at 0.6 joined to it goes (with the mark's pixels whose 15x15 square
    # reaches into it).
    strip = np.zeros_like(large)
    strip[40:44, 80:115] = True
    probability[strip] = 0.6
    local = replace(cfg, local_window=15, local_confidence=0.9)
    kept = decide_regions(probability, local, looked_twice=True)
    assert kept[10:80, 10:72].all() and not kept[:, 90:].any()


def test_kept_regions_grow_by_grow_pixels():
    probability = np.zeros((30, 30), dtype=np.float32)
    probability[square(probability, 10, 10, 5)] = 0.9
    for grow in (0, 1, 3):
        mask = decide_regions(probability, PipelineConfig(grow_pixels=grow))
        # 8-connected growth: a square grows into a square.
        assert np.array_equal(mask, square(probability, 10 - grow, 10 - grow, 5 + 2 * grow))


def test_nothing_sure_means_an_empty_mask():
    assert not decide_regions(np.full((20, 20), 0.6, dtype=np.float32), CFG).any()
    assert not decide_regions(np.zeros((20, 20), dtype=np.float32), CFG).any()


# --- restore --------------------------------------------------------------------------------


def test_exact_blend_inversion_recovers_the_texture_better_than_telea(gravel):
    alpha = frame_alpha(64, 80, 0.5, (20, 20, 44, 60))
    marked = blend(gravel, alpha, WHITE)
    mask = alpha > 0
    out = restore_regions(marked, mask, detection(alpha, WHITE), CFG)
    error = np.abs(out.astype(int) - gravel)[mask]
    assert error.max() <= 2  # only the uint8 rounding of the blend, doubled by 1 / (1 - 0.5)
    telea_error = np.abs(telea(marked, mask, CFG.inpaint_radius).astype(int) - gravel)[mask]
    assert telea_error.mean() > 5 * max(error.mean(), 0.5)
    assert np.array_equal(out[~mask], marked[~mask])


def test_opaque_alpha_is_filled_by_telea(gravel):
    alpha = frame_alpha(64, 80, 0.85, (20, 20, 44, 60))  # above invert_max_alpha (0.7)
    marked = blend(gravel, alpha, WHITE)
    mask = alpha > 0
    out = restore_regions(marked, mask, detection(alpha, WHITE), CFG)
    assert np.array_equal(out, telea(marked, mask, CFG.inpaint_radius))


def test_inversion_and_telea_are_chosen_pixel_by_pixel(gravel):
    alpha = frame_alpha(64, 80, 0.5, (20, 20, 44, 60))
    alpha[:, 40:][alpha[:, 40:] > 0] = 0.85  # the right half of the outline nearly opaque
    marked = blend(gravel, alpha, WHITE)
    mask = alpha > 0
    out = restore_regions(marked, mask, detection(alpha, WHITE), CFG)
    opaque, semi = alpha > CFG.invert_max_alpha, (alpha > 0) & (alpha <= CFG.invert_max_alpha)
    assert np.array_equal(out[opaque], telea(marked, mask, CFG.inpaint_radius)[opaque])
    assert np.abs(out.astype(int) - gravel)[semi].max() <= 2


def test_an_implausible_inversion_falls_back_to_telea(gravel):
    alpha = frame_alpha(64, 80, 0.5, (20, 20, 44, 60))
    marked = blend(gravel, alpha, WHITE)
    mask = alpha > 0
    wrong = np.zeros(3, dtype=np.float32)  # the network says black; the mark is white
    out = restore_regions(marked, mask, detection(alpha, wrong), CFG)
    assert np.array_equal(out, telea(marked, mask, CFG.inpaint_radius))


def test_the_fallback_is_decided_region_by_region():
    clean = photo(64, 160, "skimage-gravel")
    left = frame_alpha(64, 160, 0.5, (20, 20, 44, 60))
    right = frame_alpha(64, 160, 0.5, (20, 100, 44, 140))
    alpha = left + right
    marked = blend(clean, alpha, WHITE)
    colour = np.ones((64, 160, 3), dtype=np.float32)
    colour[:, 80:] = 0  # wrong only for the right mark
    det = Detection(np.zeros((64, 160), dtype=np.float32), alpha, colour)
    out = restore_regions(marked, alpha > 0, det, CFG)
    assert np.abs(out.astype(int) - clean)[left > 0].max() <= 2, "inverted"
    # Telea on the right mark's own window: the left mark lies outside it.
    fill = telea(marked[:, 80:], right[:, 80:] > 0, CFG.inpaint_radius)
    assert np.array_equal(out[:, 80:], fill)


def test_invert_blend_undoes_the_blend():
    rng = np.random.default_rng(0)
    clean = rng.random((8, 8, 3), dtype=np.float32)
    alpha = rng.random((8, 8), dtype=np.float32) * 0.9
    colour = rng.random((8, 8, 3), dtype=np.float32)
    marked = clean * (1 - alpha[..., None]) + colour * alpha[..., None]
    np.testing.assert_allclose(invert_blend(marked, alpha, colour), clean, atol=1e-5)


# --- remove_watermark -----------------------------------------------------------------------


def test_a_zero_probability_returns_the_input_unchanged(gravel):
    alpha = np.full((64, 80), 0.5, dtype=np.float32)
    out, mask = remove_watermark(gravel, detection(alpha, WHITE), CFG)
    assert not mask.any() and mask.shape == (64, 80)
    assert np.array_equal(out, gravel)


def test_the_decided_mask_is_restored_and_nothing_else(gravel):
    alpha = frame_alpha(64, 80, 0.5, (20, 20, 44, 60))
    marked = blend(gravel, alpha, WHITE)
    det = detection(alpha, WHITE)
    det.probability[alpha > 0] = 0.97
    out, mask = remove_watermark(marked, det, CFG)
    assert np.array_equal(mask, decide_regions(det.probability, CFG))
    assert mask.sum() > (alpha > 0).sum()  # grown by grow_pixels
    assert np.array_equal(out[~mask], marked[~mask])
    # Alpha is 0 on the grown rim: inverting it is the identity, so all of it is the clean.
    assert np.abs(out.astype(int) - gravel)[mask].max() <= 2


def test_a_given_mask_replaces_the_decided_regions(gravel):
    alpha = np.zeros((64, 80), dtype=np.float32)
    given = square(alpha, 24, 30, 10)
    alpha[given] = 0.85  # an opaque square the network missed: probability 0 everywhere
    marked = blend(gravel, alpha, WHITE)
    out, mask = remove_watermark(marked, detection(alpha, WHITE), CFG, given)
    assert mask is given
    assert np.array_equal(out[~given], marked[~given])
    assert np.array_equal(out, telea(marked, given, CFG.inpaint_radius))
    assert np.abs(out.astype(int) - marked)[given].mean() > 20, "the white square is gone"


def test_settings_pick_only_the_pipeline_keys():
    cfg = PipelineConfig.from_settings({"grow_pixels": 3, "tile": 64, "precision": "float32"})
    assert cfg == PipelineConfig(grow_pixels=3)


def test_invert_max_alpha_zero_turns_inversion_off(gravel):
    alpha = frame_alpha(64, 80, 0.5, (20, 20, 44, 60))
    marked = blend(gravel, alpha, WHITE)
    mask = alpha > 0
    off = replace(CFG, invert_max_alpha=0.0)
    out = restore_regions(marked, mask, detection(alpha, WHITE), off)
    assert np.array_equal(out, telea(marked, mask, CFG.inpaint_radius))


# --- the learned restorer --------------------------------------------------------------------


def test_a_learned_restorer_replaces_the_floor_inside_the_mask_only():
    clean = photo(64, 160, "skimage-gravel")
    alpha = frame_alpha(64, 160, 0.5, (20, 20, 44, 60)) + frame_alpha(
        64, 160, 0.5, (20, 100, 44, 140)
    )
    marked = blend(clean, alpha, WHITE)
    mask = alpha > 0
    seen = []

    def learned(window: np.ndarray, fill: np.ndarray, window_mask: np.ndarray) -> np.ndarray:
        seen.append((window.shape, window_mask.sum()))
        # Telea's fill of the window's whole mask comes in beside the photo.
        assert np.array_equal(fill, telea(window, window_mask, CFG.inpaint_radius))
        return np.full(window.shape, 0.5, dtype=np.float32)

    out = restore_regions(marked, mask, detection(alpha, WHITE), CFG, learned)
    assert np.all(out[mask] == 128)
    assert np.array_equal(out[~mask], marked[~mask])
    # Two marks 40 pixels apart: one window, margin 4 x radius + 8 = 20 around each.
    assert len(seen) == 1 and seen[0][1] == mask.sum()


def test_clusters_join_regions_closer_than_twice_the_margin():
    mask = np.zeros((20, 80), dtype=bool)
    mask[5:10, 5:10] = mask[5:10, 25:30] = mask[5:10, 60:65] = True
    labels, count = clusters(mask, 8)
    assert count == 2
    assert labels[7, 7] == labels[7, 27] != labels[7, 62]
    # A cluster's box holds the margin around its regions (clipped at the image's edge).
    rows, cols = np.nonzero(labels == labels[7, 62])
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (0, 17, 52, 72)


# --- tiled marks ----------------------------------------------------------------------------


def glyph_word(shape: tuple[int, int], top: int, left: int) -> np.ndarray:
    """A bool (H, W) with a small asymmetric connected 'word' at (top, left), 12x25: strokes
    joined as the halo of a network's probability joins a small word's letters."""
    word = np.zeros(shape, dtype=bool)
    word[top : top + 12, left : left + 3] = True  # a bar
    word[top + 9 : top + 12, left + 3 : left + 16] = True  # a foot
    word[top + 4 : top + 12, left + 13 : left + 16] = True  # a short bar on it
    word[top + 4 : top + 7, left + 16 : left + 25] = True  # a dash from its top
    return word


TILED = PipelineConfig(
    grow_pixels=0, repeat_count=4, repeat_confidence=0.8, repeat_correlation=0.8, cluster_margin=4
)
# A staggered lattice: rows 30 apart, copies 40 apart, each row shifted by 13.
LATTICE = [(5 + 30 * row, 5 + 13 * row + 40 * col) for row in range(3) for col in range(3)]


def unsure_map(places: list[tuple[int, int]], level: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    probability = rng.uniform(0.0, 0.1, (100, 160)).astype(np.float32)
    for top, left in places:
        probability[glyph_word(probability.shape, top, left)] = level
    return probability


def test_the_copies_of_a_tiled_mark_are_kept_though_none_is_sure():
    probability = unsure_map(LATTICE, 0.85)  # below the gate's mean 0.9: none kept alone
    tiled = np.logical_or.reduce([glyph_word(probability.shape, *at) for at in LATTICE])
    assert not decide_regions(probability, replace(TILED, repeat_count=0)).any()
    assert np.array_equal(decide_regions(probability, TILED), tiled)
    # Not when the network is less sure of them than repeat_confidence.
    assert not decide_regions(unsure_map(LATTICE, 0.75), TILED).any()
    # Nor when there are fewer copies than repeat_count.
    assert not decide_regions(probability, replace(TILED, repeat_count=10)).any()


def test_alike_shapes_off_a_lattice_are_not_a_tiled_mark():
    """The letters of a sign or a few icons alike: no step between them repeats."""
    scattered = [(5, 5), (8, 50), (40, 20), (47, 100), (70, 60), (75, 125)]
    assert not decide_regions(unsure_map(scattered, 0.85), TILED).any()


def test_different_shapes_on_a_lattice_are_not_a_tiled_mark():
    """Nine shapes of one size on the lattice, each once: not copies of one mark."""
    word = glyph_word((12, 25), 0, 0)
    frame = np.ones((12, 25), dtype=bool)
    frame[3:-3, 3:-3] = False
    tee, aitch, plus, comb = (np.zeros((12, 25), dtype=bool) for _ in range(4))
    tee[:3], tee[:, 11:14] = True, True
    aitch[:, :3], aitch[:, -3:], aitch[5:8] = True, True, True
    plus[5:8], plus[:, 11:14] = True, True
    comb[:3], comb[:, ::6] = True, True
    shapes = [word, word[:, ::-1], word[::-1], word[::-1, ::-1], frame, tee, aitch, plus, comb]
    probability = np.zeros((100, 160), dtype=np.float32)
    for (top, left), shape in zip(LATTICE, shapes, strict=True):
        probability[top : top + 12, left : left + 25][shape] = 0.85
    assert not decide_regions(probability, TILED).any()
    # The same places with one shape: a tiled mark.
    assert decide_regions(unsure_map(LATTICE, 0.85), TILED).sum() == 9 * word.sum()


def test_the_lattice_adds_the_copies_cut_by_the_edge_or_half_seen():
    rng = np.random.default_rng(2)
    places = [(5 + 30 * row, 5 + 13 * row + 40 * col) for row in range(3) for col in range(4)]
    # The fourth column: copies at x 125, 138 and 151 of a 146-pixel-wide map, cut by its edge.
    probability = rng.uniform(0.0, 0.1, (100, 146)).astype(np.float32)
    words = [glyph_word((100, 160), *at)[:, :146] for at in places]
    for word in words:
        probability[word] = 0.85
    half_seen, empty = words[1], words[4]
    # The network saw half of one copy's pixels, and none of another's (no copy is there).
    probability[half_seen] = np.where(rng.random(half_seen.sum()) < 0.5, 0.75, 0.2)
    probability[empty] = 0.05
    kept = decide_regions(probability, TILED)
    for word in words:
        if word is empty:
            assert not kept[word].any()
        else:
            assert kept[word].all(), np.argwhere(word)[0]
    # A copy whose pixels' mean is below repeat_fill_confidence is left.
    stricter = decide_regions(probability, replace(TILED, repeat_fill_confidence=0.6))
    assert not stricter[half_seen].any()
    assert stricter[words[0]].all() and stricter[words[3]].all()


def test_a_predicted_place_where_the_network_sees_another_shape_is_left():
    """The lattice's place of a copy, where the network half-fires on the photo's own edge:
    sure enough on average, but not the mark's shape."""
    probability = unsure_map(LATTICE, 0.85)
    top, left = LATTICE[4]
    probability[top : top + 12, left : left + 25] = 0.05
    probability[top + 2 : top + 10, left : left + 25] = 0.7  # a band, not the word
    kept = decide_regions(probability, TILED)
    assert not kept[top : top + 12, left : left + 25].any()
    assert kept[glyph_word(probability.shape, *LATTICE[0])].all()


def test_unsure_regions_are_the_candidates_the_mask_leaves():
    probability = np.zeros((40, 60), np.float32)
    probability[5:15, 5:25] = 0.99  # sure: decided
    probability[25:31, 30:36] = 0.7  # 36 pixels, unsure
    probability[2:4, 50:52] = 0.7  # 4 pixels: a speck, under busy_min_pixels
    probability[30:35, 5:10] = 0.4  # below the mask threshold: no candidate at all
    cfg = PipelineConfig(seed_threshold=0.95, region_confidence=0.9, busy_min_pixels=20)
    mask = decide_regions(probability, cfg)
    unsure = unsure_regions(probability, mask, cfg)
    regions = candidate_regions(probability, cfg)  # the labelling a caller can share
    assert np.array_equal(decide_regions(probability, cfg, regions=regions), mask)
    assert np.array_equal(unsure_regions(probability, mask, cfg, regions), unsure)
    expected = np.zeros_like(mask)
    expected[24:32, 29:37] = True  # widened by grow_pixels (1), as kept regions are
    assert np.array_equal(unsure, expected)
    unwidened = unsure_regions(probability, mask, replace(cfg, grow_pixels=0))
    assert np.array_equal(unwidened, expected & (probability > 0.5))
    assert not (unsure & mask).any()
    # Nothing the network saw: nothing to suggest.
    assert not unsure_regions(np.zeros((8, 8), np.float32), np.zeros((8, 8), bool), cfg).any()
