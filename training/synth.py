"""Synthetic visible watermarks: pure, seeded functions from a clean photo to a training example.

Every function takes a ``numpy.random.Generator`` and draws everything from it, so the same
photo, assets and seed always give the same bytes. Photos are uint8 RGB HWC arrays.

A watermark is a layer of colour and coverage, blended over the photo as

    watermarked = clean * (1 - alpha) + colour * alpha,    alpha = coverage * opacity,

in the styles real watermarks come in (``STYLES``): a text, a logo, a repeated grid of either at
an angle over the whole image (stock-photo style), one large centred mark, a small corner mark.
The watermarked image is then JPEG-compressed at a random quality, as real uploads are.

Marks are drawn as premultiplied RGBA float arrays ("sprites", (h, w, 4): colour * alpha in the
first three channels, alpha in the fourth), so that shadows, outlines and coloured icons compose
exactly with the "over" operator.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy.ndimage import gaussian_filter

# A pixel belongs to the watermark when the mark changed it by more than this (uint8 units), as
# in the papers' protocol. Measured on the blend before JPEG compression: compression noise
# outside the mark is not part of the mark.
MASK_THRESHOLD = 15
STYLES = ("text", "logo", "grid", "centre", "corner")
OPACITY = (0.15, 0.9)
JPEG_PROBABILITY = 0.7
JPEG_QUALITY = (60, 95)
# An opacity and colour that leave every pixel within MASK_THRESHOLD of the photo draw an
# invisible mark; such a draw is retried this many times before it is kept.
VISIBLE_ATTEMPTS = 5

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
    "{day:02d}/{month:02d}/{year}",
    "{year}-{month:02d}-{day:02d}",
)
NAMES = ("clearmark", "J. Smith", "Studio Lumen", "A. Novak", "Maria K.", "PhotoStock", "Kodama")
DOMAINS = ("stockphotos", "imagebank", "lumenstudio", "photoarchive", "picsdaily")
# Every character the texts above can contain: fonts that cannot draw them all are not used.
ALPHABET = "".join(
    sorted(set(re.sub(r"\{[^}]*\}", "", "".join(TEXTS)) + "".join(NAMES + DOMAINS) + "0123456789"))
)


@dataclass(frozen=True)
class MarkAssets:
    """What marks are drawn with: font files, and icon PNGs (may be empty: shapes are drawn)."""

    fonts: tuple[Path, ...]
    logos: tuple[Path, ...] = ()


@dataclass(frozen=True)
class WatermarkedExample:
    watermarked: np.ndarray  # (H, W, 3) uint8, JPEG-compressed or not
    clean: np.ndarray  # (H, W, 3) uint8
    mask: np.ndarray  # (H, W) bool: the blend changed the pixel by > MASK_THRESHOLD
    alpha: np.ndarray  # (H, W) float32 in [0, 1]: the blend weight of the mark
    colour: np.ndarray  # (H, W, 3) float32 in [0, 1]: the mark's colour (0 where alpha is 0)
    style: str  # one of STYLES, or "none"


# --- sprites ------------------------------------------------------------------------------


def _solid(coverage: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """(h, w) coverage in [0, 1] and an RGB colour -> premultiplied sprite (h, w, 4)."""
    return np.concatenate([coverage[..., None] * colour, coverage[..., None]], axis=-1).astype(
        np.float32
    )


def _over(top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    """Porter-Duff "over" of two premultiplied sprites of one shape."""
    return top + bottom * (1 - top[..., 3:])


def _trim(sprite: np.ndarray) -> np.ndarray:
    """Crop away fully transparent borders (keeps at least one pixel)."""
    rows = np.flatnonzero(sprite[..., 3].max(axis=1) > 0)
    cols = np.flatnonzero(sprite[..., 3].max(axis=0) > 0)
    if rows.size == 0:
        return sprite[:1, :1]
    return sprite[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _transform(sprite: np.ndarray, scale: float = 1.0, angle: float = 0.0) -> np.ndarray:
    """Resize by ``scale`` and rotate by ``angle`` degrees (canvas expanded), channel by channel
    in float ("F" images), so that premultiplied colour stays consistent with alpha."""
    height, width = sprite.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    channels = []
    for c in range(4):
        channel = Image.fromarray(np.ascontiguousarray(sprite[..., c]), mode="F")
        if size != (width, height):
            channel = channel.resize(size, Image.Resampling.BICUBIC)
        if angle:
            channel = channel.rotate(angle, Image.Resampling.BICUBIC, expand=True)
        channels.append(np.asarray(channel))
    out = np.clip(np.stack(channels, axis=-1), 0, 1)
    out[..., :3] = np.minimum(out[..., :3], out[..., 3:])
    return out


def _contrast(colour: np.ndarray) -> np.ndarray:
    """Black for light colours, white for dark ones: outline and shadow colours."""
    return np.zeros(3, np.float32) if colour.mean() > 0.5 else np.ones(3, np.float32)


def _random_text(rng: np.random.Generator) -> str:
    template = TEXTS[rng.integers(len(TEXTS))]
    return template.format(
        name=NAMES[rng.integers(len(NAMES))],
        domain=DOMAINS[rng.integers(len(DOMAINS))],
        year=int(rng.integers(1990, 2027)),
        month=int(rng.integers(1, 13)),
        day=int(rng.integers(1, 29)),
    )


def text_sprite(
    rng: np.random.Generator, fonts: Sequence[Path], height: float, colour: np.ndarray
) -> np.ndarray:
    """A random text about ``height`` pixels tall: plain, bold, outlined or with a drop shadow."""
    font = ImageFont.truetype(str(fonts[rng.integers(len(fonts))]), max(6, round(height)))
    text = _random_text(rng)
    effect = ("plain", "plain", "bold", "outline", "shadow")[rng.integers(5)]
    stroke = max(1, round(height / 16))
    shadow = max(1, round(height / 12))
    pad = 2 * stroke + 2 * shadow + 4
    left, top, right, bottom = font.getbbox(text, stroke_width=stroke)
    canvas_size = (right - left + 2 * pad, bottom - top + 2 * pad)

    def coverage(stroke_width: int, offset: int = 0) -> np.ndarray:
        canvas = Image.new("L", canvas_size, 0)
        ImageDraw.Draw(canvas).text(
            (pad - left + offset, pad - top + offset),
            text,
            font=font,
            fill=255,
            stroke_width=stroke_width,
            stroke_fill=255,
        )
        return np.asarray(canvas, dtype=np.float32) / 255

    sprite = _solid(coverage(stroke if effect == "bold" else 0), colour)
    if effect == "outline":
        sprite = _over(sprite, _solid(coverage(stroke), _contrast(colour)))
    elif effect == "shadow":
        soft = gaussian_filter(coverage(0, offset=shadow), sigma=shadow / 2) * 0.7
        sprite = _over(sprite, _solid(soft, _contrast(colour)))
    return _trim(sprite)


def _shape_coverage(rng: np.random.Generator, size: int) -> np.ndarray:
    """A logo-like emblem of simple shapes (ring, disc, star, polygon, bars): (size, size)."""
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
        elif kind in (2, 3):
            corners = int(rng.integers(5, 9)) if kind == 2 else int(rng.integers(3, 7))
            inner = radius * rng.uniform(0.35, 0.6) if kind == 2 else radius
            start = rng.uniform(0, 2 * math.pi)
            points = [
                (
                    centre
                    + (radius if i % 2 == 0 else inner) * math.cos(start + math.pi * i / corners),
                    centre
                    + (radius if i % 2 == 0 else inner) * math.sin(start + math.pi * i / corners),
                )
                for i in range(2 * corners)
            ]
            if kind == 2:
                draw.polygon(points, fill=255)
            else:
                draw.polygon(points, outline=255, width=max(2, int(radius * 0.12)))
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
    return np.asarray(canvas, dtype=np.float32) / 255


@lru_cache(maxsize=512)
def _icon(path: Path) -> np.ndarray:
    """An icon PNG as a premultiplied sprite (h, w, 4); read once per process."""
    with Image.open(path) as img:
        rgba = np.asarray(img.convert("RGBA"), dtype=np.float32) / 255
    rgba[..., :3] *= rgba[..., 3:]
    return _trim(rgba)


def logo_sprite(
    rng: np.random.Generator, logos: Sequence[Path], size: float, colour: np.ndarray
) -> np.ndarray:
    """A logo about ``size`` pixels across: an icon in its own colours, an icon's silhouette in
    ``colour`` ("symbolic" icons always), or a drawn emblem."""
    if logos and rng.random() < 0.75:
        path = logos[rng.integers(len(logos))]
        icon = _icon(path)
        if "symbolic" in path.name or rng.random() < 0.5:
            icon = _solid(icon[..., 3], colour)
        return _transform(icon, scale=size / max(icon.shape[:2]))
    return _solid(_shape_coverage(rng, max(8, round(size))), colour)


# --- placing marks --------------------------------------------------------------------------


def _paste(layer: np.ndarray, sprite: np.ndarray, x: int, y: int) -> None:
    """Composite ``sprite`` over ``layer`` with its top-left corner at (x, y), clipped."""
    height, width = layer.shape[:2]
    h, w = sprite.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, width), min(y + h, height)
    if x0 >= x1 or y0 >= y1:
        return
    part = sprite[y0 - y : y1 - y, x0 - x : x1 - x]
    layer[y0:y1, x0:x1] = _over(part, layer[y0:y1, x0:x1])


def _random_place(rng: np.random.Generator, extent: int, size: int) -> int:
    """A position keeping the mark inside the image when it fits, else centring the overflow."""
    return int(rng.integers(0, extent - size + 1)) if size <= extent else (extent - size) // 2


def _fit_width(sprite: np.ndarray, width: int) -> np.ndarray:
    """Shrink a sprite wider than ``width``: long texts must still fit on the image."""
    return _transform(sprite, scale=width / sprite.shape[1]) if sprite.shape[1] > width else sprite


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def _mark(rng: np.random.Generator, assets: MarkAssets, colour: np.ndarray, text: bool,
          size: float) -> np.ndarray:  # fmt: skip
    if text:
        return text_sprite(rng, assets.fonts, size, colour)
    return logo_sprite(rng, assets.logos, size, colour)


def watermark_layer(
    rng: np.random.Generator,
    height: int,
    width: int,
    assets: MarkAssets,
    style: str,
    colour: np.ndarray,
    reference_size: int | None = None,
) -> np.ndarray:
    """The watermark of one ``style`` on an (height, width) canvas: premultiplied (H, W, 4).

    Sizes are fractions of ``reference_size`` (default: the image's short side), so that crops
    of a larger image can carry marks sized for that image.
    """
    ref = reference_size or min(height, width)
    layer = np.zeros((height, width, 4), np.float32)
    if style == "text":
        sprite = text_sprite(rng, assets.fonts, ref * _log_uniform(rng, 0.03, 0.25), colour)
        if rng.random() < 0.4:
            sprite = _transform(sprite, angle=rng.uniform(-45, 45))
        sprite = _fit_width(sprite, int(width * 0.95))
        h, w = sprite.shape[:2]
        _paste(layer, sprite, _random_place(rng, width, w), _random_place(rng, height, h))
    elif style == "logo":
        sprite = logo_sprite(rng, assets.logos, ref * _log_uniform(rng, 0.1, 0.5), colour)
        if rng.random() < 0.3:
            sprite = _transform(sprite, angle=rng.uniform(-30, 30))
        h, w = sprite.shape[:2]
        _paste(layer, sprite, _random_place(rng, width, w), _random_place(rng, height, h))
    elif style == "grid":
        text = rng.random() < 0.7
        size = ref * (rng.uniform(0.03, 0.1) if text else rng.uniform(0.08, 0.2))
        sprite = _mark(rng, assets, colour, text, size)
        h, w = sprite.shape[:2]
        step_x = w + int(rng.uniform(0.3, 1.5) * max(h, w / 4))
        step_y = h + int(rng.uniform(0.5, 3.0) * h)
        angle = rng.uniform(-45, 45) if rng.random() < 0.8 else 0.0
        # Tile a square that still covers the image once rotated, then rotate it and cut out
        # the image's window from its centre.
        side = math.ceil(math.hypot(height, width)) + 2 * max(h, w)
        tiles = np.zeros((side, side, 4), np.float32)
        stagger = int(rng.uniform(0, 1) * step_x)
        for row, y in enumerate(range(-h, side, step_y)):
            for x in range(-w - (row * stagger) % step_x, side, step_x):
                _paste(tiles, sprite, x, y)
        if angle:
            tiles = _transform(tiles, angle=angle)
        top, left = (tiles.shape[0] - height) // 2, (tiles.shape[1] - width) // 2
        layer = np.ascontiguousarray(tiles[top : top + height, left : left + width])
    elif style == "centre":
        text = rng.random() < 0.5
        if text:
            sprite = text_sprite(rng, assets.fonts, ref * 0.15, colour)
            sprite = _transform(sprite, scale=width * rng.uniform(0.5, 0.9) / sprite.shape[1])
        else:
            sprite = logo_sprite(rng, assets.logos, ref * rng.uniform(0.35, 0.8), colour)
        if rng.random() < 0.4:
            sprite = _transform(sprite, angle=rng.uniform(-35, 35))
        h, w = sprite.shape[:2]
        jitter = ref * 0.05
        x = round((width - w) / 2 + rng.uniform(-jitter, jitter))
        y = round((height - h) / 2 + rng.uniform(-jitter, jitter))
        _paste(layer, sprite, x, y)
    elif style == "corner":
        text = rng.random() < 0.8
        size = ref * (rng.uniform(0.03, 0.08) if text else rng.uniform(0.06, 0.15))
        sprite = _fit_width(_mark(rng, assets, colour, text, size), int(width * 0.9))
        h, w = sprite.shape[:2]
        margin = round(ref * rng.uniform(0.01, 0.05))
        x = margin if rng.random() < 0.5 else width - w - margin
        y = margin if rng.random() < 0.5 else height - h - margin
        _paste(layer, sprite, x, y)
    else:
        raise ValueError(f"unknown watermark style {style!r}; choose from {STYLES}")
    if rng.random() < 0.2:
        sigma = rng.uniform(0.3, 1.0)
        layer = gaussian_filter(layer, sigma=(sigma, sigma, 0))
    return layer


def mark_colour(rng: np.random.Generator) -> np.ndarray:
    """White most often, then black, grey, or any colour."""
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


# --- blending -------------------------------------------------------------------------------


def blend(clean: np.ndarray, alpha: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """clean (H, W, 3) uint8, alpha (H, W) in [0, 1], colour (3,) or (H, W, 3) in [0, 1]
    -> (H, W, 3) uint8."""
    a = alpha[..., None]
    mixed = clean.astype(np.float32) * (1 - a) + np.asarray(colour) * 255.0 * a
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


def watermark_mask(watermarked: np.ndarray, clean: np.ndarray) -> np.ndarray:
    """Pixels changed by more than MASK_THRESHOLD in any channel: (H, W) bool."""
    diff = np.abs(watermarked.astype(np.int16) - clean.astype(np.int16)).max(axis=-1)
    return diff > MASK_THRESHOLD


def jpeg_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
    """Compress and decode (H, W, 3) uint8 as JPEG at ``quality`` (4:2:0, as cameras and sites
    save them)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as img:
        return np.asarray(img.convert("RGB"))


def _maybe_jpeg(image: np.ndarray, rng: np.random.Generator, probability: float) -> np.ndarray:
    if rng.random() < probability:
        return jpeg_roundtrip(image, int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1)))
    return image


