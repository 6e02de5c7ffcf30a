"""The in-process measurement on a tiny network and small real JPEGs."""

from __future__ import annotations

import pytest
import torch
import yaml

from bench.model_only import (
    ComputeDtypes,
    forward_speed,
    load_handler,
    measure,
    model_gflop_per_megapixel,
)
from handler.archive import MODEL_CONFIG
from tests.images import encode, photo
from training.model import ModelConfig, WatermarkRemover


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("checkpoint") / "tiny.pt"
    torch.manual_seed(0)
    cfg = ModelConfig(widths=(4, 8, 8))
    torch.save({"model": WatermarkRemover(cfg).state_dict(), "model_args": vars(cfg).copy()}, path)
    return path


def test_measure_counts_the_flops_of_every_image_of_the_batch(checkpoint, tmp_path):
    config = yaml.safe_load(MODEL_CONFIG.read_text())
    handler = load_handler(checkpoint, config, tmp_path / "model", batch=2)
    body = encode(photo(64, 64), "JPEG", quality=90)  # small: runs whole, every pixel once
    one = measure(handler, body, megapixels=64 * 64 / 1e6, batch=1, repeats=2)
    two = measure(handler, body, megapixels=64 * 64 / 1e6, batch=2, repeats=1)

    assert (one["batch"], one["repeats"], two["batch"]) == (1, 2, 2)
    assert two["executed_gflop"] == pytest.approx(2 * one["executed_gflop"], rel=1e-3)
    # Run whole, the image costs what the network costs per megapixel on any image size.
    per_megapixel = model_gflop_per_megapixel(checkpoint)
    assert one["executed_gflop_per_megapixel"] == pytest.approx(per_megapixel, rel=1e-3)
    assert one["megapixels_per_s"] > 0 and one["achieved_gflops"] > 0
    assert min(one["decode_s"], one["encode_s"]) >= 0
    assert sum(one["compute_dtype_calls"].values()) > 0


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_compute_dtypes_sees_what_autocast_casts_to(dtype):
    conv = torch.nn.Conv2d(3, 4, 3)
    with (
        ComputeDtypes() as dtypes,
        torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32),
    ):
        conv(torch.rand(1, 3, 8, 8))
        torch.rand(2, 2) + 1  # not a convolution or a matrix product: not counted
    assert dtypes.calls == {str(dtype).removeprefix("torch."): 1}


def test_forward_speed_reports_each_shape(checkpoint, tmp_path):
    config = yaml.safe_load(MODEL_CONFIG.read_text())
    handler = load_handler(checkpoint, config, tmp_path / "model", batch=1)
    rows = forward_speed(handler, ((2, 32, 48), (1, 64, 64)), repeats=1)
    assert [(r["batch"], r["height"], r["width"]) for r in rows] == [(2, 32, 48), (1, 64, 64)]
    for row in rows:
        pixels = row["batch"] * row["height"] * row["width"]
        assert row["megapixels_per_s"] == pytest.approx(pixels / 1e6 / row["seconds"], rel=1e-3)
