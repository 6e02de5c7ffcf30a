"""How the handler runs the mask-first remover on decoded images: detection with the network
(precision, memory layout, whole image or coarse-to-fine), then handler/pipeline.py's regions,
restoration and composite.

- The convolutions run under autocast (bfloat16 by default): on CPUs with AVX-512 BF16 and on
  GPUs it is 2-3x faster than float32. Its small numeric differences only move the detection
  maps; the pixels that come back are the input's own or the restoration's.
- An image of at most ``max_forward_pixels`` is detected whole, at full resolution. A larger one
  is searched on a reduced copy first, and detected at full resolution only in the tiles that
  may hold a mark (handler/regions.py); tiles of every request of the batch run together.
- Detection decides the mask for the whole photo before anything is restored; restoration and
  compositing change only the pixels inside it, every other pixel is returned bit-identical.

Tensor code for detection, numpy for the rest; no TorchServe: the handler, the evaluation and
the benchmark share it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Self

import numpy as np
import torch
from torch.nn import functional as F

from handler.fold import FoldConfig, folded_copies
from handler.pipeline import (
    Candidates,
    Detection,
    PipelineConfig,
    Restorer,
    candidate_regions,
    decide_regions,
    remove_watermark,
    unsure_regions,
)
from handler.regions import (
    RegionConfig,
    detect_windows,
    find_tiles,
    footprint,
    fuse_coarse,
    window_coverage,
)
from handler.settings import own_settings
from training.model import Detector, WatermarkRemover, fold_batch_norms, predict
from training.restorer import restore

PRECISIONS = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
# EngineConfig.precision "auto": bfloat16 on a GPU and on a CPU that computes it natively (these
# /proc/cpuinfo flags), float32 on any other. Without them oneDNN converts bfloat16 to float32
# and back around every convolution: a 1-megapixel forward took 1.39 s against 0.35 s in
# float32 on an Intel Xeon with AVX-512F and neither flag (make bench's 1 MP p50 1.52 s, target
# 0.6), where an AMD EPYC with AVX-512 BF16 ran bfloat16 2-3x faster than float32.
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
AUTO = "auto"
# How detection combines the image's maps with its mirror image's (EngineConfig.mirror_views).
MIRROR_VIEWS = ("off", "mean", "min", "mean4")
# The flips of "mean4"'s views: as it is, left to right, upside down, both.
FOUR_VIEWS = ((), (-1,), (-2,), (-2, -1))


@dataclass(frozen=True)
class EngineConfig:
    # Autocast dtype of the convolutions (float32 turns it off), or AUTO: by the hardware.
    precision: str = "bfloat16"
    channels_last: bool = True  # NHWC: oneDNN's and cuDNN's fast path for convolutions
    # Padded pixels one forward may hold (bounds a worker's memory when a batch brings several
    # images), and the largest image detected whole rather than coarse-to-fine.
    max_forward_pixels: int = 1_048_576
    # Context, in pixels, a tile of the learned restorer sees beyond its own edges.
    restore_margin: int = 64
    # The learned restorer restores given masks (the API's mask part, the evaluation's true
    # masks); with this, the detected regions too, else Telea fills them.
    restore_detected: bool = False
    # The network also sees the image mirrored left to right, and the watermark probability is
    # the mean ("mean") or the lesser ("min") of the two views' (alpha and colour: the mean):
    # a mark looks like a mark both ways round, while the network's false detections on a
    # photo's own shapes are less consistent. Detection takes twice as long; "off": one view;
    # "mean4": the mean of four views (FOUR_VIEWS: upside down too), four times as long.
    mirror_views: str = "off"

    def __post_init__(self) -> None:
        if self.precision not in {*PRECISIONS, AUTO}:
            raise ValueError(
                f"precision must be one of {sorted({*PRECISIONS, AUTO})}: {self.precision}"
            )
        if self.mirror_views not in MIRROR_VIEWS:
            raise ValueError(f"mirror_views must be one of {MIRROR_VIEWS}: {self.mirror_views}")

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> EngineConfig:
        """From model-config.yaml's ``handler`` section: its engine keys, defaults otherwise."""
        return cls(**own_settings(cls, settings))


