"""Region-aware inference on tensors: which tiles, which windows, what gets pasted back."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from handler.regions import (
    RegionConfig,
    marked_tiles,
    reduce,
    reduced_size,
    restore_tiles,
    tile_origins,
    window,
)

CFG = RegionConfig(tile=16, margin=4, tile_batch=3)


def blur_network(batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A stand-in network with a 3x3 receptive field (well inside the margin)."""
    kernel = torch.full((3, 1, 3, 3), 1 / 9)
    out = F.conv2d(F.pad(batch, (1, 1, 1, 1), mode="replicate"), kernel, groups=3)
    return out, torch.ones_like(batch[:, :1])


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


def test_only_listed_tiles_change_and_they_match_whole_image_inference():
    torch.manual_seed(0)
    images = [torch.rand(3, 40, 50), torch.rand(3, 16, 16)]
    tiles = [[(0, 0), (24, 34)], [(0, 0)]]
    out = restore_tiles(blur_network, images, tiles, CFG)
    whole = [blur_network(img[None])[0][0] for img in images]
    changed = torch.zeros(40, 50, dtype=torch.bool)
    changed[0:16, 0:16] = changed[24:40, 34:50] = True
    assert torch.equal(out[0][:, ~changed], images[0][:, ~changed]), "the rest is bit-identical"
    # No seams: with the receptive field inside the margin, tiles equal the whole-image result.
    assert torch.allclose(out[0][:, changed], whole[0][:, changed], atol=1e-6)
    assert torch.allclose(out[1], whole[1], atol=1e-6)


def test_tiles_of_several_images_share_forwards():
    calls = []

    def counting(batch):
        calls.append(batch.shape[0])
        return blur_network(batch)

    images = [torch.rand(3, 32, 32) for _ in range(3)]
    restore_tiles(counting, images, [tile_origins(32, 32, 16)] * 3, CFG)
    assert calls == [3, 3, 3, 3]  # 12 windows, tile_batch 3
