"""The script client (serving/client.py) and `python -m serving.clean` against a gateway with
the proof of work on, and against a server that answers 429 first."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

from aiohttp import web

from gateway.app import create_app
from gateway.settings import Settings
from serving.clean import main as clean_main
from serving.client import PROOF_OF_WORK_HEADER, post_image, retry_after_s
from tests.gateway.conftest import FakeTorchServe, encode

PNG = encode("RGB", (40, 30), "PNG")


async def test_the_cli_solves_the_proof_of_work_and_writes_the_cleaned_copy(
    aiohttp_server, settings: Settings, fake_torchserve: FakeTorchServe, tmp_path: Path
) -> None:
    guarded = dataclasses.replace(settings, proof_of_work=True, proof_of_work_cost=1)
    server = await aiohttp_server(create_app(guarded))
    photo = tmp_path / "holiday.png"
    photo.write_bytes(PNG)

    status = await asyncio.to_thread(
        clean_main, [str(photo), "--url", str(server.make_url("")).rstrip("/")]
    )

    assert status == 0
    assert (tmp_path / "holiday-clearmark.png").read_bytes() == PNG  # the fake changes nothing
    assert len(fake_torchserve.received) == 1


async def test_a_429_is_waited_out_and_every_try_carries_a_fresh_solution(aiohttp_server) -> None:
    tries: list[tuple[float, str | None]] = []

    async def challenge(_: web.Request) -> web.Response:
        # A signed challenge is not needed here: the server below checks nothing.
        return web.json_response(
            {"parameters": {"algorithm": "PBKDF2/SHA-256", "nonce": "00" * 16, "salt": "11" * 16,
                            "cost": 1, "keyLength": 32, "keyPrefix": "0"}, "signature": "x"}
        )  # fmt: skip

    async def remove(request: web.Request) -> web.Response:
        tries.append((time.monotonic(), request.headers.get(PROOF_OF_WORK_HEADER)))
        if len(tries) == 1:
            return web.json_response(
                {"error": "slow down"}, status=429, headers={"Retry-After": "1"}
            )
        return web.Response(body=await request.read(), content_type="image/png")

    app = web.Application()
    app.router.add_get("/api/v1/challenge", challenge)
    app.router.add_post("/api/v1/remove", remove)
    server = await aiohttp_server(app)

    answer = await asyncio.to_thread(
        post_image, str(server.make_url("")).rstrip("/"), "/api/v1/remove", PNG, "image/png"
    )

    assert answer.status == 200 and answer.body == PNG
    assert len(tries) == 2
    assert tries[1][0] - tries[0][0] >= 1.0
    first, second = tries[0][1], tries[1][1]
    assert first and second and first != second


def test_retry_after_is_bounded_and_defaults_for_dates() -> None:
    assert [
        retry_after_s(v) for v in ("7", "0", "3600", None, "Wed, 21 Oct 2026 07:28:00 GMT")
    ] == [
        7.0,
        1.0,
        60.0,
        5.0,
        5.0,
    ]
