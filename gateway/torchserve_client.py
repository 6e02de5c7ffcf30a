"""Client for TorchServe's inference API, with its failures turned into typed exceptions."""

from __future__ import annotations

import io
import json
import logging
import time

import aiohttp
from PIL import Image
from yarl import URL

logger = logging.getLogger(__name__)

# TorchServe's own error messages can be long Java texts; users get a bounded excerpt.
_MAX_MESSAGE_CHARS = 300


class TorchServeError(Exception):
    """TorchServe did not clean the image; status is what the gateway answers with."""

    status = 502

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TorchServeUnavailable(TorchServeError):
    """TorchServe is unreachable, has no worker for the model, or its queue is full."""

    status = 503


class TorchServeTimeout(TorchServeError):
    """TorchServe did not answer within the timeout."""

    status = 504


class TorchServeRejected(TorchServeError):
    """The handler refused this image (4xx); its status and message are passed on."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class TorchServeFailed(TorchServeError):
    """TorchServe or the handler failed, or answered something the gateway cannot use."""


def _make_probe_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (128, 128, 128)).save(buffer, format="PNG")
    return buffer.getvalue()


# A real image, so the readiness probe exercises the whole handler, not just the route.
_PROBE_PNG = _make_probe_png()

# The parts of a predictions request, and the tasks the handler knows.
IMAGE_PART = "image"
MASK_PART = "mask"
TASK_PART = "task"
TASK_REMOVE = "remove"
TASK_DETECT = "detect"
TASK_DETECT_UNSURE = "detect_unsure"
# The grey of the regions a detect_unsure mask shows as unsure (handler/imaging.py's
# UNSURE_LEVEL; the gateway is deployed without the handler's code, a test holds them equal).
UNSURE_LEVEL = 64


def _prediction_form(task: str, image: bytes, mime: str) -> aiohttp.FormData:
    """The multipart body of one predictions request, before any mask."""
    form = aiohttp.FormData()
    # A filename makes TorchServe hand the part over as bytes rather than decoded text.
    # BytesIO, not bytes: aiohttp sends a file-like part in chunks (and warns about a bytes
    # part over 1 MiB that it might block the event loop).
    form.add_field(IMAGE_PART, io.BytesIO(image), content_type=mime, filename=IMAGE_PART)
    form.add_field(TASK_PART, task)
    return form


class TorchServeClient:
    """Sends images to one TorchServe model over a shared session.

    Every request is multipart/form-data: an `image` part (the upload's bytes, labelled with
    its MIME type), for remove optionally a `mask` part (white = watermark, labelled likewise),
    and a `task` text part, "remove", "detect" or "detect_unsure". The session's timeout bounds
    inference; the readiness probe uses ready_timeout_s.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        model_name: str,
        ready_timeout_s: float,
        max_answer_bytes: int,
        model_response_timeout_s: float,
    ) -> None:
        self._session = session
        self._max_answer_bytes = max_answer_bytes
        self._model_response_timeout_s = model_response_timeout_s
        self._predictions_url = URL(base_url) / "predictions" / model_name
        self._inference_timeout = session.timeout
        self._ready_timeout = aiohttp.ClientTimeout(total=ready_timeout_s)

    async def remove_watermark(
        self,
        image: bytes,
        mime: str,
        mask: bytes | None = None,
        mask_mime: str | None = None,
    ) -> tuple[bytes, str]:
        """Send encoded image bytes of type mime, and a person's mask of type mask_mime to use
        instead of the model's detection; return the cleaned bytes and their type.

        Raises a TorchServeError subclass on any failure.
        """
        form = _prediction_form(TASK_REMOVE, image, mime)
        if mask is not None:
            if mask_mime is None:
                raise ValueError("a mask needs its MIME type")
            form.add_field(MASK_PART, io.BytesIO(mask), content_type=mask_mime, filename=MASK_PART)
        return await self._predict(form, self._inference_timeout)

    async def detect_watermark(
        self, image: bytes, mime: str, unsure: bool = False
    ) -> tuple[bytes, str]:
        """Send encoded image bytes of type mime; return the predicted watermark mask (the
        handler answers a greyscale PNG; with ``unsure``, the regions the model saw and left at
        UNSURE_LEVEL) and its type.

        Raises a TorchServeError subclass on any failure.
        """
        task = TASK_DETECT_UNSURE if unsure else TASK_DETECT
        return await self._predict(_prediction_form(task, image, mime), self._inference_timeout)

    async def is_ready(self) -> bool:
        """True when the model cleans a tiny test image and answers with an image."""
        probe = _prediction_form(TASK_REMOVE, _PROBE_PNG, "image/png")
        try:
            _, content_type = await self._predict(probe, self._ready_timeout)
        except TorchServeError as exc:
            logger.warning("readiness probe failed: %s", exc.message)
            return False
        if not content_type.startswith("image/"):
            logger.warning("readiness probe answered %r, not an image", content_type)
            return False
        return True

    async def _predict(
        self, form: aiohttp.FormData, timeout: aiohttp.ClientTimeout
    ) -> tuple[bytes, str]:
        start = time.monotonic()
        try:
            async with self._session.post(
                self._predictions_url, data=form, timeout=timeout
            ) as response:
                body = await self._read_bounded(response)
                status = response.status
                content_type = response.content_type
        # TimeoutError first: aiohttp's timeout errors are also ClientErrors.
        except TimeoutError:
            logger.warning("TorchServe did not answer within %s s", timeout.total)
            raise TorchServeTimeout("the model took too long to answer; try again") from None
        except (aiohttp.ClientConnectionError, ConnectionError) as exc:
            logger.warning("TorchServe connection failed: %s", type(exc).__name__)
            raise TorchServeUnavailable("the model server is unreachable; try again") from None
        except aiohttp.ClientError as exc:
            logger.warning("TorchServe request failed: %s", type(exc).__name__)
            raise TorchServeFailed("the model server sent a broken answer") from None
        if status == 200:
            return body, content_type
        # The time includes the wait in TorchServe's queue, so a crash after a long wait reads
        # as a timeout too; both are the server's failure, and 504 says "try a smaller image".
        outlived = time.monotonic() - start >= self._model_response_timeout_s
        raise _error_for(status, body, outlived_response_timeout=outlived)

    async def _read_bounded(self, response: aiohttp.ClientResponse) -> bytes:
        """The answer's body, or TorchServeFailed as soon as it outgrows max_answer_bytes:
        a broken backend must not fill the gateway's memory."""
        too_large = TorchServeFailed("the model server sent an answer larger than any image")
        declared = response.content_length
        if declared is not None and declared > self._max_answer_bytes:
            logger.warning("TorchServe announced a %d-byte answer", declared)
            raise too_large
        body = bytearray()
        async for chunk in response.content.iter_chunked(64 * 1024):
            body += chunk
            if len(body) > self._max_answer_bytes:
                logger.warning("TorchServe sent more than %d bytes", self._max_answer_bytes)
                raise too_large
        return bytes(body)


