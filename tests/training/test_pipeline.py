"""The DVC stages' functions on tiny data the tests make, and dvc.yaml's consistency."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from tests.images import photo
from training.checkpoint import load_model
from training.evaluate import evaluate, example_grid
from training.examples import augment_photo, validation_examples
from training.export import export
from training.fonts import bundled_fonts
from training.model import ModelConfig
from training.photos import folder_photos, is_validation, photo_source
from training.prepare import prepare
from training.train import TrainConfig, learning_rate, load_params, train

REPO = Path(__file__).resolve().parents[2]


def tiny_config(**changes) -> tuple[TrainConfig, ModelConfig]:
    cfg, _ = load_params(REPO / "params.yaml")
    cfg = replace(cfg, steps=2, batch_size=2, crop_size=32, eval_every=1, checkpoint_every=1,
                  val_count=2, val_crop_size=32, warmup_steps=1, **changes)  # fmt: skip
    return cfg, ModelConfig(base_channels=4, depth=2)


@pytest.fixture(scope="module")
def photos():
    return [photo(80, 120, "skimage-coffee"), photo(90, 90, "skimage-chelsea")]


def test_dvc_stages_declare_what_they_run():
    pipeline = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    assert list(pipeline) == ["prepare", "train", "evaluate", "export", "archive"]
    for name, stage in pipeline.items():
        module = stage["cmd"].split("python -m ")[1].split()[0]
        assert module.replace(".", "/") + ".py" in stage["deps"], name
        for section in stage.get("params", []):
            assert section in params, f"{name} reads params.{section}"
    export_outs = pipeline["export"]["outs"][0]
    assert export_outs == {"model/clearmark.pt": {"cache": False}}
    assert (REPO / "model" / "clearmark.pt").is_file(), "the committed checkpoint"
    assert (REPO / "dvc.lock").is_file()


def test_split_is_by_whole_photo_and_stable():
    names = [f"photo-{i}" for i in range(200)]
    val = {n for n in names if is_validation(n, 0.25, seed=0)}
    assert 30 < len(val) < 70
    assert val == {n for n in names if is_validation(n, 0.25, seed=0)}
    assert val != {n for n in names if is_validation(n, 0.25, seed=1)}


def test_prepare_from_a_folder(tmp_path):
    source = tmp_path / "mine" / "holiday"
    source.mkdir(parents=True)
    for i in range(12):
        Image.fromarray(photo(40 + i, 50)).save(source / f"p{i}.jpg")
    (source / "notes.txt").write_text("not a photo")
    counts = prepare("folder", str(tmp_path / "mine"), 0.3, 0, tmp_path / "out")
    assert counts["train"] + counts["val"] == 12 and counts["val"] > 0
    written = sorted(p.name for p in (tmp_path / "out").rglob("*.png"))
    assert len(written) == 12 and "holiday__p0.png" in written
    with Image.open(next((tmp_path / "out").rglob("*.png"))) as img:
        assert img.mode == "RGB"


def test_photo_sources_fail_clearly(tmp_path):
    with pytest.raises(ValueError, match="unknown photo source"):
        photo_source("flickr")
    with pytest.raises(ValueError, match=r"prepare\.folder"):
        photo_source("folder")
    with pytest.raises(FileNotFoundError, match="no images"):
        folder_photos(tmp_path)
    assert len(photo_source("bundled")) == 21


def test_learning_rate_warms_up_then_decays():
    cfg, _ = tiny_config()
    cfg = replace(cfg, steps=100, warmup_steps=10)
    assert learning_rate(cfg, 0) == pytest.approx(cfg.lr / 10)
    assert learning_rate(cfg, 10) == pytest.approx(cfg.lr)
    assert learning_rate(cfg, 100) == pytest.approx(cfg.min_lr)


def test_train_checkpoints_and_resumes(tmp_path, photos, capsys):
    cfg, model_cfg = tiny_config()
    fonts = bundled_fonts()
    summary = train(cfg, model_cfg, photos, photos, fonts, tmp_path, tmp_path / "live")
    assert (tmp_path / "last.pt").is_file() and (tmp_path / "best.pt").is_file()
    assert math.isfinite(summary["val_psnr"]) and summary["step"] in (1, 2)
    assert (tmp_path / "live" / "metrics.json").is_file()
    last = torch.load(tmp_path / "last.pt", weights_only=False)
    assert last["step"] == 2

    train(replace(cfg, steps=3), model_cfg, photos, photos, fonts, tmp_path)
    assert "resuming from step 2" in capsys.readouterr().out
    assert torch.load(tmp_path / "last.pt", weights_only=False)["step"] == 3

    train(replace(cfg, steps=3, lr=0.01), model_cfg, photos, photos, fonts, tmp_path)
    assert "starting afresh" in capsys.readouterr().out


def test_export_then_evaluate(tmp_path, photos):
    cfg, model_cfg = tiny_config()
    train(cfg, model_cfg, photos, photos, bundled_fonts(), tmp_path)
    payload = export(tmp_path / "best.pt", tmp_path / "model" / "clearmark.pt")
    assert set(payload) == {"model", "model_args", "step"}
    model = load_model(tmp_path / "model" / "clearmark.pt")
    assert model.cfg == model_cfg

    examples = validation_examples(photos, bundled_fonts(), 3, 48, seed=5)
    summary, outputs, masks = evaluate(model, examples)
    expected_input = np.mean([
        10 * np.log10(255**2 / np.mean((e.watermarked.astype(float) - e.clean) ** 2))
        for e in examples
    ])  # fmt: skip
    assert summary["psnr_input"] == pytest.approx(expected_input)
    assert summary["examples"] == 3 and 0 <= summary["mask_iou"] <= 1
    assert outputs[0].shape == (48, 48, 3) and masks[0].shape == (48, 48)
    assert example_grid(examples, outputs, masks).shape == (3 * 48, 4 * 48, 3)


def test_validation_set_is_fixed(photos):
    fonts = bundled_fonts()
    a = validation_examples(photos, fonts, 4, 64, seed=3)
    b = validation_examples(photos, fonts, 4, 64, seed=3)
    assert all(np.array_equal(x.watermarked, y.watermarked) for x, y in zip(a, b, strict=True))


def test_augmentation_keeps_shape_and_is_seeded():
    crop = photo(32, 48)
    a = augment_photo(crop, np.random.default_rng(4))
    b = augment_photo(crop, np.random.default_rng(4))
    assert np.array_equal(a, b) and a.dtype == np.uint8
    assert a.shape in ((32, 48, 3), (48, 32, 3))
    shapes = {augment_photo(crop, np.random.default_rng(s)).shape for s in range(20)}
    assert shapes == {(32, 48, 3), (48, 32, 3)}