def add_watermark(
    clean: np.ndarray,
    rng: np.random.Generator,
    assets: MarkAssets,
    style: str | None = None,
    reference_size: int | None = None,
    jpeg_probability: float = JPEG_PROBABILITY,
) -> WatermarkedExample:
    """A visible watermark of ``style`` (default: a random one) over ``clean`` (H, W, 3) uint8."""
    style = style or STYLES[rng.integers(len(STYLES))]
    height, width = clean.shape[:2]
    for _ in range(VISIBLE_ATTEMPTS):
        colour = mark_colour(rng)
        layer = watermark_layer(rng, height, width, assets, style, colour, reference_size)
        opacity = rng.uniform(*OPACITY)
        alpha = (layer[..., 3] * opacity).astype(np.float32)
        mark_rgb = np.where(
            layer[..., 3:] > 0, layer[..., :3] / np.maximum(layer[..., 3:], 1e-6), 0
        )
        mark_rgb = np.clip(mark_rgb, 0, 1).astype(np.float32)
        blended = blend(clean, alpha, mark_rgb)
        mask = watermark_mask(blended, clean)
        if mask.any():
            break
    return WatermarkedExample(
        watermarked=_maybe_jpeg(blended, rng, jpeg_probability),
        clean=clean,
        mask=mask,
        alpha=alpha,
        colour=mark_rgb,
        style=style,
    )


