"""The upload page's retry policy (gateway/static/retry.js), run in node."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from gateway.middleware import RETRY_AFTER_S

RETRY_JS = Path(__file__).resolve().parents[2] / "gateway" / "static" / "retry.js"


def delays(cases: list[tuple[int, str | None, int]]) -> list[float | None]:
    """retryDelaySeconds(status, retryAfter, attempt) for each case, computed by node."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the page's script cannot be run here")
    script = (
        f"const {{ retryDelaySeconds }} = require({json.dumps(str(RETRY_JS))});"
        f"const cases = {json.dumps(cases)};"
        "console.log(JSON.stringify(cases.map(([s, r, a]) => retryDelaySeconds(s, r, a))));"
    )
    done = subprocess.run([node, "-e", script], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_busy_answers_are_retried_after_the_servers_delay() -> None:
    assert delays([(503, str(RETRY_AFTER_S), 1), (503, "12", 3)]) == [RETRY_AFTER_S, 12]


def test_over_the_clients_limit_is_retried_after_the_servers_delay() -> None:
    assert delays([(429, "7", 1), (429, "7", 4), (403, None, 1)]) == [7, None, None]


def test_final_answers_and_the_last_attempt_are_not_retried() -> None:
    cases = [(200, None, 1), (413, None, 1), (415, None, 1), (504, "5", 1), (503, "5", 4)]
    assert delays(cases) == [None] * len(cases)


def test_missing_or_odd_retry_after_falls_back_and_is_bounded() -> None:
    # an HTTP date or garbage -> the default 5 s; 0 -> at least 1 s; an hour -> at most 30 s
    cases = [(503, None, 1), (503, "Wed, 21 Oct 2026 07:28:00 GMT", 1), (503, "0", 1),
             (503, "3600", 2)]  # fmt: skip
    assert delays(cases) == [5, 5, 1, 30]
