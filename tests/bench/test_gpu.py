"""bench/gpu.sh and bench/gpu.py: the batching speed-up and the targets from measured runs, and
the whole script in its dry mode (small photos, a real stack on this CPU)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from bench.gpu import PLANS, speedups, targets

REPO = Path(__file__).resolve().parents[2]
PLAN = PLANS["gpu"]


def archive(rps: float, p50: float) -> dict[str, object]:
    run = {"requests": 10, "failures": 0, "requests_per_s": rps}
    return {
        "1mp": {"c1": {"p50_s": p50, "requests": 10, "failures": 0}, "c16": run, "c64": run},
        "12mp": {"c1": {"p50_s": 1.0}, "c16": run, "c64": {"skipped": "time budget spent"}},
    }


def test_speedup_is_batch_8_over_batch_1_per_image_and_concurrency():
    archives = {"batch_1": archive(10.0, 0.04), "batch_8": archive(25.0, 0.06)}

    assert speedups(archives, PLAN) == {"1mp": {"c16": 2.5, "c64": 2.5}, "12mp": {"c16": 2.5}}


def test_targets_take_the_best_1mp_latency_and_the_speedup_at_the_highest_concurrency():
    archives = {"batch_1": archive(10.0, 0.04), "batch_8": archive(15.0, 0.06)}
    latency, batching = targets(archives, speedups(archives, PLAN), PLAN)

    assert (latency["measured"], latency["met"]) == (0.04, True)
    assert (batching["measured"], batching["met"]) == (1.5, False)
    assert "c64" in batching["name"]


def test_gpu_script_parses():
    for script in ("bench/gpu.sh", "bench/gpu-prepare.sh"):
        assert subprocess.run(["bash", "-n", str(REPO / script)]).returncode == 0


@pytest.mark.integration
def test_dry_run_serves_both_archives_and_writes_the_document(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path), "WORK": str(tmp_path / "work")}
    done = subprocess.run(["bash", "bench/gpu.sh", "--dry"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=480)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    document = json.loads((tmp_path / "gpu.json").read_text())

    assert set(document["archives"]) == {"batch_1", "batch_8"}
    for measured in document["archives"].values():
        assert measured["worker_device"] == "cpu"
        assert measured["small"]["c1"]["failures"] == 0
        assert measured["small"]["c2"]["failures"] == 0
        assert measured["small"]["c2"]["requests_per_s"] > 0
    assert set(document["speedup"]["small"]) == {"c2"}
