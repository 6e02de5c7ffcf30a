"""The OpenAPI 3 document of the gateway's HTTP API, built from its settings and constants.

Written once, here: GET /api/openapi.json serves it, /api/docs renders it, and
tests/gateway/test_openapi.py runs schemathesis against the app with it. Every number in it
comes from Settings or from the module that enforces it, so it cannot drift from behaviour.
"""

from __future__ import annotations

from typing import Any, get_args

from gateway.client_limits import CONCURRENCY_RETRY_AFTER_S, RATE_WINDOW_MINUTES
from gateway.middleware import CONTENT_SECURITY_POLICY, RETRY_AFTER_S
from gateway.proof_of_work import ALGORITHM, HEADER, KEY_PREFIX, Reason
from gateway.settings import Settings
from gateway.torchserve_client import UNSURE_LEVEL
from gateway.upload import (
    CLEANED_SUFFIX,
    IMAGE_FIELD,
    MASK_FIELD,
    MASK_SUFFIX,
    MULTIPART_OVERHEAD_BYTES,
    SAFE_FILENAME_CHARS,
    UNSURE_PARAMETER,
)
from gateway.validation import FILE_EXTENSIONS, MAX_SIDE, SUPPORTED_FORMATS

Document = dict[str, Any]

OPENAPI_VERSION = "3.0.3"
# The version in the API's paths (/api/v1/...): it changes only when they do.
API_VERSION = "v1"

JSON = "application/json"
HTML = "text/html"
MULTIPART = "multipart/form-data"
IMAGE_TYPES = tuple(SUPPORTED_FORMATS.values())
MASK_TYPE = SUPPORTED_FORMATS["PNG"]

_BINARY = {"type": "string", "format": "binary"}
_ERROR = {"$ref": "#/components/schemas/Error"}


def api_limits(settings: Settings) -> dict[str, int | float | bool]:
    """The limits a client must respect, by the name of the Settings field (or constant) that
    sets them: the document's `x-limits`."""
    return {
        "max_upload_bytes": settings.max_upload_bytes,
        "max_pixels": settings.max_pixels,
        "max_side": MAX_SIDE,
        "max_other_fields_bytes": MULTIPART_OVERHEAD_BYTES,
        "upload_timeout_s": settings.upload_timeout_s,
        "max_in_flight": settings.max_in_flight,
        "proof_of_work": settings.proof_of_work,
        "proof_of_work_expiry_s": settings.proof_of_work_expiry_s,
        "rate_limit_per_minute": settings.rate_limit_per_minute,
        "rate_limit_burst": settings.rate_limit_burst,
        "max_uploads_per_client": settings.max_uploads_per_client,
    }


def api_document(settings: Settings) -> Document:
    """The whole document, for a gateway running with settings."""
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "clearmark",
            "version": API_VERSION,
            "description": _overview(settings),
            "license": {"name": "MIT"},
            "x-limits": api_limits(settings),
        },
        "tags": [
            {"name": "images", "description": "Clean an image, or see what would be cleaned."},
            {"name": "proof of work", "description": "What buys one upload."},
            {"name": "probes", "description": "Liveness and readiness for orchestrators."},
            {"name": "pages", "description": "What a browser opens."},
        ],
        "paths": {
            "/": {"get": _page("uploadPage", "The upload page, with the limits above.")},
            "/api/docs": {"get": _page("apiDocs", "This document, rendered by Swagger UI.")},
            "/api/openapi.json": {"get": _openapi_json()},
            "/api/v1/challenge": {"get": _challenge(settings)},
            "/api/v1/remove": {"post": _remove(settings)},
            "/api/v1/detect": {"post": _detect(settings)},
            "/healthz": {"get": _healthz()},
            "/readyz": {"get": _readyz()},
        },
        "components": {
            "schemas": _schemas(),
            "headers": _headers(),
        },
    }


