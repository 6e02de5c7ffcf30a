"""The load test: its schedule and analysis on hand-made records with known answers, and
short runs of ``python -m loadtests.run`` against a healthy and a failing fake gateway.

Locust monkeypatches the standard library with gevent when imported, so neither locust nor the
locustfile is ever imported here: they run in the subprocess only.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from aiohttp import BodyPartReader, web
from aiohttp.test_utils import TestServer
from PIL import Image

from loadtests.analysis import (
    Request,
    percentile,
    plot,
    problems,
    read_records,
    summarize,
    write_records,
)
from loadtests.schedule import (
    MISSION_RATE,
    P95_TARGET_S,
    STAGE_SECONDS_ENV,
    STAGES,
    stage_at,
    stages_from_env,
    start_window_s,
)
from serving.torchserve import REPO
from tests.images import encode, photo

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def ok(start_s: float, response_time_s: float, stage: int) -> Request:
    return Request(start_s, response_time_s, success=True, stage=stage, response_bytes=1000)


def failed(start_s: float, stage: int) -> Request:
    return Request(start_s, 0.01, success=False, stage=stage, response_bytes=20)


# --- schedule -------------------------------------------------------------------------------


def test_schedule_steps_through_the_mission_rate_and_past_it():
    rates = [rate for _, rate in STAGES]
    assert rates == sorted(set(rates))
    assert MISSION_RATE in rates
    assert rates[-1] >= 3 * MISSION_RATE  # well past saturation
    assert P95_TARGET_S == 2.0


def test_stage_at_maps_elapsed_seconds_to_the_stage_or_none():
    stages = ((60, 10), (30, 20), (60, 40))
    assert stage_at(-0.1, stages) is None
    assert stage_at(0, stages) == 0
    assert stage_at(59.9, stages) == 0
    assert stage_at(60, stages) == 1
    assert stage_at(89.9, stages) == 1
    assert stage_at(90, stages) == 2
    assert stage_at(149.9, stages) == 2
    assert stage_at(150, stages) is None


def test_stage_seconds_from_the_environment_shorten_every_stage():
    assert stages_from_env({}) == STAGES
    quick = stages_from_env({STAGE_SECONDS_ENV: "2.5"})
    assert quick == tuple((2.5, rate) for _, rate in STAGES)
    assert start_window_s(STAGES) == 60
    assert start_window_s(quick) == 2.5
    for bad in ("0", "-1", "two"):
        with pytest.raises(ValueError, match=STAGE_SECONDS_ENV):
            stages_from_env({STAGE_SECONDS_ENV: bad})


# --- analysis -------------------------------------------------------------------------------


def test_percentile_is_nearest_rank():
    values = [0.1 * i for i in range(1, 21)]  # 0.1 ... 2.0 s
    assert percentile(values, 50) == pytest.approx(1.0)
    assert percentile(values, 95) == pytest.approx(1.9)
    assert percentile(values, 100) == pytest.approx(2.0)
    assert percentile([0.7], 95) == 0.7
    assert percentile([], 95) is None


def test_summary_per_stage():
    stages = ((10, 6), (10, 60), (10, 120))
    requests = [
        ok(1, 0.5, 0),
        ok(2, 1.5, 0),
        ok(3, 1.0, 0),
        ok(9.5, 1.0, 0),  # finishes at 10.5: throughput of stage 1
        *(ok(10 + i, 0.1 * i, 1) for i in range(1, 10)),  # 0.1 ... 0.9 s
        failed(15, 1),
        ok(29, 2.0, 2),  # finishes after the last stage: in no stage's throughput
        ok(30.5, 0.2, None),  # started after the last stage: in no stage
    ]
    first, second, third = summarize(requests, stages)

    assert (first.stage, first.seconds, first.offered_per_min) == (0, 10, 6)
    assert (first.requests, first.completed, first.failures) == (4, 4, 0)
    assert first.throughput_rps == pytest.approx(0.3)
    assert (first.p50_s, first.p95_s, first.max_s) == (1.0, 1.5, 1.5)

    assert (second.requests, second.completed, second.failures) == (10, 9, 1)
    assert second.throughput_rps == pytest.approx(1.0)  # 9 of its own and 1 from stage 0
    assert second.p50_s == pytest.approx(0.5)
    assert second.p95_s == pytest.approx(0.9)
    assert second.max_s == pytest.approx(0.9)

    assert (third.requests, third.completed, third.failures) == (1, 1, 0)
    assert third.throughput_rps == 0
    assert third.p95_s == 2.0


def test_a_stage_without_requests_has_no_latency():
    (stage,) = summarize([], ((60, MISSION_RATE),))
    assert (stage.requests, stage.completed, stage.throughput_rps) == (0, 0, 0)
    assert (stage.p50_s, stage.p95_s, stage.max_s) == (None, None, None)


def test_problems_report_failures_anywhere():
    stages = ((10, 10), (10, MISSION_RATE), (10, 120))
    requests = [ok(1, 0.5, 0), ok(11, 1.0, 1), failed(21, 2), failed(22, 2)]
    assert problems(summarize(requests, stages)) == ["stage 2 (120/min): 2 of 2 requests failed"]


def test_problems_check_p95_at_the_mission_rate_both_ways():
    stages = ((10, 10), (10, MISSION_RATE), (10, 120))
    slow_elsewhere = [ok(1, 9.0, 0), ok(21, 9.0, 2)]
    at_target = [ok(10 + 0.1 * i, P95_TARGET_S * i / 20, 1) for i in range(1, 21)]
    assert problems(summarize(slow_elsewhere + at_target, stages)) == []

    above = [*at_target[:-2], ok(12, 2.5, 1), ok(13, 3.0, 1)]  # p95 = 2.5 s
    assert problems(summarize(slow_elsewhere + above, stages)) == [
        f"stage 1 ({MISSION_RATE}/min): p95 2.50 s is above the 2 s target"
    ]


def test_problems_when_the_mission_rate_has_no_completed_request_or_no_stage():
    assert problems(summarize([ok(1, 0.5, 0)], ((10, 10), (10, MISSION_RATE)))) == [
        f"stage 1 ({MISSION_RATE}/min): no request completed"
    ]
    assert problems(summarize([ok(1, 0.5, 0)], ((10, 10),))) == [
        f"the schedule has no stage at the mission rate of {MISSION_RATE}/min"
    ]


def test_records_round_trip(tmp_path):
    stages = ((2.0, 10), (2.0, 40))
    requests = [ok(0.5, 0.25, 0), failed(2.5, 1), ok(4.2, 0.1, None)]
    write_records(tmp_path / "records.json", stages, requests)
    assert read_records(tmp_path / "records.json") == (stages, requests)


def test_plot_writes_a_png(tmp_path):
    stages = ((10, 10), (10, MISSION_RATE), (10, 120))
    requests = [ok(1, 0.5, 0), ok(2, 0.7, 0), ok(11, 1.2, 1), ok(12, 1.8, 1)]  # none in stage 2
    path = tmp_path / "plots" / "throughput_latency.png"
    plot(summarize(requests, stages), path)
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    with Image.open(io.BytesIO(data)) as image:
        assert image.width > 300 and image.height > 200


# --- end to end -----------------------------------------------------------------------------


Upload = tuple[str | None, str, bytes]  # multipart field name, content type, bytes


def fake_gateway(healthy: bool, uploads: list[Upload]) -> web.Application:
    """/readyz answers 200; /api/v1/remove keeps each upload's field name, content type and bytes
    and answers a small JPEG when ``healthy``, else in turn a 500 and a 200 that is no image."""
    cleaned = encode(photo(16, 24), "JPEG")

    async def readyz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ready"})

    async def remove(request: web.Request) -> web.Response:
        part = await (await request.multipart()).next()
        assert isinstance(part, BodyPartReader)
        uploads.append((part.name, part.headers.get("Content-Type", ""), await part.read()))
        if healthy:
            return web.Response(body=cleaned, content_type="image/jpeg")
        if len(uploads) % 2:
            return web.json_response({"error": "TorchServe failed"}, status=500)
        return web.Response(text="cleaned.jpg")

    app = web.Application()
    app.router.add_get("/readyz", readyz)
    app.router.add_post("/api/v1/remove", remove)
    return app


async def quick_run(server: TestServer, out: Path) -> tuple[int, str]:
    """Exit status and output (its own, then locust's log) of ``python -m loadtests.run
    --no-start`` against ``server``, with 2 s stages."""
    host = str(server.make_url("/")).rstrip("/")
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "loadtests.run", "--no-start", "--host", host, "--out", str(out)),
        cwd=REPO,
        env={**os.environ, STAGE_SECONDS_ENV: "2"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, output.decode() + (out / "locust.log").read_text()


def outputs(out: Path, uploads: Sequence[Upload]) -> dict[str, Any]:
    """summary.json, after checking that every output is there and agrees with the uploads the
    fake received."""
    for name in ("locust_stats.csv", "locust_stats_history.csv", "locust.html"):
        assert (out / name).stat().st_size > 0, name
    assert "/api/v1/remove" in (out / "locust_stats.csv").read_text()
    assert (out / "throughput_latency.png").read_bytes().startswith(PNG_SIGNATURE)
    summary: dict[str, Any] = json.loads((out / "summary.json").read_text())
    stages = summary["stages"]
    assert [s["offered_per_min"] for s in stages] == [rate for _, rate in STAGES]
    assert all(s["seconds"] == 2 for s in stages)
    assert 0 < sum(s["requests"] for s in stages) <= len(uploads)
    return summary


async def test_quick_runs_against_a_healthy_and_a_failing_fake_gateway(
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]], tmp_path: Path
) -> None:
    """Both runs at once: they mostly wait on the schedule, so together they take one's time."""
    healthy_uploads: list[Upload] = []
    failing_uploads: list[Upload] = []
    healthy = await aiohttp_server(fake_gateway(True, healthy_uploads))
    failing = await aiohttp_server(fake_gateway(False, failing_uploads))
    (healthy_status, healthy_log), (failing_status, failing_log) = await asyncio.gather(
        quick_run(healthy, tmp_path / "healthy"), quick_run(failing, tmp_path / "failing")
    )

    assert healthy_status == 0, healthy_log
    summary = outputs(tmp_path / "healthy", healthy_uploads)
    assert summary["problems"] == []
    assert sum(s["failures"] for s in summary["stages"]) == 0
    (mission,) = (s for s in summary["stages"] if s["offered_per_min"] == MISSION_RATE)
    assert mission["completed"] > 0 and mission["p95_s"] < P95_TARGET_S
    assert "target met" in healthy_log
    for field, content_type, body in healthy_uploads:
        assert (field, content_type) == ("image", "image/jpeg")
        with Image.open(io.BytesIO(body)) as image:
            assert image.format == "JPEG"
            assert 2.0e6 <= image.width * image.height <= 4.01e6

    assert failing_status == 1, failing_log
    summary = outputs(tmp_path / "failing", failing_uploads)
    assert sum(s["completed"] for s in summary["stages"]) == 0
    assert all(s["failures"] == s["requests"] for s in summary["stages"])
    assert f"stage 2 ({MISSION_RATE}/min): no request completed" in summary["problems"]
    assert "target missed" in failing_log
    failures = (tmp_path / "failing" / "locust_failures.csv").read_text()
    assert "HTTP 500" in failures and "200 with a body that is not an image" in failures
