"""Procedural training backgrounds: "dead leaves" images with textured, photo-coloured leaves.

Achddou et al. ("Synthetic images as a regularity prior for image restoration neural
networks", 2021; "Learning raw image denoising using a parametric color image model", 2023:
VibrantLeaves) show that restoration networks trained on dead-leaves images, whose occluding
shapes follow the scale statistics of natural scenes, come close to ones trained on photos.
For a watermark detector they add what a few dozen photos cannot: edges, textures and colours
in endless arrangements, none of them a watermark.

A picture is built back to front from shapes whose radii follow the power law of dead-leaves
models (density ~ r^-3 between ``min_radius`` and ``max_radius``); each shape is filled with a
flat colour, a gradient, stripes, or a patch of a real photo, with colours drawn from real
photos' pixels; a share of the leaves are photographic cut-outs with their own alpha (Tux
Paint's stamps); some layers are blurred as out-of-focus depth. Pure and seeded: the same
sources and seed give the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw
from scipy.ndimage import gaussian_filter

FILLS = ("flat", "gradient", "stripes", "photo", "photo")


def leaf_radius(rng: np.random.Generator, min_radius: float, max_radius: float) -> float:
    """A radius from the density r^-3 on [min_radius, max_radius] (inverse-CDF sampling)."""
    u = rng.random()
    inv_sq = min_radius**-2 - u * (min_radius**-2 - max_radius**-2)
    return float(inv_sq**-0.5)


def _shape_mask(rng: np.random.Generator, radius: float) -> np.ndarray:
    """An (s, s) float coverage of a disc, ellipse or polygon of about ``radius``."""
    size = max(3, math.ceil(2 * radius) + 2)
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    c = size / 2
    kind = rng.integers(3)
    if kind == 0:
        draw.ellipse((c - radius, c - radius, c + radius, c + radius), fill=255)
    elif kind == 1:
        ry = radius * rng.uniform(0.3, 1.0)
        ellipse = Image.new("L", (size, size), 0)
        ImageDraw.Draw(ellipse).ellipse((c - radius, c - ry, c + radius, c + ry), fill=255)
        canvas = ellipse.rotate(rng.uniform(0, 180), Image.Resampling.BILINEAR)
    else:
        corners = int(rng.integers(3, 8))
        start = rng.uniform(0, 2 * math.pi)
        points = [
            (
                c + radius * rng.uniform(0.6, 1.0) * math.cos(start + 2 * math.pi * i / corners),
                c + radius * rng.uniform(0.6, 1.0) * math.sin(start + 2 * math.pi * i / corners),
            )
            for i in range(corners)
        ]
        draw.polygon(points, fill=255)
    return np.asarray(canvas, dtype=np.float32) / 255


def photo_colour(rng: np.random.Generator, photos: Sequence[np.ndarray]) -> np.ndarray:
    """One pixel of a random photo, RGB float in [0, 1]: procedural pictures' palette."""
    photo = photos[int(rng.integers(len(photos)))]
    y, x = int(rng.integers(photo.shape[0])), int(rng.integers(photo.shape[1]))
    return photo[y, x].astype(np.float32) / 255


def _fill(rng: np.random.Generator, size: int, photos: Sequence[np.ndarray]) -> np.ndarray:
    """A (size, size, 3) float texture in [0, 1] for one leaf."""
    kind = FILLS[rng.integers(len(FILLS))]
    if kind == "photo":
        photo = photos[int(rng.integers(len(photos)))]
        scale = rng.uniform(0.25, 1.5)
        window = max(2, min(photo.shape[0], photo.shape[1], round(size / scale)))
        top = int(rng.integers(0, photo.shape[0] - window + 1))
        left = int(rng.integers(0, photo.shape[1] - window + 1))
        patch = Image.fromarray(photo[top : top + window, left : left + window])
        texture = np.asarray(patch.resize((size, size), Image.Resampling.BILINEAR), np.float32)
        texture = texture / 255
        # Recolour towards a sampled colour: the photo gives the texture, not the palette.
        mix = rng.uniform(0, 0.7)
        texture = texture * (1 - mix) + mix * photo_colour(rng, photos) * texture.mean()
        return np.clip(texture, 0, 1)
    a, b = photo_colour(rng, photos), photo_colour(rng, photos)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(1, size - 1)
    angle = rng.uniform(0, 2 * math.pi)
    ramp = xx * math.cos(angle) + yy * math.sin(angle)
    if kind == "flat":
        t = np.zeros_like(ramp)
    elif kind == "gradient":
        t = (ramp - ramp.min()) / max(1e-6, float(ramp.max() - ramp.min()))
    else:
        periods = rng.uniform(1, 12)
        t = 0.5 + 0.5 * np.sin(2 * math.pi * periods * ramp + rng.uniform(0, 2 * math.pi))
    texture = a * (1 - t[..., None]) + b * t[..., None]
    noise = rng.normal(0, rng.uniform(0, 0.04), (size, size, 1)).astype(np.float32)
    return np.clip(texture + noise, 0, 1)


