"""Timed uploads to the gateway's API: one by one, or many at a fixed concurrency.

The JPEG goes as a raw ``image/jpeg`` body (no multipart encoding on either side). Threads,
not asyncio: each request waits seconds on the server, so the client's own cost is noise.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from bench.stats import Response

API_PATH = "/api/v1/remove"
# Longer than the gateway's own inference timeout: the gateway's answer (504) is what we record.
CLIENT_TIMEOUT_S = 300


def post_image(host: str, body: bytes) -> Response:
    """POST one JPEG; any failure becomes a status (0 when nothing came back), never an error."""
    request = urllib.request.Request(
        f"{host}{API_PATH}", data=body, headers={"Content-Type": "image/jpeg"}
    )
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=CLIENT_TIMEOUT_S) as response:
            response.read()
            status = int(response.status)
    except urllib.error.HTTPError as error:
        error.read()
        status = error.code
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        status = 0
    return Response(status, time.perf_counter() - start)


def post_sequentially(host: str, body: bytes, requests: int) -> list[Response]:
    return [post_image(host, body) for _ in range(requests)]


def post_concurrently(
    host: str, body: bytes, requests: int, concurrency: int
) -> tuple[list[Response], float]:
    """``requests`` uploads with ``concurrency`` in flight at a time, and the wall seconds from
    the first sent to the last answered."""
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        responses = list(pool.map(lambda _: post_image(host, body), range(requests)))
    return responses, time.perf_counter() - start
