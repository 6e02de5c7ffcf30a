"""Summaries of timed requests: latency percentiles, throughput and failures (none hidden)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from loadtests.analysis import percentile

OK = 200


@dataclass(frozen=True)
class Response:
    """One request as the client saw it."""

    status: int  # HTTP status; 0 when no response came (refused, reset, timed out)
    seconds: float  # from sending the request to the last byte of the response


def rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def significant(value: float, digits: int = 4) -> float:
    """``value`` to ``digits`` significant digits: GFLOP counts span 1e-3 to 1e3."""
    return float(f"{value:.{digits}g}")


def latency_summary(responses: Sequence[Response]) -> dict[str, object]:
    """Nearest-rank p50/p95, min and max in seconds of the successful (200) responses, and the
    failures by status (``{"503": 2}``; "0" is no response)."""
    seconds = [r.seconds for r in responses if r.status == OK]
    failed = Counter(str(r.status) for r in responses if r.status != OK)
    return {
        "requests": len(responses),
        "failures": sum(failed.values()),
        "failure_statuses": dict(sorted(failed.items())),
        "p50_s": rounded(percentile(seconds, 50)),
        "p95_s": rounded(percentile(seconds, 95)),
        "min_s": rounded(min(seconds, default=None)),
        "max_s": rounded(max(seconds, default=None)),
    }


def throughput_summary(
    responses: Sequence[Response], wall_s: float, megapixels: float
) -> dict[str, object]:
    """Successful responses per second of wall time (first request sent to last answered) and
    the megapixels they carried per second, with the latency summary."""
    succeeded = sum(1 for r in responses if r.status == OK)
    return {
        **latency_summary(responses),
        "wall_s": round(wall_s, 3),
        "requests_per_s": round(succeeded / wall_s, 4),
        "megapixels_per_s": round(succeeded * megapixels / wall_s, 4),
    }
