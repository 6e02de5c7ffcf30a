"""The export stage: keep only what serving needs from the best training checkpoint.

python -m training.export --checkpoint training/runs/best.pt --out model/clearmark.pt

A run's runs/last.pt (the step it stopped at, with the optimizer) exports too: its moving average
of the weights, which is what validation scores and best.pt holds.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from training.checkpoint import SERVING_KEYS

EMA_PREFIX = "module."  # torch.optim.swa_utils.AveragedModel's keys: its module's, and a count


def serving_state(state: dict[str, Any], checkpoint: Path) -> dict[str, Any]:
    """A best.pt as it is; a last.pt's EMA weights under "model". Refuses what is neither."""
    if "ema" in state and "model_args" in state:
        weights = {
            key.removeprefix(EMA_PREFIX): value
            for key, value in state["ema"].items()
            if key.startswith(EMA_PREFIX)
        }
        state = {**state, "model": weights}
    missing = [key for key in SERVING_KEYS if key not in state]
    if missing:
        raise ValueError(
            f"{checkpoint} has no {', '.join(missing)}: not a training checkpoint this version "
            "exports (a run's best.pt, or a last.pt written since it carries model_args)"
        )
    return state


def export(checkpoint: Path, out: Path) -> dict[str, object]:
    """Weights, architecture and the training step; no optimizer state (serving never needs it)."""
    state = serving_state(torch.load(checkpoint, map_location="cpu", weights_only=True), checkpoint)
    payload = {key: state[key] for key in SERVING_KEYS}
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, out)
    return payload


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    try:
        payload = export(args.checkpoint, args.out)
    except ValueError as error:
        raise SystemExit(f"export: {error}") from None
    size_mb = args.out.stat().st_size / 1e6
    print(f"wrote {args.out} (step {payload['step']}, {size_mb:.1f} MB)")


if __name__ == "__main__":
    main()
