"""TorchServe handler: watermarked image bytes in, cleaned image bytes of the same format out.

TorchServe requires this module to define exactly one class, the handler.

Small images run whole, in one forward; larger ones are cleaned region by region
(handler/regions.py): the mark is found on a reduced copy and only the tiles that hold it are
restored at full resolution.

Each request of a dynamic batch is handled on its own terms: a request that cannot be decoded
gets its own 4xx status and a JSON message, and the rest of the batch is still served.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F
from ts.torch_handler.base_handler import BaseHandler

from handler.imaging import (
    MIME_TYPES,
    CleanedImage,
    DecodedImage,
    ImageRejected,
    decode_image,
    encode_image,
)
from handler.regions import RegionConfig, clean_regionally
from training.checkpoint import load_model
from training.model import remove_watermark

logger = logging.getLogger(__name__)

CHECKPOINT_FILE = "clearmark.pt"
# Padded pixels one forward pass may hold: bounds a worker's memory when a batch
# brings several large photos (each 12-channel float32 feature map is 48 bytes a pixel).
MAX_PIXELS_PER_FORWARD = 16_777_216


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


class ClearmarkHandler(BaseHandler):  # type: ignore[misc]
    def initialize(self, context: Any) -> None:
        """Rebuild the network from the checkpoint's own ``model_args`` and pick the device."""
        properties = context.system_properties
        model_dir = Path(properties["model_dir"])
        gpu_id = properties.get("gpu_id")
        if torch.cuda.is_available() and gpu_id is not None:
            self.device = torch.device(f"cuda:{gpu_id}")
        else:
            self.device = torch.device("cpu")
            torch.set_num_threads(self._cpu_threads(context))
        self.model = load_model(model_dir / CHECKPOINT_FILE).to(self.device)
        self.regions = self._region_config(context)
        self.context = context
        self.initialized = True
        logger.info(
            "clearmark model ready on %s (%d threads)", self.device, torch.get_num_threads()
        )

    @staticmethod
    def _region_config(context: Any) -> RegionConfig:
        """The region settings among model-config.yaml's ``handler`` keys (defaults otherwise)."""
        config = getattr(context, "model_yaml_config", None) or {}
        return RegionConfig.from_settings(config.get("handler", {}))

    @staticmethod
    def _cpu_threads(context: Any) -> int:
        """model-config.yaml's ``handler.cpu_threads``, or the cores shared between workers."""
        config = getattr(context, "model_yaml_config", None) or {}
        threads = int(config.get("handler", {}).get("cpu_threads", 0))
        if threads > 0:
            return threads
        workers = int(config.get("maxWorkers", 1)) or 1
        return max(1, (os.cpu_count() or 1) // workers)

    def preprocess(self, data: list[dict[str, Any]]) -> list[DecodedImage | ImageRejected]:
        """One entry per request: the decoded image (uint8 RGB HWC) or why it was rejected."""
        items: list[DecodedImage | ImageRejected] = []
        for request in data:
            body = request.get("body") if request.get("body") is not None else request.get("data")
            if not isinstance(body, bytes | bytearray):
                # TorchServe decodes JSON and text bodies before the handler sees them.
                items.append(ImageRejected(415, "send the image as raw bytes (image/* body)"))
                continue
            try:
                items.append(decode_image(bytes(body)))
            except ImageRejected as rejected:
                items.append(rejected)
        return items

    @torch.inference_mode()
    def inference(
        self, data: list[DecodedImage | ImageRejected], *args: Any, **kwargs: Any
    ) -> list[CleanedImage | ImageRejected]:
        """One entry per request, in order. Images up to ``direct_pixels`` run whole, in as few
        forwards as fit; larger ones region by region, their tiles batched together."""
        decoded = {i: item for i, item in enumerate(data) if isinstance(item, DecodedImage)}
        images = {i: self._tensor(item.rgb) for i, item in decoded.items()}
        small = [
            i for i, t in images.items() if t.shape[1] * t.shape[2] <= self.regions.direct_pixels
        ]
        large = [i for i in images if i not in small]
        results = dict(
            zip(small, (out for out, _ in self._whole([images[i] for i in small])), strict=True)
        )
        if large:
            restored, _ = clean_regionally(
                self._whole, self._network, [images[i] for i in large], self.regions
            )
            results.update(zip(large, restored, strict=True))
        return [
            item
            if isinstance(item, ImageRejected)
            else CleanedImage(self._pixels(results[i]), item)
            for i, item in enumerate(data)
        ]

    def _tensor(self, rgb: np.ndarray) -> torch.Tensor:
        """(H, W, 3) uint8 -> (3, H, W) float in [0, 1] on the worker's device."""
        return torch.from_numpy(rgb).to(self.device).permute(2, 0, 1).float().div(255)

    @staticmethod
    def _pixels(image: torch.Tensor) -> np.ndarray:
        """(3, H, W) float in [0, 1] -> (H, W, 3) uint8 on the CPU."""
        return image.clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()

    def _network(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, H, W) -> (output (B, 3, H, W), mask probability (B, 1, H, W))."""
        pred = remove_watermark(self.model, batch)
        return pred.output, pred.mask

    def _whole(self, images: list[torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(output, mask) of each (3, H, W) image run whole; images are grouped into forwards
        padded to each group's largest size, within MAX_PIXELS_PER_FORWARD."""
        sizes = [(img.shape[1], img.shape[2]) for img in images]
        results: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        for group in forward_groups(sizes, MAX_PIXELS_PER_FORWARD):
            height = max(sizes[k][0] for k in group)
            width = max(sizes[k][1] for k in group)
            # Replicate the edges into the padding: the network sees no artificial border.
            batch = torch.cat([
                F.pad(images[k][None], (0, width - sizes[k][1], 0, height - sizes[k][0]),
                      mode="replicate")
                for k in group
            ])  # fmt: skip
            output, mask = self._network(batch)
            for j, k in enumerate(group):
                h, w = sizes[k]
                results[k] = (output[j, :, :h, :w], mask[j, :, :h, :w])
        return [results[k] for k in range(len(images))]

    def postprocess(self, data: list[CleanedImage | ImageRejected]) -> list[bytes]:
        """Per request: the image encoded in its input format, or a JSON error and its status."""
        responses: list[bytes] = []
        for idx, item in enumerate(data):
            if isinstance(item, ImageRejected):
                self.context.set_response_status(item.status, item.message, idx)
                self.context.set_response_content_type(idx, "application/json")
                responses.append(json.dumps({"error": item.message}).encode())
            else:
                responses.append(encode_image(item))
                self.context.set_response_content_type(idx, MIME_TYPES[item.source.format])
        return responses
