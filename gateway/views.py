"""HTTP routes: the upload page, the remove and detect API, its description and the health
probes."""

from __future__ import annotations

import asyncio
import logging
import math

import aiohttp_jinja2
from aiohttp import web

from gateway.gatekeeper import admitted
from gateway.keys import PROOF_OF_WORK, SETTINGS, TORCHSERVE
from gateway.openapi import api_document
from gateway.torchserve_client import TorchServeFailed
from gateway.upload import (
    CLEANED_SUFFIX,
    MASK_SUFFIX,
    UNSURE_PARAMETER,
    Upload,
    download_filename,
    read_upload,
)
from gateway.validation import (
    UploadError,
    inspect_image,
    inspect_mask,
    mask_mismatch,
    result_mismatch,
)

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()
# The names app.py gives the static routes the API's docs page loads its files from.
STATIC_ROUTE_NAME = "static"
SWAGGER_UI_ROUTE_NAME = "swagger-ui"


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
        "proof_of_work": settings.proof_of_work,
    }
    return aiohttp_jinja2.render_template("index.html", request, context)


@routes.get("/api/openapi.json", name="openapi")
async def openapi_json(request: web.Request) -> web.Response:
    """The API's OpenAPI 3 document, with this server's limits."""
    return web.json_response(api_document(request.app[SETTINGS]))


@routes.get("/api/docs")
async def api_docs(request: web.Request) -> web.Response:
    """The OpenAPI document rendered by Swagger UI, from this server's files only."""
    router = request.app.router
    swagger_ui = router[SWAGGER_UI_ROUTE_NAME]
    context = {
        "document_url": router["openapi"].url_for(),
        "swagger_ui_css": swagger_ui.url_for(filename="swagger-ui.css"),
        "swagger_ui_bundle": swagger_ui.url_for(filename="swagger-ui-bundle.js"),
        "initializer": router[STATIC_ROUTE_NAME].url_for(filename="api_docs.js"),
    }
    return aiohttp_jinja2.render_template("api_docs.html", request, context)


@routes.get("/api/v1/challenge")
async def challenge(request: web.Request) -> web.Response:
    """A signed ALTCHA challenge; its solution, in the X-Altcha header, buys one upload.
    404 when the proof of work is off (clients then send none)."""
    proof_of_work = request.app[PROOF_OF_WORK]
    if proof_of_work is None:
        return web.json_response({"error": "the proof of work is off here"}, status=404)
    return web.json_response(proof_of_work.challenge(), headers={"Cache-Control": "no-store"})


@routes.post("/api/v1/remove")
async def remove(request: web.Request) -> web.Response:
    """Clean one image: multipart field `image` or a raw image/* body; same format back.

    A multipart `mask` field (the image's size, white = watermark) replaces the model's
    detection.
    """
    settings = request.app[SETTINGS]
    async with admitted(request):
        upload = await _read(request, with_mask=True)
        loop = asyncio.get_running_loop()
        # Full decodes of up to max_pixels: keep them off the event loop.
        info = await loop.run_in_executor(None, inspect_image, upload.data, settings.max_pixels)
        mask_mime = None
        if upload.mask is not None:
            mask_info = await loop.run_in_executor(
                None, inspect_mask, upload.mask, info, settings.max_pixels
            )
            mask_mime = mask_info.mime
        cleaned, content_type = await request.app[TORCHSERVE].remove_watermark(
            upload.data, info.mime, upload.mask, mask_mime
        )
    _check_answer(result_mismatch(info, cleaned, content_type))
    return _image_answer(
        cleaned, info.mime, download_filename(upload.filename, info.format, CLEANED_SUFFIX)
    )


@routes.post("/api/v1/detect")
async def detect(request: web.Request) -> web.Response:
    """The predicted watermark mask of one image (multipart field `image` or a raw image/*
    body): a greyscale PNG of its size, 255 where the watermark is, 0 elsewhere; with
    `?unsure=true`, UNSURE_LEVEL where the model saw something and left it."""
    settings = request.app[SETTINGS]
    # Before admission: a request that cannot be answered takes no slot and no proof of work.
    unsure = _flag(request, UNSURE_PARAMETER)
    async with admitted(request):
        upload = await _read(request, with_mask=False)
        loop = asyncio.get_running_loop()
        info = await loop.run_in_executor(None, inspect_image, upload.data, settings.max_pixels)
        mask, content_type = await request.app[TORCHSERVE].detect_watermark(
            upload.data, info.mime, unsure
        )
    _check_answer(mask_mismatch(info, mask, content_type))
    return _image_answer(mask, content_type, download_filename(upload.filename, "PNG", MASK_SUFFIX))


def _flag(request: web.Request, name: str) -> bool:
    """A true/false query parameter, false when absent; 400 for any other value."""
    value = request.query.get(name, "false")
    if value not in ("true", "false"):
        raise UploadError(400, f"{name} must be true or false, not {value[:40]!r}")
    return value == "true"


async def _read(request: web.Request, *, with_mask: bool) -> Upload:
    """read_upload within upload_timeout_s: a body that trickles in is 408, so that it gives
    its slots back."""
    settings = request.app[SETTINGS]
    try:
        async with asyncio.timeout(settings.upload_timeout_s):
            return await read_upload(request, settings.max_upload_bytes, with_mask=with_mask)
    except TimeoutError:
        raise UploadError(
            408, f"the upload did not arrive within {settings.upload_timeout_s:g} s"
        ) from None


def _check_answer(problem: str | None) -> None:
    if problem is not None:
        logger.warning("rejected the model's answer: %s", problem)
        raise TorchServeFailed(problem)


def _image_answer(body: bytes, mime: str, filename: str) -> web.Response:
    """An image answer saved under filename (an attachment, never rendered as a page of
    ours), never cached."""
    return web.Response(
        body=body,
        content_type=mime,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
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
