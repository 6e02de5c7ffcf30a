"""Checks on image bytes: what format they are, whether they decode, whether they fit the limits.

Pure functions over bytes; the web layer maps UploadError to its HTTP status.
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass

from PIL import ExifTags, Image

# Pillow format name -> MIME type, for the formats the model handler encodes back.
SUPPORTED_FORMATS: dict[str, str] = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "WEBP": "image/webp",
}
# Pillow format name -> extension of the cleaned file offered for download.
FILE_EXTENSIONS: dict[str, str] = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}

# The longest side accepted, whatever the pixel count: WebP's own limit is 16,383, and a
# 16-megapixel strip one pixel high is not a photo.
MAX_SIDE = 16384

# EXIF orientations that turn the picture a quarter turn: its displayed width is its height.
_QUARTER_TURNS = {5, 6, 7, 8}

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
    """An upload that decoded completely: Pillow format name, MIME type, and its size in pixels
    as displayed, EXIF orientation applied (the handler cleans the upright picture)."""

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


def inspect_image(data: bytes, max_pixels: int, role: str = "image") -> ImageInfo:
    """Check an upload in a fixed order and describe it, or raise UploadError.

    400 empty, 415 not PNG/JPEG/WebP, 422 unreadable header, 413 more than max_pixels or a
    side over MAX_SIDE, 422 animated, 422 incomplete or corrupt pixel data; role ("image",
    "mask") names the upload in the messages. The last step decodes every pixel, so this is
    CPU work: call it from an executor in async code.
    """
    if not data:
        raise UploadError(400, f"no {role}: the upload is empty")
    image_format = sniff_format(data)
    if image_format is None:
        supported = ", ".join(_display_name(name) for name in SUPPORTED_FORMATS)
        raise UploadError(415, f"unsupported {role} format; supported formats are {supported}")
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
                _check_pixels(width, height, max_pixels, role)
                if getattr(img, "n_frames", 1) > 1:
                    raise UploadError(
                        422, f"the {name} {role} is animated; send a single still image"
                    )
                try:
                    img.load()
                    # After load: a PNG may keep its eXIf chunk behind the pixel data.
                    orientation = img.getexif().get(ExifTags.Base.Orientation, 1)
                except _PARSE_ERRORS:
                    raise UploadError(
                        422, f"could not decode the {name} {role}: it is truncated or corrupt"
                    ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UploadError(
            413,
            f"{role} has more than {Image.MAX_IMAGE_PIXELS:,} pixels; "
            f"the limit is {max_pixels:,} pixels",
        ) from None
    except _PARSE_ERRORS:
        raise UploadError(
            422, f"could not read the {name} header: the {role} file is corrupt"
        ) from None
    if orientation in _QUARTER_TURNS:
        width, height = height, width
    return ImageInfo(image_format, SUPPORTED_FORMATS[image_format], width, height)


def inspect_mask(data: bytes, image: ImageInfo, max_pixels: int) -> ImageInfo:
    """Check a person's watermark mask like an image, then that it is the image's size.

    Any supported format, greyscale or colour (the handler reads white, >= 128, as the
    watermark); 422 when its displayed size differs from the image's. CPU work, as
    inspect_image.
    """
    mask = inspect_image(data, max_pixels, role="mask")
    if (mask.width, mask.height) != (image.width, image.height):
        raise UploadError(
            422,
            f"the mask is {mask.width}x{mask.height} but the image is "
            f"{image.width}x{image.height}; send a mask of the image's size",
        )
    return mask


def result_mismatch(original: ImageInfo, data: bytes, content_type: str) -> str | None:
    """Why a cleaned image from the model does not match its input, or None if it does.

    The handler promises the input's format and displayed size back. Reads only the header,
    so this is cheap.
    """
    return _answer_mismatch(original, data, content_type, original.format, "image", None)


def mask_mismatch(original: ImageInfo, data: bytes, content_type: str) -> str | None:
    """Why a predicted mask from the model does not fit its input, or None if it does.

    The handler promises a greyscale ("L") PNG of the input's displayed size. Reads only the
    header, so this is cheap.
    """
    return _answer_mismatch(original, data, content_type, "PNG", "mask", "L")


def _answer_mismatch(
    original: ImageInfo,
    data: bytes,
    content_type: str,
    image_format: str,
    role: str,
    mode: str | None,
) -> str | None:
    """The model's answer must be image_format, of the original's size, and in mode when
    one is given."""
    mime = SUPPORTED_FORMATS[image_format]
    if content_type != mime:
        return f"model answered {content_type or 'no content type'}, expected {mime}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[image_format]) as img:
                size, answered_mode = img.size, img.mode
    except (*_PARSE_ERRORS, Image.DecompressionBombError, Image.DecompressionBombWarning):
        return f"model answered an unreadable {_display_name(image_format)} {role}"
    # The handler answers upright pixels without an orientation tag: the stored size is the
    # displayed one, so the header is enough.
    expected = (original.width, original.height)
    if size != expected:
        return f"model answered a {size[0]}x{size[1]} {role}, expected {expected[0]}x{expected[1]}"
    if mode is not None and answered_mode != mode:
        return f"model answered a {answered_mode} {role}, expected mode {mode}"
    return None


def _check_pixels(width: int, height: int, max_pixels: int, role: str) -> None:
    if max(width, height) > MAX_SIDE:
        raise UploadError(
            413, f"{role} is {width}x{height}; the limit is {MAX_SIDE:,} pixels on a side"
        )
    pixels = width * height
    if pixels > max_pixels:
        raise UploadError(
            413,
            f"{role} is {width}x{height} = {pixels:,} pixels; the limit is {max_pixels:,} pixels",
        )


def _display_name(image_format: str) -> str:
    return "WebP" if image_format == "WEBP" else image_format
