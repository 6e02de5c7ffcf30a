"""The inference engine with the committed model: precision, the whole-or-tiles choice, and
pixels outside the predicted mark coming back untouched."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from handler.clearmark_handler import ClearmarkHandler
from handler.engine import Engine, EngineConfig
from handler.regions import RegionConfig
from tests.images import photo
from training.checkpoint import load_model
from training.fonts import matplotlib_fonts
from training.metrics import psnr
from training.synth import MarkAssets, add_watermark

CHECKPOINT = Path(__file__).resolve().parents[2] / "model" / "clearmark.pt"


def engine(**settings: object) -> Engine:
    return Engine.from_settings(load_model(CHECKPOINT), torch.device("cpu"), settings)


def tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb).permute(2, 0, 1).float().div(255)


# The handler's own conversion back to uint8.
pixels = ClearmarkHandler._pixels


@pytest.fixture(scope="module")
def marked() -> np.ndarray:
    rng = np.random.default_rng(3)
    assets = MarkAssets(tuple(matplotlib_fonts()))
    return add_watermark(
        photo(384, 512), rng, assets, style="corner", jpeg_probability=0
    ).watermarked


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="precision"):
        EngineConfig(precision="int3")


def test_pixels_below_the_keep_threshold_come_back_bit_identical(marked):
    eng = engine()
    [(output, mask)] = eng.whole([tensor(marked)])
    out = pixels(output)
    kept = (mask[0] < eng.cfg.keep_threshold).numpy()
    assert 0.5 < kept.mean() < 1  # most of the photo is unmarked, and something was found
    assert np.array_equal(out[kept], marked[kept])
    assert not np.array_equal(out, marked)


def test_bfloat16_matches_float32(marked):
    [(fast, _)] = engine(precision="bfloat16").whole([tensor(marked)])
    [(exact, _)] = engine(precision="float32", channels_last=False).whole([tensor(marked)])
    assert psnr(pixels(fast), pixels(exact)) > 45


def test_tiles_run_whole_when_they_would_cost_more():
    cfg = EngineConfig(max_forward_pixels=10**6)
    eng = Engine(
        load_model(CHECKPOINT), torch.device("cpu"), cfg, RegionConfig(tile=256, margin=32)
    )
    image = torch.zeros(3, 520, 600)  # 312,000 pixels; a window is 320 x 320 = 102,400
    assert not eng.runs_whole_anyway(image, [(0, 0), (0, 256), (0, 344)])  # 307,200
    assert eng.runs_whole_anyway(image, [(0, 0), (0, 256), (0, 344), (256, 0)])
    huge = torch.zeros(3, 1200, 1000)  # over max_forward_pixels: always tile by tile
    assert not eng.runs_whole_anyway(huge, [(0, 0)] * 100)


def test_clean_chooses_the_path_per_image(marked):
    small = photo(100, 120)
    # Every tile flagged: the 384 x 512 image is cheaper whole; below direct_pixels runs whole.
    everything = engine(mask_threshold=-1.0, direct_pixels=50_000)
    results = everything.clean([tensor(marked), tensor(small)])
    assert [r.tiles for r in results] == [None, None]
    assert [tuple(r.output.shape) for r in results] == [(3, 384, 512), (3, 100, 120)]
    # The same, with forwards too small to take it whole: every tile, and no seams.
    tiled = engine(mask_threshold=-1.0, direct_pixels=50_000, max_forward_pixels=150_000)
    [result] = tiled.clean([tensor(marked)])
    assert result.tiles is not None and len(result.tiles) == 4
    assert psnr(pixels(result.output), pixels(results[0].output)) > 40
    # Nothing flagged: every pixel as it came in.
    nothing = engine(mask_threshold=2.0, direct_pixels=50_000)
    [result] = nothing.clean([tensor(marked)])
    assert result.tiles == [] and np.array_equal(pixels(result.output), marked)