def stroke_coverage(
    shape: tuple[int, int],
    centre: tuple[float, float],
    length: float,
    angle: float,
    bend: float,
    thickness: float,
) -> np.ndarray:
    """Coverage of one thin arc: ``length`` pixels long through ``centre`` (x, y), heading
    ``angle`` radians at its middle and turning by ``bend`` x pi over its length, ``thickness``
    pixels wide (at least a quarter pixel). Drawn 4x supersampled, as training/graphics.py draws,
    for anti-aliased edges. (H, W) float32 in [0, 1]."""
    height, width = shape
    s = 4
    coverage = Image.new("L", (width * s, height * s), 0)
    points = []
    for i in range(25):
        u = i / 24 - 0.5
        a = angle + bend * u * math.pi
        points.append(
            ((centre[0] + length * u * math.cos(a)) * s, (centre[1] + length * u * math.sin(a)) * s)
        )
    ImageDraw.Draw(coverage).line(points, fill=255, width=max(1, int(thickness * s)))
    return np.asarray(coverage.resize((width, height), Image.Resampling.BOX), np.float32) / 255


def crossing_lines(
    example: WatermarkedExample,
    rng: np.random.Generator,
    jpeg_probability: float = JPEG_PROBABILITY,
) -> WatermarkedExample:
    """``example`` with 1-3 thin lines of the photo's own (mostly light, sometimes glowing: line
    art, light streaks, wires) drawn under its mark, each through one of the mark's pixels, and
    the mark blended again over them. The lines belong to the clean photo, not to the mask: a
    detector trained on it learns where a mark ends when photo strokes touch it (the evaluation's
    line art and light streak, inpainted with the marks they touched, model/candidates/README.md).
    """
    if not example.mask.any():
        return example
    height, width = example.mask.shape
    ys, xs = np.nonzero(example.mask)
    clean = example.clean.astype(np.float32) / 255
    for _ in range(int(rng.integers(1, 4))):
        k = int(rng.integers(len(ys)))
        length = rng.uniform(0.3, 1.5) * max(height, width)
        angle, bend = rng.uniform(0, 2 * math.pi), rng.uniform(-0.6, 0.6)
        thickness = rng.uniform(0.7, 3)
        centre = (xs[k] + 0.5, ys[k] + 0.5)
        cov = stroke_coverage((height, width), centre, length, angle, bend, thickness)
        if rng.random() < 0.3:  # a glowing streak
            cov = np.maximum(cov, gaussian_filter(cov, rng.uniform(1, 3)) * 0.8)
        light = rng.random() < 0.7
        colour = rng.uniform(0.85, 1.0, 3) if light else rng.uniform(0, 1, 3)
        clean = clean * (1 - cov[..., None]) + colour.astype(np.float32) * cov[..., None]
    clean_u8 = np.clip(clean * 255 + 0.5, 0, 255).astype(np.uint8)
    blended = blend(clean_u8, example.alpha, example.colour)
    return replace(
        example,
        watermarked=_maybe_jpeg(blended, rng, jpeg_probability),
        clean=clean_u8,
        mask=watermark_mask(blended, clean_u8),
    )


def unmarked(
    clean: np.ndarray, rng: np.random.Generator, jpeg_probability: float = JPEG_PROBABILITY
) -> WatermarkedExample:
    """A photo without any watermark (JPEG-compressed as often as marked ones, so that
    compression is no sign of a mark): nothing to find, nothing to change."""
    height, width = clean.shape[:2]
    return WatermarkedExample(
        watermarked=_maybe_jpeg(clean, rng, jpeg_probability),
        clean=clean,
        mask=np.zeros((height, width), dtype=bool),
        alpha=np.zeros((height, width), dtype=np.float32),
        colour=np.zeros((height, width, 3), dtype=np.float32),
        style="none",
    )
