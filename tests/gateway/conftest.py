"""A fake TorchServe, the gateway pointed at it with small limits, and test images."""

from __future__ import annotations

import asyncio
import io
import json
import random
import socket
import struct
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import BodyPartReader, FormData, hdrs, web
from aiohttp.test_utils import TestClient, TestServer
from PIL import ExifTags, Image, ImageOps

from gateway.app import create_app
from gateway.settings import Settings
from gateway.torchserve_client import UNSURE_LEVEL

MAX_UPLOAD_BYTES = 200_000
MAX_PIXELS = 300 * 300
INFERENCE_TIMEOUT_S = 0.5
# The model's responseTimeout as the gateway is told it: shorter than INFERENCE_TIMEOUT_S, as
# TorchServe gives up on a batch before the gateway gives up on TorchServe.
MODEL_RESPONSE_TIMEOUT_S = 0.2

# What the fake TorchServe does with the next predictions request.
SUCCESS = "success"  # remove: the image back unchanged; detect: fake_mask of its size
REJECT_422 = "reject_422"  # the handler refuses the item
BUSY_503 = "busy_503"  # TorchServe: no worker / queue full
FAIL_500 = "fail_500"  # worker crashed
NOT_FOUND_404 = "not_found_404"  # model not registered (yet)
SLOW = "slow"  # answers after the gateway's timeout
WRONG_SIZE = "wrong_size"  # answers an image (or mask) of another size
WRONG_TYPE = "wrong_type"  # answers the image (or mask) labelled as another type
JPEG_MASK = "jpeg_mask"  # detect: answers a JPEG labelled image/png
RGB_MASK = "rgb_mask"  # detect: answers the mask as an RGB PNG
HUGE = "huge"  # answers 2 MB labelled image/png, more than any image the gateway can send
WORKER_KILLED = "worker_killed"  # TorchServe's answer when the worker exited 137 (SIGKILL, OOM)
TIMED_OUT = "timed_out"  # TorchServe's answer when the handler outlived responseTimeout

HANDLER_422_MESSAGE = "image has no detectable watermark region"


@dataclass(frozen=True)
class Prediction:
    """One predictions request as the fake received it: each part's bytes and content type."""

    task: str
    image_mime: str
    image: bytes
    mask_mime: str | None = None
    mask: bytes | None = None


@dataclass
class FakeTorchServe:
    """TorchServe's predictions route with a behaviour each test can set.

    It takes what the handler takes from the gateway: multipart parts `image`, optionally
    `mask`, and `task` ("remove", "detect" or "detect_unsure").
    """

    mode: str = SUCCESS
    received: list[Prediction] = field(default_factory=list)
    url: str = ""

    async def predictions(self, request: web.Request) -> web.Response:
        prediction = await _read_prediction(request)
        self.received.append(prediction)
        image = prediction.image
        if self.mode == SLOW:
            await asyncio.sleep(INFERENCE_TIMEOUT_S * 4)
        if self.mode == REJECT_422:
            return web.json_response({"error": HANDLER_422_MESSAGE}, status=422)
        if self.mode == BUSY_503:
            return _torchserve_error(503, "ServiceUnavailableException", "No worker available")
        if self.mode == FAIL_500:
            return _torchserve_error(500, "InternalServerException", "Worker died.")
        if self.mode == NOT_FOUND_404:
            return _torchserve_error(404, "ModelNotFoundException", "Model not found: clearmark")
        if self.mode == WORKER_KILLED:
            return _torchserve_error(413, "InternalServerException", "Worker died.")
        if self.mode == TIMED_OUT:
            await asyncio.sleep(MODEL_RESPONSE_TIMEOUT_S)
            return _torchserve_error(500, "InternalServerException", "Worker died.")
        if self.mode == HUGE:
            return web.Response(body=bytes(2_000_000), content_type="image/png")
        if prediction.task in ("detect", "detect_unsure"):
            return self._detect(image, unsure=prediction.task == "detect_unsure")
        if self.mode in (SUCCESS, SLOW):
            return web.Response(body=upright(image), content_type=prediction.image_mime)
        if self.mode == WRONG_SIZE:
            with Image.open(io.BytesIO(image)) as img:
                image_format = img.format
            wrong = encode("RGB", (7, 5), image_format or "PNG")
            return web.Response(body=wrong, content_type=prediction.image_mime)
        if self.mode == WRONG_TYPE:
            return web.Response(body=image, content_type="application/octet-stream")
        raise AssertionError(f"unknown fake mode {self.mode} for remove")

    def _detect(self, image: bytes, unsure: bool = False) -> web.Response:
        size = displayed_size(image)
        if self.mode in (SUCCESS, SLOW):
            return web.Response(body=fake_mask(size, unsure), content_type="image/png")
        if self.mode == WRONG_SIZE:
            return web.Response(body=fake_mask((7, 5)), content_type="image/png")
        if self.mode == WRONG_TYPE:
            return web.Response(body=fake_mask(size), content_type="application/octet-stream")
        if self.mode == JPEG_MASK:
            return web.Response(body=encode("L", size, "JPEG"), content_type="image/png")
        if self.mode == RGB_MASK:
            return web.Response(body=encode("RGB", size, "PNG"), content_type="image/png")
        raise AssertionError(f"unknown fake mode {self.mode} for detect")


