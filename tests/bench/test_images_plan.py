"""The benchmark's images, and its plan agreeing with the settings it depends on."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from bench.images import SOURCE_PHOTO, bench_image, three_by_two, watermarked_jpeg
from bench.plan import (
    GATEWAY_HOST,
    IMAGES,
    LARGEST,
    LATENCY_REPEATS,
    MODEL_ONLY_REPEATS,
    SATURATION,
    THROUGHPUT_IMAGE,
    THROUGHPUT_REQUESTS,
    TORCHSERVE_PORTS,
)
from gateway.settings import Settings
from serving.torchserve import Ports
from training.photos import library_photos


def test_three_by_two_sizes():
    assert three_by_two(1) == (1225, 817)
    assert three_by_two(12) == (4243, 2829)
    width, height = three_by_two(4)
    assert abs(width * height - 4e6) < 4e3 and abs(width / height - 1.5) < 1e-3


def test_watermarked_jpeg_has_the_size_asked_and_is_deterministic():
    body = watermarked_jpeg(360, 240, "corner", seed=3)
    with Image.open(io.BytesIO(body)) as image:
        assert (image.format, image.size, image.mode) == ("JPEG", (360, 240), "RGB")
    assert watermarked_jpeg(360, 240, "corner", seed=3) == body
    assert watermarked_jpeg(360, 240, "corner", seed=4) != body


def test_a_grid_mark_covers_far_more_of_the_photo_than_a_corner_mark():
    source = Image.fromarray(library_photos()[SOURCE_PHOTO]())
    plain = np.asarray(source.resize((360, 240)), dtype=int)

    def changed(style: str) -> float:
        marked = np.asarray(Image.open(io.BytesIO(watermarked_jpeg(360, 240, style))), dtype=int)
        # Well above JPEG's error at quality 90: the pixels the mark changed.
        return float((np.abs(marked - plain).max(axis=2) > 24).mean())

    corner, grid = changed("corner"), changed("grid")
    assert 0 < corner < 0.15
    assert grid > 10 * corner


def test_bench_image_describes_itself():
    image = bench_image("tiny", 300, 200, "corner")
    assert image.describe() == {
        "name": "tiny", "width": 300, "height": 200, "megapixels": 0.06, "mark": "corner",
        "jpeg_bytes": len(image.body),
    }  # fmt: skip


def test_plan_names_every_image_once_with_its_repeats():
    names = [name for name, _, _ in IMAGES]
    assert names == ["1mp", "4mp", "12mp", "12mp-grid"]
    assert set(MODEL_ONLY_REPEATS) == set(LATENCY_REPEATS) == set(names)
    assert THROUGHPUT_IMAGE in names
    assert SATURATION in THROUGHPUT_REQUESTS


def test_largest_input_is_the_gateways_pixel_cap():
    _, (width, height), _ = LARGEST
    assert width * height == Settings().max_pixels == 16_777_216


def test_bench_ports_are_every_torchserve_port_and_none_of_make_runs():
    ports = Ports.from_env(TORCHSERVE_PORTS)
    default = Ports.from_env({})
    assert sorted(vars(ports).values()) == sorted(int(p) for p in TORCHSERVE_PORTS.values())
    assert not set(vars(ports).values()) & set(vars(default).values())
    gateway_port = int(GATEWAY_HOST.rsplit(":", 1)[1])
    assert gateway_port != Settings().port
    assert gateway_port not in vars(ports).values()
