"""Synthetic visible watermarks: pure, seeded functions from a clean photo to a training example.

Every function takes a ``numpy.random.Generator`` and draws everything from it, so the same
photo and the same seed always give the same bytes. Images are uint8 RGB HWC arrays.

A watermark is a coverage map (how much of each pixel the mark's shape covers, 0..1), an
opacity and a colour; it is blended over the photo as

    watermarked = clean * (1 - alpha) + colour * alpha,    alpha = coverage * opacity.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

# A pixel belongs to the watermark when the mark changed it by more than this
# (uint8 units): the definition the evaluation uses for the true mask.
MASK_THRESHOLD = 15
# Marks per image: more than one gives training more marked pixels per step.
MAX_MARKS = 3

TEXTS = (
    "© {name}",
    "© {year} {name}",
    "{name}",
    "SAMPLE",
    "PREVIEW",
    "www.{domain}.com",
    "{domain}.net",
    "@{domain}",
    "{name} photography",
    "PROOF",
    "COPYRIGHT",
    "{year}",
)
NAMES = ("clearmark", "J. Smith", "Studio Lumen", "A. Novak", "Maria K.", "PhotoStock", "Kodama")
DOMAINS = ("stockphotos", "imagebank", "lumenstudio", "photoarchive", "picsdaily")


@dataclass(frozen=True)
class WatermarkedExample:
    watermarked: np.ndarray  # (H, W, 3) uint8
    clean: np.ndarray  # (H, W, 3) uint8
    mask: np.ndarray  # (H, W) bool: |watermarked - clean| > MASK_THRESHOLD in any channel
    alpha: np.ndarray  # (H, W) float32 in [0, 1]: the blend weight of the mark
    colour: np.ndarray  # (3,) float32 in [0, 1]: the mark's colour


def _random_text(rng: np.random.Generator) -> str:
    template = TEXTS[rng.integers(len(TEXTS))]
    return template.format(
        name=NAMES[rng.integers(len(NAMES))],
        domain=DOMAINS[rng.integers(len(DOMAINS))],
        year=int(rng.integers(1990, 2027)),
    )


def _text_coverage(rng: np.random.Generator, fonts: Sequence[Path], size: int) -> Image.Image:
    """Text drawn in white on black ("L" image), tightly cropped: its pixel values are coverage."""
    font = ImageFont.truetype(str(fonts[rng.integers(len(fonts))]), size)
    text = _random_text(rng)
    stroke = int(rng.integers(0, max(1, size // 12) + 1)) if rng.random() < 0.3 else 0
    left, top, right, bottom = font.getbbox(text, stroke_width=stroke)
    canvas = Image.new("L", (right - left + 2, bottom - top + 2), 0)
    ImageDraw.Draw(canvas).text(
        (1 - left, 1 - top), text, font=font, fill=255, stroke_width=stroke, stroke_fill=255
    )
    return canvas


def _logo_coverage(rng: np.random.Generator, size: int) -> Image.Image:
    """A logo-like emblem of simple shapes: ring, disc, star, polygon, bars."""
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    centre = size / 2
    outer = size * 0.48
    for _ in range(int(rng.integers(1, 4))):
        kind = rng.integers(5)
        radius = outer * rng.uniform(0.4, 1.0)
        box = (centre - radius, centre - radius, centre + radius, centre + radius)
        if kind == 0:
            draw.ellipse(box, outline=255, width=max(2, int(radius * rng.uniform(0.08, 0.25))))
        elif kind == 1:
            draw.ellipse(box, fill=255)
        elif kind == 2:
            points = int(rng.integers(5, 9))
            inner = radius * rng.uniform(0.35, 0.6)
            star = [
                (
                    centre + (radius if i % 2 == 0 else inner) * math.cos(math.pi * i / points),
                    centre + (radius if i % 2 == 0 else inner) * math.sin(math.pi * i / points),
                )
                for i in range(2 * points)
            ]
            draw.polygon(star, fill=255)
        elif kind == 3:
            sides = int(rng.integers(3, 7))
            start = rng.uniform(0, 2 * math.pi)
            polygon = [
                (
                    centre + radius * math.cos(start + 2 * math.pi * i / sides),
                    centre + radius * math.sin(start + 2 * math.pi * i / sides),
                )
                for i in range(sides)
            ]
            draw.polygon(polygon, outline=255, width=max(2, int(radius * 0.12)))
        else:
            bars = int(rng.integers(2, 5))
            bar_w = 2 * radius / (2 * bars - 1)
            for i in range(bars):
                x0 = centre - radius + 2 * i * bar_w
                height = radius * rng.uniform(0.5, 1.0)
                draw.rectangle((x0, centre - height, x0 + bar_w, centre + height), fill=255)
    # Knock a hole out of filled shapes sometimes, as real emblems have.
    if rng.random() < 0.3:
        hole = outer * rng.uniform(0.15, 0.35)
        draw.ellipse((centre - hole, centre - hole, centre + hole, centre + hole), fill=0)
    return canvas


def _mark_colour(rng: np.random.Generator) -> np.ndarray:
    choice = rng.random()
    if choice < 0.4:
        rgb = np.ones(3)
    elif choice < 0.6:
        rgb = np.zeros(3)
    elif choice < 0.75:
        rgb = np.full(3, rng.uniform(0.3, 0.8))
    else:
        rgb = rng.uniform(0, 1, 3)
    return rgb.astype(np.float32)


def watermark_coverage(
    rng: np.random.Generator,
    height: int,
    width: int,
    fonts: Sequence[Path],
    reference_size: int | None = None,
) -> np.ndarray:
    """One text or logo mark at a random size, rotation and position: (H, W) float32 in [0, 1].

    Mark sizes are fractions of ``reference_size`` (default: the image's short side), so that
    crops of a larger image can carry marks sized for that image.
    """
    short_side = reference_size or min(height, width)
    if rng.random() < 0.6:
        shape = _text_coverage(rng, fonts, size=max(10, int(short_side * rng.uniform(0.05, 0.2))))
        # Long texts must still fit: shrink the rendered text to at most the image width.
        if shape.width > width * 0.95:
            scale = width * 0.95 / shape.width
            shape = shape.resize(
                (max(1, int(shape.width * scale)), max(1, int(shape.height * scale))),
                Image.Resampling.LANCZOS,
            )
    else:
        shape = _logo_coverage(rng, size=max(16, int(short_side * rng.uniform(0.15, 0.5))))
    angle = rng.uniform(-45, 45) if rng.random() < 0.5 else 0.0
    shape = shape.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
    if rng.random() < 0.2:
        shape = shape.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0)))
    layer = Image.new("L", (width, height), 0)
    # Keep the whole mark inside the image when it fits, else centre the overflow.
    x = (
        int(rng.integers(0, width - shape.width + 1))
        if shape.width <= width
        else (width - shape.width) // 2
    )
    y = (
        int(rng.integers(0, height - shape.height + 1))
        if shape.height <= height
        else (height - shape.height) // 2
    )
    layer.paste(shape, (x, y))
    return np.asarray(layer, dtype=np.float32) / 255.0


def blend(clean: np.ndarray, alpha: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """clean (H, W, 3) uint8, alpha (H, W) in [0, 1], colour (3,) in [0, 1] -> (H, W, 3) uint8."""
    a = alpha[..., None]
    mixed = clean.astype(np.float32) * (1 - a) + colour * 255.0 * a
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


def watermark_mask(watermarked: np.ndarray, clean: np.ndarray) -> np.ndarray:
    """Pixels the mark changed by more than MASK_THRESHOLD in any channel: (H, W) bool."""
    diff = np.abs(watermarked.astype(np.int16) - clean.astype(np.int16)).max(axis=-1)
    return diff > MASK_THRESHOLD


def add_watermark(
    clean: np.ndarray,
    rng: np.random.Generator,
    fonts: Sequence[Path],
    reference_size: int | None = None,
    max_marks: int = MAX_MARKS,
) -> WatermarkedExample:
    """Draw 1 to ``max_marks`` copies of one random visible watermark over ``clean`` (H, W, 3)
    uint8: one colour and opacity, each copy its own text or shape and place, as a photographer's
    marks are."""
    height, width = clean.shape[:2]
    coverage = np.zeros((height, width), dtype=np.float32)
    for _ in range(int(rng.integers(1, max_marks + 1))):
        mark = watermark_coverage(rng, height, width, fonts, reference_size)
        coverage = np.maximum(coverage, mark)
    opacity = rng.uniform(0.25, 0.85)
    alpha = (coverage * opacity).astype(np.float32)
    colour = _mark_colour(rng)
    watermarked = blend(clean, alpha, colour)
    return WatermarkedExample(
        watermarked=watermarked,
        clean=clean,
        mask=watermark_mask(watermarked, clean),
        alpha=alpha,
        colour=colour,
    )


def unmarked(clean: np.ndarray) -> WatermarkedExample:
    """A photo without any watermark, as a training example: nothing to find, nothing to change."""
    height, width = clean.shape[:2]
    return WatermarkedExample(
        watermarked=clean,
        clean=clean,
        mask=np.zeros((height, width), dtype=bool),
        alpha=np.zeros((height, width), dtype=np.float32),
        colour=np.zeros(3, dtype=np.float32),
    )