def _error_for(
    status: int, body: bytes, *, outlived_response_timeout: bool = False
) -> TorchServeError:
    """Map a non-200 TorchServe answer to the exception the gateway reports;
    outlived_response_timeout: it came after the model's responseTimeout."""
    message = _error_message(body)
    logger.warning("TorchServe answered %d: %s", status, message)
    # 404 means the model is not registered (yet): a server state, not the user's fault.
    if status in (503, 404):
        return TorchServeUnavailable("the model is busy or not loaded; try again shortly")
    # Only the handler's own refusals ({"error": ...}) are the image's fault. TorchServe's
    # frontend answers its failures as {"code", "type", "message"}, some with a 4xx: a worker
    # that died with exit status 137 (SIGKILL, the kernel's out-of-memory killer) is
    # 413 "Worker died.", which must not reach the user as "your image is too large".
    if 400 <= status < 500 and _is_handler_refusal(body):
        return TorchServeRejected(status, message or f"the model refused the image ({status})")
    # TorchServe gives up on a batch after responseTimeout, restarts the worker and answers
    # 500 "Worker died.", as it does for a crash: only the time tells them apart.
    if status == 500 and outlived_response_timeout:
        return TorchServeTimeout("the model ran out of time on this image; try a smaller one")
    return TorchServeFailed(f"the model failed on this image ({status})")


def _is_handler_refusal(body: bytes) -> bool:
    try:
        payload = json.loads(body)
    except ValueError:
        return False
    return isinstance(payload, dict) and isinstance(payload.get("error"), str)


def _error_message(body: bytes) -> str:
    """The handler's {"error": ...} or TorchServe's {"message": ...}; "" if neither."""
    try:
        payload = json.loads(body)
    except ValueError:
        return ""
    if not isinstance(payload, dict):
        return ""
    for key in ("error", "message"):
        value = payload.get(key)
        if isinstance(value, str) and value:
            return value[:_MAX_MESSAGE_CHARS]
    return ""