def _overview(settings: Settings) -> str:
    formats = ", ".join(IMAGE_TYPES)
    proof_of_work = (
        f"**Proof of work** (on here): every upload carries in `{HEADER}` the solution of a "
        "challenge from `GET /api/v1/challenge`, each good for one upload within "
        f"{settings.proof_of_work_expiry_s} s; without it the answer is 403."
        if settings.proof_of_work
        else f"**Proof of work**: off here; uploads need no `{HEADER}` header."
    )
    return "\n\n".join(
        [
            "Removes visible watermarks from photos. Send an image, get the same image back "
            "cleaned, in its format and at its size; or get the mask of what would be cleaned.",
            f"**Formats**: {formats}. **Limits**, per file: {_bytes(settings.max_upload_bytes)}, "
            f"{settings.max_pixels:,} pixels and {MAX_SIDE:,} pixels on a side (413 past them). "
            f"The body must arrive within {settings.upload_timeout_s:g} s (408).",
            proof_of_work,
            f"**Per-client limits**: {_rate_limits(settings)}",
            '**Errors** are JSON, `{"error": "what went wrong and what to do"}`, with the '
            "status codes listed on each operation; 503 and 429 say in `Retry-After` how many "
            "seconds to wait. Answers are never cached (`Cache-Control: no-store`), and images "
            "come back as attachments.",
            "Nothing is written to disk: uploads are held in memory while they are cleaned.",
        ]
    )


def _rate_limits(settings: Settings) -> str:
    if not settings.rate_limited:
        return "off here."
    return (
        f"{settings.rate_limit_per_minute} uploads a minute on average over "
        f"{RATE_WINDOW_MINUTES} minutes, {settings.rate_limit_burst} within any one minute, "
        f"{settings.max_uploads_per_client} at once (429 past them)."
    )


def _bytes(count: int) -> str:
    return f"{count:,} bytes ({count / 2**20:.3g} MiB)"


def _page(operation_id: str, summary: str) -> Document:
    return {
        "operationId": operation_id,
        "tags": ["pages"],
        "summary": summary,
        "responses": {
            "200": {
                "description": "An HTML page; its scripts and styles come from this server only.",
                "headers": {
                    **_always(),
                    "Content-Security-Policy": _header("ContentSecurityPolicy"),
                },
                "content": {HTML: {"schema": {"type": "string"}}},
            }
        },
    }


def _openapi_json() -> Document:
    return {
        "operationId": "openapiDocument",
        "tags": ["pages"],
        "summary": "This document.",
        "responses": {
            "200": {
                "description": "The OpenAPI document, with the limits of this server.",
                "headers": _always(),
                "content": {JSON: {"schema": {"type": "object"}}},
            }
        },
    }


def _challenge(settings: Settings) -> Document:
    return {
        "operationId": "challenge",
        "tags": ["proof of work"],
        "summary": "A challenge whose solution buys one upload.",
        "description": (
            f"An [ALTCHA](https://altcha.org) challenge: find the counter whose {ALGORITHM} key "
            f"(`cost` iterations over `nonce` + counter, salted with `salt`) starts with "
            f"`{KEY_PREFIX}`, about 256 tries. Send base64 JSON of the challenge and the "
            f"solution in `{HEADER}` within {settings.proof_of_work_expiry_s} s."
        ),
        "responses": {
            "200": _json("A fresh signed challenge.", {"$ref": "#/components/schemas/Challenge"}),
            "404": _error("The proof of work is off here: uploads need no solution."),
        },
    }


def _remove(settings: Settings) -> Document:
    extensions = "|".join(sorted(set(FILE_EXTENSIONS.values())))
    return _upload_operation(
        settings,
        operation_id="removeWatermark",
        summary="Clean one image: the same image back, without the watermark.",
        description=(
            "Send the image as the multipart field `image`, or as the whole body with its "
            "image/* content type. The model finds the watermark; a multipart field `mask` "
            "(the image's size, white where the watermark is) replaces what it finds."
        ),
        fields={
            IMAGE_FIELD: {**_BINARY, "description": "The photo: PNG, JPEG or WebP."},
            MASK_FIELD: {
                **_BINARY,
                "description": (
                    "Optional: where the watermark is, of the image's displayed size (after "
                    "its EXIF orientation), white (128 or more) for the watermark; PNG, JPEG "
                    "or WebP, greyscale or colour. Without it the model's own detection is used."
                ),
            },
        },
        answer={
            "description": (
                "The cleaned image, in the format and at the size of the upload (upright: "
                "EXIF orientation applied), metadata other than its colour profile removed."
            ),
            "headers": {**_always(), "Content-Disposition": _download(CLEANED_SUFFIX, extensions)},
            "content": {mime: {"schema": _BINARY} for mime in IMAGE_TYPES},
        },
        too_large=f"The image or the mask is larger than {_bytes(settings.max_upload_bytes)}, "
        f"has more than {settings.max_pixels:,} pixels or a side over {MAX_SIDE:,}.",
        undecodable=(
            "The image or mask is corrupt, truncated or animated, the mask is not of the "
            "image's size, or the model refused the image."
        ),
    )


