"""The benchmark's inputs: watermarked JPEG photos of given sizes, built once, deterministically.

The source is a bundled 600x400 photo (skimage's coffee) upscaled to each size: 12 MP is 7x its
side, so the pixels are smoother than a camera's; the JPEGs are smaller and decode a little
faster than real 12 MP photos would, and the network does the same work either way.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from training.fonts import matplotlib_fonts
from training.photos import library_photos
from training.synth import MarkAssets, add_watermark

SOURCE_PHOTO = "skimage-coffee"
JPEG_QUALITY = 90


@dataclass(frozen=True)
class BenchImage:
    name: str
    width: int
    height: int
    style: str  # training.synth watermark style: "corner" (a small mark) or "grid" (all over)
    body: bytes  # JPEG

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1e6

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name,
            "width": self.width,
            "height": self.height,
            "megapixels": round(self.megapixels, 3),
            "mark": self.style,
            "jpeg_bytes": len(self.body),
        }


def three_by_two(megapixels: float) -> tuple[int, int]:
    """(width, height) of a 3:2 landscape photo of about ``megapixels`` million pixels."""
    width = round(math.sqrt(megapixels * 1e6 * 3 / 2))
    return width, round(width * 2 / 3)


def watermarked_jpeg(width: int, height: int, style: str = "corner", seed: int = 0) -> bytes:
    """The source photo resized to (width, height) with a ``style`` watermark, as a JPEG."""
    photo = Image.fromarray(library_photos()[SOURCE_PHOTO]()).resize((width, height))
    assets = MarkAssets(tuple(matplotlib_fonts()))
    marked = add_watermark(
        np.asarray(photo), np.random.default_rng(seed), assets, style=style, jpeg_probability=0
    )
    buffer = io.BytesIO()
    Image.fromarray(marked.watermarked).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def bench_image(name: str, width: int, height: int, style: str, seed: int = 0) -> BenchImage:
    return BenchImage(name, width, height, style, watermarked_jpeg(width, height, style, seed))
