"""Checks on image bytes: what format they are, whether they decode, whether they fit the limits.

Pure functions over bytes; the web layer maps UploadError to its HTTP status.
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass

from PIL import Image

# Pillow format name -> MIME type, for the formats the model handler encodes back.
SUPPORTED_FORMATS: dict[str, str] = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "WEBP": "image/webp",
}
# Pillow format name -> extension of the cleaned file offered for download.
FILE_EXTENSIONS: dict[str, str] = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SIGNATURE = b"\xff\xd8\xff"

# What Pillow raises on malformed input besides OSError (UnidentifiedImageError
# is one): its pure-Python parsers fail with these on hostile headers.
_PARSE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error)


class UploadError(Exception):
    """An upload the gateway refuses; status is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class ImageInfo:
    """An upload that decoded completely: Pillow format name, MIME type, size in pixels."""

    format: str
    mime: str
    width: int
    height: int


def sniff_format(data: bytes) -> str | None:
    """Pillow format name of a supported image, from its magic bytes alone; None otherwise."""
    if data.startswith(_PNG_SIGNATURE):
        return "PNG"
    if data.startswith(_JPEG_SIGNATURE):
        return "JPEG"
    # RIFF container: b"RIFF", 4-byte little-endian size, then the form type.
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def inspect_image(data: bytes, max_pixels: int) -> ImageInfo:
    """Check an upload in a fixed order and describe it, or raise UploadError.

    400 empty, 415 not PNG/JPEG/WebP, 422 unreadable header, 413 more than max_pixels,
    422 incomplete or corrupt pixel data. The last step decodes every pixel, so this is
    CPU work: call it from an executor in async code.
    """
    if not data:
        raise UploadError(400, "no image: the upload is empty")
    image_format = sniff_format(data)
    if image_format is None:
        supported = ", ".join(_display_name(name) for name in SUPPORTED_FORMATS)
        raise UploadError(415, f"unsupported image format; supported formats are {supported}")
    name = _display_name(image_format)
    try:
        # Our own pixel check below is authoritative; Pillow's bomb guard stays on as a
        # backstop, its warning raised as an error. catch_warnings is process-wide and
        # not thread-safe, which is one more reason not to rely on it alone.
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # formats=[...]: only the parser matching the signature ever sees the bytes.
            with Image.open(io.BytesIO(data), formats=[image_format]) as img:
                width, height = img.size
                _check_pixels(width, height, max_pixels)
                try:
                    img.load()
                except _PARSE_ERRORS:
                    raise UploadError(
                        422, f"could not decode the {name} image: it is truncated or corrupt"
                    ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UploadError(
            413,
            f"image has more than {Image.MAX_IMAGE_PIXELS:,} pixels; "
            f"the limit is {max_pixels:,} pixels",
        ) from None
    except _PARSE_ERRORS:
        raise UploadError(422, f"could not read the {name} header: the file is corrupt") from None
    return ImageInfo(image_format, SUPPORTED_FORMATS[image_format], width, height)


def result_mismatch(original: ImageInfo, data: bytes, content_type: str) -> str | None:
    """Why a cleaned image from the model does not match its input, or None if it does.

    The handler promises the input's format and size back; anything else is a model bug.
    Reads only the header, so this is cheap.
    """
    if content_type != original.mime:
        return f"model answered {content_type or 'no content type'}, expected {original.mime}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[original.format]) as img:
                size = img.size
    except (*_PARSE_ERRORS, Image.DecompressionBombError, Image.DecompressionBombWarning):
        return f"model answered an unreadable {_display_name(original.format)} image"
    expected = (original.width, original.height)
    if size != expected:
        return f"model answered a {size[0]}x{size[1]} image, expected {expected[0]}x{expected[1]}"
    return None


def _check_pixels(width: int, height: int, max_pixels: int) -> None:
    pixels = width * height
    if pixels > max_pixels:
        raise UploadError(
            413,
            f"image is {width}x{height} = {pixels:,} pixels; the limit is {max_pixels:,} pixels",
        )


def _display_name(image_format: str) -> str:
    return "WebP" if image_format == "WEBP" else image_format
