"""torchrun's entry in test_distributed: ``python -m training.train`` as it is, keeping hold of
the network and its average it trains and counting the checkpoints it saves, then writing
them to OUT/rank-<RANK>.pt. Usage: ddp_worker.py OUT <training.train's arguments>."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

import training.train

held: dict[str, Any] = {"checkpoints": 0}


def keeping(name: str, make: Callable[..., Any]) -> Callable[..., Any]:
    def made(*args: Any, **kwargs: Any) -> Any:
        held[name] = make(*args, **kwargs)
        return held[name]

    return made


def counted(save: Callable[..., None]) -> Callable[..., None]:
    def saved(*args: Any, **kwargs: Any) -> None:
        held["checkpoints"] += 1
        save(*args, **kwargs)

    return saved


if __name__ == "__main__":
    out = Path(sys.argv.pop(1))
    training.train.WatermarkRemover = keeping("model", training.train.WatermarkRemover)
    training.train.AveragedModel = keeping("ema", training.train.AveragedModel)
    training.train.save_checkpoint = counted(training.train.save_checkpoint)
    training.train.main()
    torch.save(
        {
            "model": held["model"].state_dict(),
            "ema": held["ema"].state_dict(),
            "checkpoints": held["checkpoints"],
        },
        out / f"rank-{os.environ['RANK']}.pt",
    )
