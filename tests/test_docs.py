"""The README's numbers come from files the pipeline writes, not from hand edits."""

from __future__ import annotations

import json

from bench.report import render
from loadtests.analysis import StageSummary, table
from serving.torchserve import REPO
from training.report import eval_table

# What `make bench` and `make loadtest` wrote on the development machine, committed.
RESULTS = REPO / "docs" / "results"


def test_readme_shows_the_evaluation_the_pipeline_wrote():
    summary = json.loads((REPO / "metrics" / "eval.json").read_text())
    table = (REPO / "metrics" / "eval.md").read_text()
    assert table == eval_table(summary), "metrics/eval.md is rendered from metrics/eval.json"
    assert table in (REPO / "README.md").read_text(), "README shows metrics/eval.md verbatim"


def test_readme_shows_the_benchmark_make_bench_wrote():
    document = json.loads((RESULTS / "bench.json").read_text())
    table = (RESULTS / "bench.md").read_text()
    assert table == render(document), "docs/results/bench.md is rendered from bench.json"
    assert table in (REPO / "README.md").read_text(), "README shows docs/results/bench.md verbatim"


def test_readme_shows_the_load_test_make_loadtest_wrote():
    document = json.loads((RESULTS / "loadtest-summary.json").read_text())
    text = table([StageSummary(**stage) for stage in document["stages"]])
    assert text in (REPO / "README.md").read_text(), "README shows the load test's table verbatim"
    assert (RESULTS / "throughput_latency.png").read_bytes().startswith(b"\x89PNG")
    assert "docs/results/throughput_latency.png" in (REPO / "README.md").read_text()
