"""TorchServe handler: watermarked image bytes in, cleaned image bytes of the same format out.

TorchServe requires this module to define exactly one class, the handler.

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
from ts.torch_handler.base_handler import BaseHandler

from handler.imaging import (
    MIME_TYPES,
    CleanedImage,
    DecodedImage,
    ImageRejected,
    decode_image,
    encode_image,
)
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
        self.context = context
        self.initialized = True
        logger.info(
            "clearmark model ready on %s (%d threads)", self.device, torch.get_num_threads()
        )

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
        """One entry per request, in order; the decoded ones run in as few forwards as fit."""
        decoded = {i: item for i, item in enumerate(data) if isinstance(item, DecodedImage)}
        positions = list(decoded)
        sizes = [(decoded[i].rgb.shape[0], decoded[i].rgb.shape[1]) for i in positions]
        cleaned: dict[int, CleanedImage] = {}
        for group in forward_groups(sizes, MAX_PIXELS_PER_FORWARD):
            members = [positions[g] for g in group]
            outputs = self._clean([decoded[i].rgb for i in members])
            for i, rgb in zip(members, outputs, strict=True):
                cleaned[i] = CleanedImage(rgb, decoded[i])
        return [
            item if isinstance(item, ImageRejected) else cleaned[i] for i, item in enumerate(data)
        ]

    def _clean(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """Pad every image to the group's largest size, run once, crop each back."""
        height = max(img.shape[0] for img in images)
        width = max(img.shape[1] for img in images)
        batch = torch.zeros(len(images), 3, height, width, device=self.device)
        for k, img in enumerate(images):
            tensor = torch.from_numpy(img).to(self.device).permute(2, 0, 1).float().div(255)
            # Replicate the edges into the padding: the network sees no artificial border.
            batch[k] = torch.nn.functional.pad(
                tensor[None], (0, width - img.shape[1], 0, height - img.shape[0]), mode="replicate"
            )[0]
        output = remove_watermark(self.model, batch).output  # (B, 3, H, W) float in [0, 1]
        pixels = output.clamp(0, 1).mul(255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
        return [pixels[k, : img.shape[0], : img.shape[1]] for k, img in enumerate(images)]

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
