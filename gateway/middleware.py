"""What every response gets: typed errors as JSON and the security headers."""

from __future__ import annotations

import logging
import traceback

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.admission import GatewayBusy
from gateway.client_limits import TooManyUploads
from gateway.proof_of_work import ProofOfWorkRejected
from gateway.torchserve_client import TorchServeError
from gateway.validation import UploadError

logger = logging.getLogger(__name__)

# Retry-After on every 503: the model is busy or (re)starting, which takes seconds, not minutes.
RETRY_AFTER_S = 5

# The page's own files only: no inline script or style, no framing (clickjacking), the
# ALTCHA widget's worker from /vendor/altcha.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; img-src 'self' blob: data:; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; worker-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer UploadError, TorchServeError and GatewayBusy with {"error": message} and their
    status (503s with Retry-After), TooManyUploads with 429 and its Retry-After, and
    ProofOfWorkRejected with 403 and {"error": message, "reason": "missing" | "wrong" |
    "expired" | "reused"}."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except TooManyUploads as exc:
        retry_after = {"Retry-After": str(exc.retry_after_s)}
        return web.json_response({"error": exc.message}, status=exc.status, headers=retry_after)
    except ProofOfWorkRejected as exc:
        payload = {"error": exc.message, "reason": exc.reason}
        return web.json_response(payload, status=exc.status)
    except (UploadError, TorchServeError, GatewayBusy) as exc:
        # TorchServeClient already logged the backend's side of the failure.
        headers = {"Retry-After": str(RETRY_AFTER_S)} if exc.status == 503 else None
        return web.json_response({"error": exc.message}, status=exc.status, headers=headers)
    except Exception as exc:
        # Only the type and the stack: an exception's message could quote request bytes.
        logger.error(
            "%s %s: unexpected %s\n%s",
            request.method,
            request.path,
            type(exc).__name__,
            "".join(traceback.format_tb(exc.__traceback__)),
        )
        return web.json_response({"error": "internal error"}, status=500)


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare hook, so static files and aiohttp's own errors get them too."""
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    # Uploads and their answers are private: no cache on the way may keep a copy.
    response.headers.setdefault("Cache-Control", "no-store")
    # Only documents need a policy; a CSP on a bare image response can upset the
    # browser's own image viewer when the no-JavaScript form shows the result.
    if response.content_type == "text/html":
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
