"""The TorchServe handler driven through BaseHandler.handle with a real context and image bytes."""

from __future__ import annotations

import ast
import io
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from ts.context import Context, RequestProcessor

from handler.archive import PACKAGED_MODULES
from handler.clearmark_handler import CHECKPOINT_FILE, RESTORER_FILE, ClearmarkHandler
from handler.engine import forward_groups
from handler.imaging import UNSURE_LEVEL
from handler.pipeline import Detection, candidate_regions
from tests.images import decode, encode, photo
from training.checkpoint import ensemble_payload
from training.model import ModelConfig, WatermarkRemover
from training.restorer import restorer_model

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


def write_checkpoint(model_dir: Path, mask_bias: float | None = None) -> Path:
    """A tiny random checkpoint carrying its model_args; ``mask_bias`` (e.g. -1e4) pins the
    mask logits, so that the mask never (or always) fires."""
    model_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    cfg = ModelConfig(widths=(4, 8))
    model = WatermarkRemover(cfg)
    if mask_bias is not None:
        with torch.no_grad():
            model.refine.bias[0] = mask_bias
    torch.save({"model": model.state_dict(), "model_args": asdict(cfg)},
               model_dir / CHECKPOINT_FILE)  # fmt: skip
    return model_dir


def initialised(model_dir: Path, **settings: object) -> ClearmarkHandler:
    h = ClearmarkHandler()
    h.initialize(make_context(model_dir, 1, **settings))
    return h


@pytest.fixture(scope="module")
def handler(tmp_path_factory):
    """A handler initialised from a tiny random checkpoint."""
    return initialised(write_checkpoint(tmp_path_factory.mktemp("model")))


@pytest.fixture(scope="module")
def never(tmp_path_factory):
    """A handler whose model finds no mark anywhere."""
    return initialised(write_checkpoint(tmp_path_factory.mktemp("never"), mask_bias=-1e4))


@pytest.fixture(scope="module")
def always(tmp_path_factory):
    """A handler whose model finds a mark everywhere."""
    return initialised(write_checkpoint(tmp_path_factory.mktemp("always"), mask_bias=1e4))


def run(handler: ClearmarkHandler, requests: list[object]) -> tuple[list[bytes], Context]:
    """Handle one batch: a dict is a multipart request's parts, anything else a raw body."""
    context = make_context(Path(handler.context.system_properties["model_dir"]), len(requests))
    data = [r if isinstance(r, dict) else {"body": r} for r in requests]
    return handler.handle(data, context), context


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


def test_lossless_stays_lossless(never):
    """PNG and lossless WebP round-trip: with no mark found, every pixel comes back as sent."""
    image = photo(40, 40)
    for fmt, options in (("PNG", {}), ("WEBP", {"lossless": True})):
        [out], _ = run(never, [encode(image, fmt, **options)])
        img = decode(out)
        assert img.format == fmt and np.array_equal(np.asarray(img), image)


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
    bodies = [
        good_png,
        b"definitely not an image",
        truncated,
        good_jpeg,
        {"body": {"json": 1}},
        b"",
    ]
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


def mask_png(height: int, width: int, box: tuple[int, int, int, int]) -> bytes:
    """A person's mask: white inside box = (top, left, bottom, right), black elsewhere."""
    mask = np.zeros((height, width), dtype=np.uint8)
    top, left, bottom, right = box
    mask[top:bottom, left:right] = 255
    return encode(np.repeat(mask[..., None], 3, axis=-1), "PNG")


@pytest.mark.parametrize("shape", [(40, 52), (260, 300)], ids=["whole", "coarse-to-fine"])
def test_no_mark_found_gives_the_photo_back_bit_identical(never, shape):
    """300 x 260 is above the max_forward_pixels set here: searched on a reduced copy."""
    image = photo(*shape)
    h = initialised(Path(never.context.system_properties["model_dir"]), max_forward_pixels=50_000)
    [out], context = run(h, [encode(image, "PNG")])
    assert context.get_response_status(0)[0] == 200
    assert np.array_equal(np.asarray(decode(out)), image)


@pytest.mark.parametrize("task", [b"detect", "detect", bytearray(b" detect\r\n")])
def test_detect_answers_a_png_mask_of_the_image_size(never, always, task):
    image = encode(photo(33, 47), "JPEG")
    for h, value in ((never, 0), (always, 255)):
        [out], context = run(h, [{"image": image, "task": task}])
        assert context.get_response_status(0)[0] == 200
        assert context.get_response_content_type(0) == "image/png"
        mask = decode(out)
        assert mask.format == "PNG" and mask.mode == "L" and mask.size == (47, 33)
        assert np.array_equal(np.asarray(mask), np.full((33, 47), value, dtype=np.uint8))


def test_detect_unsure_answers_what_the_network_saw_and_left_at_its_own_grey(tmp_path, monkeypatch):
    """A detection sure of one square and half-sure of another: detect answers the sure one,
    detect_unsure the half-sure one too, at UNSURE_LEVEL."""
    h = initialised(write_checkpoint(tmp_path / "model"))
    probability = np.zeros((40, 50), np.float32)
    probability[5:20, 5:20] = 0.99  # 225 pixels: over the served gate's clusters of 150
    probability[20:30, 30:45] = 0.7
    found = Detection(probability, np.zeros_like(probability), np.zeros((40, 50, 3), np.float32))
    monkeypatch.setattr(h.engine, "detect", lambda images: [(found, None) for _ in images])
    labelled = []

    def counted(probability, cfg):
        labelled.append(probability.shape)
        return candidate_regions(probability, cfg)

    monkeypatch.setattr("handler.pipeline.candidate_regions", counted)
    monkeypatch.setattr("handler.engine.candidate_regions", counted)
    image = encode(photo(40, 50), "PNG")
    answers, context = run(h, [{"image": image, "task": t} for t in (b"detect", b"detect_unsure")])
    assert len(labelled) == 2, "each map labelled once, the unsure one too"
    assert [context.get_response_status(i)[0] for i in range(2)] == [200, 200]
    plain, unsure = (np.asarray(decode(a)) for a in answers)
    assert np.array_equal(plain == 255, unsure == 255)
    assert (plain[5:20, 5:20] == 255).all() and set(np.unique(plain)) == {0, 255}
    # Widened by the served grow_pixels (1), as the kept square is.
    assert (unsure[19:31, 29:46] == UNSURE_LEVEL).all()
    assert np.count_nonzero(unsure == UNSURE_LEVEL) == 12 * 17


