"""Coarse-to-fine detection on tensors: which tiles, which windows, how their maps blend."""

from __future__ import annotations

import pytest
import torch

from handler.regions import (
    RegionConfig,
    detect_windows,
    dilate,
    feather,
    find_tiles,
    footprint,
    fuse_coarse,
    marked_tiles,
    reduce,
    reduced_size,
    tile_origins,
    window,
    window_coverage,
)

CFG = RegionConfig(tile=16, margin=4, tile_batch=3)


def position_image(height: int, width: int) -> torch.Tensor:
    """(3, H, W) whose pixels say where they are: row / H, column / W, and their product."""
    rows = torch.arange(height, dtype=torch.float32)[:, None].expand(height, width) / height
    cols = torch.arange(width, dtype=torch.float32)[None, :].expand(height, width) / width
    return torch.stack([rows, cols, rows * cols])


def smooth_network(batch: torch.Tensor) -> torch.Tensor:
    """A stand-in network, pixel by pixel: on a position image its maps are a known smooth
    function of position, (B, 3, H, W) -> (B, 5, H, W)."""
    rows, cols = batch[:, :1], batch[:, 1:2]
    probability = torch.sin(3 * rows) * torch.cos(2 * cols)
    return torch.cat([probability, rows, cols, rows**2, batch[:, 2:]], dim=1)


def test_reduced_size_keeps_aspect_and_never_enlarges():
    assert reduced_size(3000, 4000, 512) == (384, 512)
    assert reduced_size(100, 50, 512) == (100, 50)
    assert reduce(torch.rand(3, 40, 80), 20).shape == (3, 10, 20)


def test_tiles_cover_the_image_without_hanging_over():
    assert tile_origins(40, 20, 16) == [(0, 0), (0, 4), (16, 0), (16, 4), (24, 0), (24, 4)]
    assert tile_origins(10, 10, 16) == [(0, 0)]  # smaller than a tile: one, cut to the image
    covered = torch.zeros(40, 20, dtype=torch.bool)
    for top, left in tile_origins(40, 20, 16):
        covered[top : top + 16, left : left + 16] = True
    assert covered.all()


def test_marked_tiles_follow_the_reduced_mask():
    mask = torch.zeros(8, 8, dtype=torch.bool)  # a 64x64 image reduced 8x
    assert marked_tiles(mask, 64, 64, 16) == []
    mask[6, 1] = True  # full-resolution rows 48-55, columns 8-15
    # The tile holding it, and its neighbours within one reduced pixel of it.
    assert marked_tiles(mask, 64, 64, 16) == [(32, 0), (32, 16), (48, 0), (48, 16)]
    assert len(marked_tiles(torch.ones(8, 8, dtype=torch.bool), 64, 64, 16)) == 16


def test_windows_replicate_the_edge():
    image = torch.arange(3 * 20 * 20, dtype=torch.float32).reshape(3, 20, 20)
    big = torch.rand(3, 40, 40)
    assert torch.equal(window(big, 8, 8, CFG), big[:, 4:28, 4:28])
    corner = window(image, 0, 0, CFG)
    assert corner.shape == (3, 24, 24)
    assert torch.equal(corner[:, 4:, 4:], image[:, :20, :20])
    assert torch.equal(corner[:, 0, 4:], image[:, 0, :20])  # the top row repeated upwards


def test_feather_is_one_over_the_tile_and_ramps_down_in_the_margin():
    weight = feather(CFG)  # window 24 = tile 16 + 2 x margin 4
    assert weight.shape == (24, 24)
    assert torch.equal(weight[4:20, 4:20], torch.ones(16, 16))
    ramp = torch.tensor([1, 2, 3, 4]) / 5
    assert torch.allclose(weight[12, :4], ramp) and torch.allclose(weight[12, 20:], ramp.flip(0))
    assert torch.allclose(weight[:4, 12], ramp)
    assert weight[0, 0] == weight.min() == 1 / 5  # corners: the smaller of the two ramps
    assert torch.equal(weight, weight.T) and torch.equal(weight, weight.flip(0).flip(1))


def test_blended_windows_equal_the_whole_image_where_they_cover():
    images = [position_image(40, 50), position_image(16, 16)]
    tiles = [[(0, 0), (0, 16), (24, 34)], [(0, 0)]]
    maps = detect_windows(smooth_network, images, tiles, CFG)
    assert [tuple(m.shape) for m in maps] == [(5, 40, 50), (5, 16, 16)]
    expected = [smooth_network(img[None])[0] for img in images]
    # What the windows reach: each tile and its margin, inside the image.
    covered = torch.zeros(40, 50, dtype=torch.bool)
    covered[0:20, 0:36] = covered[20:40, 30:50] = True
    assert torch.allclose(maps[0][:, covered], expected[0][:, covered], atol=1e-6)
    assert torch.equal(maps[0][:, ~covered], torch.zeros(5, int((~covered).sum())))
    assert torch.allclose(maps[1], expected[1], atol=1e-6)


