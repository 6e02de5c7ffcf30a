"""The application factory, used by `python -m gateway` and by the tests alike."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import aiohttp_jinja2
import jinja2
from aiohttp import web

from gateway.admission import Admission
from gateway.keys import ADMISSION, SETTINGS, TORCHSERVE
from gateway.middleware import add_security_headers, json_errors
from gateway.settings import Settings
from gateway.torchserve_client import TorchServeClient
from gateway.views import routes

_PACKAGE_DIR = Path(__file__).parent


def create_app(settings: Settings) -> web.Application:
    """Build the gateway; the TorchServe session opens on startup and closes on cleanup."""
    app = web.Application(middlewares=[json_errors])
    app[SETTINGS] = settings
    app[ADMISSION] = Admission(settings.max_in_flight)
    app.cleanup_ctx.append(_torchserve_client)
    aiohttp_jinja2.setup(
        app, loader=jinja2.FileSystemLoader(_PACKAGE_DIR / "templates"), autoescape=True
    )
    app.on_response_prepare.append(add_security_headers)
    app.router.add_routes(routes)
    app.router.add_static("/static", _PACKAGE_DIR / "static")
    return app


async def _torchserve_client(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    timeout = aiohttp.ClientTimeout(
        total=settings.inference_timeout_s, connect=settings.connect_timeout_s
    )
    async with aiohttp.ClientSession(timeout=timeout) as session:
        app[TORCHSERVE] = TorchServeClient(
            session, settings.torchserve_url, settings.model_name, settings.ready_timeout_s
        )
        yield