async def _read_prediction(request: web.Request) -> Prediction:
    """The parts of a predictions request, read in memory; an AssertionError (a 500, which
    the gateway reports as 502) when the request breaks the handler's contract."""
    assert request.content_type == "multipart/form-data", request.content_type
    parts: dict[str, tuple[str, bytes]] = {}
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        assert isinstance(part, BodyPartReader)
        assert part.name is not None
        assert part.name not in parts, f"part {part.name!r} sent twice"
        parts[part.name] = (part.headers.get(hdrs.CONTENT_TYPE, ""), bytes(await part.read()))
    assert set(parts) <= {"image", "mask", "task"}, sorted(parts)
    task = parts["task"][1].decode()
    assert task in ("remove", "detect", "detect_unsure"), task
    image_mime, image = parts["image"]
    if "mask" not in parts:
        return Prediction(task, image_mime, image)
    assert task == "remove", "only remove takes a mask"
    mask_mime, mask = parts["mask"]
    return Prediction(task, image_mime, image, mask_mime, mask)


def _torchserve_error(status: int, kind: str, message: str) -> web.Response:
    payload: dict[str, Any] = {"code": status, "type": kind, "message": message}
    return web.Response(text=json.dumps(payload), status=status, content_type="application/json")


@pytest.fixture
async def fake_torchserve(
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]],
) -> FakeTorchServe:
    fake = FakeTorchServe()
    app = web.Application()
    app.router.add_post("/predictions/{model_name}", fake.predictions)
    server = await aiohttp_server(app)
    fake.url = str(server.make_url("")).rstrip("/")
    return fake


@pytest.fixture
def settings(fake_torchserve: FakeTorchServe) -> Settings:
    """Small limits; the proof of work and the per-client limits off, as for a private
    deployment: tests/gateway/test_abuse.py turns them on."""
    return Settings(
        torchserve_url=fake_torchserve.url,
        max_upload_bytes=MAX_UPLOAD_BYTES,
        max_pixels=MAX_PIXELS,
        inference_timeout_s=INFERENCE_TIMEOUT_S,
        model_response_timeout_s=MODEL_RESPONSE_TIMEOUT_S,
        connect_timeout_s=0.5,
        ready_timeout_s=0.5,
        proof_of_work=False,
        rate_limit_per_minute=0,
    )


GatewayClient = TestClient[web.Request, web.Application]
AiohttpClient = Callable[[web.Application], Awaitable[GatewayClient]]


@pytest.fixture
async def client(aiohttp_client: AiohttpClient, settings: Settings) -> GatewayClient:
    return await aiohttp_client(create_app(settings))