@dataclass(frozen=True)
class Cleaned:
    output: np.ndarray  # (H, W, 3) uint8
    mask: np.ndarray  # (H, W) bool: the pixels that were allowed to change
    tiles: list[tuple[int, int]] | None  # the tiles detected at full size, None when whole
    # (H, W) bool, when asked for: what the network saw that the mask leaves (unsure_regions)
    unsure: np.ndarray | None = None


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The CPU's feature flags (the first ``flags`` line of /proc/cpuinfo); none where the
    file is missing or lists none (not Linux, not x86)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def resolved_precision(precision: str, device: torch.device, flags: frozenset[str]) -> str:
    """``precision``, with AUTO made bfloat16 on a GPU or on a CPU with ``flags`` among
    NATIVE_BF16_FLAGS, float32 elsewhere."""
    if precision != AUTO:
        return precision
    if device.type == "cuda" or (device.type == "cpu" and flags & NATIVE_BF16_FLAGS):
        return "bfloat16"
    return "float32"


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


def combine_views(maps: torch.Tensor, mirrored: torch.Tensor, how: str) -> torch.Tensor:
    """Detection maps (B, 5, H, W) of an image and of its mirror image (flipped back): the
    probability by ``how`` ("mean" or "min"), alpha and colour by their mean."""
    both = (maps + mirrored) / 2
    if how == "min":
        both[:, :1] = torch.minimum(maps[:, :1], mirrored[:, :1])
    return both


def to_pixels(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) float in [0, 1] -> (H, W, 3) uint8 on the CPU."""
    return image.clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()


def to_detection(
    maps: torch.Tensor, examined: int | None = None, looked_twice: bool = False
) -> Detection:
    """Maps (5, H, W): probability, alpha, colour -> numpy float32 on the CPU; ``examined``:
    the pixels the network saw at full resolution (None: all); ``looked_twice``: the windows'
    probability counts only within the reduced copy's footprint."""
    maps = maps.float().cpu()
    return Detection(
        probability=maps[0].numpy(),
        alpha=maps[1].numpy(),
        colour=maps[2:5].permute(1, 2, 0).contiguous().numpy(),
        examined=examined,
        looked_twice=looked_twice,
    )


