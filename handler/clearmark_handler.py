"""TorchServe handler: watermarked image bytes in, cleaned image bytes of the same format out,
or the predicted watermark mask as a PNG.

TorchServe requires this module to define exactly one class, the handler.

A request is either a raw image body (clean it), or multipart/form-data with the parts
``image``, optionally ``mask`` (a person's mask: white = watermark; it replaces detection) and
``task`` (``remove``, the default; ``detect``: answer with the mask instead; ``detect_unsure``:
the mask, and at a grey of their own the regions the network saw but was not sure enough of
to remove, for a person to judge).

The work (detection, regions, restoration, which pixels may change) is handler/engine.py's;
this module decodes, batches requests and encodes.

Each request of a dynamic batch is handled on its own terms: a request that cannot be decoded
gets its own 4xx status and a JSON message, and the rest of the batch is still served.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import torch
from ts.torch_handler.base_handler import BaseHandler

from handler.engine import Engine
from handler.imaging import MIME_TYPES, CleanedImage, ImageRejected, encode_image, encode_mask
from handler.jobs import DETECT_TASKS, Answer, Job, read_job
from training.checkpoint import load_detector, load_model

logger = logging.getLogger(__name__)

CHECKPOINT_FILE = "clearmark.pt"
# The learned restoration given a mask (training/restorer.py), packed beside the detector; an
# archive without it restores by the classical floor (handler/pipeline.py).
RESTORER_FILE = "restorer.pt"


def worker_device(gpu_id: int | str | None, cuda_available: bool) -> torch.device:
    """The GPU TorchServe gave this worker (``gpu_id`` of its context: TorchServe spreads a
    model's workers over the host's GPUs), or the CPU when it gave none or torch has no CUDA."""
    if cuda_available and gpu_id is not None:
        return torch.device("cuda", int(gpu_id))
    return torch.device("cpu")


class ClearmarkHandler(BaseHandler):  # type: ignore[misc]
    def initialize(self, context: Any) -> None:
        """Rebuild the network from the checkpoint's own ``model_args`` and pick the device."""
        properties = context.system_properties
        model_dir = Path(properties["model_dir"])
        self.device = worker_device(properties.get("gpu_id"), torch.cuda.is_available())
        if self.device.type == "cpu":
            torch.set_num_threads(self._cpu_threads(context))
        restorer = model_dir / RESTORER_FILE
        self.engine = Engine.from_settings(
            load_detector(model_dir / CHECKPOINT_FILE),
            self.device,
            self._settings(context),
            load_model(restorer) if restorer.is_file() else None,
        )
        self.context = context
        self.initialized = True
        logger.info(
            "clearmark model ready on %s (%d threads, restoration: %s)",
            self.device,
            torch.get_num_threads(),
            "learned for given masks, classical for detected ones"
            if self.engine.restorer is not None
            else "classical",
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

    def preprocess(self, data: list[dict[str, Any]]) -> list[Job | ImageRejected]:
        """One entry per request: the decoded job (uint8 RGB HWC image, bool mask) or why it
        was rejected."""
        items: list[Job | ImageRejected] = []
        for request in data:
            try:
                items.append(read_job(request))
            except ImageRejected as rejected:
                items.append(rejected)
        return items

    def inference(
        self, data: list[Job | ImageRejected], *args: Any, **kwargs: Any
    ) -> list[Answer | ImageRejected]:
        """One entry per request, in order; the batch's images are detected together (their
        forwards and tiles shared), then each is restored on its own mask."""
        jobs = {i: item for i, item in enumerate(data) if isinstance(item, Job)}
        cleaned = self.engine.clean(
            [job.image.rgb for job in jobs.values()],
            [job.mask for job in jobs.values()],
            [job.task == "remove" for job in jobs.values()],
            [job.task == "detect_unsure" for job in jobs.values()],
        )
        results = dict(zip(jobs, cleaned, strict=True))
        return [
            item
            if isinstance(item, ImageRejected)
            else Answer(
                item,
                CleanedImage(results[i].output, item.image),
                results[i].mask,
                results[i].unsure,
            )
            for i, item in enumerate(data)
        ]

    def postprocess(self, data: list[Answer | ImageRejected]) -> list[bytes]:
        """Per request: the cleaned image in its input format, the mask as a PNG, or a JSON
        error and its status."""
        responses: list[bytes] = []
        for idx, item in enumerate(data):
            if isinstance(item, ImageRejected):
                self.context.set_response_status(item.status, item.message, idx)
                self.context.set_response_content_type(idx, "application/json")
                responses.append(json.dumps({"error": item.message}).encode())
            elif item.job.task in DETECT_TASKS:
                responses.append(encode_mask(item.mask, item.unsure))
                self.context.set_response_content_type(idx, MIME_TYPES["PNG"])
            else:
                responses.append(encode_image(item.cleaned))
                self.context.set_response_content_type(idx, MIME_TYPES[item.job.image.format])
        return responses
