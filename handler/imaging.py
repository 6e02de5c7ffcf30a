"""Image bytes in and out of the handler: decode to RGB (+ alpha kept aside), encode back in kind.

Pure functions over bytes and numpy arrays; nothing here touches the disk.
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Pillow format name -> MIME type; the formats clearmark accepts and returns.
MIME_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
# What Pillow raises on malformed input besides OSError: its pure-Python parsers fail with these
# on hostile headers. Any of them escaping would fail the whole batch, not just this request.
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error)
# Greyscale at more than 8 bits (16-bit PNG): Pillow's convert("RGB") clips these to 255.
_DEEP_GREY_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")
JPEG_QUALITY = 95
WEBP_QUALITY = 95
# The grey of a detect_unsure mask's unsure regions (encode_mask): a person's mask reads 128
# and above as watermark (decode_mask), so this is kept apart from 255 and 0 and below 128.
UNSURE_LEVEL = 64


class ImageRejected(Exception):
    """An upload the handler cannot process; ``status`` is the HTTP code to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class DecodedImage:
    rgb: np.ndarray  # (H, W, 3) uint8, EXIF orientation applied
    alpha: np.ndarray | None  # (H, W) uint8, or None when the input had no transparency
    format: str  # a key of MIME_TYPES
    lossless: bool  # WebP only: whether the input was lossless WebP (PNG always is)
    icc_profile: bytes | None  # carried over so colours look the same after the round trip


@dataclass(frozen=True)
class CleanedImage:
    rgb: np.ndarray  # (H, W, 3) uint8, the watermark removed
    source: DecodedImage  # what came in: its format, alpha and colour profile go back out


def _is_lossless_webp(data: bytes) -> bool:
    """Walk the RIFF chunks: lossless WebP stores its image in a VP8L chunk, lossy in VP8."""
    offset = 12
    while offset + 8 <= len(data):
        tag = data[offset : offset + 4]
        if tag == b"VP8L":
            return True
        if tag == b"VP8 ":
            return False
        size = int.from_bytes(data[offset + 4 : offset + 8], "little")
        offset += 8 + size + (size & 1)
    return False


def _open(data: bytes, what: str) -> Image.Image:
    """Open and fully decode PNG, JPEG or WebP bytes; ImageRejected says why not (400, 415, 413
    or 422). ``what`` names the upload in the messages ("image", "mask")."""
    if not data:
        raise ImageRejected(400, f"empty {what}: send the {what} bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            fmt = img.format or ""
            if fmt not in MIME_TYPES:
                raise ImageRejected(
                    415, f"unsupported {what} format {fmt or 'unknown'}: send PNG, JPEG or WebP"
                )
            img.load()
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected(413, f"{what} has too many pixels: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise ImageRejected(415, f"the {what} is not an image: send PNG, JPEG or WebP") from exc
    except DECODE_ERRORS as exc:
        raise ImageRejected(422, f"could not decode the {what}: {exc}") from exc
    return img


def _eight_bit(img: Image.Image) -> Image.Image:
    """16-bit (0-65535) greyscale scaled to 8 bits ("L"); any other mode as it is."""
    if img.mode not in _DEEP_GREY_MODES:
        return img
    deep = np.asarray(img, dtype=np.float64)  # (H, W)
    return Image.fromarray(np.clip(np.rint(deep / 257), 0, 255).astype(np.uint8), "L")


def decode_image(data: bytes) -> DecodedImage:
    """Decode PNG, JPEG or WebP bytes; ImageRejected says why not (400, 415, 413 or 422)."""
    img = _open(data, "image")
    fmt = img.format or ""
    icc_profile = img.info.get("icc_profile")
    oriented = _eight_bit(ImageOps.exif_transpose(img))
    has_alpha = oriented.mode in ("RGBA", "LA", "PA") or "transparency" in oriented.info
    if has_alpha:
        rgba = oriented.convert("RGBA")
        rgb, alpha = rgba.convert("RGB"), np.asarray(rgba.getchannel("A"))
    else:
        rgb, alpha = oriented.convert("RGB"), None
    return DecodedImage(
        rgb=np.array(rgb),  # writable: torch.from_numpy warns on read-only arrays
        alpha=alpha,
        format=fmt,
        lossless=fmt == "PNG" or (fmt == "WEBP" and _is_lossless_webp(data)),
        icc_profile=icc_profile,
    )


def decode_mask(data: bytes, height: int, width: int) -> np.ndarray:
    """A person's watermark mask for an (height, width) image: PNG, JPEG or WebP, greyscale or
    colour, white (>= 128) where the watermark is, EXIF orientation applied as to the image.
    Returns (H, W) bool; ImageRejected as for images, and 422 when its size differs."""
    img = _eight_bit(ImageOps.exif_transpose(_open(data, "mask")))
    if img.size != (width, height):
        raise ImageRejected(
            422,
            f"the mask is {img.size[0]}x{img.size[1]} but the image is {width}x{height}: "
            "send a mask of the image's size",
        )
    return np.asarray(img.convert("L")) >= 128


def encode_mask(mask: np.ndarray, unsure: np.ndarray | None = None) -> bytes:
    """(H, W) bool -> greyscale PNG bytes, 255 where the watermark is; with ``unsure`` (H, W)
    bool, UNSURE_LEVEL there outside the mask: below decode_mask's 128, so the PNG sent back as
    it came removes what the mask holds and nothing more."""
    levels = mask.astype(np.uint8) * 255
    if unsure is not None:
        levels[unsure & ~mask] = UNSURE_LEVEL
    buffer = io.BytesIO()
    Image.fromarray(levels, "L").save(buffer, format="PNG")
    return buffer.getvalue()


def encode_image(cleaned: CleanedImage) -> bytes:
    """Encode the cleaned pixels in the format of their source, re-attaching its alpha channel."""
    like = cleaned.source
    img = Image.fromarray(cleaned.rgb, "RGB")
    if like.alpha is not None:
        img.putalpha(Image.fromarray(like.alpha, "L"))
    options: dict[str, object] = {}
    if like.icc_profile:
        options["icc_profile"] = like.icc_profile
    if like.format == "JPEG":
        # 4:4:4 keeps the colour of thin restored strokes from bleeding into neighbours.
        options.update(quality=JPEG_QUALITY, subsampling=0)
    elif like.format == "WEBP" and like.lossless:
        options.update(lossless=True)
    elif like.format == "WEBP":
        options.update(quality=WEBP_QUALITY)
    buffer = io.BytesIO()
    img.save(buffer, format=like.format, **options)
    return buffer.getvalue()
