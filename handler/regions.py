"""Detection on large photos: look for the mark on a reduced copy, then at full resolution
only in the tiles that may hold it.

A photo of many megapixels usually carries a mark on a small part of it. The network first
looks at a copy reduced to ``detect_side`` pixels on its long side (context: a large mark fits
in its view); the full-resolution tiles (``tile`` x ``tile``) whose footprint it may mark are
then run again at full resolution, each seen with ``margin`` pixels of context on every side,
and the overlapping windows' predictions are blended with feathered weights. The result is one
full-resolution detection for the whole photo, decided before anything is restored, so no tile
boundary can cut a region. Tiles are fixed in size, so tiles from all the requests of a
TorchServe batch run together in one forward.

Pure functions on tensors; handler/engine.py decides what runs where.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.nn import functional as F

from handler.settings import own_settings

# A network call: (B, 3, H, W) float in [0, 1] -> detection maps (B, C, H, W), channel 0 the
# watermark probability (handler/engine.py: probability, alpha, colour).
Network = Callable[[torch.Tensor], torch.Tensor]
# Images of any sizes run whole: [(3, H, W)] -> [maps (C, H, W)].
WholeRunner = Callable[[list[torch.Tensor]], list[torch.Tensor]]


@dataclass(frozen=True)
class RegionConfig:
    tile: int = 256  # restored square, in full-resolution pixels
    margin: int = 32  # context around a tile; the network sees (tile + 2 * margin) squares
    detect_side: int = 512  # long side of the reduced copy the mark is found on
    tile_batch: int = 8  # windows per forward
    # A reduced-copy pixel above this makes its tiles candidates: lower than the threshold the
    # regions are decided with, as the reduced copy blurs thin marks.
    candidate_threshold: float = 0.3
    # Regions decided on the reduced copy count at full resolution too: a mark larger than a
    # window is seen whole only there (a window sees a few letters of it and is unsure).
    coarse_regions: bool = False
    # ... each kept only when its mean probability there is at least this: the reduced copy
    # blurs texture into mark-like blobs, so its regions must be surer than a window's.
    coarse_region_confidence: float = 0.9
    # With a value, a full-resolution window's probability counts only within this many
    # full-resolution pixels of the reduced copy's candidate pixels (above
    # candidate_threshold): both looks must agree. None: anywhere in the detected tiles.
    footprint_margin: int | None = None

    @property
    def window(self) -> int:
        return self.tile + 2 * self.margin

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> RegionConfig:
        """From model-config.yaml's ``handler`` section: its region keys, defaults otherwise."""
        return cls(**own_settings(cls, settings))


