"""The TorchServe handler driven through BaseHandler.handle with a real context and image bytes."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from ts.context import Context, RequestProcessor

from handler.clearmark_handler import CHECKPOINT_FILE, ClearmarkHandler
from handler.engine import forward_groups
from tests.images import decode, encode, photo
from training.model import ModelConfig, WatermarkRemover

REPO = Path(__file__).resolve().parents[2]


class RecordingMetrics:
    """Stands in for TorchServe's metrics cache: BaseHandler.handle reports HandlerTime."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}

    def add_time(self, name: str, value: float, idx: object = None, unit: str = "ms") -> None:
        self.times[name] = value


def make_context(model_dir: Path, batch: int, **handler_settings: object) -> Context:
    metrics = RecordingMetrics()
    config = yaml.safe_load((REPO / "handler" / "model-config.yaml").read_text())
    config["handler"].update(handler_settings)
    context = Context("clearmark", str(model_dir), {}, batch, None, "0.12.0", metrics=metrics,
                      model_yaml_config=config)  # fmt: skip
    context.request_processor = [RequestProcessor({}) for _ in range(batch)]
    return context


@pytest.fixture(scope="module")
def handler(tmp_path_factory):
    """A handler initialised from a tiny random checkpoint carrying its model_args."""
    model_dir = tmp_path_factory.mktemp("model")
    torch.manual_seed(0)
    cfg = ModelConfig(base_channels=4, depth=2)
    torch.save(
        {"model": WatermarkRemover(cfg).state_dict(), "model_args": vars(cfg).copy()},
        model_dir / CHECKPOINT_FILE,
    )
    h = ClearmarkHandler()
    h.initialize(make_context(model_dir, 1))
    return h


def run(handler: ClearmarkHandler, bodies: list[object]) -> tuple[list[bytes], Context]:
    context = make_context(Path(handler.context.system_properties["model_dir"]), len(bodies))
    return handler.handle([{"body": b} for b in bodies], context), context


@pytest.mark.parametrize(
    ("fmt", "mime", "options"),
    [("PNG", "image/png", {}), ("JPEG", "image/jpeg", {"quality": 90}),
     ("WEBP", "image/webp", {"quality": 90}), ("WEBP", "image/webp", {"lossless": True})],
)  # fmt: skip
def test_same_format_and_size_out(handler, fmt, mime, options):
    data = encode(photo(33, 17), fmt, **options)
    [out], context = run(handler, [data])
    assert context.get_response_status(0)[0] == 200
    assert context.get_response_content_type(0) == mime
    img = decode(out)
    assert img.format == fmt and img.size == (17, 33) and img.mode == "RGB"


def test_lossless_stays_lossless(handler):
    """PNG and lossless WebP round-trip: what the model did not change is bit-identical."""
    for fmt, options in (("PNG", {}), ("WEBP", {"lossless": True})):
        [out], _ = run(handler, [encode(photo(40, 40), fmt, **options)])
        img = decode(out)
        # Re-encoding the decoded output gives the same pixels: no lossy step on the way.
        assert np.array_equal(np.asarray(decode(encode(np.asarray(img), fmt, **options))),
                              np.asarray(img))  # fmt: skip


def test_alpha_is_kept_aside_and_reattached(handler):
    rgba = np.dstack([photo(24, 20), np.tile(np.arange(20, dtype=np.uint8) * 12, (24, 1))])
    [out], _ = run(handler, [encode(rgba, "PNG")])
    img = decode(out)
    assert img.mode == "RGBA" and img.size == (20, 24)
    assert np.array_equal(np.asarray(img)[..., 3], rgba[..., 3])


def test_exif_orientation_is_applied(handler):
    img = Image.fromarray(photo(10, 30))  # 30 wide, 10 tall as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", exif=exif)
    [out], _ = run(handler, [buffer.getvalue()])
    assert decode(out).size == (10, 30)


def test_mixed_batch_fails_only_the_bad_items(handler):
    good_png = encode(photo(64, 48), "PNG")
    good_jpeg = encode(photo(20, 70), "JPEG")
    truncated = good_png[: len(good_png) // 2]
    bodies = [good_png, b"definitely not an image", truncated, good_jpeg, {"json": 1}, b""]
    out, context = run(handler, bodies)
    assert context.metrics.times["HandlerTime"] > 0
    statuses = [context.get_response_status(i)[0] for i in range(len(bodies))]
    assert statuses == [200, 415, 422, 200, 415, 400]
    assert decode(out[0]).size == (48, 64) and decode(out[3]).size == (70, 20)
    for i in (1, 2, 4, 5):
        assert context.get_response_content_type(i) == "application/json"
        assert json.loads(out[i])["error"]
    assert "decode" in json.loads(out[2])["error"]


def test_unsupported_format_is_415(handler):
    [out], context = run(handler, [encode(photo(8, 8), "GIF")])
    assert context.get_response_status(0)[0] == 415
    assert "GIF" in json.loads(out)["error"]


def test_forward_groups_respect_the_pixel_budget():
    sizes = [(100, 100), (10, 10), (200, 50), (300, 300)]
    groups = forward_groups(sizes, budget=50_000)
    assert sorted(i for g in groups for i in g) == [0, 1, 2, 3]
    assert groups[0] == [3]  # 90,000 pixels: over budget, alone
    for group in groups[1:]:
        h = max(sizes[i][0] for i in group)
        w = max(sizes[i][1] for i in group)
        assert h * w * len(group) <= 50_000


def regional_handler(model_dir: Path, **settings: object) -> ClearmarkHandler:
    h = ClearmarkHandler()
    h.initialize(make_context(model_dir, 1, **settings))
    return h


def test_large_images_change_only_where_a_mark_is_found(handler):
    """600x520 is above direct_pixels: the mark is searched for on a reduced copy."""
    model_dir = Path(handler.context.system_properties["model_dir"])
    image = photo(520, 600)
    data = encode(image, "PNG")
    # A threshold no mask probability reaches: no tile is restored, every pixel comes back.
    nothing = regional_handler(model_dir, mask_threshold=2.0)
    [out], _ = run(nothing, [data])
    assert np.array_equal(np.asarray(decode(out)), image)
    # Every tile restored: the same as running the image whole, up to rounding (no seams).
    # (max_forward_pixels below the image's size keeps it from running whole instead; float32,
    # as bfloat16 rounds differently with the batch's shape.)
    everything = regional_handler(
        model_dir, mask_threshold=-1.0, max_forward_pixels=100_000, precision="float32"
    )
    [tiled], _ = run(everything, [data])
    whole = regional_handler(model_dir, direct_pixels=10**8, precision="float32")
    [direct], _ = run(whole, [data])
    tiled_px, direct_px = np.asarray(decode(tiled)).astype(int), np.asarray(decode(direct))
    assert not np.array_equal(tiled_px, image)
    assert np.abs(tiled_px - direct_px).max() <= 1
