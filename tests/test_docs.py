"""The README's numbers come from files the pipeline writes, not from hand edits."""

from __future__ import annotations

import json

from serving.torchserve import REPO
from training.report import eval_table


def test_readme_shows_the_evaluation_the_pipeline_wrote():
    summary = json.loads((REPO / "metrics" / "eval.json").read_text())
    table = (REPO / "metrics" / "eval.md").read_text()
    assert table == eval_table(summary), "metrics/eval.md is rendered from metrics/eval.json"
    assert table in (REPO / "README.md").read_text(), "README shows metrics/eval.md verbatim"
