"""Procedural training backgrounds: flat vector-art pictures, the kind desktop wallpapers are.

Why: a held-out wallpaper (a flat blue-grey field with a few crisp white dots) is where the
best detector trained so far failed at full size: it took the wallpaper's own dots for a mark,
inpainted them, and the photo lost 2.3 dB (model/candidates/README.md). Neither photos nor
dead-leaves pictures (training/leaves.py, 1,200 overlapping shapes each) show what such
wallpapers are made of: large smooth fields with a few sharp, fully opaque shapes on them
(dots, rings, stars, thin lines and curves), often white. Marks are blends the photo shows
through (synth.OPACITY at most 0.9); these shapes are paint, so as clean backgrounds, and under
marks, they teach the detector the difference.

A picture is a linear or radial gradient between two colours sampled from real photos, with
a little noise, and between a few and a hundred shapes whose sizes are log-uniform; a shape's
colour is white, black or a photo colour; a share of them get a soft glow or a blurred edge.
Pure and seeded: the same sources and seed give the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from training.leaves import photo_colour

SHAPES = ("dot", "dot", "ring", "star", "line", "curve")
# Supersampling of the drawn shapes: PIL draws aliased edges, real vector art is antialiased.
SUPERSAMPLE = 2


def _field(rng: np.random.Generator, size: int, photos: Sequence[np.ndarray]) -> np.ndarray:
    """A (size, size, 3) float gradient, linear or radial, between two photo colours."""
    a, b = photo_colour(rng, photos), photo_colour(rng, photos)
    if rng.random() < 0.3:  # many wallpapers are one dark or muted tone
        b = a * rng.uniform(0.6, 1.0)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(1, size - 1)
    if rng.random() < 0.5:
        angle = rng.uniform(0, 2 * math.pi)
        t = xx * math.cos(angle) + yy * math.sin(angle)
    else:
        cx, cy = rng.uniform(-0.2, 1.2, 2)
        t = np.hypot(xx - cx, yy - cy)
    t = (t - t.min()) / max(1e-6, float(t.max() - t.min()))
    field = a * (1 - t[..., None]) + b * t[..., None]
    noise = rng.normal(0, rng.uniform(0, 0.01), (size, size, 1)).astype(np.float32)
    return field + noise


def _shape_colour(rng: np.random.Generator, photos: Sequence[np.ndarray]) -> np.ndarray:
    kind = rng.random()
    if kind < 0.4:
        return np.full(3, rng.uniform(0.85, 1.0), np.float32)  # white, or nearly
    if kind < 0.5:
        return np.full(3, rng.uniform(0.0, 0.15), np.float32)
    return photo_colour(rng, photos)


def _draw_shape(rng: np.random.Generator, draw: ImageDraw.ImageDraw, size: int) -> None:
    """One shape of about log-uniform size, in white on ``draw``'s (supersampled) coverage."""
    s = SUPERSAMPLE
    radius = math.exp(rng.uniform(math.log(1.5), math.log(size / 6))) * s
    cx, cy = rng.uniform(0, size * s, 2)
    kind = SHAPES[rng.integers(len(SHAPES))]
    if kind == "dot":
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=255)
    elif kind == "ring":
        width = max(s, int(radius * rng.uniform(0.08, 0.4)))
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), outline=255,
                     width=width)  # fmt: skip
    elif kind == "star":
        points = int(rng.integers(4, 9))
        inner = rng.uniform(0.3, 0.6)
        start = rng.uniform(0, 2 * math.pi)
        draw.polygon([
            (cx + radius * (1 if i % 2 == 0 else inner) * math.cos(start + math.pi * i / points),
             cy + radius * (1 if i % 2 == 0 else inner) * math.sin(start + math.pi * i / points))
            for i in range(2 * points)
        ], fill=255)  # fmt: skip
    else:
        width = max(s, int(rng.uniform(1, 6) * s))
        length = radius * rng.uniform(2, 8)
        angle = rng.uniform(0, 2 * math.pi)
        bend = rng.uniform(-1, 1) if kind == "curve" else 0.0
        steps = 24
        points = []
        for i in range(steps + 1):
            u = i / steps - 0.5
            a = angle + bend * u * math.pi
            points.append((cx + length * u * math.cos(a), cy + length * u * math.sin(a)))
        draw.line(points, fill=255, width=width, joint="curve")


