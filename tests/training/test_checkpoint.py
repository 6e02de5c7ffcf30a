"""Checkpoints: one network, and the ensemble checkpoint that training/ensemble.py writes."""

from __future__ import annotations

from dataclasses import asdict

import pytest
import torch

from training.checkpoint import ensemble_payload, load_detector, load_model
from training.ensemble import main as ensemble_main
from training.model import DetectorEnsemble, ModelConfig, WatermarkRemover, predict


def save(path, widths, seed, in_channels=3):
    torch.manual_seed(seed)
    model = WatermarkRemover(ModelConfig(widths=widths, in_channels=in_channels)).eval()
    torch.save({"model": model.state_dict(), "model_args": asdict(model.cfg), "step": seed}, path)
    return model


def test_an_ensemble_checkpoint_loads_as_the_ensemble_of_its_members(tmp_path):
    first = save(tmp_path / "a.pt", (4, 8), seed=1)
    second = save(tmp_path / "b.pt", (8, 8), seed=2)
    ensemble_main(["--members", str(tmp_path / "a.pt"), str(tmp_path / "b.pt"),
                   "--weights", "2", "1", "--out", str(tmp_path / "out" / "both.pt")])  # fmt: skip
    loaded = load_detector(tmp_path / "out" / "both.pt")
    assert isinstance(loaded, DetectorEnsemble) and loaded.weights == pytest.approx((2 / 3, 1 / 3))
    assert not loaded.training
    image = torch.rand(1, 3, 12, 20)
    with torch.inference_mode():
        expected = (2 * predict(first, image).mask + predict(second, image).mask) / 3
        torch.testing.assert_close(predict(loaded, image).mask, expected)
    # One network's checkpoint loads as that network by either loader.
    single = load_detector(tmp_path / "a.pt")
    assert isinstance(single, WatermarkRemover) and single.cfg == first.cfg
    assert torch.equal(single.refine.weight, load_model(tmp_path / "a.pt").refine.weight)


def test_what_needs_one_network_refuses_an_ensemble(tmp_path):
    for name, seed in (("a.pt", 1), ("b.pt", 2)):
        save(tmp_path / name, (4, 8), seed)
    torch.save(ensemble_payload([tmp_path / "a.pt", tmp_path / "b.pt"], [1, 1]),
               tmp_path / "both.pt")  # fmt: skip
    with pytest.raises(ValueError, match="is an ensemble of 2 detectors"):
        load_model(tmp_path / "both.pt")
    with pytest.raises(ValueError, match="is an ensemble already"):
        ensemble_payload([tmp_path / "both.pt", tmp_path / "a.pt"], [1, 1])


def test_the_command_refuses_members_that_cannot_run_together(tmp_path, capsys):
    save(tmp_path / "detector.pt", (4, 8), seed=1)
    save(tmp_path / "restorer.pt", (4, 8), seed=2, in_channels=7)
    paths = [str(tmp_path / "detector.pt"), str(tmp_path / "restorer.pt")]
    with pytest.raises(SystemExit) as exit_info:
        ensemble_main(["--members", *paths, "--out", str(tmp_path / "both.pt")])
    assert exit_info.value.code == 2 and "must be detectors" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        ensemble_main(["--members", paths[0], paths[0], "--weights", "1",
                       "--out", str(tmp_path / "both.pt")])  # fmt: skip
    assert "a weight each" in capsys.readouterr().err
    assert not (tmp_path / "both.pt").exists()
