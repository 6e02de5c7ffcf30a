"""Write an ensemble checkpoint: several detectors whose probabilities the server averages
(training/model.py DetectorEnsemble), served, evaluated and searched like one checkpoint.

python -m training.ensemble --members model/clearmark.pt model/candidates/detector-scratch1.pt \
    --weights 1 1 --out /tmp/ensemble.pt
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import torch

from training.checkpoint import ensemble_payload


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=Path, nargs="+", required=True)
    parser.add_argument(
        "--weights", type=float, nargs="+", help="one per member (default: equal)"
    )  # fmt: skip
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    weights = args.weights or [1.0] * len(args.members)
    try:
        payload = ensemble_payload(args.members, weights)
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, args.out)
    size_mb = args.out.stat().st_size / 1e6
    print(f"wrote {args.out} ({len(args.members)} detectors, {size_mb:.1f} MB)")


if __name__ == "__main__":
    main()
