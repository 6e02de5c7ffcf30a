"""Loading a model from a checkpoint that carries its own architecture (``model_args``)."""

from __future__ import annotations

from pathlib import Path

import torch

from training.model import ModelConfig, WatermarkRemover


def load_model(path: Path) -> WatermarkRemover:
    """Rebuild the network from ``model_args`` and load its weights, in eval mode on the CPU."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    model = WatermarkRemover(ModelConfig(**checkpoint["model_args"]))
    model.load_state_dict(checkpoint["model"])
    return model.eval()
