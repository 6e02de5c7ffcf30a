"""Fixtures the training tests share: two small photos and the fonts matplotlib ships (no
logos), so that a tiny run trains, validates and resumes in seconds."""

from __future__ import annotations

import pytest

from tests.images import photo
from training.fonts import matplotlib_fonts
from training.synth import MarkAssets


@pytest.fixture(scope="module")
def photos():
    return [photo(80, 120, "skimage-coffee"), photo(90, 90, "skimage-chelsea")]


@pytest.fixture(scope="module")
def assets():
    return MarkAssets(tuple(matplotlib_fonts()))