def graphic(
    rng: np.random.Generator, size: int, photos: Sequence[np.ndarray], max_shapes: int = 100
) -> np.ndarray:
    """One (size, size, 3) uint8 vector-art picture with colours from ``photos`` ((H, W, 3)
    uint8): a gradient field and up to ``max_shapes`` opaque shapes."""
    canvas = _field(rng, size, photos)
    # Few large shapes or many small ones: log-uniform count.
    count = int(math.exp(rng.uniform(0, math.log(max_shapes))))
    for _ in range(count):
        coverage = Image.new("L", (size * SUPERSAMPLE,) * 2, 0)
        _draw_shape(rng, ImageDraw.Draw(coverage), size)
        coverage = coverage.resize((size, size), Image.Resampling.BOX)
        glow = rng.random() < 0.15
        if rng.random() < 0.2 or glow:
            blurred = coverage.filter(ImageFilter.GaussianBlur(rng.uniform(0.7, 6 if glow else 2)))
            coverage = Image.fromarray(np.maximum(np.asarray(coverage), np.asarray(blurred)))
        cov = np.asarray(coverage, np.float32)[..., None] / 255
        canvas = canvas * (1 - cov) + _shape_colour(rng, photos) * cov
    return _to_uint8(canvas)


def _to_uint8(picture: np.ndarray) -> np.ndarray:
    return np.clip(picture * 255 + 0.5, 0, 255).astype(np.uint8)


@lru_cache(maxsize=512)
def _icon_file(path: Path) -> Image.Image:
    """The icon at ``path`` as RGBA, read once per process (a picture in rows pastes the same
    few icons dozens of times, as synth._icon reads each mark's icon once)."""
    with Image.open(path) as img:
        return img.convert("RGBA")


def _scaled(icon: Image.Image, side: int, resample: Image.Resampling) -> Image.Image:
    """``icon`` resized to ``side`` pixels on its longer side, its aspect kept."""
    scale = side / max(icon.size)
    return icon.resize(
        (max(1, round(icon.width * scale)), max(1, round(icon.height * scale))), resample
    )


def _icon_rgba(path: Path, size: int) -> Image.Image:
    """The icon at ``path`` as RGBA, its longer side ``size`` pixels."""
    return _scaled(_icon_file(path), size, Image.Resampling.LANCZOS)


def _silhouette(icon: Image.Image, colour: np.ndarray) -> Image.Image:
    """``icon``'s shape painted in one ``colour`` (as symbolic icons and flat designs are)."""
    rgb = tuple(int(c * 255 + 0.5) for c in np.clip(colour, 0, 1))
    flat = Image.new("RGBA", icon.size, (*rgb, 255))
    flat.putalpha(icon.getchannel("A"))
    return flat


def pixelate(icon: Image.Image, cells: int) -> Image.Image:
    """``icon`` drawn as pixel art: reduced to ``cells`` pixels on its longer side, then blown
    back up with hard square edges (nearest neighbour)."""
    return _scaled(icon, cells, Image.Resampling.BOX).resize(icon.size, Image.Resampling.NEAREST)


def extrude(icon: Image.Image, depth: int, direction: float, shade: float) -> Image.Image:
    """``icon`` as a slab ``depth`` pixels thick: copies darkened to ``shade`` of its colour
    stacked behind it towards ``direction`` (radians), the side face 3D icon sets draw."""
    dx, dy = math.cos(direction), math.sin(direction)
    ox, oy = round(dx * depth), round(dy * depth)
    out = Image.new("RGBA", (icon.width + abs(ox), icon.height + abs(oy)), (0, 0, 0, 0))
    front = (max(0, -ox), max(0, -oy))
    rgb = np.asarray(icon, np.float32)
    side = Image.fromarray(
        np.concatenate([rgb[..., :3] * shade + 0.5, rgb[..., 3:]], axis=-1).astype(np.uint8), "RGBA"
    )
    for k in range(depth, 0, -1):  # farthest first: nearer layers cover it
        at = (front[0] + round(dx * k), front[1] + round(dy * k))
        out.alpha_composite(side, at)
    out.alpha_composite(icon, front)
    return out


def _styled(rng: np.random.Generator, icon: Image.Image) -> Image.Image:
    """``icon`` as icon art other than flat themes draws it: pixel art, a 3D slab, turned.

    Why: the gate search's binding failure is a held-out wallpaper of turned, extruded pixel-art
    app icons with shadows (wallpaper-gnome-pixels), which the detector takes for logo marks at
    mean probability ~0.9; the flat, upright theme icons painted here did not teach it that
    these are paint too. Each style is drawn independently, so most combinations occur."""
    if rng.random() < 0.35:
        icon = pixelate(icon, int(rng.integers(8, 25)))
    if rng.random() < 0.35:
        depth = max(1, round(max(icon.size) * rng.uniform(0.04, 0.15)))
        icon = extrude(icon, depth, rng.uniform(0, 2 * math.pi), rng.uniform(0.35, 0.8))
    if rng.random() < 0.4:
        icon = icon.rotate(rng.uniform(-45, 45), Image.Resampling.BICUBIC, expand=True)
    return icon