class Engine:
    def __init__(
        self,
        model: Detector,
        device: torch.device,
        cfg: EngineConfig | None = None,
        regions: RegionConfig | None = None,
        pipeline: PipelineConfig | None = None,
        restorer: WatermarkRemover | None = None,
        fold: FoldConfig | None = None,
    ) -> None:
        cfg = cfg or EngineConfig()
        flags = cpu_flags() if cfg.precision == AUTO else frozenset()
        self.cfg = replace(cfg, precision=resolved_precision(cfg.precision, device, flags))
        self.fold = fold or FoldConfig()
        self.regions = regions or RegionConfig()
        self.pipeline = pipeline or PipelineConfig()
        # Regions decided on the reduced copy: the same gate, with a surer mean, and without the
        # busy-photo rule (coarse_region_confidence was chosen without it), the tiled-mark rule
        # (a tiled mark's copies are a few pixels there; the windows at full size find them) or
        # the near rule (a reduced pixel's reach is many full-size ones: with it a full-size
        # photo of the gate search changed 24,447 pixels away from its mark).
        self.coarse_gate = replace(
            self.pipeline,
            region_confidence=self.regions.coarse_region_confidence,
            busy_regions=0,
            repeat_count=0,
            near_pixels=0,
        )
        self.device = device
        memory_format = torch.channels_last if self.cfg.channels_last else torch.contiguous_format
        # Inference only: the batch norms folded into their convolutions (the caller's model is
        # left as it is).
        folded = fold_batch_norms(model)
        self.model = folded.to(device).to(memory_format=memory_format).eval()
        # training/restorer.py's network, for given masks; without one, and for detected masks,
        # restoration is the classical floor.
        self.restorer = None if restorer is None else restorer.to(device).eval()

    @classmethod
    def from_settings(
        cls,
        model: Detector,
        device: torch.device,
        settings: dict[str, Any],
        restorer: WatermarkRemover | None = None,
    ) -> Self:
        """Every config from model-config.yaml's ``handler`` section."""
        return cls(
            model,
            device,
            EngineConfig.from_settings(settings),
            RegionConfig.from_settings(settings),
            PipelineConfig.from_settings(settings),
            restorer,
            FoldConfig.from_settings(settings),
        )

    @torch.inference_mode()
    def learned(self, photo: np.ndarray, fill: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """handler/pipeline.py's Restorer by the restorer network: a window larger than
        ``max_forward_pixels`` runs in tiles, each seen with ``restore_margin`` pixels of
        context beyond its edges (more than the network's field of view, so that tiles agree
        where they meet) and only its own pixels kept."""
        assert self.restorer is not None
        height, width = mask.shape
        out = np.empty((height, width, 3), np.float32)
        side = max(1, int(self.cfg.max_forward_pixels**0.5) - 2 * self.cfg.restore_margin)
        margin = self.cfg.restore_margin
        for top in range(0, height, side):
            for left in range(0, width, side):
                y0, x0 = max(0, top - margin), max(0, left - margin)
                y1, x1 = min(height, top + side + margin), min(width, left + side + margin)
                view = (slice(y0, y1), slice(x0, x1))
                restored, _ = restore(
                    self.restorer,
                    self.tensor(photo[view])[None],
                    self.tensor(fill[view])[None],
                    torch.from_numpy(mask[view]).to(self.device, torch.float32)[None, None],
                )
                keep = restored[0].permute(1, 2, 0).float().cpu().numpy()
                bottom, right = min(height, top + side), min(width, left + side)
                out[top:bottom, left:right] = keep[top - y0 : bottom - y0, left - x0 : right - x0]
        return out

    def network(self, batch: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) float32 -> detection maps (B, 5, H, W) float32: the watermark
        probability, alpha and colour."""
        if self.cfg.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        dtype = PRECISIONS[self.cfg.precision]

        def view(dims: tuple[int, ...]) -> torch.Tensor:
            """The maps of the batch flipped along ``dims``, flipped back."""
            pred = predict(self.model, batch.flip(dims) if dims else batch)
            maps = torch.cat([pred.mask, pred.alpha, pred.colour], dim=1).float()
            return maps.flip(dims) if dims else maps

        # One view at a time: a forward never holds more than max_forward_pixels.
        with torch.autocast(self.device.type, dtype=dtype, enabled=dtype != torch.float32):
            maps = view(FOUR_VIEWS[0])
            if self.cfg.mirror_views == "off":
                return maps
            if self.cfg.mirror_views == "mean4":
                for dims in FOUR_VIEWS[1:]:
                    maps += view(dims)
                return maps / len(FOUR_VIEWS)
            mirrored = view(FOUR_VIEWS[1])
        return combine_views(maps, mirrored, self.cfg.mirror_views)

    def whole(self, images: list[torch.Tensor]) -> list[torch.Tensor]:
        """Detection maps (5, H, W) of each (3, H, W) image run whole; images are grouped into
        forwards padded to each group's largest size, within ``max_forward_pixels``."""
        sizes = [(img.shape[1], img.shape[2]) for img in images]
        results: dict[int, torch.Tensor] = {}
        for group in forward_groups(sizes, self.cfg.max_forward_pixels):
            height = max(sizes[k][0] for k in group)
            width = max(sizes[k][1] for k in group)
            # Replicate the edges into the padding: the network sees no artificial border.
            batch = torch.cat([
                F.pad(images[k][None], (0, width - sizes[k][1], 0, height - sizes[k][0]),
                      mode="replicate")
                for k in group
            ])  # fmt: skip
            maps = self.network(batch)
            for j, k in enumerate(group):
                h, w = sizes[k]
                results[k] = maps[j, :, :h, :w]
        return [results[k] for k in range(len(images))]

    @torch.inference_mode()
    def detect(
        self, images: list[torch.Tensor]
    ) -> list[tuple[Detection, list[tuple[int, int]] | None]]:
        """Each (3, H, W) float image's detection at full resolution, and the tiles detected at
        full size (None when it ran whole)."""
        whole = [k for k, img in enumerate(images) if _pixels(img) <= self.cfg.max_forward_pixels]
        searched = [k for k in range(len(images)) if k not in whole]
        found_tiles, coarse_maps = find_tiles(
            self.whole, [images[k] for k in searched], self.regions
        )
        tiles = dict(zip(searched, found_tiles, strict=True))
        coarse = dict(zip(searched, coarse_maps, strict=True))
        results: dict[int, tuple[Detection, list[tuple[int, int]] | None]] = {}
        for k, maps in zip(whole, self.whole([images[k] for k in whole]), strict=True):
            results[k] = (to_detection(maps), None)
        with_tiles = [k for k in searched if tiles[k]]
        found = detect_windows(
            self.network, [images[k] for k in with_tiles], [tiles[k] for k in with_tiles],
            self.regions,
        )  # fmt: skip
        fine = dict(zip(with_tiles, found, strict=True))
        for k in searched:
            _, height, width = images[k].shape
            maps = fine.get(k, images[k].new_zeros(5, height, width))
            margin = self.regions.footprint_margin
            looked_twice = margin is not None and k in fine
            if margin is not None and k in fine:
                # In place: a copy of the five full-size maps is 335 MB at 16 megapixels.
                maps[0] *= footprint(
                    coarse[k][0], (height, width), self.regions.candidate_threshold, margin
                ).to(maps.device)
            if self.regions.coarse_regions:
                kept = decide_regions(coarse[k][0].float().cpu().numpy(), self.coarse_gate)
                if kept.any():
                    covered = window_coverage(height, width, tiles[k], self.regions)
                    maps = fuse_coarse(maps, covered, coarse[k], torch.from_numpy(kept))
            examined = None
            if self.pipeline.busy_regions > 0:
                # The busy-photo rule counts unsure regions per pixel the windows saw; a photo
                # with no window has only the reduced copy's kept regions, none unsure.
                covered = window_coverage(height, width, tiles[k], self.regions)
                examined = int(covered.sum()) or height * width
            results[k] = (to_detection(maps, examined, looked_twice), tiles[k])
        return [results[k] for k in range(len(images))]

    def clean(
        self,
        images: list[np.ndarray],
        masks: list[np.ndarray | None] | None = None,
        restore: list[bool] | None = None,
        unsure: list[bool] | None = None,
    ) -> list[Cleaned]:
        """Each (H, W, 3) uint8 image with its watermark removed, at its own size. A given
        (H, W) bool mask replaces the decided regions of its image; where ``restore`` is False
        only the mask is decided and the image comes back as it was; where ``unsure`` is True
        the regions the network saw and the mask leaves come back too."""
        masks = masks or [None] * len(images)
        restore = restore or [True] * len(images)
        unsure = unsure or [False] * len(images)
        detections = self.detect([self.tensor(image) for image in images])
        cleaned = []
        for image, given, wanted, suggest, (detection, tiles) in zip(
            images, masks, restore, unsure, detections, strict=True
        ):
            # The map labelled once for all that uses its regions (0.1 s of a 12-megapixel one).
            regions = None
            if given is None and self.fold.fold_count > 0:
                regions = candidate_regions(detection.probability, self.pipeline)
                detection = self.with_copies(image, detection, regions)
            elif suggest and not wanted:
                regions = candidate_regions(detection.probability, self.pipeline)
            if wanted:
                learned: Restorer | None = None
                if self.restorer is not None and (given is not None or self.cfg.restore_detected):
                    learned = self.learned
                output, mask = remove_watermark(
                    image, detection, self.pipeline, given, learned, regions
                )
            else:
                output = image
                mask = decide_regions(
                    detection.probability, self.pipeline, detection.examined, regions,
                    detection.copies, detection.looked_twice,
                )  # fmt: skip
            left = None
            if suggest:
                left = unsure_regions(detection.probability, mask, self.pipeline, regions)
            cleaned.append(Cleaned(output, mask, tiles, left))
        return cleaned

    def with_copies(
        self, image: np.ndarray, detection: Detection, regions: Candidates
    ) -> Detection:
        """``detection`` with the copies of tiled marks seen on the photo folded over their
        lattice (handler/fold.py); ``regions``: its map's candidate_regions."""
        copies = folded_copies(
            image, detection.probability, regions, self.probe, self.fold,
            self.pipeline.mask_threshold,
        )  # fmt: skip
        return replace(detection, copies=copies)

    @torch.inference_mode()
    def probe(self, rgb: np.ndarray) -> np.ndarray:
        """The probability map (H, W) of an (H, W, 3) uint8 image run whole."""
        [maps] = self.whole([self.tensor(rgb)])
        return to_detection(maps).probability

    def tensor(self, rgb: np.ndarray) -> torch.Tensor:
        """(H, W, 3) uint8 -> (3, H, W) float in [0, 1] on the engine's device."""
        # torch.from_numpy warns on read-only arrays (views of decoded or cached photos).
        pixels = np.require(rgb, requirements=["C_CONTIGUOUS", "WRITEABLE"])
        return torch.from_numpy(pixels).to(self.device).permute(2, 0, 1).div(255)


def _pixels(image: torch.Tensor) -> int:
    return int(image.shape[1] * image.shape[2])
