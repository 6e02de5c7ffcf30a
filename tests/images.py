"""Real photographs and encoded image bytes for tests, made in memory."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from training.photos import library_photos


def photo(height: int, width: int, name: str = "skimage-coffee") -> np.ndarray:
    """A real photo cropped to (height, width, 3) uint8 (tiled if the photo is smaller)."""
    rgb = library_photos()[name]()
    reps = (-(-height // rgb.shape[0]), -(-width // rgb.shape[1]), 1)
    return np.ascontiguousarray(np.tile(rgb, reps)[:height, :width])


def encode(rgb: np.ndarray, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    mode = "RGBA" if rgb.ndim == 3 and rgb.shape[2] == 4 else "RGB"
    Image.fromarray(rgb, mode).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def decode(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img