def test_overlapping_windows_blend_without_a_seam():
    """Two neighbouring windows that disagree completely (0 and 1) are blended by their
    feather weights into a gradual ramp across the overlap, not a step at the tile boundary."""
    image = torch.zeros(3, 16, 32)
    image[:, :, 16:] = 1  # the second tile's pixels; its window's margin sees some of them

    def window_mean(batch: torch.Tensor) -> torch.Tensor:
        return batch[:, :1].mean(dim=(2, 3), keepdim=True).round().expand(-1, 1, 24, 24)

    [maps] = detect_windows(window_mean, [image], [[(0, 0), (0, 16)]], CFG)
    row = maps[0, 8]
    assert row[:12].eq(0).all() and row[20:].eq(1).all()
    steps = row.diff()
    assert (steps >= 0).all() and steps.max() <= 1 / (CFG.margin + 1)
    # The 1 / 5 ramp against the full weight of the other window: 1/6, 2/7, ..., 5/6.
    expected = torch.tensor([1 / 6, 2 / 7, 3 / 8, 4 / 9, 5 / 9, 5 / 8, 5 / 7, 5 / 6])
    assert torch.allclose(row[12:20], expected)


def test_windows_of_several_images_share_forwards():
    calls = []

    def counting(batch: torch.Tensor) -> torch.Tensor:
        calls.append(batch.shape[0])
        return smooth_network(batch)

    images = [position_image(32, 32) for _ in range(3)]
    detect_windows(counting, images, [tile_origins(32, 32, 16)] * 3, CFG)
    assert calls == [3, 3, 3, 3]  # 12 windows, tile_batch 3
    assert detect_windows(counting, images, [[], [], []], CFG) == []
    assert calls == [3, 3, 3, 3]


def test_find_tiles_marks_candidates_on_the_reduced_copy():
    cfg = RegionConfig(tile=16, margin=4, detect_side=16, candidate_threshold=0.3)
    seen = []

    def whole(images: list[torch.Tensor]) -> list[torch.Tensor]:
        seen.extend(tuple(img.shape) for img in images)
        maps = []
        for img in images:
            probability = torch.zeros(1, *img.shape[1:])
            probability[0, 12, 2] = 0.4  # full-resolution rows 48-51, columns 8-11 of 64x64
            probability[0, 2, 12] = 0.2  # below the candidate threshold
            maps.append(probability)
        return maps

    tiles, coarse = find_tiles(whole, [torch.rand(3, 64, 64), torch.rand(3, 16, 16)], cfg)
    assert seen == [(3, 16, 16), (3, 16, 16)]  # reduced 4x, and never enlarged
    assert tiles[0] == [(32, 0), (48, 0)]  # the tile holding it, one reduced pixel widened
    assert tiles[1] == [(0, 0)]
    assert [float(c[0, 12, 2]) for c in coarse] == pytest.approx([0.4, 0.4])  # the copy's maps
    assert find_tiles(whole, [], cfg) == ([], [])


def test_window_coverage_is_the_union_of_windows_inside_the_image():
    cfg = RegionConfig(tile=16, margin=4)
    covered = window_coverage(40, 40, [(0, 0), (16, 24)], cfg)
    assert covered.shape == (1, 40, 40)
    assert covered[0, :20, :20].all() and not covered[0, :12, 20:].any()  # first window
    assert covered[0, 12:36, 20:40].all() and not covered[0, 36:].any()  # second, cut at edge


def test_dilate_matches_a_square_max_pool_at_the_edges_too():
    mask = torch.rand(37, 53, generator=torch.Generator().manual_seed(0)) > 0.97
    mask[0, 0] = mask[-1, -1] = True
    for margin in (1, 4, 16):
        pooled = torch.nn.functional.max_pool2d(
            mask[None, None].float(), 2 * margin + 1, stride=1, padding=margin
        )[0, 0]
        assert torch.equal(dilate(mask, margin), pooled > 0), margin


def test_footprint_reaches_margin_pixels_past_what_the_reduced_copy_saw():
    coarse = torch.zeros(4, 4)
    coarse[0, 0] = 0.6  # the reduced copy saw its top-left corner only: pixels 0-3 of 16
    for margin, reach in ((0, 4), (2, 6)):
        expected = torch.zeros(16, 16, dtype=torch.bool)
        expected[:reach, :reach] = True
        assert torch.equal(footprint(coarse, (16, 16), threshold=0.5, margin=margin), expected)
    assert not footprint(coarse, (16, 16), threshold=0.7, margin=8).any()


def test_fuse_coarse_adds_kept_coarse_regions_and_keeps_fine_maps_where_windows_reached():
    fine = torch.zeros(5, 8, 8)
    fine[0, 0, 0] = 0.7  # a fine detection the coarse copy did not keep
    fine[1:] = 0.25
    covered = torch.zeros(1, 8, 8, dtype=torch.bool)
    covered[:, :, :4] = True  # windows reached the left half only
    coarse = torch.zeros(5, 2, 2)
    coarse[0] = torch.tensor([[0.9, 0.9], [0.6, 0.9]])
    coarse[1:] = 0.5
    kept = torch.tensor([[False, True], [False, False]])  # only the top-right region was kept
    fused = fuse_coarse(fine, covered, coarse, kept)
    assert fused.shape == (5, 8, 8)
    assert float(fused[0, 0, 0]) == pytest.approx(0.7)  # fine kept
    assert float(fused[0, 1, 7]) == pytest.approx(0.9)  # inside the kept coarse region
    assert float(fused[0, 7, 0]) == 0.0  # coarse 0.6 there, but not kept: nothing added
    assert torch.equal(fused[1:, :, :4], fine[1:, :, :4])  # alpha, colour: fine where covered
    assert torch.allclose(fused[1:, :, 4:], torch.full((4, 8, 4), 0.5))  # else the coarse
