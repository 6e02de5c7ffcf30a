"""Fixtures the training tests share: two small photos and the fonts matplotlib ships (no
logos), so that a tiny run trains, validates and resumes in seconds."""

from __future__ import annotations

import pytest

from tests.images import photo
from training.fonts import matplotlib_fonts
from training.gate_search import MarkedSets, held_out_sets
from training.synth import MarkAssets


@pytest.fixture(scope="module")
def photos():
    return [photo(80, 120, "skimage-coffee"), photo(90, 90, "skimage-chelsea")]


@pytest.fixture(scope="module")
def assets():
    return MarkAssets(tuple(matplotlib_fonts()))


@pytest.fixture(scope="module")
def sets() -> MarkedSets:
    """training/gate_search.py's held-out sets, small: 5 crops of 64 pixels, 2 "full-size"
    photos, 3 clean crops."""
    photos = [photo(96, 128, "skimage-coffee"), photo(120, 120, "skimage-chelsea")]
    params = {
        "seeds": [1], "count": 5, "crop_size": 64, "full_count": 2,
        "full_min_megapixels": 0.01, "clean_count": 3,
    }  # fmt: skip
    return held_out_sets(photos, MarkAssets(tuple(matplotlib_fonts())), params)
