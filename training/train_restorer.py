"""The train_restorer stage: fit the restoration-given-a-mask network (training/restorer.py),
resumably, on marked crops of the training photos; validated on held-out photos, fonts and
logos against Telea given the same true masks.

    python -m training.train_restorer --params params.yaml --photos data/photos \
        --runs training/restorer-runs --out model/restorer.pt

Batch ``step`` is drawn from ``batch_seed(seed, step)`` as in training/train.py, so a resumed
run sees the batches an uninterrupted one would. ``--out`` gets the best step's averaged
weights whenever validation improves.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from scipy import ndimage
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

import training.restorer
import training.synth
from training.baselines import telea_inpaint
from training.distributed import batch_seed
from training.examples import (
    collate,
    load_training_inputs,
    sampling_weights,
    to_tensor,
    to_uint8,
    training_examples,
    validation_examples,
)
from training.metrics import PSNR_CAP_DB, psnr
from training.restorer import restore, restorer_model
from training.synth import MarkAssets, WatermarkedExample
from training.train import learning_rate, run_fingerprint, save_checkpoint, serving_payload

TRAINING_CODE = (training.restorer, training.synth, sys.modules[__name__])
# 8-connectivity, as the pipeline's regions (handler/pipeline.py).
CONNECTIVITY = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class RestorerConfig:
    widths: tuple[int, ...]
    steps: int
    batch_size: int
    crop_size: int
    min_scale: float
    mark_reference_sizes: tuple[int, int]
    grow: tuple[float, ...]  # probability of widening the true mask by 0, 1, 2 ... pixels
    lr: float
    min_lr: float
    warmup_steps: int
    seed: int
    eval_every: int
    val_count: int
    val_crop_size: int
    val_seed: int
    ema_decay: float
    # Squared errors below this count as this in the log loss (1e-6 is 60 dB): a crop Telea
    # already fills exactly cannot pull the whole batch.
    loss_floor: float
    # Each photo source's share of the training draws (training/examples.py sampling_weights).
    source_shares: dict[str, float]

    def __post_init__(self) -> None:
        for name in ("widths", "mark_reference_sizes", "grow"):  # yaml gives lists
            object.__setattr__(self, name, tuple(getattr(self, name)))

    def fingerprint(self, photos: list[np.ndarray], assets: list[MarkAssets]) -> str:
        """What a checkpoint must match to be resumed: every setting but the step budget, the
        photos and marks, and the code that makes the batches."""
        return run_fingerprint({**asdict(self), "steps": None}, photos, assets, TRAINING_CODE)


def widened(mask: np.ndarray, rng: np.random.Generator, grow: Sequence[float]) -> np.ndarray:
    """``mask`` grown by k pixels with probability grow[k]: the pipeline's masks are grown
    (grow_pixels) and a person's are rarely exact, so the network learns masks that are too
    wide as well as true ones."""
    k = int(rng.choice(len(grow), p=np.asarray(grow) / np.sum(grow)))
    if k == 0 or not mask.any():
        return mask
    return ndimage.binary_dilation(mask, CONNECTIVITY, iterations=k)


def restorer_batch(
    examples: Sequence[WatermarkedExample], masks: Sequence[np.ndarray]
) -> dict[str, torch.Tensor]:
    """Training tensors (training/examples.py collate) with the mask restoration is given
    ("given", (B, 1, H, W)) and Telea's fill of it ("fill", (B, 3, H, W))."""
    batch = collate(examples)
    batch["given"] = torch.from_numpy(np.stack(masks)).float()[:, None]
    batch["fill"] = to_tensor(
        [telea_inpaint(e.watermarked, m) for e, m in zip(examples, masks, strict=True)]
    )
    return batch


