"""The page's reading of a detect mask with unsure regions, and the region a click picks
(gateway/static/unsure.js), run in node."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gateway.torchserve_client import UNSURE_LEVEL

UNSURE_JS = Path(__file__).resolve().parents[2] / "gateway" / "static" / "unsure.js"


def node(expression: str, **values: Any) -> Any:
    """``expression`` evaluated by node with unsure.js's functions and ``values`` in scope."""
    runner = shutil.which("node")
    if runner is None:
        pytest.skip("node is not installed: the page's script cannot be run here")
    script = (
        f"const {{ LEVELS, maskLevels, regionAt }} = require({json.dumps(str(UNSURE_JS))});"
        + "".join(f"const {k} = {json.dumps(v)};" for k, v in values.items())
        + f"console.log(JSON.stringify({expression}));"
    )
    done = subprocess.run([runner, "-e", script], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_handlers_greys_read_as_mask_unsure_and_clear() -> None:
    greys = [0, UNSURE_LEVEL, 255, 127, 128, 31]
    rgba = [v for g in greys for v in (g, g, g, 255)]
    both = "(({ mask, unsure }) => [Array.from(mask), Array.from(unsure)])"
    levels = node(both + "(maskLevels(rgba))", rgba=rgba)
    assert levels == [[0, 0, 1, 0, 1, 0], [0, 1, 0, 1, 0, 0]]
    # The page's mask threshold is the one the handler reads a sent mask with.
    assert node("LEVELS.watermark") == 128


def picked(unsure: np.ndarray, x: float, y: float, reach: float) -> np.ndarray | None:
    """regionAt's region as a full-size bool map, or None."""
    height, width = unsure.shape
    found = node(
        "(r => r && { ...r, pixels: Array.from(r.pixels) })"
        "(regionAt(Uint8Array.from(flat), width, height, x, y, reach))",
        flat=unsure.astype(int).ravel().tolist(), width=width, height=height, x=x, y=y,
        reach=reach,
    )  # fmt: skip
    if found is None:
        return None
    region = np.zeros(unsure.shape, bool)
    box = np.array(found["pixels"], bool).reshape(found["height"], found["width"])
    region[found["top"] : found["top"] + found["height"],
           found["left"] : found["left"] + found["width"]] = box  # fmt: skip
    return region


def test_a_click_picks_the_whole_region_under_it_and_only_that() -> None:
    unsure = np.zeros((20, 30), bool)
    unsure[2:6, 3:9] = True  # a region
    unsure[6, 9] = True  # touching it at a corner: the same region (8-connected)
    unsure[12:18, 20:27] = True  # another
    first = picked(unsure, 4, 3, 0)
    assert first is not None
    expected = np.zeros_like(unsure)
    expected[2:6, 3:9] = True
    expected[6, 9] = True
    assert np.array_equal(first, expected)
    second = picked(unsure, 25.4, 16.6, 0)
    assert second is not None and np.array_equal(second, unsure & ~expected)


def test_a_click_beside_a_region_picks_it_within_reach_and_nothing_beyond() -> None:
    unsure = np.zeros((20, 30), bool)
    unsure[10:12, 10:12] = True
    assert picked(unsure, 15, 11, 3) is None  # 4 pixels away
    near = picked(unsure, 15, 11, 4)
    assert near is not None and np.array_equal(near, unsure)
    assert picked(np.zeros((5, 5), bool), 2, 2, 10) is None