def _detect(settings: Settings) -> Document:
    return _upload_operation(
        settings,
        operation_id="detectWatermark",
        summary="The watermark mask the model predicts for one image.",
        description=(
            "Send the image as the multipart field `image`, or as the whole body with its "
            "image/* content type. Nothing is cleaned: the answer shows what would be. With "
            f"`{UNSURE_PARAMETER}=true` it also shows what the model saw but was not sure "
            "enough of to remove, for a person to judge."
        ),
        fields={IMAGE_FIELD: {**_BINARY, "description": "The photo: PNG, JPEG or WebP."}},
        parameters=[
            {
                "name": UNSURE_PARAMETER,
                "in": "query",
                "required": False,
                "description": (
                    f"`true`: the regions the model saw but leaves alone come back at grey "
                    f"{UNSURE_LEVEL} (below 128, so the mask sent back to /remove as it came "
                    "removes only the 255 part; paint a region white to have it removed). "
                    "`false`, the default: 255 and 0 only."
                ),
                "schema": {"type": "string", "enum": ["true", "false"], "default": "false"},
            }
        ],
        answer={
            "description": (
                "A greyscale (8-bit) PNG of the image's displayed size: 255 where the "
                f"watermark is, 0 elsewhere (and {UNSURE_LEVEL} where the model was unsure, "
                f"with `{UNSURE_PARAMETER}=true`)."
            ),
            "headers": {**_always(), "Content-Disposition": _download(MASK_SUFFIX, "png")},
            "content": {MASK_TYPE: {"schema": _BINARY}},
        },
        too_large=f"The image is larger than {_bytes(settings.max_upload_bytes)}, has more "
        f"than {settings.max_pixels:,} pixels or a side over {MAX_SIDE:,}.",
        undecodable="The image is corrupt, truncated or animated, or the model refused it.",
    )


def _upload_operation(
    settings: Settings,
    *,
    operation_id: str,
    summary: str,
    description: str,
    fields: dict[str, Document],
    answer: Document,
    too_large: str,
    undecodable: str,
    parameters: list[Document] | None = None,
) -> Document:
    """What /remove and /detect share: the two ways to send an image, the proof-of-work
    header, and every refusal on the way to the model."""
    image_parts = ", ".join(IMAGE_TYPES)
    return {
        "operationId": operation_id,
        "tags": ["images"],
        "summary": summary,
        "description": description,
        "parameters": [
            {
                "name": HEADER,
                "in": "header",
                "required": settings.proof_of_work,
                "description": (
                    "The solved challenge from `GET /api/v1/challenge`, base64 JSON; one per "
                    "upload. "
                    + ("Required here." if settings.proof_of_work else "Not needed here (off).")
                ),
                "schema": {"type": "string"},
            },
            *(parameters or []),
        ],
        "requestBody": {
            "required": True,
            "content": {
                MULTIPART: {
                    "schema": {
                        "type": "object",
                        "required": [IMAGE_FIELD],
                        "properties": fields,
                    },
                    "encoding": {name: {"contentType": image_parts} for name in fields},
                },
                **{mime: {"schema": _BINARY} for mime in IMAGE_TYPES},
            },
        },
        "responses": {
            "200": answer,
            "400": _error(
                "No image: no content type, an empty image, a form without `image`, a file "
                "field twice, other form fields over "
                f"{MULTIPART_OVERHEAD_BYTES:,} bytes, or a malformed form; or a query "
                "parameter of an unknown value."
            ),
            "403": _error(
                f"The proof of work in `{HEADER}` is missing, wrong, expired or already used "
                "(only when it is on).",
                {"$ref": "#/components/schemas/ProofOfWorkRefusal"},
            ),
            "408": _error(f"The body did not arrive within {settings.upload_timeout_s:g} s."),
            "413": _error(too_large),
            "415": _error(
                "Neither multipart/form-data nor an image/* body, or not a PNG, JPEG or WebP."
            ),
            "422": _error(undecodable),
            "429": _error(
                f"Over a per-client limit: {_rate_limits(settings)} The body was not read; "
                f"`Retry-After` says when to try again ({CONCURRENCY_RETRY_AFTER_S} s for "
                "uploads at once).",
                retry_after=True,
            ),
            "502": _error("The model server failed on this image or answered something unusable."),
            "503": _error(
                f"Busy: the gateway is cleaning {settings.max_in_flight} images already, or the "
                "model server is unreachable, full or (re)starting. The body was not read when "
                "the gateway was full.",
                retry_after=True,
            ),
            "504": _error("The model took too long: try again, or a smaller image."),
        },
    }


