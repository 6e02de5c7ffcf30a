"""What a load test measured, per stage of the schedule, and whether it meets the mission target.

The records file (written by the locustfile, read here) is JSON:
``{"stages": [[seconds, uploads per minute], ...], "requests": [Request fields, ...]}``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from loadtests.schedule import MISSION_RATE, P95_TARGET_S, Stage, stage_windows

RECORDS_ENV = "LOADTEST_RECORDS"  # where the locustfile writes the records at quit


@dataclass(frozen=True)
class Request:
    """One upload as locust saw it."""

    start_s: float  # seconds since the test started
    response_time_s: float
    success: bool  # 200 with an image body
    stage: int | None  # index of the stage it started in (None: after the last one)
    response_bytes: int


@dataclass(frozen=True)
class StageSummary:
    stage: int
    seconds: float
    offered_per_min: int  # the schedule's uploads a minute
    requests: int  # uploads started during the stage
    completed: int  # of those, answered 200 with an image
    failures: int  # of those, anything else
    throughput_rps: float  # successful responses that finished during the stage, per second
    # Response times in seconds of the completed requests, nearest rank (None: none completed).
    p50_s: float | None
    p95_s: float | None
    max_s: float | None


def write_records(path: Path, stages: Sequence[Stage], requests: Sequence[Request]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"stages": [list(s) for s in stages], "requests": [asdict(r) for r in requests]}
    path.write_text(json.dumps(document))


def read_records(path: Path) -> tuple[tuple[Stage, ...], list[Request]]:
    document = json.loads(path.read_text())
    stages = tuple((float(seconds), int(rate)) for seconds, rate in document["stages"])
    return stages, [Request(**r) for r in document["requests"]]


def percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank ``q``-th percentile: the smallest value with at least q % of the values
    at or below it (p95 <= 2 s means 95 % of the requests took 2 s or less)."""
    if not values:
        return None
    return float(np.percentile(values, q, method="inverted_cdf"))


def summarize(requests: Sequence[Request], stages: Sequence[Stage]) -> list[StageSummary]:
    summary = []
    for index, ((seconds, rate), (start, end)) in enumerate(
        zip(stages, stage_windows(stages), strict=True)
    ):
        started = [r for r in requests if r.stage == index]
        times = [r.response_time_s for r in started if r.success]
        finished = sum(
            1 for r in requests if r.success and start <= r.start_s + r.response_time_s < end
        )
        summary.append(
            StageSummary(
                stage=index,
                seconds=seconds,
                offered_per_min=rate,
                requests=len(started),
                completed=len(times),
                failures=len(started) - len(times),
                throughput_rps=finished / seconds,
                p50_s=percentile(times, 50),
                p95_s=percentile(times, 95),
                max_s=max(times, default=None),
            )
        )
    return summary


def problems(
    summary: Sequence[StageSummary],
    mission_rate: int = MISSION_RATE,
    p95_target_s: float = P95_TARGET_S,
) -> list[str]:
    """Why the run misses the target (empty when it meets it): any failed request, or at the
    mission rate no completed request or a p95 above the target."""
    found = [
        f"stage {s.stage} ({s.offered_per_min}/min): {s.failures} of {s.requests} requests failed"
        for s in summary
        if s.failures
    ]
    mission = [s for s in summary if s.offered_per_min == mission_rate]
    if not mission:
        found.append(f"the schedule has no stage at the mission rate of {mission_rate}/min")
    for s in mission:
        if s.p95_s is None:
            found.append(f"stage {s.stage} ({mission_rate}/min): no request completed")
        elif s.p95_s > p95_target_s:
            found.append(
                f"stage {s.stage} ({mission_rate}/min): p95 {s.p95_s:.2f} s is above the "
                f"{p95_target_s:g} s target"
            )
    return found


def plot(summary: Sequence[StageSummary], path: Path, p95_target_s: float = P95_TARGET_S) -> None:
    """PNG of achieved throughput (req/s, x) against p50 and p95 response time (s, y), one point
    per stage with a completed request, labelled with the stage's offered uploads a minute."""
    # (offered uploads a minute, req/s, p50 s, p95 s) of the stages with a completed request
    points = [
        (s.offered_per_min, s.throughput_rps, s.p50_s, s.p95_s)
        for s in summary
        if s.p50_s is not None and s.p95_s is not None
    ]
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.plot([p[1] for p in points], [p[2] for p in points], "o-", label="p50")
    axes.plot([p[1] for p in points], [p[3] for p in points], "s-", label="p95")
    for rate, throughput, _, p95 in points:
        label = f"{rate}/min"
        axes.annotate(label, (throughput, p95), xytext=(4, 6), textcoords="offset points")
    target = f"p95 target {p95_target_s:g} s"
    axes.axhline(p95_target_s, color="tab:red", linestyle="--", label=target)
    axes.set_xlabel("achieved throughput (requests/s)")
    axes.set_ylabel("response time (s)")
    axes.set_title("clearmark under stepped load: POST /api/v1/remove, 2-4 MP JPEG")
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    axes.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)


def table(summary: Sequence[StageSummary]) -> str:
    """The summary as a small fixed-width text table."""

    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    rows: list[tuple[str, ...]] = [
        ("stage", "offered/min", "sent", "ok", "failed", "req/s", "p50 s", "p95 s", "max s")
    ]
    for s in summary:
        counts = (s.stage, s.offered_per_min, s.requests, s.completed, s.failures)
        times = (seconds(s.p50_s), seconds(s.p95_s), seconds(s.max_s))
        rows.append((*map(str, counts), f"{s.throughput_rps:.2f}", *times))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)) for row in rows)
    return "\n".join(lines)
