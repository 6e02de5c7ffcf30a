"""Anti-spam at the edge: the ALTCHA proof of work (403s) and the per-client limits (429s),
both decided before an upload's body is read."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import ipaddress
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import altcha
import pytest
from aiohttp import ClientResponse

from gateway.app import create_app
from gateway.proof_of_work import ALGORITHM, HEADER, KEY_PREFIX
from gateway.settings import Settings
from serving.client import solve
from tests.gateway.conftest import (
    SLOW,
    SUCCESS,
    AiohttpClient,
    FakeTorchServe,
    GatewayClient,
    encode,
    multipart,
)

REMOVE = "/api/v1/remove"
CHALLENGE = "/api/v1/challenge"
KEY = "test-key-of-this-gateway"
PNG = encode("RGB", (32, 24), "PNG")

Factory = Callable[..., Awaitable[GatewayClient]]


@pytest.fixture
def gateway(aiohttp_client: AiohttpClient, settings: Settings) -> Factory:
    """A gateway with the conftest settings changed as asked."""

    async def make(**changes: Any) -> GatewayClient:
        return await aiohttp_client(create_app(dataclasses.replace(settings, **changes)))

    return make


@pytest.fixture
async def guarded(gateway: Factory) -> GatewayClient:
    """The proof of work on, with a known key and the cheapest cost; no per-client limits."""
    return await gateway(proof_of_work=True, proof_of_work_key=KEY, proof_of_work_cost=1)


async def solved(client: GatewayClient) -> str:
    response = await client.get(CHALLENGE)
    assert response.status == 200
    return solve(await response.json())


async def upload(client: GatewayClient, headers: dict[str, str] | None = None) -> ClientResponse:
    return await client.post(
        REMOVE, data=multipart(PNG, "photo.png", "image/png"), headers=headers or {}
    )


async def refused(response: ClientResponse, status: int) -> dict[str, Any]:
    assert response.status == status
    assert response.content_type == "application/json"
    payload: dict[str, Any] = await response.json()
    return payload


# --- proof of work -------------------------------------------------------------------------


async def test_challenge_is_signed_pbkdf2_expiring_and_never_cached(guarded: GatewayClient) -> None:
    response = await guarded.get(CHALLENGE)

    assert response.status == 200
    assert response.headers["Cache-Control"] == "no-store"
    challenge = await response.json()
    parameters = challenge["parameters"]
    assert parameters["algorithm"] == ALGORITHM == "PBKDF2/SHA-256"
    assert parameters["keyPrefix"] == KEY_PREFIX == "00"
    assert parameters["cost"] == 1
    assert 0 < parameters["expiresAt"] - time.time() <= Settings().proof_of_work_expiry_s
    assert len(challenge["signature"]) == 64  # HMAC-SHA-256, hex


async def test_a_solved_challenge_buys_one_upload(
    guarded: GatewayClient, fake_torchserve: FakeTorchServe
) -> None:
    payload = await solved(guarded)

    first = await upload(guarded, {HEADER: payload})
    again = await upload(guarded, {HEADER: payload})

    assert first.status == 200
    assert await first.read() == PNG
    body = await refused(again, 403)
    assert body["reason"] == "reused"
    assert "already used" in body["error"]
    assert len(fake_torchserve.received) == 1


async def test_missing_proof_of_work_is_403(
    guarded: GatewayClient, fake_torchserve: FakeTorchServe
) -> None:
    body = await refused(await upload(guarded), 403)

    assert body["reason"] == "missing"
    assert HEADER in body["error"] and CHALLENGE in body["error"]
    assert fake_torchserve.received == []


def _tampered(payload: str, **solution: Any) -> str:
    document = json.loads(base64.b64decode(payload))
    document["solution"].update(solution)
    return base64.b64encode(json.dumps(document).encode()).decode()


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda p: _tampered(p, counter=2**32 + 1), id="counter-out-of-range"),
        pytest.param(lambda p: _tampered(p, derivedKey="00" * 32), id="wrong-key"),
        pytest.param(lambda p: p[:-8], id="truncated"),
        pytest.param(lambda p: "not base64 at all!", id="garbage"),
    ],
)
async def test_wrong_proof_of_work_is_403(
    guarded: GatewayClient, fake_torchserve: FakeTorchServe, forge: Callable[[str], str]
) -> None:
    body = await refused(await upload(guarded, {HEADER: forge(await solved(guarded))}), 403)

    assert body["reason"] == "wrong"
    assert fake_torchserve.received == []


async def test_a_challenge_signed_by_another_key_is_wrong(guarded: GatewayClient) -> None:
    foreign = altcha.create_challenge(
        ALGORITHM, 1, key_prefix=KEY_PREFIX, expires_at=int(time.time()) + 60, hmac_secret="x"
    )

    response = await upload(guarded, {HEADER: solve(foreign.to_dict())})

    assert (await refused(response, 403))["reason"] == "wrong"


async def test_expired_proof_of_work_is_403(guarded: GatewayClient) -> None:
    # Signed with this gateway's key, but its expiry has passed.
    stale = altcha.create_challenge(
        ALGORITHM, 1, key_prefix=KEY_PREFIX, expires_at=int(time.time()) - 1, hmac_secret=KEY
    )

    body = await refused(await upload(guarded, {HEADER: solve(stale.to_dict())}), 403)

    assert body["reason"] == "expired"
    assert "solve a new challenge" in body["error"]


async def test_the_key_is_generated_when_unset(gateway: Factory) -> None:
    first = await gateway(proof_of_work=True, proof_of_work_cost=1)
    second = await gateway(proof_of_work=True, proof_of_work_cost=1)

    # A solution of one gateway's challenge is worthless at another started without a key.
    response = await upload(second, {HEADER: await solved(first)})

    assert (await refused(response, 403))["reason"] == "wrong"


async def test_proof_of_work_is_checked_before_the_body_is_read(guarded: GatewayClient) -> None:
    body = await refused(await _headers_only(guarded, {}), 403)

    assert body["reason"] == "missing"


async def test_proof_of_work_off_serves_no_challenge_and_needs_none(
    client: GatewayClient,
) -> None:
    assert (await client.get(CHALLENGE)).status == 404
    assert (await upload(client)).status == 200


def test_proof_of_work_is_on_by_default() -> None:
    assert Settings().proof_of_work is True
    assert Settings.from_env({"GATEWAY_PROOF_OF_WORK": "off"}).proof_of_work is False


async def test_the_page_carries_the_widget_and_serves_it(guarded: GatewayClient) -> None:
    html = await (await guarded.get("/")).text()

    assert '<altcha-widget challenge="/api/v1/challenge"' in html
    assert '<script src="/static/pow.js" type="module"></script>' in html
    for path in (
        "/static/pow.js",
        "/vendor/altcha/external/altcha.js",
        "/vendor/altcha/external/altcha.css",
        "/vendor/altcha/workers/pbkdf2.js",
    ):
        response = await guarded.get(path)
        assert response.status == 200, path
        assert len(await response.read()) > 1000, path


async def test_the_page_without_proof_of_work_has_no_widget(client: GatewayClient) -> None:
    html = await (await client.get("/")).text()

    assert "altcha" not in html


# --- per-client limits ---------------------------------------------------------------------


async def _headers_only(client: GatewayClient, headers: dict[str, str]) -> ClientResponse:
    """An upload that announces 50 MB and sends none of it: only an answer decided before
    the body is read can come back."""
    return await asyncio.wait_for(
        client.post(
            REMOVE,
            data=_never_ending_body(),
            headers={"Content-Type": "image/png", "Content-Length": "50000000", **headers},
        ),
        timeout=5,
    )


async def _never_ending_body() -> Any:
    yield b"\x89PNG"
    await asyncio.sleep(3600)


async def test_one_upload_over_the_rate_is_429_before_the_body_is_read(
    gateway: Factory, fake_torchserve: FakeTorchServe
) -> None:
    limited = await gateway(rate_limit_per_minute=3, rate_limit_burst=3)
    statuses = [(await upload(limited)).status for _ in range(3)]

    over = await _headers_only(limited, {})

    assert statuses == [200, 200, 200]
    body = await refused(over, 429)
    assert "3 uploads a minute" in body["error"]
    assert 1 <= int(over.headers["Retry-After"]) <= 60
    assert len(fake_torchserve.received) == 3


async def test_the_burst_allows_more_in_a_minute_than_the_average(gateway: Factory) -> None:
    limited = await gateway(rate_limit_per_minute=1, rate_limit_burst=3)

    statuses = [(await upload(limited)).status for _ in range(4)]

    assert statuses == [200, 200, 200, 429]


async def test_a_spoofed_x_forwarded_for_is_ignored(gateway: Factory) -> None:
    limited = await gateway(rate_limit_per_minute=2, rate_limit_burst=2)
    for _ in range(2):
        assert (await upload(limited)).status == 200

    spoofed = await upload(limited, {"X-Forwarded-For": "198.51.100.9"})

    assert spoofed.status == 429


async def test_x_forwarded_for_from_a_trusted_proxy_names_the_client(gateway: Factory) -> None:
    proxy = ipaddress.ip_network("127.0.0.1/32")
    limited = await gateway(rate_limit_per_minute=1, rate_limit_burst=1, trusted_proxies=(proxy,))

    first = await upload(limited, {"X-Forwarded-For": "198.51.100.9"})
    other_client = await upload(limited, {"X-Forwarded-For": "198.51.100.10"})
    same_client = await upload(limited, {"X-Forwarded-For": "203.0.113.1, 198.51.100.9"})

    assert [first.status, other_client.status, same_client.status] == [200, 200, 429]


async def test_the_default_limit_lets_a_person_clean_a_batch_of_20(
    aiohttp_client: AiohttpClient, fake_torchserve: FakeTorchServe
) -> None:
    # The shipped defaults, proof of work included, with only the backend pointed at the fake.
    defaults = Settings(torchserve_url=fake_torchserve.url, proof_of_work_cost=1)
    assert defaults.rate_limited and defaults.proof_of_work
    client = await aiohttp_client(create_app(defaults))

    statuses = [(await upload(client, {HEADER: await solved(client)})).status for _ in range(20)]

    assert statuses == [200] * 20


async def test_uploads_past_the_clients_concurrency_are_429_and_slots_come_back(
    gateway: Factory, fake_torchserve: FakeTorchServe
) -> None:
    limited = await gateway(max_uploads_per_client=2, rate_limit_per_minute=100)
    fake_torchserve.mode = SLOW  # each held until the gateway's timeout (504)
    held = [asyncio.create_task(upload(limited)) for _ in range(2)]
    while len(fake_torchserve.received) < 2:
        await asyncio.sleep(0.01)

    third = await upload(limited)

    body = await refused(third, 429)
    assert "2 uploads in progress" in body["error"]
    assert third.headers["Retry-After"] == "5"
    assert [(await task).status for task in held] == [504, 504]
    fake_torchserve.mode = SUCCESS
    assert (await upload(limited)).status == 200


async def test_rate_limit_zero_turns_the_per_client_limits_off(gateway: Factory) -> None:
    unlimited = await gateway(rate_limit_per_minute=0, rate_limit_burst=1)

    statuses = [(await upload(unlimited)).status for _ in range(5)]

    assert statuses == [200] * 5
