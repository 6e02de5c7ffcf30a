"""How the handler runs the network on decoded images: precision, memory layout, whole image or
region by region, and which pixels are allowed to change.

- The convolutions run under autocast (bfloat16 by default): on CPUs with AVX-512 BF16 and on
  GPUs it is 2-3x faster than float32, and its output stays within about 1/255 of float32's.
  The network's inputs stay float32, so an untouched pixel is exactly what came in.
- Images up to ``direct_pixels`` run whole. Larger ones are searched for the mark on a reduced
  copy (handler/regions.py); when the tiles holding it would cost more than the whole image (a
  mark, or false alarms, all over it) and the image is at most ``max_forward_pixels``, it runs
  whole instead; otherwise only the marked tiles are restored, tiles of every request together.
- A pixel whose mask probability is below ``keep_threshold`` comes back exactly as it came in:
  for lossless input (PNG) everything outside the predicted mark is bit-identical.

Pure tensor code, no TorchServe: the handler, the evaluation and the benchmark share it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import torch
from torch.nn import functional as F

from handler.regions import RegionConfig, find_tiles, restore_tiles
from training.model import WatermarkRemover, remove_watermark

PRECISIONS = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


@dataclass(frozen=True)
class EngineConfig:
    precision: str = "bfloat16"  # autocast dtype of the convolutions; float32 turns it off
    channels_last: bool = True  # NHWC: oneDNN's and cuDNN's fast path for convolutions
    keep_threshold: float = 0.1  # below this mask probability a pixel is returned untouched
    # Padded pixels one forward may hold (bounds a worker's memory when a batch brings several
    # images), and the largest image that may run whole rather than tile by tile.
    max_forward_pixels: int = 1_048_576

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {sorted(PRECISIONS)}: {self.precision}")

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> EngineConfig:
        """From model-config.yaml's ``handler`` section: its engine keys, defaults otherwise."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in settings.items() if k in names})


@dataclass(frozen=True)
class Cleaned:
    output: torch.Tensor  # (3, H, W) float in [0, 1]
    tiles: list[tuple[int, int]] | None  # the tiles restored, or None when it ran whole


def forward_groups(sizes: list[tuple[int, int]], budget: int) -> list[list[int]]:
    """Group item indices, largest first, so that each group padded to its largest H and W
    stays within ``budget`` pixels; an item larger than the budget gets a group of its own."""
    order = sorted(range(len(sizes)), key=lambda i: sizes[i][0] * sizes[i][1], reverse=True)
    groups: list[list[int]] = []
    for i in order:
        if groups:
            group = groups[-1]
            height = max(sizes[j][0] for j in [*group, i])
            width = max(sizes[j][1] for j in [*group, i])
            if height * width * (len(group) + 1) <= budget:
                group.append(i)
                continue
        groups.append([i])
    return groups


class Engine:
    def __init__(
        self,
        model: WatermarkRemover,
        device: torch.device,
        cfg: EngineConfig | None = None,
        regions: RegionConfig | None = None,
    ) -> None:
        self.cfg = cfg or EngineConfig()
        self.regions = regions or RegionConfig()
        self.device = device
        memory_format = torch.channels_last if self.cfg.channels_last else torch.contiguous_format
        # Module.to works in place: the engine takes the model over.
        self.model = model.to(device).to(memory_format=memory_format).eval()

    @classmethod
    def from_settings(
        cls, model: WatermarkRemover, device: torch.device, settings: dict[str, Any]
    ) -> Engine:
        """Both configs from model-config.yaml's ``handler`` section."""
        return cls(
            model,
            device,
            EngineConfig.from_settings(settings),
            RegionConfig.from_settings(settings),
        )

    def network(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, H, W) float32 -> (output (B, 3, H, W), mask probability (B, 1, H, W)), both
        float32; pixels below ``keep_threshold`` are the input's own values."""
        if self.cfg.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        dtype = PRECISIONS[self.cfg.precision]
        with torch.autocast(self.device.type, dtype=dtype, enabled=dtype != torch.float32):
            pred = remove_watermark(self.model, batch)
        mask = pred.mask.float()
        output = torch.where(mask >= self.cfg.keep_threshold, pred.output.float(), batch)
        return output, mask

    def whole(self, images: list[torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(output, mask) of each (3, H, W) image run whole; images are grouped into forwards
        padded to each group's largest size, within ``max_forward_pixels``."""
        sizes = [(img.shape[1], img.shape[2]) for img in images]
        results: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        for group in forward_groups(sizes, self.cfg.max_forward_pixels):
            height = max(sizes[k][0] for k in group)
            width = max(sizes[k][1] for k in group)
            # Replicate the edges into the padding: the network sees no artificial border.
            batch = torch.cat([
                F.pad(images[k][None], (0, width - sizes[k][1], 0, height - sizes[k][0]),
                      mode="replicate")
                for k in group
            ])  # fmt: skip
            output, mask = self.network(batch)
            for j, k in enumerate(group):
                h, w = sizes[k]
                results[k] = (output[j, :, :h, :w], mask[j, :, :h, :w])
        return [results[k] for k in range(len(images))]

    def runs_whole_anyway(self, image: torch.Tensor, tiles: list[tuple[int, int]]) -> bool:
        """Whether restoring ``tiles`` would cost at least as much as running the image whole
        (windows overlap by their margins) and the image fits one forward."""
        pixels = self._pixels(image)
        return (
            pixels <= self.cfg.max_forward_pixels and len(tiles) * self.regions.window**2 >= pixels
        )

    @torch.inference_mode()
    def clean(self, images: list[torch.Tensor]) -> list[Cleaned]:
        """Each (3, H, W) float image in [0, 1] with its watermark removed, at its own size."""
        direct = [
            k for k, img in enumerate(images) if self._pixels(img) <= self.regions.direct_pixels
        ]
        searched = [k for k in range(len(images)) if k not in direct]
        tiles = dict(
            zip(
                searched,
                find_tiles(self.whole, [images[k] for k in searched], self.regions),
                strict=True,
            )
        )
        whole = direct + [k for k in searched if self.runs_whole_anyway(images[k], tiles[k])]
        regional = [k for k in searched if k not in whole]
        results: dict[int, Cleaned] = {}
        for k, (output, _) in zip(whole, self.whole([images[k] for k in whole]), strict=True):
            results[k] = Cleaned(output, None)
        restored = restore_tiles(
            self.network, [images[k] for k in regional], [tiles[k] for k in regional], self.regions
        )
        for k, output in zip(regional, restored, strict=True):
            results[k] = Cleaned(output, tiles[k])
        return [results[k] for k in range(len(images))]

    @staticmethod
    def _pixels(image: torch.Tensor) -> int:
        return int(image.shape[1] * image.shape[2])
