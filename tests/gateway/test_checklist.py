"""Issue 11's checklist against the gateway and a fake TorchServe: hostile uploads, a hostile
backend, and what the gateway leaves behind (nothing on disk, nothing in the logs).

The numbers in the section titles are the checklist's; the faults that need the real
TorchServe are in tests/test_faults.py, the handler's output in tests/handler/test_imaging.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import logging
import os
import resource
import socket
import struct
import sys
import tempfile
import time
import zlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from PIL import Image

from gateway.__main__ import ACCESS_LOG_FORMAT
from gateway.app import create_app
from gateway.keys import ADMISSION
from gateway.settings import Settings
from gateway.validation import MAX_SIDE, UploadError, inspect_image
from tests.gateway.conftest import (
    FAIL_500,
    HUGE,
    MAX_PIXELS,
    MAX_UPLOAD_BYTES,
    SLOW,
    SUCCESS,
    TIMED_OUT,
    WORKER_KILLED,
    WRONG_TYPE,
    AiohttpClient,
    FakeTorchServe,
    GatewayClient,
    encode,
    multipart,
    png_claiming_size,
)

REMOVE = "/api/v1/remove"
SIZE = (64, 48)


async def status_and_error(response: ClientResponse) -> tuple[int, str]:
    if response.content_type == "application/json":
        return response.status, (await response.json())["error"]
    return response.status, ""


async def post_raw(client: GatewayClient, data: bytes, mime: str) -> ClientResponse:
    return await client.post(REMOVE, data=data, headers={"Content-Type": mime})


class AuditLog:
    """Files opened for writing and processes started by this Python process while on."""

    def __init__(self) -> None:
        self.on = False
        self.writes: list[str] = []
        self.spawns: list[str] = []

    def __call__(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.on:
            return
        if event == "open" and len(args) >= 2 and isinstance(args[1], str):
            if any(flag in args[1] for flag in "wax+"):
                self.writes.append(str(args[0]))
        elif event == "open" and len(args) >= 3 and isinstance(args[2], int):
            if args[2] & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
                self.writes.append(str(args[0]))
        elif event in ("subprocess.Popen", "os.system", "os.posix_spawn", "os.exec", "os.fork"):
            self.spawns.append(f"{event} {args[:2]}")


_AUDIT = AuditLog()
sys.addaudithook(_AUDIT)  # audit hooks cannot be removed; the log records only while on


@pytest.fixture(scope="module", autouse=True)
def hypothesis_home_in_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Hypothesis caches what it learns in ./.hypothesis unless told otherwise."""
    set_hypothesis_home_dir(tmp_path_factory.mktemp("hypothesis"))
    yield
    set_hypothesis_home_dir(None)


@pytest.fixture
def audit() -> Iterator[AuditLog]:
    _AUDIT.writes.clear()
    _AUDIT.spawns.clear()
    _AUDIT.on = True
    try:
        yield _AUDIT
    finally:
        _AUDIT.on = False


# --- 1, 2: what is not an upload -> 400 ------------------------------------------------------


async def test_1_empty_post_without_a_content_type_is_400(client: GatewayClient) -> None:
    response = await client.post(REMOVE, skip_auto_headers=["Content-Type"])

    status, message = await status_and_error(response)
    assert (status, "no image" in message) == (400, True)


async def test_2_a_second_image_part_is_400(
    client: GatewayClient, fake_torchserve: FakeTorchServe
) -> None:
    form = multipart(encode("RGB", SIZE, "PNG"), "a.png", "image/png")
    form.add_field("image", encode("RGB", SIZE, "PNG"), filename="b.png", content_type="image/png")

    status, message = await status_and_error(await client.post(REMOVE, data=form))

    assert status == 400
    assert "more than one 'image' field" in message
    assert fake_torchserve.received == []


async def test_2_a_huge_text_field_is_400(client: GatewayClient) -> None:
    form = multipart(encode("RGB", SIZE, "PNG"), "a.png", "image/png")
    # Within what Content-Length may announce (two files and the allowance), over the
    # 64 KiB that fields other than the files share; a larger body is 413 from its header.
    form.add_field("comment", "x" * 150_000)

    status, message = await status_and_error(await client.post(REMOVE, data=form))

    assert (status, "fields other than" in message) == (400, True)


# --- 3, 4: too many bytes -> 413, without reading them ----------------------------------------


