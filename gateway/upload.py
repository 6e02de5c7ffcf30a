"""The uploaded image: read from a request into memory under the byte cap, and its download name.

Uploads never touch the disk: request.post() would spool file fields to temporary
files, so the body is streamed chunk by chunk instead.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import unquote

from aiohttp import BodyPartReader, web

from gateway.validation import FILE_EXTENSIONS, UploadError

IMAGE_FIELD = "image"
# Room for multipart boundaries, part headers and small extra fields on top of the image.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
_CHUNK_BYTES = 64 * 1024
_MAX_STEM_CHARS = 100
_UNSAFE_FILENAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Upload:
    """Encoded image bytes as received, and the client's filename (multipart only)."""

    data: bytes
    filename: str | None


async def read_upload(request: web.Request, max_bytes: int) -> Upload:
    """Read the image from a multipart `image` field or from a raw image/* body.

    Raises UploadError: 415 for any other content type, 413 past max_bytes (before
    reading anything when Content-Length already says so), 400 for a form without an
    image field or a malformed form. Only the first `image` field is read.
    """
    content_type = request.content_type
    if content_type == "multipart/form-data":
        _check_declared_length(request, max_bytes + MULTIPART_OVERHEAD_BYTES, max_bytes)
        return await _read_multipart(request, max_bytes)
    if content_type.startswith("image/"):
        _check_declared_length(request, max_bytes, max_bytes)
        return Upload(await _collect(request.content.iter_chunked(_CHUNK_BYTES), max_bytes), None)
    raise UploadError(
        415,
        f"expected a multipart/form-data upload with an {IMAGE_FIELD!r} field "
        f"or an image/* body, got {content_type}",
    )


def download_filename(client_filename: str | None, image_format: str) -> str:
    """Name of the cleaned file: '<safe stem>-clearmark.<ext>', stem from the upload's name.

    The stem keeps only [A-Za-z0-9._-] so it is safe inside a quoted header value and
    on any file system; it falls back to 'image'.
    """
    # Browsers percent-escape quotes and line breaks in multipart filenames, and aiohttp
    # clients escape every non-token character; some old browsers send a full path.
    basename = re.split(r"[\\/]", unquote(client_filename or ""))[-1]
    stem = basename.rsplit(".", 1)[0] if "." in basename else basename
    safe_stem = _UNSAFE_FILENAME_CHARS.sub("_", stem).strip("._-")[:_MAX_STEM_CHARS]
    return f"{safe_stem or 'image'}-clearmark.{FILE_EXTENSIONS[image_format]}"


def _check_declared_length(request: web.Request, limit: int, max_bytes: int) -> None:
    declared = request.content_length
    if declared is not None and declared > limit:
        raise _too_large(max_bytes)


async def _read_multipart(request: web.Request, max_bytes: int) -> Upload:
    # Fields before the image are read and dropped; together they share the overhead budget.
    budget = max_bytes + MULTIPART_OVERHEAD_BYTES
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise UploadError(400, "nested multipart bodies are not supported")
            if part.name == IMAGE_FIELD:
                data = await _collect(_part_chunks(part), min(max_bytes, budget))
                return Upload(data, part.filename)
            budget -= len(await _collect(_part_chunks(part), budget))
    except ValueError:
        # aiohttp's multipart parser reports a missing boundary or broken framing this way.
        raise UploadError(400, "malformed multipart/form-data body") from None
    raise UploadError(400, f"no image: the form has no {IMAGE_FIELD!r} field")


async def _part_chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(_CHUNK_BYTES):
        yield chunk


async def _collect(chunks: AsyncIterator[bytes], max_bytes: int) -> bytes:
    """Join chunks in memory, stopping with 413 as soon as more than max_bytes arrived."""
    buffer = bytearray()
    async for chunk in chunks:
        buffer += chunk
        if len(buffer) > max_bytes:
            raise _too_large(max_bytes)
    return bytes(buffer)


def _too_large(max_bytes: int) -> UploadError:
    return UploadError(413, f"upload is larger than the limit of {max_bytes:,} bytes")
