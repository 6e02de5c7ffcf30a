"""training/gate_look.py: panels of where a gate changed pixels away from the mark."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from training.gate_look import look, main, panel, report, window
from training.gate_search import changed_outside, far_changes
from training.model import ModelConfig, WatermarkRemover
from training.synth import WatermarkedExample, blend

REPO = Path(__file__).resolve().parents[2]


def marked(corner: bool = False) -> WatermarkedExample:
    """A 60x200 grey image with a 10x10 mark near its top left (or its bottom right corner)."""
    height, width = 60, 200
    clean = np.full((height, width, 3), 100, np.uint8)
    alpha = np.zeros((height, width), np.float32)
    alpha[(slice(50, 60), slice(190, 200)) if corner else (slice(10, 20), slice(10, 20))] = 0.5
    white = np.ones((height, width, 3), np.float32)
    return WatermarkedExample(
        blend(clean, alpha, white[0, 0]), clean, alpha > 0, alpha, white, "logo"
    )


def test_the_window_is_centred_on_the_far_pixels_and_stays_inside():
    far = np.zeros((60, 200), bool)
    far[30:33, 100:105] = True
    assert window(far, 40) == (31 - 20, 102 - 20, 40, 40)
    # Near a corner it is pushed back inside; an image smaller than the side is shown whole.
    far[:] = False
    far[58, 198] = True
    assert window(far, 40) == (20, 160, 40, 40)
    assert window(far, 100) == (0, 100, 60, 100)


def test_a_panel_shows_input_output_clean_and_where():
    example = marked()
    output = example.watermarked.copy()
    output[10:20, 10:20] = 100  # the mark removed: near it, not shown
    output[40:43, 150:160] = 0  # 30 pixels far from it
    far = far_changes(example, output)
    assert far.sum() == changed_outside(example, output) == 30
    image = panel(example, output, far, 40)
    assert image.shape == (40, 160, 3) and image.dtype == np.uint8
    top, left, _, _ = window(far, 40)
    assert np.array_equal(image[:, :40], example.watermarked[top : top + 40, left : left + 40])
    assert np.array_equal(image[:, 40:80], output[top : top + 40, left : left + 40])
    assert np.array_equal(image[:, 80:120], example.clean[top : top + 40, left : left + 40])
    assert (image[:, 120:] == 255).all(axis=-1).sum() == 30


class Fixed:
    """An engine whose output is each input with its bottom right 2x5 pixels blackened."""

    settings: ClassVar[dict] = {}

    @classmethod
    def from_settings(cls, model, device, settings, restorer):
        cls.settings = settings
        return cls()

    @staticmethod
    def output(image):
        out = image.copy()
        out[-2:, -5:] = 0
        return out

    def clean(self, images):
        return [type("Cleaned", (), {"output": self.output(images[0])})()]


def test_only_images_changed_away_from_their_mark_get_a_panel(tmp_path):
    examples = [marked(), marked(corner=True)]  # the block lies on the second one's mark
    rows = look(Fixed(), examples, "full", tmp_path, 40)
    assert [r["image"] for r in rows] == ["full-00-logo.png"]
    assert rows[0]["pixels"] == 10 and rows[0]["at"] == (58, 197) and rows[0]["gain"] < 0
    with Image.open(tmp_path / "full-00-logo.png") as image:
        assert image.size == (160, 40)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full-00-logo.png"]


def test_the_command_looks_at_a_gate_over_the_served_settings(tmp_path, monkeypatch, sets):
    checkpoint = tmp_path / "tiny.pt"
    model = WatermarkRemover(ModelConfig(widths=(4, 8, 8)))
    torch.save({"model_args": {"widths": [4, 8, 8]}, "model": model.state_dict()}, checkpoint)
    monkeypatch.setattr("training.gate_look.load_photo_folder", lambda folder: [])
    monkeypatch.setattr("training.gate_look.load_marks", lambda path, split: None)
    monkeypatch.setattr("training.gate_look.held_out_sets", lambda photos, assets, p: sets)
    monkeypatch.setattr("training.gate_look.Engine", Fixed)
    common = [
        "--params", str(REPO / "params.yaml"), "--photos", str(tmp_path),
        "--checkpoint", str(checkpoint),
        "--serving-config", str(REPO / "handler" / "model-config.yaml"),
    ]  # fmt: skip
    out = tmp_path / "look"
    assert main([*common, "--gate", "{region_confidence: 0.5}", "--out", str(out)]) == 0
    # The gate is the served settings with the override.
    served = yaml.safe_load((REPO / "handler" / "model-config.yaml").read_text())["handler"]
    assert Fixed.settings["region_confidence"] == 0.5
    assert Fixed.settings["seed_threshold"] == served["seed_threshold"]
    # A panel for exactly the images the block lands on away from their mark.
    expected = [
        f"{name}-{i:02d}-{ex.style}.png"
        for name, examples in (("full", sets.full), ("crops", sets.crops))
        for i, ex in enumerate(examples)
        if far_changes(ex, Fixed.output(ex.watermarked)).any()
    ]
    assert expected and sorted(p.name for p in out.glob("*.png")) == sorted(expected)
    report = (out / "look.md").read_text()
    assert "{'region_confidence': 0.5}" in report
    assert all(f"| {name} |" in report for name in expected)
    # --sets full: the crops are not looked at.
    assert main([*common, "--sets", "full", "--out", str(tmp_path / "full")]) == 0
    full = sorted(p.name for p in (tmp_path / "full").glob("*.png"))
    assert full == sorted(name for name in expected if name.startswith("full-"))
    # A key the handler does not have, or no mapping, is refused.
    for bad in ("{no_such_setting: 1}", "0.9"):
        with pytest.raises(SystemExit):
            main([*common, "--gate", bad, "--out", str(tmp_path / "bad")])


def test_a_report_without_far_changes_says_so():
    assert "No image changed a pixel away from its mark." in report({}, [])
