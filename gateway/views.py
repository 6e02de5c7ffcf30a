"""HTTP routes: the upload page, the remove API and the health probes."""

from __future__ import annotations

import asyncio
import logging
import math

import aiohttp_jinja2
from aiohttp import web

from gateway.keys import ADMISSION, SETTINGS, TORCHSERVE
from gateway.torchserve_client import TorchServeFailed
from gateway.upload import download_filename, read_upload
from gateway.validation import inspect_image, result_mismatch

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()


@routes.get("/")
async def index(request: web.Request) -> web.Response:
    """The upload page, with the limits the API enforces."""
    settings = request.app[SETTINGS]
    side = math.isqrt(settings.max_pixels)
    context = {
        "max_upload_bytes": settings.max_upload_bytes,
        "max_upload_mb": f"{settings.max_upload_bytes / 2**20:.3g}",
        "max_megapixels": f"{settings.max_pixels / 1e6:.3g}",
        "max_square_side": side,
    }
    return aiohttp_jinja2.render_template("index.html", request, context)


@routes.post("/api/v1/remove")
async def remove(request: web.Request) -> web.Response:
    """Clean one image: multipart field `image` or a raw image/* body; same format back."""
    settings = request.app[SETTINGS]
    with request.app[ADMISSION].slot():
        upload = await read_upload(request, settings.max_upload_bytes)
        loop = asyncio.get_running_loop()
        # A full decode of up to max_pixels: keep it off the event loop.
        info = await loop.run_in_executor(None, inspect_image, upload.data, settings.max_pixels)
        torchserve = request.app[TORCHSERVE]
        cleaned, content_type = await torchserve.remove_watermark(upload.data, info.mime)
    problem = result_mismatch(info, cleaned, content_type)
    if problem is not None:
        logger.warning("rejected the model's answer: %s", problem)
        raise TorchServeFailed(problem)
    filename = download_filename(upload.filename, info.format)
    return web.Response(
        body=cleaned,
        content_type=info.mime,
        headers={
            "Content-Disposition": f'inline; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """Liveness: the gateway answers; TorchServe is not asked."""
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """Readiness: the model cleans a tiny test image."""
    if await request.app[TORCHSERVE].is_ready():
        return web.json_response({"status": "ready"})
    return web.json_response(
        {"error": "model not ready: TorchServe did not clean a test image"}, status=503
    )
