"""training/generalisation.py: the detector alone on crops of training or held-out photos under
training or held-out marks, and each held-out photo's row."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from handler.engine import Engine, EngineConfig
from tests.images import photo
from training.examples import validation_examples
from training.generalisation import (
    cross_maps,
    main,
    photo_rows,
    probabilities,
    real_photos,
    style_f1,
)
from training.model import ModelConfig, WatermarkRemover
from training.synth import WatermarkedExample


def example(style: str, top: int) -> WatermarkedExample:
    """A 20x20 crop with a 4x10 mark whose top row is ``top``."""
    clean = np.full((20, 20, 3), 100, np.uint8)
    mask = np.zeros((20, 20), bool)
    mask[top : top + 4, 5:15] = True
    zeros = np.zeros((20, 20))
    return WatermarkedExample(clean, clean, mask, zeros, np.zeros((20, 20, 3)), style)


def test_the_f1_of_each_style_counts_only_that_styles_crops():
    examples = [example("text", 2), example("logo", 8), example("text", 12)]
    truth = np.stack([ex.mask for ex in examples]).astype(np.float32)
    assert style_f1(truth, examples, 0.5) == {"all": 1.0, "text": 1.0, "logo": 1.0}
    # The logo found, the texts missed: 40 of 120 marked pixels found, nothing else flagged.
    found = truth * np.array([0, 1, 0], np.float32)[:, None, None]
    scores = style_f1(found, examples, 0.5)
    assert scores["logo"] == 1.0 and scores["text"] == 0.0
    assert scores["all"] == pytest.approx(2 * 40 / (40 + 120))
    # At the threshold itself a pixel is not flagged.
    assert style_f1(truth * 0.5, examples, 0.5)["all"] == 0.0


def test_each_photo_row_holds_every_nth_crop():
    # Two photos: crops 0 and 2 are on photo 0, crop 1 on photo 1.
    examples = [example("text", 2), example("text", 8), example("text", 12)]
    probability = np.stack([ex.mask for ex in examples]).astype(np.float32)
    probability[1] = 1.0  # photo 1: its mark found and all of its 360 unmarked pixels flagged
    probability[2] = 0.0  # photo 0: one of its two marks missed
    first, second = photo_rows(probability, examples, photo_count=2, threshold=0.5)
    assert first == {"f1": pytest.approx(2 * 40 / 120), "recall": 0.5, "flagged": 0.0}
    assert second == {"f1": pytest.approx(2 * 40 / 440), "recall": 1.0, "flagged": 1.0}


def test_only_the_real_training_photos_are_compared():
    photos = [np.full((4, 4, 3), i, np.uint8) for i in range(6)]
    sources = ["leaves", "wallpaper", "texture", "skimage", "icons", "graphic"]
    assert [int(p[0, 0, 0]) for p in real_photos(photos, sources)] == [1, 3]


def engine(mirror_views: str = "off") -> Engine:
    """A random network, served as handler/engine.py serves the detector."""
    torch.manual_seed(0)
    model = WatermarkRemover(ModelConfig(widths=(4, 8, 8))).eval()
    return Engine(model, torch.device("cpu"), EngineConfig(mirror_views=mirror_views))


def test_the_cross_maps_hold_every_pairs_crops_and_the_models_maps(assets):
    photos = {"a": [photo(64, 64, "skimage-coffee")], "b": [photo(64, 64, "skimage-chelsea")]}
    marks = {"m": assets, "n": assets}
    served = engine()
    cells = cross_maps(served, photos, marks, count=5, crop_size=32, seed=3)
    assert set(cells) == {("a", "m"), ("a", "n"), ("b", "m"), ("b", "n")}
    # The same photos and marks under the same seed: the same crops, the same maps.
    assert np.array_equal(cells["a", "m"][1], cells["a", "n"][1])
    examples, probability = cells["b", "m"]
    want = validation_examples(photos["b"], assets, 5, 32, 3)
    assert [ex.style for ex in examples] == ["text", "logo", "grid", "centre", "corner"]
    assert all(
        np.array_equal(a.watermarked, b.watermarked) for a, b in zip(examples, want, strict=True)
    )
    assert np.array_equal(probability, probabilities(served, want))
    assert probability.shape == (5, 32, 32) and 0 <= probability.min() < probability.max() <= 1


def test_the_first_crops_of_a_longer_draw_are_a_shorter_draw(assets):
    # What lets the per-photo table reuse the held-out pair's crops instead of drawing again.
    photos = [photo(64, 64, "skimage-coffee"), photo(64, 64, "skimage-chelsea")]
    short = validation_examples(photos, assets, 4, 32, 3)
    long = validation_examples(photos, assets, 7, 32, 3)
    assert all(
        np.array_equal(a.watermarked, b.watermarked) for a, b in zip(short, long[:4], strict=True)
    )
    assert all(np.array_equal(a.mask, b.mask) for a, b in zip(short, long[:4], strict=True))


def test_the_maps_are_the_served_views(assets):
    examples = validation_examples([photo(64, 64, "skimage-coffee")], assets, 2, 32, 3)
    one = probabilities(engine("off"), examples)
    upside_down = [replace(ex, watermarked=ex.watermarked[::-1].copy()) for ex in examples]
    mirrored = [replace(ex, watermarked=ex.watermarked[:, ::-1].copy()) for ex in examples]
    flipped_back = probabilities(engine("off"), upside_down)[:, ::-1]
    mirrored_back = probabilities(engine("off"), mirrored)[:, :, ::-1]
    assert not np.allclose(one, flipped_back, atol=1e-3)  # a random network is not symmetric
    # "mean": the image and its mirror image; "min": the surer of the two says no mark.
    assert np.allclose(
        probabilities(engine("mean"), examples), (one + mirrored_back) / 2, atol=1e-6
    )
    assert np.allclose(
        probabilities(engine("min"), examples), np.minimum(one, mirrored_back), atol=1e-6
    )
    both = probabilities(
        engine("off"),
        [replace(ex, watermarked=ex.watermarked[::-1, ::-1].copy()) for ex in examples],
    )[:, ::-1, ::-1]
    mean4 = (one + mirrored_back + flipped_back + both) / 4
    assert np.allclose(probabilities(engine("mean4"), examples), mean4, atol=1e-6)


def test_the_command_prints_both_tables(tmp_path: Path, capsys, assets):
    for split, names in (("train", ["wallpaper-a", "leaves-00000"]), ("val", ["skimage-b"])):
        (tmp_path / split).mkdir()
        for name in names:
            Image.fromarray(photo(64, 64, "skimage-coffee")).save(tmp_path / split / f"{name}.png")
    fonts = [str(f) for f in assets.fonts]
    marks = {split: {"fonts": fonts, "logos": []} for split in ("train", "val")}
    (tmp_path / "marks.json").write_text(json.dumps(marks))
    torch.manual_seed(0)
    model = WatermarkRemover(ModelConfig(widths=(4, 8, 8)))
    torch.save({"model": model.state_dict(), "model_args": {"widths": [4, 8, 8]}},
               tmp_path / "m.pt")  # fmt: skip
    config = tmp_path / "model-config.yaml"
    config.write_text("handler:\n  mask_threshold: 0.3\n")
    main(["--checkpoint", str(tmp_path / "m.pt"), "--photos", str(tmp_path), "--count", "5",
          "--crop-size", "32", "--serving-config", str(config)])  # fmt: skip
    out = capsys.readouterr().out
    assert "Detector alone (pixels above 0.3, mirror_views off)" in out
    assert "| training photos (real ones) (1) | training marks |" in out
    assert "| held-out photos (1) | held-out marks |" in out
    assert "| skimage-b |" in out
    assert "(5 crops each)" in out
    (tmp_path / "val" / "skimage-c.png").write_bytes(
        (tmp_path / "val" / "skimage-b.png").read_bytes()
    )
    with pytest.raises(SystemExit):
        main(["--checkpoint", str(tmp_path / "m.pt"), "--photos", str(tmp_path), "--count", "1",
              "--serving-config", str(config)])  # fmt: skip
    assert "--count must be at least the 2 held-out photos" in capsys.readouterr().err
