"""The application factory, used by `python -m gateway` and by the tests alike."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import aiohttp_jinja2
import jinja2
from aiohttp import web

from gateway.admission import Admission
from gateway.client_limits import ClientLimits, open_storage
from gateway.keys import ADMISSION, CLIENT_LIMITS, PROOF_OF_WORK, SETTINGS, TORCHSERVE
from gateway.middleware import add_security_headers, json_errors
from gateway.proof_of_work import ProofOfWork, new_key
from gateway.settings import Settings
from gateway.torchserve_client import TorchServeClient
from gateway.views import STATIC_ROUTE_NAME, SWAGGER_UI_ROUTE_NAME, routes

_PACKAGE_DIR = Path(__file__).parent
# The ALTCHA widget, installed from package.json by `npm ci` (make does it): served, never a CDN.
WIDGET_DIR = _PACKAGE_DIR.parent / "node_modules" / "altcha" / "dist"
WIDGET_ROUTE = "/vendor/altcha"
# fflate, from package.json the same way: the page zips "download all" in the browser with it.
ZIP_DIR = _PACKAGE_DIR.parent / "node_modules" / "fflate" / "esm"
ZIP_ROUTE = "/vendor/fflate"
# Swagger UI, from package.json the same way: /api/docs renders the OpenAPI document with it.
SWAGGER_UI_DIR = _PACKAGE_DIR.parent / "node_modules" / "swagger-ui-dist"
SWAGGER_UI_ROUTE = "/vendor/swagger-ui"


def create_app(settings: Settings) -> web.Application:
    """Build the gateway; the TorchServe session opens on startup and closes on cleanup."""
    app = web.Application(middlewares=[json_errors])
    app[SETTINGS] = settings
    app[ADMISSION] = Admission(settings.max_in_flight)
    storage = open_storage(settings.redis_url)
    app[CLIENT_LIMITS] = (
        ClientLimits(
            storage,
            settings.rate_limit_per_minute,
            settings.rate_limit_burst,
            settings.max_uploads_per_client,
            # A slot is held at most about one inference; twice that if a replica died.
            slot_expiry_s=2 * settings.inference_timeout_s,
        )
        if settings.rate_limited
        else None
    )
    app[PROOF_OF_WORK] = (
        ProofOfWork(
            settings.proof_of_work_key or new_key(),
            settings.proof_of_work_cost,
            settings.proof_of_work_expiry_s,
            storage,
        )
        if settings.proof_of_work
        else None
    )
    app.cleanup_ctx.append(_torchserve_client)
    aiohttp_jinja2.setup(
        app, loader=jinja2.FileSystemLoader(_PACKAGE_DIR / "templates"), autoescape=True
    )
    app.on_response_prepare.append(add_security_headers)
    app.router.add_routes(routes)
    app.router.add_static("/static", _PACKAGE_DIR / "static", name=STATIC_ROUTE_NAME)
    if not (ZIP_DIR / "browser.js").is_file():
        raise RuntimeError(
            f"fflate is missing from {ZIP_DIR}: run `npm ci` in the repository (make does)"
        )
    app.router.add_static(ZIP_ROUTE, ZIP_DIR)
    if not (SWAGGER_UI_DIR / "swagger-ui-bundle.js").is_file():
        raise RuntimeError(
            f"Swagger UI is missing from {SWAGGER_UI_DIR}: run `npm ci` in the repository "
            "(make does)"
        )
    app.router.add_static(SWAGGER_UI_ROUTE, SWAGGER_UI_DIR, name=SWAGGER_UI_ROUTE_NAME)
    if settings.proof_of_work:
        if not (WIDGET_DIR / "external" / "altcha.js").is_file():
            raise RuntimeError(
                f"the ALTCHA widget is missing from {WIDGET_DIR}: run `npm ci` in the repository "
                "(make does), or set GATEWAY_PROOF_OF_WORK=off"
            )
        app.router.add_static(WIDGET_ROUTE, WIDGET_DIR)
    return app


async def _torchserve_client(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    timeout = aiohttp.ClientTimeout(
        total=settings.inference_timeout_s, connect=settings.connect_timeout_s
    )
    async with aiohttp.ClientSession(timeout=timeout) as session:
        app[TORCHSERVE] = TorchServeClient(
            session,
            settings.torchserve_url,
            settings.model_name,
            settings.ready_timeout_s,
            settings.max_answer_bytes,
            settings.model_response_timeout_s,
        )
        yield