async def _announced_but_never_sent(
    client: GatewayClient, content_type: str, length: int
) -> ClientResponse:
    async def first_bytes_then_nothing() -> AsyncIterator[bytes]:
        yield b"\x89PNG"
        await asyncio.sleep(3600)

    return await asyncio.wait_for(
        client.post(
            REMOVE,
            data=first_bytes_then_nothing(),
            headers={"Content-Type": content_type, "Content-Length": str(length)},
        ),
        timeout=5,
    )


@pytest.mark.parametrize(
    "content_type", ["image/png", "multipart/form-data; boundary=x"], ids=["raw", "multipart"]
)
async def test_3_content_length_over_the_cap_is_413_before_the_body(
    client: GatewayClient, content_type: str
) -> None:
    response = await _announced_but_never_sent(client, content_type, 50 * MAX_UPLOAD_BYTES)

    status, message = await status_and_error(response)
    assert (status, f"limit of {MAX_UPLOAD_BYTES:,} bytes" in message) == (413, True)


async def test_4_a_chunked_body_over_the_cap_is_413_and_not_read_to_its_end(
    client: GatewayClient,
) -> None:
    sent = 0
    total = 200 * MAX_UPLOAD_BYTES  # 40 MB

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        while sent < total:
            sent += 64 * 1024
            yield bytes(64 * 1024)

    try:
        response = await client.post(REMOVE, data=chunks(), headers={"Content-Type": "image/png"})
        assert response.status == 413
    except OSError:
        pass  # the gateway answered 413 and closed while we were still writing
    # The gateway stopped at the cap; what left this client is the cap plus socket buffers.
    assert sent < total / 4


# --- 5, 6: not a supported image -> 415, and no decoder but Pillow's own -------------------


async def test_5_html_sent_as_png_is_415(client: GatewayClient) -> None:
    html = b"<!doctype html><html><script>alert(document.cookie)</script></html>"

    status, message = await status_and_error(await post_raw(client, html, "image/png"))

    assert (status, "unsupported image format" in message) == (415, True)


def _other_formats() -> dict[str, bytes]:
    formats = {name: encode("RGB", SIZE, name) for name in ("GIF", "TIFF", "BMP")}
    formats["PSD"] = b"8BPS\x00\x01" + bytes(20)
    formats["PDF"] = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"
    formats["EPS"] = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"
    formats["SVG"] = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    return formats


@pytest.mark.parametrize(("name", "data"), sorted(_other_formats().items()))
async def test_6_other_formats_are_415_and_spawn_nothing(
    client: GatewayClient, audit: AuditLog, name: str, data: bytes
) -> None:
    response = await post_raw(client, data, f"image/{name.lower()}")

    status, message = await status_and_error(response)
    assert (status, "supported formats are PNG, JPEG, WebP" in message) == (415, True)
    assert audit.spawns == []  # EPS would run Ghostscript if Pillow ever parsed it


# --- 7, 8: truncated and fuzzed bytes -> 4xx, never 500 ---------------------------------------


