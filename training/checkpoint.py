"""Loading a model from a checkpoint that carries its own architecture (``model_args``), and the
ensemble checkpoint: several detectors' checkpoints in one file (``members``, ``weights``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from training.model import Detector, DetectorEnsemble, ModelConfig, WatermarkRemover

# What a served checkpoint keeps of a training one (train.py serving_payload writes them): the
# weights, the architecture that rebuilds them, and the training step.
SERVING_KEYS = ("model", "model_args", "step")


def _network(checkpoint: dict[str, Any]) -> WatermarkRemover:
    model = WatermarkRemover(ModelConfig(**checkpoint["model_args"]))
    model.load_state_dict(checkpoint["model"])
    return model.eval()


def _read(path: Path) -> dict[str, Any]:
    checkpoint: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    return checkpoint


def load_model(path: Path) -> WatermarkRemover:
    """Rebuild the network from ``model_args`` and load its weights, in eval mode on the CPU.
    An ensemble is refused: what trains, restores or starts a run is one network."""
    checkpoint = _read(path)
    if "members" in checkpoint:
        raise ValueError(
            f"{path} is an ensemble of {len(checkpoint['members'])} detectors "
            "(training/ensemble.py), not one network"
        )
    return _network(checkpoint)


def load_detector(path: Path) -> Detector:
    """What detects: the network of a checkpoint, or the ensemble of an ensemble checkpoint, in
    eval mode on the CPU."""
    checkpoint = _read(path)
    if "members" not in checkpoint:
        return _network(checkpoint)
    members = [_network(member) for member in checkpoint["members"]]
    return DetectorEnsemble(members, checkpoint["weights"]).eval()


def ensemble_payload(paths: Sequence[Path], weights: Sequence[float]) -> dict[str, Any]:
    """The ensemble checkpoint of the detectors at ``paths`` (each one network), each weighted
    by its ``weights``; refused (by DetectorEnsemble) unless they can run together."""
    members = []
    for path in paths:
        checkpoint = _read(path)
        if "members" in checkpoint:
            raise ValueError(f"{path} is an ensemble already: list its members instead")
        # The step only when the checkpoint has one (an older or hand-made one may not).
        members.append({key: checkpoint[key] for key in SERVING_KEYS if key in checkpoint})
    DetectorEnsemble([_network(m) for m in members], weights)  # the same checks as loading
    return {"members": members, "weights": [float(w) for w in weights]}
