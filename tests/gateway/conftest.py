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
from aiohttp import FormData, web
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image

from gateway.app import create_app
from gateway.settings import Settings

MAX_UPLOAD_BYTES = 200_000
MAX_PIXELS = 300 * 300
INFERENCE_TIMEOUT_S = 0.5

# What the fake TorchServe does with the next predictions request.
SUCCESS = "success"  # echo the image back, like a model that changes nothing
REJECT_422 = "reject_422"  # the handler refuses the item
BUSY_503 = "busy_503"  # TorchServe: no worker / queue full
FAIL_500 = "fail_500"  # worker crashed
NOT_FOUND_404 = "not_found_404"  # model not registered (yet)
SLOW = "slow"  # answers after the gateway's timeout
WRONG_SIZE = "wrong_size"  # answers an image of another size
WRONG_TYPE = "wrong_type"  # answers the image labelled as another type

HANDLER_422_MESSAGE = "image has no detectable watermark region"


@dataclass
class FakeTorchServe:
    """TorchServe's predictions route with a behaviour each test can set."""

    mode: str = SUCCESS
    received: list[tuple[str, bytes]] = field(default_factory=list)
    url: str = ""

    async def predictions(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.received.append((request.content_type, body))
        if self.mode == SUCCESS:
            return web.Response(body=body, content_type=request.content_type)
        if self.mode == REJECT_422:
            return web.json_response({"error": HANDLER_422_MESSAGE}, status=422)
        if self.mode == BUSY_503:
            return _torchserve_error(503, "ServiceUnavailableException", "No worker available")
        if self.mode == FAIL_500:
            return _torchserve_error(500, "InternalServerException", "Worker died.")
        if self.mode == NOT_FOUND_404:
            return _torchserve_error(404, "ModelNotFoundException", "Model not found: clearmark")
        if self.mode == SLOW:
            await asyncio.sleep(INFERENCE_TIMEOUT_S * 4)
            return web.Response(body=body, content_type=request.content_type)
        if self.mode == WRONG_SIZE:
            with Image.open(io.BytesIO(body)) as img:
                image_format = img.format
            wrong = encode("RGB", (7, 5), image_format or "PNG")
            return web.Response(body=wrong, content_type=request.content_type)
        if self.mode == WRONG_TYPE:
            return web.Response(body=body, content_type="application/octet-stream")
        raise AssertionError(f"unknown fake mode {self.mode}")


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
    return Settings(
        torchserve_url=fake_torchserve.url,
        max_upload_bytes=MAX_UPLOAD_BYTES,
        max_pixels=MAX_PIXELS,
        inference_timeout_s=INFERENCE_TIMEOUT_S,
        connect_timeout_s=0.5,
        ready_timeout_s=0.5,
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