@pytest.mark.parametrize("image_format", ["PNG", "JPEG", "WEBP"])
async def test_7_truncated_images_are_422(client: GatewayClient, image_format: str) -> None:
    image = encode("RGB", SIZE, image_format)

    response = await post_raw(client, image[: len(image) * 2 // 3], "image/png")

    assert response.status == 422


_SEEDS = [encode("RGB", (24, 16), fmt) for fmt in ("PNG", "JPEG", "WEBP")]


@st.composite
def _fuzzed_image(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(_SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        position = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif action == "cut":
            del data[position : position + draw(st.integers(1, 64))]
        else:
            data[position:position] = draw(st.binary(min_size=1, max_size=32))
        if not data:
            break
    return bytes(data)


def test_8_fuzzed_image_bytes_are_accepted_or_refused_with_a_4xx() -> None:
    """inspect_image is everything the gateway does with the bytes before TorchServe: it
    either describes the image or raises UploadError with a 4xx; any other exception would
    be a 500. 300 mutated PNG, JPEG and WebP files. (Built here, not at import, so that
    Hypothesis writes its cache under tmp_path: hypothesis_home_in_tmp.)"""

    @hypothesis_settings(
        max_examples=300,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(_fuzzed_image())
    def accepted_or_4xx(data: bytes) -> None:
        try:
            info = inspect_image(data, MAX_PIXELS)
        except UploadError as refusal:
            assert 400 <= refusal.status < 500
        else:
            assert info.width * info.height <= MAX_PIXELS

    accepted_or_4xx()


# --- 9, 10, 11: pixel bombs and edge sizes ----------------------------------------------------


def _real_png_bomb(side: int) -> bytes:
    """A valid 1-bit greyscale PNG of side x side black pixels, zlib-compressed row by row."""
    row = b"\x00" + bytes((side + 7) // 8)
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


async def test_9_a_30000_pixel_square_png_bomb_is_413_fast_without_a_memory_jump(
    aiohttp_client: AiohttpClient, settings: Settings
) -> None:
    bomb = _real_png_bomb(30_000)
    assert len(bomb) < 1_000_000
    # The default caps: 32 MiB and 16,777,216 pixels.
    defaults = Settings()
    client = await aiohttp_client(
        create_app(
            dataclasses.replace(
                settings, max_upload_bytes=defaults.max_upload_bytes, max_pixels=defaults.max_pixels
            )
        )
    )
    peak_before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()

    status, message = await status_and_error(await post_raw(client, bomb, "image/png"))

    assert time.perf_counter() - start < 1.0
    assert status == 413
    assert "the limit is 16,777,216 pixels" in message
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before_kib < 50 * 1024


@pytest.mark.parametrize(
    ("size", "status"),
    [
        ((300, 300), 200),  # exactly the 90,000-pixel cap of the test settings
        ((301, 300), 413),
        ((300, 301), 413),
    ],
)
async def test_10_exactly_the_pixel_cap_is_accepted_one_row_more_is_not(
    client: GatewayClient, size: tuple[int, int], status: int
) -> None:
    # Greyscale noise: 90 kB, well under the byte cap.
    response = await post_raw(client, encode("L", size, "PNG"), "image/png")

    assert response.status == status


@pytest.mark.parametrize(
    ("width", "height", "statuses"),
    [(1, 2**31 - 1, {413}), (4, 0, {413, 422}), (0, 4, {413, 422})],
    ids=["1x(2^31-1)", "zero-height", "zero-width"],
)
async def test_10_absurd_sizes_are_refused(
    client: GatewayClient, width: int, height: int, statuses: set[int]
) -> None:
    response = await post_raw(client, png_claiming_size(width, height), "image/png")

    assert response.status in statuses


async def test_11_a_side_over_the_maximum_is_413(client: GatewayClient) -> None:
    # 16,385 pixels in all: under the pixel cap, over the side limit.
    response = await post_raw(client, png_claiming_size(MAX_SIDE + 1, 1), "image/png")

    status, message = await status_and_error(response)
    assert (status, f"limit is {MAX_SIDE:,} pixels on a side" in message) == (413, True)


# --- 12, 13: animations and unusual pixel layouts ---------------------------------------------


def _animated(image_format: str) -> bytes:
    frames = [Image.new("RGB", SIZE, colour) for colour in ("red", "blue", "green")]
    buffer = io.BytesIO()
    frames[0].save(buffer, format=image_format, save_all=True, append_images=frames[1:])
    return buffer.getvalue()


@pytest.mark.parametrize(("image_format", "name"), [("PNG", "PNG"), ("WEBP", "WebP")])
async def test_12_animated_png_and_webp_are_422_with_a_message(
    client: GatewayClient, image_format: str, name: str
) -> None:
    response = await post_raw(client, _animated(image_format), "image/png")

    status, message = await status_and_error(response)
    assert (status, message) == (422, f"the {name} image is animated; send a single still image")


async def test_12_an_animated_gif_is_415_as_every_gif(client: GatewayClient) -> None:
    assert (await post_raw(client, _animated("GIF"), "image/gif")).status == 415


def _unusual_layouts() -> dict[str, bytes]:
    cmyk = io.BytesIO()
    Image.new("CMYK", SIZE, (10, 20, 30, 40)).save(cmyk, format="JPEG")
    deep = io.BytesIO()
    Image.new("I;16", SIZE, 40_000).save(deep, format="PNG")
    palette = Image.new("P", SIZE, 1)
    palette.putpalette([0, 0, 0, 255, 0, 0] * 128)
    transparent = io.BytesIO()
    palette.save(transparent, format="PNG", transparency=0)
    return {
        "cmyk-jpeg": cmyk.getvalue(),
        "16-bit-png": deep.getvalue(),
        "palette-transparency-png": transparent.getvalue(),
        "la-png": encode("LA", SIZE, "PNG"),
    }


@pytest.mark.parametrize(("name", "data"), sorted(_unusual_layouts().items()))
async def test_13_unusual_layouts_are_accepted(
    client: GatewayClient, name: str, data: bytes
) -> None:
    # What the handler makes of them (8-bit RGB, alpha kept) is tests/handler/test_imaging.py.
    response = await post_raw(client, data, "image/png")

    assert response.status == 200, name


# --- 16, 17: what the answer says about itself -------------------------------------------------


async def test_16_a_polyglot_answer_is_an_attachment_never_sniffed(
    client: GatewayClient,
) -> None:
    polyglot = encode("RGB", SIZE, "JPEG") + b"<html><script>alert(1)</script></html>"

    response = await client.post(REMOVE, data=multipart(polyglot, "photo.jpg", "image/jpeg"))

    assert response.status == 200
    assert response.content_type == "image/jpeg"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Disposition"] == 'attachment; filename="photo-clearmark.jpg"'
    assert response.headers["Cache-Control"] == "no-store"


def _form_with_raw_filename(filename: bytes, image: bytes) -> tuple[bytes, str]:
    """A multipart body whose filename bytes go out exactly as given (no client escaping)."""
    boundary = "clearmarkboundary"
    body = (
        f"--{boundary}\r\n".encode()
        + b'Content-Disposition: form-data; name="image"; filename="'
        + filename
        + b'"\r\nContent-Type: image/png\r\n\r\n'
        + image
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize(
    "filename",
    [
        b"../../../etc/passwd",
        b"..\\..\\windows\\win.ini",
        b"a" * 5000 + b".png",
        b"evil%0d%0aSet-Cookie: session=1.png",
        b"%22; filename=%22x.html",
        "caf\u00e9 \u202egnp.exe".encode(),
    ],
    ids=["traversal", "backslash-traversal", "5kb", "crlf", "quote", "rtl-override"],
)
async def test_17_hostile_filenames_are_never_echoed_raw(
    client: GatewayClient, filename: bytes
) -> None:
    body, content_type = _form_with_raw_filename(filename, encode("RGB", SIZE, "PNG"))

    response = await client.post(REMOVE, data=body, headers={"Content-Type": content_type})

    assert response.status == 200
    disposition = response.headers["Content-Disposition"]
    name = disposition.removeprefix('attachment; filename="').removesuffix('"')
    assert disposition == f'attachment; filename="{name}"'
    assert name.endswith("-clearmark.png")
    assert len(name) <= 100 + len("-clearmark.png")
    assert set(name) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
    assert ".." not in name and "Set-Cookie" not in response.headers


# --- 21, 22, 26: a backend that is down, silent or broken ------------------------------------


async def test_21_torchserve_down_is_503_within_2_s(
    aiohttp_client: AiohttpClient, settings: Settings, closed_port_url: str
) -> None:
    client = await aiohttp_client(
        create_app(dataclasses.replace(settings, torchserve_url=closed_port_url))
    )
    start = time.perf_counter()

    response = await post_raw(client, encode("RGB", SIZE, "PNG"), "image/png")

    assert time.perf_counter() - start < 2
    assert response.status == 503
    assert response.headers["Retry-After"]


async def test_22_a_backend_that_accepts_and_never_answers_is_504_and_leaks_no_task(
    aiohttp_client: AiohttpClient, settings: Settings
) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections (the kernel does) and never reads or answers
    url = f"http://127.0.0.1:{silent.getsockname()[1]}"
    client = await aiohttp_client(create_app(dataclasses.replace(settings, torchserve_url=url)))
    tasks_before = len(_tasks_but_idle_connections())
    start = time.perf_counter()
    try:
        response = await post_raw(client, encode("RGB", SIZE, "PNG"), "image/png")
    finally:
        silent.close()

    elapsed = time.perf_counter() - start
    assert response.status == 504
    assert settings.inference_timeout_s <= elapsed < settings.inference_timeout_s + 1
    await asyncio.sleep(0.1)
    # Besides the test client's keep-alive connection, waiting for its next request.
    assert len(_tasks_but_idle_connections()) <= tasks_before
    assert client.app is not None and client.app[ADMISSION].active == 0


def _tasks_but_idle_connections() -> list[asyncio.Task[Any]]:
    return [
        task for task in asyncio.all_tasks() if "RequestHandler.start" not in repr(task.get_coro())
    ]


@pytest.mark.parametrize("mode", [HUGE, WRONG_TYPE], ids=["oversized", "garbage"])
async def test_26_an_oversized_or_garbage_backend_answer_is_502(
    client: GatewayClient, fake_torchserve: FakeTorchServe, mode: str
) -> None:
    fake_torchserve.mode = mode

    response = await post_raw(client, encode("RGB", SIZE, "PNG"), "image/png")

    assert response.status == 502


# --- 24: a handler slower than responseTimeout (the real one: tests/test_faults.py) ---------


async def test_24_torchserve_giving_up_on_a_slow_handler_is_504_and_a_crash_stays_502(
    client: GatewayClient, fake_torchserve: FakeTorchServe
) -> None:
    image = encode("RGB", SIZE, "PNG")
    fake_torchserve.mode = TIMED_OUT  # 500 "Worker died." after responseTimeout

    timed_out = await status_and_error(await post_raw(client, image, "image/png"))

    fake_torchserve.mode = FAIL_500  # the same answer at once: the worker crashed
    crashed = await status_and_error(await post_raw(client, image, "image/png"))
    assert timed_out == (504, "the model ran out of time on this image; try a smaller one")
    assert crashed == (502, "the model failed on this image (500)")


# --- 29: a worker killed by the kernel's memory limit ---------------------------------------


async def test_29_a_worker_killed_for_memory_is_a_clean_502_not_a_413(
    client: GatewayClient, fake_torchserve: FakeTorchServe
) -> None:
    # TorchServe 0.12 answers 413 "Worker died." when the worker's exit status is 137.
    fake_torchserve.mode = WORKER_KILLED

    status, message = await status_and_error(
        await post_raw(client, encode("RGB", SIZE, "PNG"), "image/png")
    )

    assert (status, message) == (502, "the model failed on this image (413)")
    fake_torchserve.mode = SUCCESS
    assert (await post_raw(client, encode("RGB", SIZE, "PNG"), "image/png")).status == 200


# --- 28: a client that goes away gives its slots back -----------------------------------------


async def _disconnect_after(client: GatewayClient, head: bytes, body: bytes) -> None:
    host, port = client.host, client.port
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(head + body)
    await writer.drain()
    await asyncio.sleep(0.1)
    writer.close()
    await writer.wait_closed()
    del reader


async def _eventually_cleans(client: GatewayClient, within_s: float) -> int:
    deadline = time.monotonic() + within_s
    while True:
        status = (await post_raw(client, encode("RGB", SIZE, "PNG"), "image/png")).status
        if status == 200 or time.monotonic() > deadline:
            return status
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("when", ["mid-upload", "mid-inference"])
async def test_28_a_client_disconnecting_releases_its_slots(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    fake_torchserve: FakeTorchServe,
    when: str,
) -> None:
    # One slot in the gateway and one per client: a leaked slot would refuse every upload.
    client = await aiohttp_client(
        create_app(
            dataclasses.replace(
                settings, max_in_flight=1, max_uploads_per_client=1, rate_limit_per_minute=100
            )
        )
    )
    image = encode("RGB", SIZE, "PNG")
    sent = image[:100] if when == "mid-upload" else image
    head = (
        f"POST {REMOVE} HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
        f"Content-Length: {len(image)}\r\n\r\n"
    ).encode()
    fake_torchserve.mode = SLOW if when == "mid-inference" else SUCCESS

    await _disconnect_after(client, head, sent)
    fake_torchserve.mode = SUCCESS

    assert await _eventually_cleans(client, within_s=3) == 200
    assert client.app is not None and client.app[ADMISSION].active == 0


# --- privacy: never on disk, never in the logs ------------------------------------------------


def _listing(folder: Path) -> set[tuple[str, int]]:
    return {(str(path), path.stat().st_size) for path in folder.iterdir() if path.is_file()}


async def test_uploads_never_touch_the_disk(
    client: GatewayClient, audit: AuditLog, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The temporary folder and the working folder of this process, both watched; the audit
    # hook sees a file opened for writing anywhere else too.
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.chdir(tmp_path)
    before = (_listing(temp), _listing(tmp_path))
    audit.writes.clear()

    for image_format in ("PNG", "JPEG", "WEBP"):
        image = encode("RGB", (200, 150), image_format)  # larger than one read chunk
        form = multipart(image, f"private.{image_format.lower()}", "image/png")
        form.add_field("mask", encode("L", (200, 150), "PNG"), filename="m.png")
        assert (await client.post(REMOVE, data=form)).status == 200
        assert (await post_raw(client, image, "image/png")).status == 200

    assert audit.writes == []
    assert (_listing(temp), _listing(tmp_path)) == before


async def test_uploads_are_never_logged(
    client: GatewayClient, fake_torchserve: FakeTorchServe, caplog: pytest.LogCaptureFixture
) -> None:
    image = encode("RGB", SIZE, "PNG")
    secret_name = "Passport-Of-Jane-Doe"
    failures = [SUCCESS, HUGE, WRONG_TYPE, SLOW]

    with caplog.at_level(logging.DEBUG):
        for mode in failures:
            fake_torchserve.mode = mode
            await client.post(REMOVE, data=multipart(image, f"{secret_name}.png", "image/png"))
        await post_raw(client, image[:200], "image/png")  # a 422

    logged = caplog.text
    assert secret_name not in logged
    assert image[16:48].hex() not in logged and repr(image[16:48]) not in logged
    # The access log format of `python -m gateway`: no address, agent, referrer or filename.
    assert ACCESS_LOG_FORMAT == '"%r" %s %b %Tfs'


# --- 27: slow clients ------------------------------------------------------------------------


async def test_27_slowloris_connections_are_closed_while_uploads_are_served(
    aiohttp_server: Any, aiohttp_client: AiohttpClient, settings: Settings
) -> None:
    idle = dataclasses.replace(settings, idle_timeout_s=1.0)
    # The server option `python -m gateway` sets from the same setting.
    server = await aiohttp_server(create_app(idle), keepalive_timeout=idle.idle_timeout_s)
    client = await aiohttp_client(server)

    async def slowloris() -> float:
        """Send a request's headers a few bytes at a time; seconds until the server hangs up."""
        start = time.perf_counter()
        reader, writer = await asyncio.open_connection(server.host, server.port)
        try:
            writer.write(f"POST {REMOVE} HTTP/1.1\r\nHost: x\r\n".encode())
            for n in range(100):
                await asyncio.sleep(0.2)
                writer.write(f"X-Slow-{n}: y\r\n".encode())
                await writer.drain()
                if reader.at_eof() or writer.is_closing():
                    break
                try:
                    if await asyncio.wait_for(reader.read(1), timeout=0.01) == b"":
                        break
                except TimeoutError:
                    continue
        except ConnectionError:
            pass
        finally:
            writer.close()
        return time.perf_counter() - start

    attackers = [asyncio.create_task(slowloris()) for _ in range(50)]
    await asyncio.sleep(0.3)
    statuses = [(await post_raw(client, encode("RGB", SIZE, "PNG"), "image/png")).status
                for _ in range(3)]  # fmt: skip
    held_s = await asyncio.gather(*attackers)

    assert statuses == [200, 200, 200]
    # Closed after about idle_timeout_s, long before their 20 s of headers were sent.
    assert max(held_s) < idle.idle_timeout_s + 3


def test_27_python_m_gateway_sets_the_idle_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    import gateway.__main__ as entry

    seen: dict[str, Any] = {}
    monkeypatch.setattr(entry.web, "run_app", lambda app, **options: seen.update(options))
    monkeypatch.setenv("GATEWAY_IDLE_TIMEOUT_S", "7")
    monkeypatch.setenv("GATEWAY_PROOF_OF_WORK", "off")

    entry.main()

    assert seen["keepalive_timeout"] == 7.0


async def test_27_a_body_that_trickles_in_is_408_and_gives_its_slots_back(
    aiohttp_client: AiohttpClient, settings: Settings
) -> None:
    slow = dataclasses.replace(settings, upload_timeout_s=0.5, max_in_flight=1)
    client = await aiohttp_client(create_app(slow))
    image = encode("RGB", SIZE, "PNG")

    async def trickle() -> AsyncIterator[bytes]:
        for byte in range(len(image)):
            yield image[byte : byte + 1]
            await asyncio.sleep(0.05)

    start = time.perf_counter()
    response = await client.post(
        REMOVE,
        data=trickle(),
        headers={"Content-Type": "image/png", "Content-Length": str(len(image))},
    )

    status, message = await status_and_error(response)
    assert (status, message) == (408, "the upload did not arrive within 0.5 s")
    assert time.perf_counter() - start < 2
    assert (await post_raw(client, image, "image/png")).status == 200
