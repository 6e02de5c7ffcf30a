"""Region-aware inference: find the watermark on a reduced copy, restore only the tiles holding it.

A photo of many megapixels usually carries a mark on a small part of it. The network first
looks at a copy reduced to ``detect_side`` pixels on its long side; the full-resolution tiles
(``tile`` x ``tile``) whose footprint it marks are then restored, each seen with ``margin``
pixels of context on every side so that tiles agree where they meet, and every other pixel
comes back exactly as it came in. A photo covered by a grid gets every tile. Tiles are fixed in
size, so tiles from all the requests of a TorchServe batch run together in one forward.

Pure functions on tensors; handler/engine.py decides what runs where.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import torch
from torch.nn import functional as F

# A network call: (B, 3, H, W) float in [0, 1] -> (output (B, 3, H, W), mask (B, 1, H, W)).
Network = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
# Images of any sizes run whole: [(3, H, W)] -> [(output (3, H, W), mask (1, H, W))].
WholeRunner = Callable[[list[torch.Tensor]], list[tuple[torch.Tensor, torch.Tensor]]]


@dataclass(frozen=True)
class RegionConfig:
    tile: int = 256  # restored square, in full-resolution pixels
    margin: int = 32  # context around a tile; the network sees (tile + 2 * margin) squares
    detect_side: int = 512  # long side of the reduced copy the mark is found on
    direct_pixels: int = 262_144  # images up to this many pixels run whole, in one pass
    tile_batch: int = 8  # windows per forward
    mask_threshold: float = 0.5  # a reduced-copy pixel above this marks its tiles

    @property
    def window(self) -> int:
        return self.tile + 2 * self.margin

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> RegionConfig:
        """From model-config.yaml's ``handler`` section: its region keys, defaults otherwise."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in settings.items() if k in names})


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


def restore_tiles(
    network: Network,
    images: list[torch.Tensor],
    tiles: list[list[tuple[int, int]]],
    cfg: RegionConfig,
) -> list[torch.Tensor]:
    """Every image (3, H, W) with its listed tiles restored; the rest of each is left as is.

    Windows of all images go through the network together, ``cfg.tile_batch`` at a time.
    """
    outputs = [image.clone() for image in images]
    jobs = [(k, top, left) for k, image_tiles in enumerate(tiles) for top, left in image_tiles]
    for start in range(0, len(jobs), cfg.tile_batch):
        chunk = jobs[start : start + cfg.tile_batch]
        batch = torch.stack([window(images[k], top, left, cfg) for k, top, left in chunk])
        restored, _ = network(batch)
        m = cfg.margin
        for (k, top, left), result in zip(chunk, restored, strict=True):
            _, height, width = images[k].shape
            h, w = min(cfg.tile, height - top), min(cfg.tile, width - left)
            outputs[k][:, top : top + h, left : left + w] = result[:, m : m + h, m : m + w]
    return outputs


def find_tiles(
    whole: WholeRunner, images: list[torch.Tensor], cfg: RegionConfig
) -> list[list[tuple[int, int]]]:
    """The tiles of each (3, H, W) image that the network, run on a reduced copy, finds a mark
    in (above ``cfg.mask_threshold``)."""
    if not images:
        return []
    found = whole([reduce(image, cfg.detect_side) for image in images])
    return [
        marked_tiles(mask[0] > cfg.mask_threshold, image.shape[1], image.shape[2], cfg.tile)
        for image, (_, mask) in zip(images, found, strict=True)
    ]
