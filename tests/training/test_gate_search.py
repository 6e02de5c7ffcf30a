"""training/gate_search.py: the gate chosen by its rule, on numbers the tests set and on a
real (tiny) model cleaning images the tests make."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from handler.engine import Engine
from training.evaluate import serving_settings
from training.gate_search import (
    MACHINE_KEYS,
    Limits,
    candidates,
    changed_outside,
    choose,
    held_out_sets,
    main,
    search,
    search_params,
)
from training.model import ModelConfig, WatermarkRemover
from training.synth import WatermarkedExample, blend

REPO = Path(__file__).resolve().parents[2]
LIMIT = Limits(
    max_clean_flagged=0.001, max_photo_loss_db=0.1, max_crop_loss_db=3.0, max_outside_pixels=0
)


def row(
    gain: float, flagged: float, worst_full: float, name: str,
    worst_photo: float = 0.0, whole_flagged: float = 0.0, worst_crop: float = 0.0,
    outside: int = 0, crop_outside: int = 0,
) -> dict:  # fmt: skip
    return {
        "gate": {"name": name},
        "gain": gain,
        "f1": 0.5,
        "worst_crop": worst_crop,
        "per_style": {"text": gain},
        "full_gain": worst_full,
        "full_per_style": {"text": 1.0, "logo": worst_full},
        "full_worst_photo": worst_photo,
        "clean_flagged": flagged,
        "clean_full_flagged": whole_flagged,
        "full_outside": outside,
        "crop_outside": crop_outside,
    }


def test_the_largest_gain_that_harms_neither_clean_nor_full_size_photos_is_chosen():
    rows = [
        row(3.0, 0.0005, -0.1, "loose, worse at full size"),
        row(2.5, 0.0020, 0.4, "loose, flags clean photos"),
        row(1.2, 0.0008, 0.0, "chosen"),
        row(0.9, 0.0001, 0.3, "strict"),
    ]
    assert choose(rows, LIMIT)["gate"] == {"name": "chosen"}
    assert choose(rows[:2], LIMIT) is None


def test_one_harmed_photo_fails_a_gate_that_every_mean_passes():
    rows = [
        row(3.0, 0.0005, 0.5, "one photo 5 dB worse", worst_photo=-5.0),
        row(2.8, 0.0005, 0.5, "an unmarked wallpaper's icons flagged", whole_flagged=0.02),
        row(2.9, 0.0005, 0.5, "an icon wallpaper crop damaged", worst_crop=-16.0),
        row(2.7, 0.0005, 0.5, "a wallpaper's own icon inpainted away", outside=407),
        row(2.6, 0.0005, 0.5, "an icon inpainted in a crop, 2.85 dB", crop_outside=859),
        row(2.0, 0.0005, 0.5, "chosen", worst_photo=-0.05, whole_flagged=0.0009, worst_crop=-2.5),
    ]
    assert choose(rows, LIMIT)["gate"] == {"name": "chosen"}
    assert choose(rows[:3], LIMIT) is None


def test_ties_at_crop_size_go_to_full_size_gain_then_to_fewer_tiles():
    many, few, better = (
        row(1.0, 0.0, 0.2, "many"),
        row(1.0, 0.0, 0.2, "few"),
        row(1.0, 0.0, 0.3, "b"),
    )
    many["full_tile_share"], few["full_tile_share"], better["full_tile_share"] = 0.7, 0.2, 0.9
    assert choose([many, few], LIMIT)["gate"] == {"name": "few"}
    assert choose([many, few, better], LIMIT)["gate"] == {"name": "b"}


def test_candidates_are_the_grid_and_unknown_keys_are_refused():
    serving = serving_settings(REPO / "handler" / "model-config.yaml")
    grid = {"seed_threshold": [0.9, 0.95], "region_confidence": [0.8, 0.85, 0.9]}
    found = candidates(grid, serving)
    assert len(found) == 6
    assert {"region_confidence": 0.9, "seed_threshold": 0.95} in found
    with pytest.raises(ValueError, match="seed_treshold"):
        candidates({"seed_treshold": [0.9]}, serving)


def test_the_shipped_params_search_other_marks_than_the_evaluation_scores():
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    section = search_params(params)
    assert params["evaluate"]["seed"] not in section["seeds"]
    serving = serving_settings(REPO / "handler" / "model-config.yaml")
    for key, values in section["grid"].items():
        # The machine picks the precision among those the gate passed the search in.
        allowed = [*values, "auto"] if key in MACHINE_KEYS else values
        assert serving[key] in allowed, f"the served {key} is among the candidates"
    params["gate_search"]["seeds"] = [1, params["evaluate"]["seed"]]
    with pytest.raises(ValueError, match="scored on"):
        search_params(params)


def test_a_real_model_is_scored_on_every_candidate(sets):
    serving = serving_settings(REPO / "handler" / "model-config.yaml")
    torch.manual_seed(0)
    model = WatermarkRemover(ModelConfig(widths=(4, 8, 8)))
    # A gate no pixel passes changes nothing: every gain is 0 and no clean pixel is flagged.
    result = search(
        model, sets, serving, {"seed_threshold": [1.01], "region_confidence": [0.5]}, LIMIT
    )
    [scored] = result["candidates"]
    assert scored["gain"] == 0.0 and scored["full_gain"] == 0.0
    assert scored["full_worst_photo"] == 0.0 and scored["worst_crop"] == 0.0
    assert scored["clean_flagged"] == 0.0 and scored["clean_full_flagged"] == 0.0
    assert scored["full_outside"] == 0 and scored["crop_outside"] == 0
    assert set(scored["per_style"]) <= {"text", "logo", "grid", "centre", "corner"}
    assert result["chosen"] == {"region_confidence": 0.5, "seed_threshold": 1.01}
    # A gate every region passes: every clean pixel is flagged, and F1 is the marks' share.
    everything = {
        "mask_threshold": [0.0], "seed_threshold": [0.0], "region_confidence": [0.0],
        "busy_regions": [0], "local_window": [0],
    }  # fmt: skip
    loose = search(model, sets, serving, everything, LIMIT)
    [changed] = loose["candidates"]
    assert changed["clean_flagged"] == 1.0 and changed["clean_full_flagged"] == 1.0
    assert changed["full_worst_photo"] <= changed["full_gain"]
    assert changed["worst_crop"] <= changed["gain"]
    assert 0.0 < changed["f1"] < 1.0
    assert math.isfinite(changed["gain"])
    assert loose["chosen"] is None


def test_the_command_writes_its_table_and_fails_when_no_gate_passes(tmp_path, monkeypatch, sets):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    # Every region passes: every clean pixel is flagged, so no gate is fit to serve.
    params["gate_search"]["grid"] = {
        "seed_threshold": [0.0], "region_confidence": [0.0], "mask_threshold": [0.0],
        "busy_regions": [0], "local_window": [0],
    }  # fmt: skip
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    checkpoint = tmp_path / "tiny.pt"
    torch.manual_seed(0)
    model = WatermarkRemover(ModelConfig(widths=(4, 8, 8)))
    torch.save({"model_args": {"widths": [4, 8, 8]}, "model": model.state_dict()}, checkpoint)
    monkeypatch.setattr("training.gate_search.load_photo_folder", lambda folder: [])
    monkeypatch.setattr("training.gate_search.load_marks", lambda path, split: None)
    monkeypatch.setattr("training.gate_search.held_out_sets", lambda photos, assets, p: sets)
    status = main([
        "--params", str(tmp_path / "params.yaml"), "--photos", str(tmp_path),
        "--checkpoint", str(checkpoint),
        "--serving-config", str(REPO / "handler" / "model-config.yaml"),
        "--out", str(tmp_path / "gate"),
    ])  # fmt: skip
    assert status == 1
    result = json.loads((tmp_path / "gate" / "gate.json").read_text())
    assert result["chosen"] is None and len(result["candidates"]) == 1
    table = (tmp_path / "gate" / "gate.md").read_text()
    assert (
        "| busy_regions 0, local_window 0, mask_threshold 0.0, region_confidence 0.0, "
        "seed_threshold 0.0 |" in table
    )
    assert "| 100.00% | 100.00% | no |" in table
    assert 0 < result["candidates"][0]["full_tile_share"] <= 1
    assert np.isfinite(result["candidates"][0]["gain"])


def test_candidates_share_forwards_and_score_as_if_alone(sets, monkeypatch):
    serving = serving_settings(REPO / "handler" / "model-config.yaml")
    torch.manual_seed(0)
    model = WatermarkRemover(ModelConfig(widths=(4, 8, 8)))
    grid = {"mask_threshold": [0.3], "seed_threshold": [0.3, 0.6], "region_confidence": [0.3]}
    calls = []
    network = Engine.network
    monkeypatch.setattr(Engine, "network", lambda self, b: calls.append(1) or network(self, b))
    together = search(model, sets, serving, grid, LIMIT)["candidates"]
    forwards_together = len(calls)
    alone = [
        search(model, sets, serving, {**grid, "seed_threshold": [seed]}, LIMIT)["candidates"][0]
        for seed in grid["seed_threshold"]
    ]
    assert together == alone
    # Each search alone ran every forward; together, the second candidate ran none of its own.
    assert forwards_together > 0 and len(calls) - forwards_together == 2 * forwards_together
    # A setting that changes the forwards themselves (mirror_views) shares none of them.
    before = len(calls)
    mirrored = {**grid, "seed_threshold": [0.3], "mirror_views": ["off", "mean"]}
    rows = search(model, sets, serving, mirrored, LIMIT)["candidates"]
    assert len(calls) - before == 2 * forwards_together
    assert {**rows[0], "gate": None} == {**alone[0], "gate": None}


def test_the_served_gate_is_the_one_the_committed_search_chose():
    # metrics/gate is the evidence for handler/model-config.yaml's gate: a hand edit of either
    # alone would serve settings nobody measured.
    searched = json.loads((REPO / "metrics" / "gate" / "gate.json").read_text())
    served = serving_settings(REPO / "handler" / "model-config.yaml")
    assert searched["chosen"] is not None
    assert {key: served[key] for key in searched["chosen"]} == searched["chosen"]


def test_changes_are_counted_outside_the_mark_only():
    clean = np.full((60, 80, 3), 100, np.uint8)
    alpha = np.zeros((60, 80), np.float32)
    alpha[10:20, 10:20] = 0.5
    white = np.ones((60, 80, 3), np.float32)
    mask = alpha > 0
    example = WatermarkedExample(
        blend(clean, alpha, white[0, 0]), clean, mask, alpha, white, "logo"
    )
    output = example.watermarked.copy()
    output[10:20, 10:20] = 100  # the mark removed
    output[8, 10] = 0  # 2 pixels from the mark: its edge
    output[15, 20:30] = 0  # a halo that spills 10 pixels past it
    output[5, 30] = 0  # JPEG ringing, in a 16x16 colour block the mark touches
    assert changed_outside(example, output) == 0
    output[50:53, 60:65] = 0  # 15 pixels far from it
    assert changed_outside(example, output) == 15
    # A line joined to the mark in one region, columns 20-49 of row 15: the 14 of them more
    # than 16 pixels from the mark's last column (19) count, though the line touches it.
    output[15, 20:50] = 0
    assert changed_outside(example, output) == 15 + 14


def test_each_seed_adds_its_own_marks_and_the_whole_photos_count_once(photos, assets):
    params = {
        "count": 3, "crop_size": 64, "full_count": 2, "full_min_megapixels": 0.005,
        "clean_count": 2,
    }  # fmt: skip
    one = held_out_sets(photos, assets, {**params, "seeds": [1]})
    two = held_out_sets(photos, assets, {**params, "seeds": [1, 3]})
    assert (len(two.crops), len(two.full), len(two.clean)) == (6, 4, 4)
    assert len(two.clean_full) == len(one.clean_full) == 2
    # The first seed's sets are the one-seed search's; the second seed's marks are others.
    for a, b in zip(one.crops + one.full, two.crops[:3] + two.full[:2], strict=True):
        assert np.array_equal(a.watermarked, b.watermarked)
    for a, b in zip(two.crops[:3], two.crops[3:], strict=True):
        assert not np.array_equal(a.watermarked, b.watermarked)


def test_a_gate_scored_under_two_precisions_must_pass_under_both():
    def under(precision: str, name: str, gain: float, **kw) -> dict:
        scored = row(gain, 0.0, 0.2, name, **kw)
        return {**scored, "gate": {"name": name, "precision": precision}}

    rows = [
        under("bfloat16", "best in bfloat16", 3.0),
        under("float32", "best in bfloat16", 3.1, outside=683),
        under("bfloat16", "chosen", 2.0),
        under("float32", "chosen", 1.9),
        under("bfloat16", "weaker", 1.8),
        under("float32", "weaker", 2.5),
    ]
    chosen = choose(rows, LIMIT)
    # Each gate judged by its worse precision (1.9 against 1.8), named without the precision.
    assert chosen["gate"] == {"name": "chosen"} and chosen["gain"] == 1.9
    assert choose(rows[:2], LIMIT) is None