@pytest.fixture
def closed_port_url() -> str:
    """A loopback URL where nothing listens: the port was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def encode(mode: str, size: tuple[int, int], image_format: str) -> bytes:
    """A noisy image (so it does not compress to nothing) encoded in memory."""
    width, height = size
    gray = Image.frombytes("L", size, random.Random(0).randbytes(width * height))
    img = gray.convert(mode) if mode != "P" else gray.convert("P", palette=Image.Palette.ADAPTIVE)
    buffer = io.BytesIO()
    img.save(buffer, format=image_format)
    return buffer.getvalue()


def png_claiming_size(width: int, height: int) -> bytes:
    """A small valid PNG whose IHDR is patched to claim width x height (CRC fixed)."""
    data = bytearray(encode("RGB", (4, 4), "PNG"))
    # Signature (8) + IHDR length (4) + b"IHDR" (4), then width and height.
    ihdr_start = 8 + 4
    struct.pack_into(">II", data, ihdr_start + 4, width, height)
    ihdr_body = bytes(data[ihdr_start : ihdr_start + 4 + 13])
    struct.pack_into(">I", data, ihdr_start + 4 + 13, zlib.crc32(ihdr_body))
    return bytes(data)


def multipart(data: bytes, filename: str, content_type: str, name: str = "image") -> FormData:
    """A multipart form with one file field, as a browser would send it."""
    form = FormData()
    form.add_field(name, data, filename=filename, content_type=content_type)
    return form


def displayed_size(data: bytes) -> tuple[int, int]:
    """Width and height of encoded image bytes once EXIF orientation is applied."""
    with Image.open(io.BytesIO(data)) as img:
        width, height = img.size
        if img.getexif().get(ExifTags.Base.Orientation, 1) in (5, 6, 7, 8):
            return height, width
        return width, height


def upright(data: bytes) -> bytes:
    """What the handler answers for remove, for a model that changes nothing: the same bytes,
    or re-encoded upright without the tag when EXIF orientation turns the picture."""
    with Image.open(io.BytesIO(data)) as img:
        if img.getexif().get(ExifTags.Base.Orientation, 1) == 1:
            return data
        image_format = img.format or "PNG"
        turned = ImageOps.exif_transpose(img)
    buffer = io.BytesIO()
    turned.save(buffer, format=image_format)
    return buffer.getvalue()


def fake_mask(size: tuple[int, int], unsure: bool = False) -> bytes:
    """The fake model's watermark mask: a greyscale PNG, its left half 255, the rest 0; with
    ``unsure``, two bands across the right half UNSURE_LEVEL (what the model saw and left), at
    60-70% and 85-95% of the height."""
    width, height = size
    mask = Image.new("L", size, 0)
    mask.paste(255, (0, 0, width // 2, height))
    if unsure:
        for top, bottom in ((0.6, 0.7), (0.85, 0.95)):
            box = (width // 2 + 2, int(height * top), width - 2, int(height * bottom))
            mask.paste(UNSURE_LEVEL, box)
    buffer = io.BytesIO()
    mask.save(buffer, format="PNG")
    return buffer.getvalue()


def rotated_jpeg(size: tuple[int, int]) -> bytes:
    """A JPEG stored at size whose EXIF orientation (6) displays it a quarter turn round."""
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    gray = Image.frombytes("L", size, random.Random(0).randbytes(size[0] * size[1]))
    buffer = io.BytesIO()
    gray.convert("RGB").save(buffer, format="JPEG", exif=exif)
    return buffer.getvalue()


def multipart_with_mask(
    image: bytes, mask: bytes, *, mask_first: bool = False, mask_type: str = "image/png"
) -> FormData:
    """A form with the `image` field and a `mask` field, in the order asked for."""
    fields = [
        ("image", image, "photo.png", "image/png"),
        ("mask", mask, "mask.png", mask_type),
    ]
    form = FormData()
    for name, data, filename, content_type in reversed(fields) if mask_first else fields:
        form.add_field(name, data, filename=filename, content_type=content_type)
    return form
