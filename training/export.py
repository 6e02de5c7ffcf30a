"""The export stage: keep only what serving needs from the best training checkpoint.

python -m training.export --checkpoint training/runs/best.pt --out model/clearmark.pt
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from training.checkpoint import SERVING_KEYS


def export(checkpoint: Path, out: Path) -> dict[str, object]:
    """Weights, architecture and the training step; no optimizer state (serving never needs it)."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    payload = {key: state[key] for key in SERVING_KEYS}
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, out)
    return payload


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    payload = export(args.checkpoint, args.out)
    size_mb = args.out.stat().st_size / 1e6
    print(f"wrote {args.out} (step {payload['step']}, {size_mb:.1f} MB)")


if __name__ == "__main__":
    main()
