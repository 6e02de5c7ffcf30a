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

import numpy as np
import torch
import yaml
from scipy import ndimage
from torch.nn import functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

import training.restorer
import training.synth
from training.baselines import telea_inpaint
from training.distributed import batch_seed
from training.examples import (
    collate,
    load_training_inputs,
    to_tensor,
    to_uint8,
    training_examples,
    validation_examples,
)
from training.losses import area_mean
from training.metrics import PSNR_CAP_DB, psnr
from training.model import Prediction
from training.restorer import restore, restorer_model
from training.synth import MarkAssets, WatermarkedExample
from training.train import learning_rate, run_fingerprint, save_checkpoint, serving_payload

TRAINING_CODE = (training.restorer, training.synth, sys.modules[__name__])
# 8-connectivity, as the pipeline's regions (handler/pipeline.py).
CONNECTIVITY = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class RestorerConfig:
    widths: tuple[int, ...]
    max_alpha: float
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
    loss_weights: dict[str, float]

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

    def __init__(self, cfg: RestorerConfig, photos: list[np.ndarray], assets: MarkAssets) -> None:
        self.cfg, self.photos, self.assets = cfg, photos, assets

    def __len__(self) -> int:
        return self.cfg.steps

    def __getitem__(self, step: int) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        rng = np.random.default_rng(batch_seed(cfg.seed, step, 0))
        examples = training_examples(
            self.photos, self.assets, rng, cfg.batch_size, cfg.crop_size, cfg.min_scale,
            cfg.mark_reference_sizes, clean_fraction=0.0,
        )  # fmt: skip
        return restorer_batch(examples, [widened(e.mask, rng, cfg.grow) for e in examples])


def restorer_losses(pred: Prediction, batch: dict[str, torch.Tensor], w: dict[str, float]
                    ) -> dict[str, torch.Tensor]:  # fmt: skip
    """Weighted terms and their sum, each over the given mask's pixels (the only ones that
    change):

    - trust: binary cross-entropy of the trust against where the (detached) inversion is
      nearer the clean photo than Telea's fill, so that the network says where to invert;
    - inversion: L1 of the inverted blend where the mark touched the pixel, which fits alpha and
      colour together as inversion needs them;
    - alpha: L1 of alpha there, a direct signal from the start.
    """
    given, clean = batch["given"], batch["clean"]
    touched = given * (batch["alpha"] > 0).float()
    inverted = pred.restored.float()
    error = (inverted.detach() - clean).abs().sum(1, keepdim=True)
    better = (error < (batch["fill"] - clean).abs().sum(1, keepdim=True)).float()
    bce = F.binary_cross_entropy_with_logits(pred.mask_logits.float(), better, reduction="none")
    terms = {
        "trust": w["trust"] * area_mean(bce, given),
        "inversion": w["inversion"] * area_mean((inverted - clean).abs(), touched),
        "alpha": w["alpha"] * area_mean((pred.alpha.float() - batch["alpha"]).abs(), touched),
    }
    terms["total"] = torch.stack(list(terms.values())).sum()
    return terms


@torch.inference_mode()
def validation_scores(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> float:
    """Mean capped PSNR (dB, uint8) of the restored validation crops."""
    was_training = model.training
    model.eval()
    output, _ = restore(model, batch["watermarked"], batch["fill"], batch["given"])  # type: ignore[arg-type]
    model.train(was_training)
    scores = [psnr(o, c) for o, c in zip(to_uint8(output), to_uint8(batch["clean"]), strict=True)]
    return float(np.mean(np.minimum(scores, PSNR_CAP_DB)))


def validation_set(
    cfg: RestorerConfig, photos: list[np.ndarray], assets: MarkAssets
) -> tuple[dict[str, torch.Tensor], float]:
    """The held-out crops with their TRUE masks, and Telea's mean capped PSNR on them (the bar)."""
    examples = validation_examples(photos, assets, cfg.val_count, cfg.val_crop_size, cfg.val_seed)
    telea = [
        min(PSNR_CAP_DB, psnr(telea_inpaint(e.watermarked, e.mask), e.clean)) for e in examples
    ]
    return restorer_batch(examples, [e.mask for e in examples]), float(np.mean(telea))


def train(
    cfg: RestorerConfig,
    train_photos: list[np.ndarray],
    val_photos: list[np.ndarray],
    train_assets: MarkAssets,
    val_assets: MarkAssets,
    runs: Path,
    out: Path,
    workers: int = 0,
) -> dict[str, float]:
    """Train to cfg.steps, resuming from runs/last.pt when it matches; the best step's EMA
    weights go to ``out``. Returns the best validation PSNR and Telea's on the same crops."""
    runs.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    model = restorer_model(cfg.widths, cfg.max_alpha)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True)
    fingerprint = cfg.fingerprint([*train_photos, *val_photos], [train_assets, val_assets])
    start, best = 0, {"val_psnr": -math.inf, "step": -1}
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
    val_batch, telea_psnr = validation_set(cfg, val_photos, val_assets)
    print(f"validation: Telea given the true mask {telea_psnr:.2f} dB")
    batches = torch.utils.data.DataLoader(
        Batches(cfg, train_photos, train_assets),
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
        _, pred = restore(model, batch["watermarked"], batch["fill"], batch["given"])
        losses = restorer_losses(pred, batch, cfg.loss_weights)
        optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        ema.update_parameters(model)
        running = 0.9 * (running or losses["total"].item()) + 0.1 * losses["total"].item()
        progress.set_postfix(loss=f"{running:.4f}")
        done = step + 1
        if done % cfg.eval_every == 0 or done == cfg.steps:
            val = validation_scores(ema.module, val_batch)
            if val > best["val_psnr"]:
                best = {"val_psnr": val, "step": done}
                save_checkpoint(out, serving_payload(ema.module, done))  # type: ignore[arg-type]
            progress.write(
                f"step {done}: loss {running:.4f}, val PSNR {val:.2f} dB (Telea {telea_psnr:.2f}, "
                f"best {best['val_psnr']:.2f} at {best['step']}), "
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
    )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
