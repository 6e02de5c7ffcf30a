"""TorchServe handler: watermarked image bytes in, cleaned image bytes of the same format out.

TorchServe requires this module to define exactly one class, the handler.

The tensor work (precision, whole image or region by region, which pixels may change) is
handler/engine.py's; this module decodes, batches requests and encodes.

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

from handler.engine import Engine
from handler.imaging import (
    MIME_TYPES,
    CleanedImage,
    DecodedImage,
    ImageRejected,
    decode_image,
    encode_image,
)
from training.checkpoint import load_model

logger = logging.getLogger(__name__)

CHECKPOINT_FILE = "clearmark.pt"


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
        self.engine = Engine.from_settings(
            load_model(model_dir / CHECKPOINT_FILE), self.device, self._settings(context)
        )
        self.context = context
        self.initialized = True
        logger.info(
            "clearmark model ready on %s (%d threads)", self.device, torch.get_num_threads()
        )

    @staticmethod
    def _settings(context: Any) -> dict[str, Any]:
        """model-config.yaml's ``handler`` section (empty: every default)."""
        config = getattr(context, "model_yaml_config", None) or {}
        return dict(config.get("handler", {}))

    @classmethod
    def _cpu_threads(cls, context: Any) -> int:
        """model-config.yaml's ``handler.cpu_threads``, or the cores shared between workers."""
        threads = int(cls._settings(context).get("cpu_threads", 0))
        if threads > 0:
            return threads
        config = getattr(context, "model_yaml_config", None) or {}
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

    def inference(
        self, data: list[DecodedImage | ImageRejected], *args: Any, **kwargs: Any
    ) -> list[CleanedImage | ImageRejected]:
        """One entry per request, in order; the decoded images of the batch are cleaned
        together (their forwards and tiles shared)."""
        decoded = {i: item for i, item in enumerate(data) if isinstance(item, DecodedImage)}
        cleaned = self.engine.clean([self._tensor(item.rgb) for item in decoded.values()])
        results = dict(zip(decoded, cleaned, strict=True))
        return [
            item
            if isinstance(item, ImageRejected)
            else CleanedImage(self._pixels(results[i].output), item)
            for i, item in enumerate(data)
        ]

    def _tensor(self, rgb: np.ndarray) -> torch.Tensor:
        """(H, W, 3) uint8 -> (3, H, W) float in [0, 1] on the worker's device."""
        return torch.from_numpy(rgb).to(self.device).permute(2, 0, 1).float().div(255)

    @staticmethod
    def _pixels(image: torch.Tensor) -> np.ndarray:
        """(3, H, W) float in [0, 1] -> (H, W, 3) uint8 on the CPU."""
        return image.clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()

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