def reduced_size(height: int, width: int, side: int) -> tuple[int, int]:
    """(h, w) with the long side at most ``side``, aspect kept, never enlarged."""
    scale = min(1.0, side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def reduce(image: torch.Tensor, side: int) -> torch.Tensor:
    """(3, H, W) -> (3, h, w) by area averaging (no aliasing of fine text)."""
    h, w = reduced_size(image.shape[1], image.shape[2], side)
    if (h, w) == tuple(image.shape[1:]):
        return image
    return F.interpolate(image[None], size=(h, w), mode="area")[0]


def tile_origins(height: int, width: int, tile: int) -> list[tuple[int, int]]:
    """(top, left) of tiles covering an (H, W) image; the last row and column are moved back
    inside the image (overlapping their neighbours) rather than hanging over its edge."""
    tops = [min(t, max(0, height - tile)) for t in range(0, height, tile)]
    lefts = [min(x, max(0, width - tile)) for x in range(0, width, tile)]
    return [(t, x) for t in dict.fromkeys(tops) for x in dict.fromkeys(lefts)]


def marked_tiles(mask: torch.Tensor, height: int, width: int, tile: int) -> list[tuple[int, int]]:
    """Tiles of the (H, W) image whose footprint on the reduced (h, w) bool ``mask`` holds a
    marked pixel, widened by one reduced pixel so that a mark's faint edge is not cut off."""
    h, w = mask.shape
    rows, cols = h / height, w / width
    chosen = []
    for top, left in tile_origins(height, width, tile):
        y0 = max(0, math.floor(top * rows) - 1)
        y1 = min(h, math.ceil((top + tile) * rows) + 1)
        x0 = max(0, math.floor(left * cols) - 1)
        x1 = min(w, math.ceil((left + tile) * cols) + 1)
        if bool(mask[y0:y1, x0:x1].any()):
            chosen.append((top, left))
    return chosen


def window(image: torch.Tensor, top: int, left: int, cfg: RegionConfig) -> torch.Tensor:
    """The (3, window, window) context square around a tile, edge-replicated past the image."""
    _, height, width = image.shape
    y0, x0 = top - cfg.margin, left - cfg.margin
    y1, x1 = y0 + cfg.window, x0 + cfg.window
    crop = image[:, max(0, y0) : min(height, y1), max(0, x0) : min(width, x1)]
    pad = (max(0, -x0), max(0, x1 - width), max(0, -y0), max(0, y1 - height))
    if any(pad):
        crop = F.pad(crop[None], pad, mode="replicate")[0]
    return crop


def feather(cfg: RegionConfig) -> torch.Tensor:
    """(window, window) weights of one window's predictions: 1 over its tile, falling linearly
    to 1 / (margin + 1) at its outer edge, so that overlapping windows blend smoothly instead
    of butting at a seam."""
    ramp = torch.ones(cfg.window)
    steps = torch.arange(1, cfg.margin + 1, dtype=torch.float32) / (cfg.margin + 1)
    ramp[: cfg.margin] = steps
    ramp[cfg.window - cfg.margin :] = steps.flip(0)
    return torch.minimum(ramp[:, None], ramp[None, :])


def detect_windows(
    network: Network,
    images: list[torch.Tensor],
    tiles: list[list[tuple[int, int]]],
    cfg: RegionConfig,
) -> list[torch.Tensor]:
    """Full-resolution detection maps (C, H, W) of every image, from the network run on the
    listed tiles' windows and blended with feathered weights; zero where no window reached.

    Windows of all images go through the network together, ``cfg.tile_batch`` at a time.
    """
    weight = feather(cfg)
    sums: list[torch.Tensor] = []
    norms: list[torch.Tensor] = []
    jobs = [(k, top, left) for k, image_tiles in enumerate(tiles) for top, left in image_tiles]
    for start in range(0, len(jobs), cfg.tile_batch):
        chunk = jobs[start : start + cfg.tile_batch]
        batch = torch.stack([window(images[k], top, left, cfg) for k, top, left in chunk])
        maps = network(batch)  # (B, C, window, window)
        if not sums:
            channels = maps.shape[1]
            sums = [img.new_zeros(channels, *img.shape[1:]) for img in images]
            norms = [img.new_zeros(1, *img.shape[1:]) for img in images]
        for (k, top, left), result in zip(chunk, maps, strict=True):
            _, height, width = images[k].shape
            y0, x0 = top - cfg.margin, left - cfg.margin
            # The part of the window inside the image.
            ty0, tx0 = max(0, y0), max(0, x0)
            ty1, tx1 = min(height, y0 + cfg.window), min(width, x0 + cfg.window)
            wy, wx = slice(ty0 - y0, ty1 - y0), slice(tx0 - x0, tx1 - x0)
            w = weight[wy, wx].to(result.device)
            sums[k][:, ty0:ty1, tx0:tx1] += result[:, wy, wx] * w
            norms[k][:, ty0:ty1, tx0:tx1] += w
    if not sums:
        return []
    return [total / norm.clamp_min(1e-6) for total, norm in zip(sums, norms, strict=True)]


def window_coverage(
    height: int, width: int, tiles: list[tuple[int, int]], cfg: RegionConfig
) -> torch.Tensor:
    """(1, H, W) bool: the pixels some tile's window reached."""
    covered = torch.zeros(1, height, width, dtype=torch.bool)
    for top, left in tiles:
        y0, x0 = max(0, top - cfg.margin), max(0, left - cfg.margin)
        covered[:, y0 : top + cfg.tile + cfg.margin, x0 : left + cfg.tile + cfg.margin] = True
    return covered


def fuse_coarse(
    fine: torch.Tensor, covered: torch.Tensor, coarse: torch.Tensor, kept: torch.Tensor
) -> torch.Tensor:
    """One full-resolution detection from both looks at a photo.

    fine: (C, H, W) maps of the full-resolution windows, valid where ``covered`` (1, H, W)
    bool; coarse: (C, h, w) maps of the reduced copy; kept: (h, w) bool, the regions decided on
    the reduced copy. The probability is the larger of the fine one and the coarse one inside
    the kept regions (upsampled bilinearly: their edges land where the coarse map crosses the
    threshold); alpha and colour are the fine ones where a window reached, else the coarse.
    """
    size = fine.shape[1:]
    coarse = torch.cat([coarse[:1] * kept[None].to(coarse.dtype), coarse[1:]])
    up = F.interpolate(coarse[None], size=size, mode="bilinear", align_corners=False)[0]
    probability = torch.maximum(fine[:1], up[:1])
    rest = torch.where(covered.to(fine.device), fine[1:], up[1:])
    return torch.cat([probability, rest])


def footprint(
    coarse_probability: torch.Tensor, size: tuple[int, int], threshold: float, margin: int
) -> torch.Tensor:
    """(H, W) bool at full resolution ``size``: within ``margin`` pixels of a reduced-copy pixel
    of ``coarse_probability`` (h, w) above ``threshold``. A window's detections outside it are
    ones the reduced copy did not see."""
    seen = (coarse_probability > threshold).to(torch.float32)[None, None]
    near = F.interpolate(seen, size=size, mode="nearest")[0, 0] > 0
    return dilate(near, margin) if margin > 0 else near


def dilate(mask: torch.Tensor, margin: int) -> torch.Tensor:
    """(H, W) bool widened by ``margin`` pixels (a square): a box count on the mask's integral
    image, linear in the pixels whatever the margin (max_pool2d's cost grows with the kernel's
    area: 8 s for a 12-megapixel photo at margin 16, against 0.3 s this way)."""
    k = 2 * margin + 1
    # int32 counts stay exact at any size the gateway accepts (float32 stops at 2**24); summed
    # in place, so a 16-megapixel photo holds two int32 copies at a time, not six.
    counts = F.pad(mask.to(torch.int32), (margin + 1, margin, margin + 1, margin))
    counts.cumsum_(0).cumsum_(1)
    box = counts[k:, k:] - counts[:-k, k:]
    box -= counts[k:, :-k]
    box += counts[:-k, :-k]
    return box > 0


def find_tiles(
    whole: WholeRunner, images: list[torch.Tensor], cfg: RegionConfig
) -> tuple[list[list[tuple[int, int]]], list[torch.Tensor]]:
    """The tiles of each (3, H, W) image that the network, run on a reduced copy, may find a
    mark in (probability above ``cfg.candidate_threshold``), and the copy's maps (C, h, w)."""
    if not images:
        return [], []
    found = whole([reduce(image, cfg.detect_side) for image in images])
    tiles = [
        marked_tiles(maps[0] > cfg.candidate_threshold, image.shape[1], image.shape[2], cfg.tile)
        for image, maps in zip(images, found, strict=True)
    ]
    return tiles, found
