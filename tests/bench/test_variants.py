"""batchSize variants of the model archive: only that line changes, and the archive carries it."""

from __future__ import annotations

import zipfile

import pytest
import torch
import yaml

from bench.variants import variant_store, with_batch_size
from handler.archive import MODEL_CONFIG
from training.model import ModelConfig, WatermarkRemover


def test_with_batch_size_changes_that_line_only():
    original = MODEL_CONFIG.read_text()
    changed = with_batch_size(original, 1)
    assert changed.count("\n") == original.count("\n")
    diff = [(a, b) for a, b in zip(original.splitlines(), changed.splitlines(), strict=True)
            if a != b]  # fmt: skip
    assert len(diff) == 1 and diff[0][1] == "batchSize: 1"
    parsed, expected = yaml.safe_load(changed), yaml.safe_load(original)
    expected["batchSize"] = 1
    assert parsed == expected


def test_with_batch_size_refuses_a_config_without_one_top_level_batch_size():
    with pytest.raises(ValueError, match="found 0"):
        with_batch_size("handler:\n  batchSize: 4\n", 8)


def test_variant_archive_carries_the_changed_config(tmp_path):
    checkpoint = tmp_path / "tiny.pt"
    cfg = ModelConfig(widths=(4, 8, 8))
    torch.save({"model": WatermarkRemover(cfg).state_dict(), "model_args": vars(cfg).copy()},
               checkpoint)  # fmt: skip
    store = variant_store(checkpoint, 1, tmp_path / "variants")
    with zipfile.ZipFile(store / "clearmark.mar") as archive:
        packed = yaml.safe_load(archive.read("model-config.yaml"))
        names = archive.namelist()
    assert packed["batchSize"] == 1
    assert packed["handler"] == yaml.safe_load(MODEL_CONFIG.read_text())["handler"]
    assert {"clearmark.pt", "clearmark_handler.py", "MAR-INF/MANIFEST.json"} <= set(names)