def test_a_given_mask_is_honoured(never):
    """The model finds nothing; the person's mask is restored, and only its pixels change."""
    image = photo(48, 64, "skimage-gravel")
    request = {"image": encode(image, "PNG"), "mask": mask_png(48, 64, (10, 20, 22, 44)),
               "task": b"remove"}  # fmt: skip
    [out], context = run(never, [request])
    assert context.get_response_status(0)[0] == 200
    assert context.get_response_content_type(0) == "image/png"
    cleaned = np.asarray(decode(out))
    inside = np.zeros((48, 64), dtype=bool)
    inside[10:22, 20:44] = True
    assert np.array_equal(cleaned[~inside], image[~inside])
    assert not np.array_equal(cleaned[inside], image[inside])


def test_bad_parts_fail_only_their_own_request(never):
    image = encode(photo(30, 40), "PNG")
    requests = [
        {"image": image, "mask": mask_png(40, 30, (0, 0, 5, 5))},  # transposed: wrong size
        {"image": image, "task": b"erase"},
        {"image": image, "mask": "white"},  # text, not image bytes
        {"image": image, "mask": b"not a mask"},
        {"image": image, "mask": mask_png(30, 40, (0, 0, 5, 5))},
    ]
    out, context = run(never, requests)
    statuses = [context.get_response_status(i)[0] for i in range(len(requests))]
    assert statuses == [422, 400, 415, 415, 200]
    errors = [json.loads(body)["error"] for body in out[:4]]
    assert "30x40" in errors[0] and "40x30" in errors[0]
    assert "erase" in errors[1] and "remove" in errors[1]
    assert "mask" in errors[2] and "mask" in errors[3]
    assert decode(out[4]).size == (40, 30)


def test_the_archive_packs_every_module_the_handler_imports():
    """TorchServe imports the handler from the .mar: every repo module it reaches must be in it."""
    reached: set[str] = set()
    todo = ["handler/clearmark_handler.py"]
    while todo:
        tree = ast.parse((REPO / todo.pop()).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                path = node.module.replace(".", "/") + ".py"
                if node.module.split(".")[0] in ("handler", "training") and path not in reached:
                    reached.add(path)
                    todo.append(path)
    packaged = set(PACKAGED_MODULES)
    assert reached <= packaged, sorted(reached - packaged)
    assert {"handler/__init__.py", "training/__init__.py"} <= packaged
    # make rebuilds the archive when any packed module changes.
    makefile = (REPO / "Makefile").read_text()
    assert all(module in makefile for module in packaged)


def test_handler_module_defines_exactly_one_class():
    """TorchServe refuses a handler module with more than one class in it."""
    import handler.clearmark_handler as module

    classes = [
        name
        for name, value in vars(module).items()
        if isinstance(value, type) and value.__module__ == module.__name__
    ]
    assert classes == ["ClearmarkHandler"]


def test_the_handler_restores_with_the_archived_restorer_when_there_is_one(tmp_path):
    model_dir = write_checkpoint(tmp_path / "model")
    assert initialised(model_dir).engine.restorer is None  # the classical floor
    restorer = restorer_model((4, 8))
    torch.save({"model": restorer.state_dict(), "model_args": asdict(restorer.cfg)},
               model_dir / RESTORER_FILE)  # fmt: skip
    loaded = initialised(model_dir).engine.restorer
    assert loaded is not None and loaded.cfg == restorer.cfg
    for mine, theirs in zip(
        loaded.state_dict().values(), restorer.state_dict().values(), strict=True
    ):
        assert torch.equal(mine, theirs)


def test_the_handler_serves_an_ensemble_checkpoint_with_the_members_probability_averaged(tmp_path):
    """training/ensemble.py's checkpoint as the archive's weights: a member that finds a mark
    everywhere weighted 3 to one that finds none reads as probability 0.75 everywhere."""
    always_dir = write_checkpoint(tmp_path / "always", mask_bias=1e4)
    never_dir = write_checkpoint(tmp_path / "never", mask_bias=-1e4)
    payload = ensemble_payload(
        [always_dir / CHECKPOINT_FILE, never_dir / CHECKPOINT_FILE], [3.0, 1.0]
    )
    (tmp_path / "both").mkdir()
    torch.save(payload, tmp_path / "both" / CHECKPOINT_FILE)
    served = initialised(tmp_path / "both")
    image = photo(24, 20)
    with torch.inference_mode():
        maps = served.engine.network(served.engine.tensor(image)[None])
    assert torch.allclose(maps[:, 0], torch.full_like(maps[:, 0], 0.75), atol=1e-3)
    [out], context = run(served, [encode(image, "PNG")])
    assert context.get_response_status(0)[0] == 200
    # 0.75 is under the gate's seed threshold: nothing is sure enough to change.
    assert np.array_equal(np.asarray(decode(out)), image)
