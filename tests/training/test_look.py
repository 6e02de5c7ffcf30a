"""training/look.py: where the crops are taken and what each photo's row says."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from handler.engine import Engine
from tests.handler.test_engine import tiny_model
from training.look import changed_pixels, cleaned, photo_row, side_by_side, table, window
from training.synth import WatermarkedExample


def example(height: int = 40, width: int = 60) -> WatermarkedExample:
    clean = np.full((height, width, 3), 100, dtype=np.uint8)
    marked = clean.copy()
    mask = np.zeros((height, width), dtype=bool)
    mask[10:20, 30:50] = True  # 200 pixels of mark
    marked[mask] = 200
    zeros = np.zeros((height, width))
    return WatermarkedExample(marked, clean, mask, zeros, np.zeros((height, width, 3)), "text")


def test_the_window_is_centred_on_the_focus_and_stays_inside_the_frame():
    focus = np.zeros((100, 200), dtype=bool)
    focus[40:61, 90:111] = True  # median (50, 100)
    assert window(focus, 20) == (40, 90)
    focus[:] = False
    focus[0:4, 196:200] = True  # a corner: the square is pushed back inside
    assert window(focus, 20) == (0, 180)
    assert window(np.zeros((100, 200), dtype=bool), 20) == (40, 90)  # nothing: the centre


def test_a_photo_row_scores_the_changed_pixels_against_the_mark():
    ex = example()
    output = ex.watermarked.copy()
    output[10:20, 30:40] = 100  # half of the mark restored exactly
    output[0:5, 0:4] = 90  # 20 pixels changed off the mark
    row = photo_row(ex, output, changed_pixels(ex, output), ex.clean)
    assert row["changed_pixels"] == 120
    assert row["recall"] == pytest.approx(0.5)
    assert row["precision"] == pytest.approx(100 / 120)
    assert row["psnr"] > row["input_psnr"]
    untouched = photo_row(ex, ex.watermarked, changed_pixels(ex, ex.watermarked), ex.clean)
    assert untouched["changed_pixels"] == 0 and untouched["recall"] == 0
    assert math.isnan(untouched["precision"])


def test_crops_show_input_output_and_clean_at_the_same_place():
    ex = example()
    output = ex.watermarked.copy()
    output[12, 40] = 0
    crops = side_by_side(ex, output, changed_pixels(ex, output), 16)
    assert crops.shape == (16, 48, 3)
    # Centred on the one changed pixel (12, 40): the square starts at (4, 32).
    assert np.array_equal(crops[:, :16], ex.watermarked[4:20, 32:48])
    assert np.array_equal(crops[:, 16:32], output[4:20, 32:48])
    assert np.array_equal(crops[:, 32:], ex.clean[4:20, 32:48])


def test_the_table_has_a_line_a_photo():
    ex = example()
    scores = photo_row(ex, ex.clean, changed_pixels(ex, ex.clean), ex.clean)
    row = {"name": "0-text", "style": "text", "size": "60x40", **scores}
    lines = table([row, row]).splitlines()
    assert len(lines) == 4 and lines[2].startswith("| 0-text | text | 60x40 |")


def test_with_the_true_mask_only_the_mark_is_restored_and_without_nothing_sure_is():
    ex = example()
    # A network pinned to "no mark anywhere": detection keeps nothing, the true mask everything.
    engine = Engine(tiny_model(mask_bias=-1e4), torch.device("cpu"))
    detected = cleaned(engine, ex, true_mask=False)
    assert not detected.mask.any() and np.array_equal(detected.output, ex.watermarked)
    given = cleaned(engine, ex, true_mask=True)
    assert np.array_equal(given.mask, ex.mask)
    assert np.array_equal(given.output[~ex.mask], ex.watermarked[~ex.mask])
    # Telea fills the flat square from the 100s around it.
    assert np.abs(given.output[ex.mask].astype(int) - 100).max() <= 2
