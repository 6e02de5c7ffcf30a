"""The benchmark's client against a fake gateway: statuses recorded, concurrency bounded."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.test_utils import TestServer

from bench.client import API_PATH, post_concurrently, post_image

CONCURRENCY = 4


def fake_gateway(seen: list[tuple[str, bytes]], in_flight: list[int]) -> web.Application:
    """Answers the image back; every third upload gets a 503. A request waits (up to 5 s) for
    CONCURRENCY to be in flight, so a client that sends fewer at once shows as a lower peak, then
    0.2 s more, so that one sending more at once shows as a higher peak."""
    full = asyncio.Event()

    async def remove(request: web.Request) -> web.Response:
        seen.append((request.content_type, await request.read()))
        arrival = len(seen)
        in_flight[0] += 1
        in_flight[1] = max(in_flight[1], in_flight[0])
        if in_flight[0] >= CONCURRENCY:
            full.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(full.wait(), timeout=5)
        await asyncio.sleep(0.2)
        in_flight[0] -= 1
        if arrival % 3 == 0:
            return web.json_response({"error": "busy"}, status=503)
        return web.Response(body=seen[arrival - 1][1], content_type="image/jpeg")

    app = web.Application()
    app.router.add_post(API_PATH, remove)
    return app


async def test_concurrent_posts_record_every_status_and_stay_within_the_concurrency(
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]],
) -> None:
    seen: list[tuple[str, bytes]] = []
    in_flight = [0, 0]  # now, most at once
    server = await aiohttp_server(fake_gateway(seen, in_flight))
    host = str(server.make_url("")).rstrip("/")
    responses, wall_s = await asyncio.to_thread(
        post_concurrently, host, b"\xff\xd8jpeg", 9, CONCURRENCY
    )
    assert sorted(r.status for r in responses) == [200] * 6 + [503] * 3
    assert seen == [("image/jpeg", b"\xff\xd8jpeg")] * 9
    assert in_flight[1] == CONCURRENCY
    assert wall_s >= max(r.seconds for r in responses) > 0


def test_no_server_is_status_zero():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free once closed: nothing listens there
    assert post_image(f"http://127.0.0.1:{port}", b"x").status == 0
