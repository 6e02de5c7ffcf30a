"""The learned restoration given a mask (training/restorer.py) and its training loop."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.images import photo
from training.baselines import telea_inpaint
from training.checkpoint import load_model
from training.restorer import IN_CHANNELS, correction, restore, restorer_model
from training.synth import add_watermark
from training.train_restorer import load_config, restorer_batch, restorer_loss, train, widened

REPO = Path(__file__).resolve().parents[2]


def tiny_config(**changes):
    cfg = load_config(REPO / "params.yaml")
    return replace(cfg, widths=(4, 8), steps=2, batch_size=2, crop_size=32, eval_every=1,
                   val_count=2, val_crop_size=32, warmup_steps=1, **changes)  # fmt: skip


def test_a_fresh_restorer_is_telea_inside_the_mask_and_the_photo_outside():
    torch.manual_seed(0)
    model = restorer_model((4, 8)).eval()
    rng = np.random.default_rng(0)
    image = torch.from_numpy(rng.random((1, 3, 36, 44), dtype=np.float32))
    fill = torch.from_numpy(rng.random((1, 3, 36, 44), dtype=np.float32))
    mask = torch.zeros(1, 1, 36, 44)
    mask[..., 10:20, 5:30] = 1
    with torch.no_grad():
        out, pred = restore(model, image, fill, mask)
        nudged = restorer_model((4, 8)).eval()
        nudged.refine.bias[2:5] = torch.tensor([2.0, 0.0, -2.0])  # colour logits: the correction
        corrected, _ = restore(nudged, image, fill, mask)
    assert out.shape == image.shape and model.cfg.in_channels == IN_CHANNELS
    inside = mask.bool().expand_as(out)
    assert torch.equal(out[~inside], image[~inside])
    # The correction starts at exactly 0: Telea exactly.
    assert torch.equal(correction(pred), torch.zeros_like(image))
    assert torch.equal(out[inside], fill[inside])
    # A correction of tanh(logit / 2) per channel is added to the fill there, and clamped.
    step = torch.tanh(torch.tensor([1.0, 0.0, -1.0]))[None, :, None, None]
    expected = (fill + step).clamp(0, 1)
    assert torch.allclose(corrected[inside], expected.expand_as(out)[inside], atol=1e-6)
    assert torch.equal(corrected[~inside], image[~inside])


def test_the_loss_is_the_mean_log_squared_error_inside_each_crops_mask():
    clean = torch.zeros(2, 3, 4, 4)
    given = torch.zeros(2, 1, 4, 4)
    given[0, :, :2] = 1  # 8 pixels
    given[1, :, 0, 0] = 1  # 1 pixel
    restored = clean.clone()
    restored[0, :, :2] = 0.1  # squared error 0.01 inside; outside pixels never count
    restored[0, :, 3] = 0.9
    restored[1, 0, 0, 0] = 1.0  # squared error 1 in one of 3 channels: 1/3
    batch = {"clean": clean, "given": given}
    loss = restorer_loss(restored, batch, floor=1e-6)
    assert loss.item() == pytest.approx((np.log10(0.01) + np.log10(1 / 3)) / 2, rel=1e-5)
    # A crop restored exactly counts as the floor, not as minus infinity.
    assert restorer_loss(clean, batch, floor=1e-6).item() == pytest.approx(-6.0)


def test_widened_grows_by_the_drawn_number_of_pixels():
    mask = np.zeros((9, 9), bool)
    mask[4, 4] = True
    rng = np.random.default_rng(0)
    assert np.array_equal(widened(mask, rng, (1.0, 0.0)), mask)
    assert widened(mask, rng, (0.0, 1.0)).sum() == 9  # one pixel, 8-connected
    assert widened(mask, rng, (0.0, 0.0, 1.0)).sum() == 25


def test_batch_carries_the_given_mask_and_telea_fill_of_it(assets):
    rng = np.random.default_rng(3)
    ex = add_watermark(photo(48, 48, "skimage-coffee"), rng, assets, style="centre")
    given = widened(ex.mask, rng, (0.0, 1.0))
    batch = restorer_batch([ex], [given])
    assert torch.equal(batch["given"][0, 0], torch.from_numpy(given).float())
    fill = (batch["fill"][0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    assert np.array_equal(fill, telea_inpaint(ex.watermarked, given))


def test_train_writes_servable_weights_and_resumes(tmp_path, photos, assets, capsys):
    cfg = tiny_config()
    out = tmp_path / "restorer.pt"
    summary = train(cfg, photos, photos, assets, assets, tmp_path / "runs", out)
    assert summary["step"] in (1, 2) and np.isfinite(summary["val_psnr"])
    assert summary["val_psnr_telea"] > 0
    assert set(summary["gain_per_style"]) <= {"text", "logo", "grid", "centre", "corner"}
    model = load_model(out)
    assert model.cfg.in_channels == IN_CHANNELS and model.cfg.widths == (4, 8)

    train(replace(cfg, steps=3), photos, photos, assets, assets, tmp_path / "runs", out)
    assert "resuming from step 2" in capsys.readouterr().out
    assert torch.load(tmp_path / "runs" / "last.pt", weights_only=False)["step"] == 3

    train(replace(cfg, steps=3, lr=0.01), photos, photos, assets, assets, tmp_path / "runs", out)
    assert "starting afresh" in capsys.readouterr().out
