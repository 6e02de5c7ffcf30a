"""What one TorchServe request asks for: the image, a person's mask, the task; and its answer.

Kept out of clearmark_handler.py, which TorchServe requires to define exactly one class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from handler.imaging import CleanedImage, DecodedImage, ImageRejected, decode_image, decode_mask

# remove: the cleaned image; detect: the mask as a PNG; detect_unsure: the mask with the regions
# the network saw and the gate left at a grey level of their own (imaging.encode_mask).
TASKS = ("remove", "detect", "detect_unsure")
DETECT_TASKS = ("detect", "detect_unsure")


@dataclass(frozen=True)
class Job:
    """One decoded request: the image, a person's mask if sent, and what to answer with."""

    image: DecodedImage
    mask: np.ndarray | None  # (H, W) bool
    task: str  # one of TASKS


@dataclass(frozen=True)
class Answer:
    job: Job
    cleaned: CleanedImage
    mask: np.ndarray  # (H, W) bool: the pixels allowed to change
    unsure: np.ndarray | None = None  # (H, W) bool, for detect_unsure: what the mask leaves


def _text(value: Any) -> str:
    """A multipart text part as TorchServe hands it over: bytes, bytearray or str."""
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace").strip()
    return str(value).strip()


def read_job(request: dict[str, Any]) -> Job:
    """A TorchServe request -> Job; ImageRejected says why not."""
    body = request.get("image")
    if body is None:
        body = request.get("body") if request.get("body") is not None else request.get("data")
    if not isinstance(body, bytes | bytearray):
        # TorchServe decodes JSON and text bodies before the handler sees them.
        raise ImageRejected(415, "send the image as raw bytes (image/* body or an image part)")
    task = _text(request.get("task", "remove")) or "remove"
    if task not in TASKS:
        raise ImageRejected(400, f"unknown task {task[:40]!r}: use one of {', '.join(TASKS)}")
    image = decode_image(bytes(body))
    mask = request.get("mask")
    if mask is not None and not isinstance(mask, bytes | bytearray):
        raise ImageRejected(415, "send the mask as image bytes (PNG, JPEG or WebP)")
    height, width = image.rgb.shape[:2]
    given = None if mask is None else decode_mask(bytes(mask), height, width)
    return Job(image, given, task)