def _healthz() -> Document:
    return {
        "operationId": "liveness",
        "tags": ["probes"],
        "summary": "Liveness: the gateway answers (the model is not asked).",
        "responses": {"200": _json("Alive.", _status_schema("ok"))},
    }


def _readyz() -> Document:
    return {
        "operationId": "readiness",
        "tags": ["probes"],
        "summary": "Readiness: the model cleans a tiny test image.",
        "responses": {
            "200": _json("Ready to clean.", _status_schema("ready")),
            # Answered by the probe itself, not by a refused upload: no Retry-After.
            "503": _error("The model did not clean the test image."),
        },
    }


def _json(description: str, schema: Document) -> Document:
    return {"description": description, "headers": _always(), "content": {JSON: {"schema": schema}}}


def _error(description: str, schema: Document = _ERROR, *, retry_after: bool = False) -> Document:
    response = _json(description, schema)
    if retry_after:
        response["headers"]["Retry-After"] = _header("RetryAfter")
    return response


def _always() -> Document:
    """The headers every answer carries (gateway/middleware.py)."""
    return {
        "Cache-Control": _header("CacheControl"),
        "X-Content-Type-Options": _header("XContentTypeOptions"),
        "Referrer-Policy": _header("ReferrerPolicy"),
    }


def _header(name: str) -> Document:
    return {"$ref": f"#/components/headers/{name}"}


def _download(suffix: str, extensions: str) -> Document:
    name = f"[{SAFE_FILENAME_CHARS}]+-{suffix}\\.({extensions})"
    return {
        "description": (
            f'`attachment; filename="<name>-{suffix}.<ext>"`: the upload\'s name, kept to '
            f"{SAFE_FILENAME_CHARS}, or `image`."
        ),
        "required": True,
        "schema": {
            "type": "string",
            "pattern": f'^attachment; filename="{name}"$',
        },
    }


def _status_schema(value: str) -> Document:
    return {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string", "enum": [value]}},
        "additionalProperties": False,
    }


def _schemas() -> Document:
    return {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"type": "string", "description": "For people: what to do."}},
            "additionalProperties": False,
        },
        "ProofOfWorkRefusal": {
            "type": "object",
            "required": ["error", "reason"],
            "properties": {
                "error": {"type": "string"},
                "reason": {"type": "string", "enum": list(get_args(Reason))},
            },
            "additionalProperties": False,
        },
        "Challenge": {
            "type": "object",
            "required": ["parameters", "signature"],
            "properties": {
                "parameters": {
                    "type": "object",
                    "required": ["algorithm", "cost", "keyLength", "keyPrefix", "nonce", "salt"],
                    "properties": {
                        "algorithm": {"type": "string", "enum": [ALGORITHM]},
                        "cost": {"type": "integer", "minimum": 1},
                        "keyLength": {"type": "integer", "minimum": 1},
                        "keyPrefix": {"type": "string", "enum": [KEY_PREFIX]},
                        "nonce": {"type": "string", "pattern": "^[0-9a-f]+$"},
                        "salt": {"type": "string", "pattern": "^[0-9a-f]+$"},
                        "expiresAt": {"type": "integer", "description": "Unix time, seconds."},
                    },
                },
                "signature": {"type": "string", "pattern": "^[0-9a-f]+$"},
            },
        },
    }


def _headers() -> Document:
    def fixed(value: str, description: str) -> Document:
        return {
            "description": description,
            "required": True,
            "schema": {"type": "string", "enum": [value]},
        }

    return {
        "CacheControl": fixed("no-store", "Uploads and their answers are private: never cached."),
        "XContentTypeOptions": fixed("nosniff", "Browsers take the content type as given."),
        "ReferrerPolicy": fixed("no-referrer", "No page of ours tells others where you were."),
        "ContentSecurityPolicy": fixed(CONTENT_SECURITY_POLICY, "Scripts and styles from here."),
        "RetryAfter": {
            "description": (
                f"Seconds to wait before trying again ({RETRY_AFTER_S} on a 503; on a 429 "
                "until the client's window frees a place)."
            ),
            "required": True,
            "schema": {"type": "integer", "minimum": 1},
        },
    }
