"""The uploaded image (and a person's mask): read from a request into memory under the byte
cap, and the download name of what is sent back.

Uploads never touch the disk: request.post() would spool file fields to temporary
files, so the body is streamed chunk by chunk instead.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import unquote

from aiohttp import BodyPartReader, hdrs, web
from aiohttp.http_exceptions import BadHttpMessage

from gateway.validation import FILE_EXTENSIONS, UploadError

IMAGE_FIELD = "image"
MASK_FIELD = "mask"
# /detect's query parameter: true asks for the regions the model saw and left, too.
UNSURE_PARAMETER = "unsure"
# Room for multipart boundaries, part headers and small extra fields on top of the files.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
_CHUNK_BYTES = 64 * 1024
_MAX_STEM_CHARS = 100
# The characters a download name keeps: safe in a quoted header value and on any file system.
SAFE_FILENAME_CHARS = "A-Za-z0-9._-"
_UNSAFE_FILENAME_CHARS = re.compile(f"[^{SAFE_FILENAME_CHARS}]+")
# What a download name ends with before its extension: a cleaned image, a predicted mask.
CLEANED_SUFFIX = "clearmark"
MASK_SUFFIX = "mask"


@dataclass(frozen=True)
class Upload:
    """Encoded image bytes as received, the client's filename (multipart only), and the
    `mask` field's bytes when the route takes one and the form has it."""

    data: bytes
    filename: str | None
    mask: bytes | None = None


async def read_upload(request: web.Request, max_bytes: int, *, with_mask: bool) -> Upload:
    """Read the image from a multipart `image` field or from a raw image/* body, and with
    with_mask the optional multipart `mask` field too, in either order.

    Each file field may hold max_bytes; every other field is read and dropped, all of them
    together within MULTIPART_OVERHEAD_BYTES. Raises UploadError: 400 without a content type,
    415 for any other content type, 413 past a file's limit (before reading anything when
    Content-Length already says so), 400 for a form without an image field, with a file field
    twice, with other fields past their allowance, or a malformed form.
    """
    if hdrs.CONTENT_TYPE not in request.headers:
        raise UploadError(
            400,
            f"no image: send multipart/form-data with an {IMAGE_FIELD!r} field or an image/* body",
        )
    content_type = request.content_type
    if content_type == "multipart/form-data":
        files = (IMAGE_FIELD, MASK_FIELD) if with_mask else (IMAGE_FIELD,)
        _check_declared_length(
            request, len(files) * max_bytes + MULTIPART_OVERHEAD_BYTES, max_bytes
        )
        found = await _read_multipart(request, max_bytes, files)
        if IMAGE_FIELD not in found:
            raise UploadError(400, f"no image: the form has no {IMAGE_FIELD!r} field")
        image, filename = found[IMAGE_FIELD]
        mask = found.get(MASK_FIELD)
        return Upload(image, filename, None if mask is None else mask[0])
    if content_type.startswith("image/"):
        _check_declared_length(request, max_bytes, max_bytes)
        chunks = request.content.iter_chunked(_CHUNK_BYTES)
        return Upload(await _collect(chunks, max_bytes, _too_large("upload", max_bytes)), None)
    raise UploadError(
        415,
        f"expected a multipart/form-data upload with an {IMAGE_FIELD!r} field "
        f"or an image/* body, got {content_type}",
    )


def download_filename(client_filename: str | None, image_format: str, suffix: str) -> str:
    """Name of a file sent back: '<safe stem>-<suffix>.<ext>', stem from the upload's name.

    The stem keeps only SAFE_FILENAME_CHARS; it falls back to 'image'.
    """
    # Browsers percent-escape quotes and line breaks in multipart filenames, and aiohttp
    # clients escape every non-token character; some old browsers send a full path.
    basename = re.split(r"[\\/]", unquote(client_filename or ""))[-1]
    stem = basename.rsplit(".", 1)[0] if "." in basename else basename
    safe_stem = _UNSAFE_FILENAME_CHARS.sub("_", stem).strip("._-")[:_MAX_STEM_CHARS]
    return f"{safe_stem or 'image'}-{suffix}.{FILE_EXTENSIONS[image_format]}"


def _check_declared_length(request: web.Request, limit: int, max_bytes: int) -> None:
    declared = request.content_length
    if declared is not None and declared > limit:
        raise UploadError(413, _too_large("upload", max_bytes))


async def _read_multipart(
    request: web.Request, max_bytes: int, files: tuple[str, ...]
) -> dict[str, tuple[bytes, str | None]]:
    """The bytes and client filename of the first field of each name in files."""
    found: dict[str, tuple[bytes, str | None]] = {}
    overhead_left = MULTIPART_OVERHEAD_BYTES
    try:
        reader = await request.multipart()
        # To the end: a second image hidden behind the first must not go unnoticed.
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise UploadError(400, "nested multipart bodies are not supported")
            name = part.name
            if name in found:
                raise UploadError(400, f"the form has more than one {name!r} field; send one")
            if name in files:
                what = "upload" if name == IMAGE_FIELD else name
                data = await _collect(_part_chunks(part), max_bytes, _too_large(what, max_bytes))
                found[name] = (data, part.filename)
            else:
                others = " and ".join(repr(file) for file in files)
                too_large = (
                    f"the form's fields other than {others} are larger than the limit of "
                    f"{MULTIPART_OVERHEAD_BYTES:,} bytes"
                )
                dropped = await _collect(_part_chunks(part), overhead_left, too_large, status=400)
                overhead_left -= len(dropped)
    except (ValueError, BadHttpMessage):
        # aiohttp's multipart parser reports a missing boundary or broken framing with
        # ValueError, and a part's header it cannot parse (a control character, a line too
        # long) with BadHttpMessage.
        raise UploadError(400, "malformed multipart/form-data body") from None
    return found


async def _part_chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(_CHUNK_BYTES):
        yield chunk


async def _collect(
    chunks: AsyncIterator[bytes], max_bytes: int, too_large: str, status: int = 413
) -> bytes:
    """Join chunks in memory, stopping with status and the message too_large as soon as more
    than max_bytes arrived."""
    buffer = bytearray()
    async for chunk in chunks:
        buffer += chunk
        if len(buffer) > max_bytes:
            raise UploadError(status, too_large)
    return bytes(buffer)


def _too_large(what: str, max_bytes: int) -> str:
    return f"{what} is larger than the limit of {max_bytes:,} bytes"
