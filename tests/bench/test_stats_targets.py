"""Latency and throughput summaries, and the target checks, on hand-made values."""

from __future__ import annotations

import pytest

from bench.stats import Response, latency_summary, throughput_summary
from bench.targets import TARGETS, Target, check_targets


def test_latency_summary_is_nearest_rank_over_successes_and_counts_every_failure():
    responses = [Response(200, s) for s in (0.5, 0.1, 0.4, 0.2, 0.3)]
    responses += [Response(503, 0.01), Response(0, 300.0), Response(503, 0.02)]
    summary = latency_summary(responses)
    assert summary == {
        "requests": 8,
        "failures": 3,
        "failure_statuses": {"0": 1, "503": 2},
        "p50_s": 0.3,
        "p95_s": 0.5,
        "min_s": 0.1,
        "max_s": 0.5,
    }


def test_latency_summary_without_a_success_has_no_latency():
    summary = latency_summary([Response(502, 0.1)])
    assert (summary["failures"], summary["p50_s"], summary["min_s"]) == (1, None, None)


def test_throughput_counts_only_successes_per_wall_second():
    responses = [Response(200, 1.0)] * 6 + [Response(503, 0.1)] * 2
    summary = throughput_summary(responses, wall_s=4.0, megapixels=2.5)
    assert summary["requests"] == 8 and summary["failures"] == 2
    assert summary["requests_per_s"] == 1.5
    assert summary["megapixels_per_s"] == 3.75
    assert summary["wall_s"] == 4.0


@pytest.mark.parametrize(
    ("comparison", "limit", "met", "missed"),
    [("<=", 0.6, [0.6, 0.599], [0.601]), ("<", 3.0, [2.999], [3.0, 3.001]),
     (">=", 0.85, [0.85, 0.851], [0.849])],
)  # fmt: skip
def test_a_target_is_met_up_to_its_limit_and_missed_just_past_it(comparison, limit, met, missed):
    target = Target("x", comparison, limit, "", "")
    assert [target.met(v) for v in met] == [True] * len(met)
    assert [target.met(v) for v in missed] == [False] * len(missed)
    assert not target.met(None)


def test_the_issue_targets_and_their_check():
    limits = {t.name: (t.comparison, t.limit) for t in TARGETS}
    assert limits == {
        "e2e_p50_1mp_s": ("<=", 0.6),
        "e2e_p50_12mp_s": ("<=", 3.0),
        "e2e_p50_12mp_grid_s": ("<=", 15.0),
        "e2e_over_model_only": (">=", 0.85),
        "achieved_over_peak": (">=", 0.5),
        "worker_peak_gib": ("<", 3.0),
    }
    measured = {"e2e_p50_1mp_s": 0.61, "e2e_p50_12mp_s": 2.9, "worker_peak_gib": 2.99}
    checked = {t["name"]: t for t in check_targets(measured)}
    assert checked["e2e_p50_1mp_s"]["met"] is False
    assert checked["e2e_p50_1mp_s"]["target"] == "<= 0.6 s"
    assert checked["e2e_p50_12mp_s"]["met"] is True
    assert checked["worker_peak_gib"] == {
        "name": "worker_peak_gib", "target": "< 3 GiB", "measured": 2.99, "met": True,
        "measured_on": checked["worker_peak_gib"]["measured_on"],
    }  # fmt: skip
    assert checked["e2e_over_model_only"]["target"] == ">= 0.85"
    assert checked["e2e_over_model_only"]["measured"] is None
    assert checked["e2e_over_model_only"]["met"] is False