def _shadow(icon: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A soft dark shadow of ``icon``'s shape, as RGBA of its size plus the blur's margin."""
    radius = max(1.0, max(icon.size) * rng.uniform(0.03, 0.1))
    pad = int(3 * radius)
    alpha = Image.new("L", (icon.width + 2 * pad, icon.height + 2 * pad), 0)
    alpha.paste(icon.getchannel("A"), (pad, pad))
    strength = rng.uniform(0.3, 0.7)
    alpha = alpha.filter(ImageFilter.GaussianBlur(radius)).point(lambda v: int(v * strength))
    shadow = Image.new("RGBA", alpha.size, (0, 0, 0, 255))
    shadow.putalpha(alpha)
    return shadow


def _scanlines(rng: np.random.Generator, picture: np.ndarray) -> np.ndarray:
    """``picture`` with fine parallel lines a few levels dark across it (period 2-5 pixels, at
    any angle), as rendered and screen-styled wallpapers show."""
    size = picture.shape[0]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    angle = rng.uniform(0, math.pi)
    period = rng.uniform(2, 5)
    phase = (xx * math.cos(angle) + yy * math.sin(angle)) % period
    dark = (phase < period / 2).astype(np.float32)[..., None] * rng.uniform(3, 12)
    return np.clip(picture.astype(np.float32) - dark + 0.5, 0, 255).astype(np.uint8)


def tonal_colour(canvas: Image.Image, x: float, y: float, shade: float) -> np.ndarray:
    """The field's colour at (``x``, ``y``), ``shade`` lighter (or darker, below 0).

    Why: the held-out symbolic-icon wallpaper (wallpaper-gnome-symbolic) is a field covered in
    single-colour icons a shade lighter than it: locally a faint one-colour logo mark, which the
    detector trained on the other icon wallpapers still inpainted (2,460 pixels of one photo,
    no mark near them, at mean 0.9). Only the rest of the picture says they are its pattern."""
    col = int(np.clip(x, 0, canvas.width - 1))
    row = int(np.clip(y, 0, canvas.height - 1))
    return np.clip(np.asarray(canvas.getpixel((col, row)), np.float32) / 255 + shade, 0, 1)


def icon_wallpaper(
    rng: np.random.Generator, size: int, photos: Sequence[np.ndarray], icons: Sequence[Path],
    max_icons: int = 60, styled_share: float = 0.4, tonal_share: float = 0.25,
) -> np.ndarray:  # fmt: skip
    """One (size, size, 3) uint8 picture of icons painted fully opaque on a gradient field:
    scattered, or in rows as app-icon and pattern wallpapers are; ``styled_share`` of the
    pictures draw their icons as pixel art, slabs, turned and shadowed (``_styled``),
    ``tonal_share`` as silhouettes a shade lighter or darker than the field (``tonal_colour``).

    Why: the served detector inpainted a held-out wallpaper's own app icons (a crop 16 dB below
    its input, metrics/eval.md) and refilled 12,483 pixels of another's icon pattern, because a
    logo mark (synth.logo_sprite, at most synth.OPACITY's 0.9) looks like such an icon. Here
    icons are paint, at full opacity, with nothing of the photo showing through: as clean
    backgrounds, and under marks, they teach the difference. ``icons`` are training icon files
    only (training/logos.py): validation's logo marks stay unseen."""
    canvas = Image.fromarray(_to_uint8(_field(rng, size, photos)))
    kind = rng.random()
    styled = kind < styled_share
    tonal = styled_share <= kind < styled_share + tonal_share
    shade = rng.choice((-1, 1)) * rng.uniform(0.04, 0.2)  # one for the whole tonal picture
    count = int(math.exp(rng.uniform(0, math.log(max_icons))))
    icon_size = int(math.exp(rng.uniform(math.log(12), math.log(size / 3))))
    if rng.random() < 0.5:  # rows and columns of icons, evenly spaced
        step = icon_size * rng.uniform(1.2, 2.5)
        offset = rng.uniform(0, step, 2)
        places = [(x, y) for y in np.arange(offset[1] - step, size, step)
                  for x in np.arange(offset[0] - step, size, step)]  # fmt: skip
        sizes = [icon_size] * len(places)
    else:
        places = [tuple(rng.uniform(-0.1, 1.0, 2) * size) for _ in range(count)]
        sizes = [int(icon_size * rng.uniform(0.6, 1.6)) for _ in places]
    for (x, y), side in zip(places, sizes, strict=True):
        icon = _icon_rgba(icons[rng.integers(len(icons))], max(4, side))
        if tonal:
            icon = _silhouette(icon, tonal_colour(canvas, x + side / 2, y + side / 2, shade))
        elif rng.random() < 0.3:
            icon = _silhouette(icon, _shape_colour(rng, photos))
        if styled:
            icon = _styled(rng, icon)
        if styled and rng.random() < 0.4:
            shadow = _shadow(icon, rng)
            pad = (shadow.width - icon.width) // 2
            drop = rng.uniform(0, 0.12, 2) * max(icon.size)
            canvas.paste(shadow, (int(x + drop[0]) - pad, int(y + drop[1]) - pad), shadow)
        canvas.paste(icon, (int(x), int(y)), icon)  # the icon's own alpha: its antialiased edge
    picture = np.asarray(canvas)
    return _scanlines(rng, picture) if styled and rng.random() < 0.25 else picture