def _paste(canvas: np.ndarray, texture: np.ndarray, coverage: np.ndarray, x: int, y: int) -> None:
    """Composite ``texture`` (s, s, 3) with ``coverage`` (s, s) over ``canvas`` at (x, y)."""
    height, width = canvas.shape[:2]
    s = coverage.shape[0]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + s, width), min(y + s, height)
    if x0 >= x1 or y0 >= y1:
        return
    cov = coverage[y0 - y : y1 - y, x0 - x : x1 - x, None]
    tex = texture[y0 - y : y1 - y, x0 - x : x1 - x]
    canvas[y0:y1, x0:x1] = canvas[y0:y1, x0:x1] * (1 - cov) + tex * cov


def _stamp(
    rng: np.random.Generator, stamps: Sequence[np.ndarray], radius: float
) -> tuple[np.ndarray, np.ndarray]:
    """A photographic cut-out (RGBA uint8) scaled to about 2 * radius: (texture, coverage)."""
    rgba = stamps[int(rng.integers(len(stamps)))]
    image = Image.fromarray(rgba)
    scale = 2 * radius / max(image.size)
    size = max(2, round(max(image.size) * scale))
    square = Image.new("RGBA", (max(image.size),) * 2, (0, 0, 0, 0))
    square.paste(image, ((max(image.size) - image.size[0]) // 2,
                         (max(image.size) - image.size[1]) // 2))  # fmt: skip
    if rng.random() < 0.5:
        square = square.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    square = square.resize((size, size), Image.Resampling.BILINEAR)
    array = np.asarray(square, np.float32) / 255
    return array[..., :3], array[..., 3]


def dead_leaves(
    rng: np.random.Generator,
    size: int,
    photos: Sequence[np.ndarray],
    stamps: Sequence[np.ndarray] = (),
    min_radius: float = 4.0,
    leaves: int = 1200,
) -> np.ndarray:
    """One (size, size, 3) uint8 dead-leaves picture with colours and textures from ``photos``
    ((H, W, 3) uint8) and, when given, cut-outs from ``stamps`` ((h, w, 4) uint8 RGBA)."""
    canvas = np.empty((size, size, 3), np.float32)
    canvas[:] = photo_colour(rng, photos)
    max_radius = size * rng.uniform(0.2, 0.6)
    blur_layers = rng.random() < 0.5
    for i in range(leaves):
        radius = leaf_radius(rng, min_radius, max_radius)
        x, y = int(rng.integers(-radius, size)), int(rng.integers(-radius, size))
        if stamps and rng.random() < 0.01:
            texture, coverage = _stamp(rng, stamps, max(radius, size / 16))
        else:
            coverage = _shape_mask(rng, radius)
            texture = _fill(rng, coverage.shape[0], photos)
        _paste(canvas, texture, coverage, x, y)
        # Out-of-focus depth: the back layers, painted first, end up blurred.
        if blur_layers and i == leaves // 3:
            canvas = gaussian_filter(canvas, sigma=(rng.uniform(1, 4), rng.uniform(1, 4), 0))
    return np.clip(canvas * 255 + 0.5, 0, 255).astype(np.uint8)