class Batches(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    """Batch ``step``: marked crops only (a clean crop has nothing to restore), each with its
    true mask widened at random and Telea's fill of that mask."""

    def __init__(
        self,
        cfg: RestorerConfig,
        photos: list[np.ndarray],
        assets: MarkAssets,
        sources: Sequence[str],
    ) -> None:
        self.cfg, self.photos, self.assets = cfg, photos, assets
        self.weights = sampling_weights(sources, cfg.source_shares)

    def __len__(self) -> int:
        return self.cfg.steps

    def __getitem__(self, step: int) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        rng = np.random.default_rng(batch_seed(cfg.seed, step, 0))
        examples = training_examples(
            self.photos, self.assets, rng, cfg.batch_size, cfg.crop_size, cfg.min_scale,
            cfg.mark_reference_sizes, clean_fraction=0.0, photo_weights=self.weights,
        )  # fmt: skip
        return restorer_batch(examples, [widened(e.mask, rng, cfg.grow) for e in examples])


def restorer_loss(restored: torch.Tensor, batch: dict[str, torch.Tensor], floor: float
                  ) -> torch.Tensor:  # fmt: skip
    """Mean over crops of log10 of each crop's squared error inside the given mask (the only
    pixels that change), floored at ``floor``.

    The log per crop is what the evaluation's mean PSNR over crops rewards: a plain squared
    error over the batch is dominated by its hardest crops (large opaque marks, where no
    restorer does well), and an L1 loss let rare large errors through."""
    given = batch["given"]
    squared = ((restored - batch["clean"]) ** 2 * given).sum(dim=(1, 2, 3))
    area = (3 * given.sum(dim=(1, 2, 3))).clamp_min(1.0)
    return torch.log10((squared / area).clamp_min(floor)).mean()


@torch.inference_mode()
def validation_scores(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> np.ndarray:
    """Capped PSNR (dB, uint8) of each restored validation crop."""
    was_training = model.training
    model.eval()
    output, _ = restore(model, batch["watermarked"], batch["fill"], batch["given"])  # type: ignore[arg-type]
    model.train(was_training)
    scores = [psnr(o, c) for o, c in zip(to_uint8(output), to_uint8(batch["clean"]), strict=True)]
    return np.minimum(scores, PSNR_CAP_DB)


@dataclass(frozen=True)
class ValidationSet:
    """The held-out crops with their TRUE masks, and Telea's capped PSNR on each (the bar)."""

    batch: dict[str, torch.Tensor]
    telea: np.ndarray  # (N,) dB
    styles: tuple[str, ...]

    def per_style_gain(self, scores: np.ndarray) -> dict[str, float]:
        """Mean dB above Telea per mark style, for the log: the issue asks for every style."""
        styles = np.asarray(self.styles)
        return {
            style: float(np.mean(scores[styles == style] - self.telea[styles == style]))
            for style in sorted(set(self.styles))
        }


def validation_set(cfg: RestorerConfig, photos: list[np.ndarray], assets: MarkAssets
                   ) -> ValidationSet:  # fmt: skip
    examples = validation_examples(photos, assets, cfg.val_count, cfg.val_crop_size, cfg.val_seed)
    telea = [
        min(PSNR_CAP_DB, psnr(telea_inpaint(e.watermarked, e.mask), e.clean)) for e in examples
    ]
    return ValidationSet(
        restorer_batch(examples, [e.mask for e in examples]),
        np.asarray(telea),
        tuple(e.style for e in examples),
    )


def train(
    cfg: RestorerConfig,
    train_photos: list[np.ndarray],
    val_photos: list[np.ndarray],
    train_assets: MarkAssets,
    val_assets: MarkAssets,
    runs: Path,
    out: Path,
    workers: int = 0,
    train_sources: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Train to cfg.steps, resuming from runs/last.pt when it matches; the best step's EMA
    weights go to ``out``. ``train_sources``: training/examples.py photo_sources of the
    training photos (None: all "other"). Returns the best validation PSNR and Telea's on the
    same crops."""
    runs.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    model = restorer_model(cfg.widths)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True)
    fingerprint = cfg.fingerprint([*train_photos, *val_photos], [train_assets, val_assets])
    start = 0
    best: dict[str, Any] = {"val_psnr": -math.inf, "step": -1}
    last = runs / "last.pt"
    if last.exists():
        state = torch.load(last, map_location="cpu", weights_only=False)
        if state["fingerprint"] == fingerprint:
            model.load_state_dict(state["model"])
            ema.load_state_dict(state["ema"])
            optimizer.load_state_dict(state["optimizer"])
            start, best = state["step"], state["best"]
            print(f"resuming from step {start} (best {best['val_psnr']:.2f} dB)")
        else:
            print("runs/last.pt was trained with other settings: starting afresh")
    val_set = validation_set(cfg, val_photos, val_assets)
    telea_psnr = float(val_set.telea.mean())
    print(f"validation: Telea given the true mask {telea_psnr:.2f} dB")
    batches = torch.utils.data.DataLoader(
        Batches(cfg, train_photos, train_assets, train_sources or ["other"] * len(train_photos)),
        batch_size=None,
        sampler=range(start, cfg.steps),
        num_workers=workers,
    )
    model.train()
    running = 0.0
    tic = time.perf_counter()
    progress = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, desc="restorer")
    for step, batch in zip(progress, batches, strict=True):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(cfg, step)
        restored, _ = restore(model, batch["watermarked"], batch["fill"], batch["given"])
        loss = restorer_loss(restored, batch, cfg.loss_floor)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        ema.update_parameters(model)
        running = 0.9 * (running or loss.item()) + 0.1 * loss.item()
        progress.set_postfix(loss=f"{running:.4f}")
        done = step + 1
        if done % cfg.eval_every == 0 or done == cfg.steps:
            scores = validation_scores(ema.module, val_set.batch)
            val = float(scores.mean())
            gains = val_set.per_style_gain(scores)
            if val > best["val_psnr"]:
                best = {"val_psnr": val, "step": done, "gain_per_style": gains}
                save_checkpoint(out, serving_payload(ema.module, done))  # type: ignore[arg-type]
            progress.write(
                f"step {done}: loss {running:.4f}, val PSNR {val:.2f} dB (Telea {telea_psnr:.2f}, "
                f"best {best['val_psnr']:.2f} at {best['step']}), per style "
                + " ".join(f"{k} {v:+.2f}" for k, v in gains.items())
                + ", "
                f"{(time.perf_counter() - tic) / cfg.eval_every:.2f} s/step"
            )
            tic = time.perf_counter()
            save_checkpoint(
                last,
                {
                    "model": model.state_dict(),
                    "ema": ema.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "step": done,
                    "best": best,
                    "fingerprint": fingerprint,
                },
            )
    return {"val_psnr_telea": telea_psnr, **best}


def load_config(path: Path) -> RestorerConfig:
    return RestorerConfig(**yaml.safe_load(path.read_text())["restorer"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--photos", type=Path, required=True, help="prepare stage's output")
    parser.add_argument("--runs", type=Path, required=True, help="checkpoint folder")
    parser.add_argument("--out", type=Path, required=True, help="the best weights")
    parser.add_argument("--workers", type=int, default=0, help="batch-making processes")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    inputs = load_training_inputs(args.photos)
    summary = train(
        load_config(args.params),
        inputs.train_photos,
        inputs.val_photos,
        inputs.train_assets,
        inputs.val_assets,
        args.runs,
        args.out,
        args.workers,
        inputs.train_sources,
    )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
