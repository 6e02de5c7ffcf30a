"""The load test's schedule: stepped stages of uploads a minute, from light load past saturation.

Every simulated user uploads one photo a minute (``PACING_S``), so a stage of N uploads a minute
runs N users, each starting at a random moment within its first minute (arrivals spread out
instead of bursting at each step).

``LOADTEST_STAGE_SECONDS=s`` runs every stage for ``s`` seconds instead of its own duration: a
quick run that checks the machinery, not the numbers. Users keep one upload a minute, and those
added by a stage start within that stage, so a stage shorter than a minute sends about one upload
per user it adds rather than its uploads-a-minute rate.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from gateway.settings import positive_float

Stage = tuple[float, int]  # (duration in seconds, uploads per minute)

# The mission is 30-40 uploads a minute with bursts; the steps go on past the point where the
# service saturates, so that the knee of the throughput/latency curve is measured.
STAGES: tuple[Stage, ...] = ((60, 10), (60, 20), (60, 40), (60, 60), (60, 90), (60, 120))
MISSION_RATE = 40  # uploads a minute at which the target below must hold, with zero failures
P95_TARGET_S = 2.0  # seconds, 95th percentile of the response time at MISSION_RATE
PACING_S = 60.0  # seconds between two uploads of one user
STAGE_SECONDS_ENV = "LOADTEST_STAGE_SECONDS"


def stages_from_env(env: Mapping[str, str] = os.environ) -> tuple[Stage, ...]:
    """``STAGES``, each stage lasting ``LOADTEST_STAGE_SECONDS`` seconds when that is set."""
    if STAGE_SECONDS_ENV not in env:
        return STAGES
    seconds = positive_float(env, STAGE_SECONDS_ENV, default=0.0)
    return tuple((seconds, rate) for _, rate in STAGES)


def stage_windows(stages: Sequence[Stage]) -> list[tuple[float, float]]:
    """(start, end) of each stage in seconds since the test started."""
    windows = []
    start = 0.0
    for seconds, _ in stages:
        windows.append((start, start + seconds))
        start += seconds
    return windows


def stage_at(elapsed_s: float, stages: Sequence[Stage]) -> int | None:
    """Index of the stage running ``elapsed_s`` seconds into the test; None before or after."""
    for index, (start, end) in enumerate(stage_windows(stages)):
        if start <= elapsed_s < end:
            return index
    return None


def start_window_s(stages: Sequence[Stage]) -> float:
    """A new user's first upload comes after a uniform random wait of at most this many seconds:
    one pacing period, or the shortest stage when stages are shorter (a quick run)."""
    return min(PACING_S, *(seconds for seconds, _ in stages))
