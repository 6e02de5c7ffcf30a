"""The train stage: fit the model on freshly synthesised watermarks, resumably.

Every batch is drawn from ``numpy.random.default_rng([seed, step])``, so a run resumed from
its last checkpoint sees exactly the batches an uninterrupted run would have seen.

    python -m training.train --params params.yaml --photos data/photos --runs training/runs

Under torchrun, each of N processes draws its own batch of ``batch_size`` crops a step (the
batch size is per process: N x batch_size crops a step in all) and their gradients are
averaged; only the first process validates and writes (training/distributed.py).

    torchrun --standalone --nproc_per_node=2 -m training.train --params params.yaml ...
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import numpy as np
import torch
import yaml
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

import training.examples
import training.losses
import training.model
import training.negatives
import training.synth
from handler.pipeline import Detection, PipelineConfig, remove_watermark
from training.checkpoint import load_model
from training.distributed import (
    ALONE,
    Process,
    batch_seed,
    data_parallel,
    from_environment,
    from_main,
    process_group,
    share_buffers,
)
from training.evaluate import serving_settings
from training.examples import (
    collate,
    load_training_inputs,
    sampling_weights,
    to_uint8,
    training_examples,
    validation_examples,
)
from training.losses import removal_losses
from training.metrics import PSNR_CAP_DB, mask_f1, psnr
from training.model import ModelConfig, Prediction, WatermarkRemover, predict
from training.synth import MarkAssets

# The random stream hard negatives are drawn from: no batch's step ever reaches it.
MINING_STREAM = 2**32 - 1
# A checkpoint made by other versions of these modules is not resumed.
TRAINING_CODE = (
    training.examples,
    training.losses,
    training.model,
    training.negatives,
    training.synth,
)


@dataclass(frozen=True)
class TrainConfig:
    steps: int
    batch_size: int
    crop_size: int
    min_scale: float
    mark_reference_sizes: tuple[int, int]  # marks sized as on images of these short sides
    clean_fraction: float
    lr: float
    min_lr: float
    warmup_steps: int
    seed: int
    eval_every: int
    checkpoint_every: int
    val_count: int
    val_crop_size: int
    val_seed: int
    bf16: bool  # bfloat16 autocast for the training forward (1.6x faster on AVX512-BF16 CPUs)
    ema_decay: float  # validation, best.pt and serving use this moving average of the weights
    loss_weights: dict[str, float] = field(default_factory=dict)
    # Hard negatives (training/negatives.py), mined with the weights a run starts from (none
    # without init): of hard_negative_pool clean crops, the hard_negative_keep with most pixels
    # above hard_negative_threshold; hard_negative_fraction of the clean crops are drawn from them.
    hard_negative_pool: int = 0
    hard_negative_keep: int = 0
    hard_negative_threshold: float = 0.5
    hard_negative_fraction: float = 0.0
    # Each photo source's share of the training draws and of the hard-negative pool
    # (training/examples.py sampling_weights); None draws every photo alike.
    source_shares: dict[str, float] | None = None
    # Validation also scores the pipeline with these settings over the served ones (a looser
    # gate): the gate search (training/gate_search.py) picks a looser gate only where no crop
    # comes out damaged, so the log shows that gate's mean and its worst crop against its input.
    val_loose_gate: dict[str, float] = field(default_factory=dict)
    # The share of marked crops with thin lines of the photo under the mark
    # (training/synth.py crossing_lines).
    crossing_fraction: float = 0.0
    # The share of crops made of two photos joined along a line (training/examples.py mosaic).
    mosaic_fraction: float = 0.0
    # The share of crops under a smooth veil of haze or shade (training/examples.py veil).
    veil_fraction: float = 0.0
    # The share of crops with thin light strokes over them (training/examples.py filaments).
    filament_fraction: float = 0.0

    def __post_init__(self) -> None:
        low, high = self.mark_reference_sizes  # yaml gives a list
        object.__setattr__(self, "mark_reference_sizes", (int(low), int(high)))

    def fingerprint(
        self, model_cfg: ModelConfig, photos: list[np.ndarray], assets: list[MarkAssets]
    ) -> str:
        """What a checkpoint must match to be resumed: every setting but the step budget, the
        photos, fonts and logos, and the code that makes the batches and the losses."""
        settings = {**asdict(self), "steps": None, "model": asdict(model_cfg)}
        return run_fingerprint(settings, photos, assets, TRAINING_CODE)


def run_fingerprint(
    settings: dict[str, Any],
    photos: list[np.ndarray],
    assets: list[MarkAssets],
    modules: tuple[ModuleType, ...],
) -> str:
    """A short hash of a run's ``settings``, photos, fonts and logos, and the source of the
    ``modules`` that make its batches and losses: a checkpoint is resumed only by its own run."""
    digest = hashlib.sha256()
    digest.update(json.dumps(settings, sort_keys=True).encode())
    digest.update(repr(assets).encode())
    for photo in photos:
        digest.update(photo.tobytes())
    for module in modules:
        digest.update(Path(module.__file__ or "").read_bytes())
    return digest.hexdigest()[:16]


class Schedule(Protocol):
    """What the learning-rate schedule reads of a run's settings (this stage's, the
    restorer's)."""

    @property
    def lr(self) -> float: ...
    @property
    def min_lr(self) -> float: ...
    @property
    def warmup_steps(self) -> int: ...
    @property
    def steps(self) -> int: ...


def learning_rate(cfg: Schedule, step: int) -> float:
    """Linear warm-up, then cosine decay from lr to min_lr."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * min(1.0, progress)))


class TrainingBatches(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    """Batch number ``step`` of a run on process ``rank``, drawn from the random stream
    ``batch_seed(seed, step, rank)``: the same batch whichever DataLoader worker makes it and
    however often the run resumes."""

    def __init__(
        self,
        cfg: TrainConfig,
        photos: list[np.ndarray],
        assets: MarkAssets,
        negatives: np.ndarray | None = None,
        rank: int = 0,
        weights: np.ndarray | None = None,
    ) -> None:
        self.cfg, self.photos, self.assets, self.negatives = cfg, photos, assets, negatives
        self.rank, self.weights = rank, weights

    def __len__(self) -> int:
        return self.cfg.steps

    def __getitem__(self, step: int) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        return collate(
            training_examples(
                self.photos,
                self.assets,
                np.random.default_rng(batch_seed(cfg.seed, step, self.rank)),
                cfg.batch_size,
                cfg.crop_size,
                cfg.min_scale,
                cfg.mark_reference_sizes,
                cfg.clean_fraction,
                self.negatives,
                cfg.hard_negative_fraction,
                self.weights,
                cfg.crossing_fraction,
                cfg.mosaic_fraction,
                cfg.veil_fraction,
                cfg.filament_fraction,
            )
        )


@torch.inference_mode()
def validation_scores(
    model: nn.Module, batch: dict[str, torch.Tensor], cfgs: dict[str, PipelineConfig]
) -> dict[str, dict[str, float]]:
    """What the served pipeline (handler/pipeline.py: regions gated by confidence, blend
    inverted or inpainted, everything else untouched) makes of the validation crops with these
    weights, under each of ``cfgs`` by name: mean PSNR (dB) against the clean images in uint8,
    the pooled F1 of its final mask, and the worst crop's change against its input (dB)."""
    was_training = model.training
    model.eval()
    pred = predict(model, batch["watermarked"])  # type: ignore[arg-type]
    model.train(was_training)
    watermarked, clean = to_uint8(batch["watermarked"]), to_uint8(batch["clean"])
    detections = [
        Detection(p[0], a[0], c)
        for p, a, c in zip(
            pred.mask.float().cpu().numpy(),
            pred.alpha.float().cpu().numpy(),
            pred.colour.float().permute(0, 2, 3, 1).cpu().numpy(),
            strict=True,
        )
    ]
    truth = batch["mask"][:, 0].cpu().numpy() > 0.5
    # Capped as the evaluation caps it: Telea can refill a flat background exactly (inf dB).
    before = np.minimum([psnr(w, c) for w, c in zip(watermarked, clean, strict=True)], PSNR_CAP_DB)
    results = {}
    for name, cfg in cfgs.items():
        outputs, found = [], []
        for image, target, detection in zip(watermarked, clean, detections, strict=True):
            output, mask = remove_watermark(image, detection, cfg)
            outputs.append(psnr(output, target))
            found.append(mask)
        after = np.minimum(outputs, PSNR_CAP_DB)
        results[name] = {
            "psnr": float(np.mean(after)),
            "mask_f1": mask_f1(np.stack(found), truth),
            "worst_db": float(np.min(after - before)),
        }
    return results


def describe(gated: dict[str, dict[str, float]]) -> str:
    """One log line's account of validation_scores: PSNR, F1 and worst crop per gate."""
    return "; ".join(
        f"{name} PSNR {s['psnr']:.2f} dB, F1 {s['mask_f1']:.3f}, worst crop {s['worst_db']:+.2f}"
        for name, s in gated.items()
    )


def float_prediction(pred: Prediction) -> Prediction:
    """Every tensor of an autocast prediction in float32, for the losses."""
    full = {n: getattr(pred, n).float() for n in ("mask_logits", "alpha", "colour", "restored")}
    return Prediction(**full, coarse_logits=tuple(t.float() for t in pred.coarse_logits))


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write atomically: a session that ends mid-write must not destroy the last checkpoint."""
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def serving_payload(model: WatermarkRemover, step: int) -> dict[str, Any]:
    """What a best checkpoint holds (and serving loads): the weights, the architecture that
    rebuilds them (training/checkpoint.py) and the step."""
    return {"model": model.state_dict(), "model_args": asdict(model.cfg), "step": step}


def train(
    cfg: TrainConfig,
    model_cfg: ModelConfig,
    train_photos: list[np.ndarray],
    val_photos: list[np.ndarray],
    train_assets: MarkAssets,
    val_assets: MarkAssets,
    runs: Path,
    log_dir: Path | None = None,
    init: Path | None = None,
    workers: int = 0,
    pipeline: PipelineConfig | None = None,
    process: Process = ALONE,
    train_sources: Sequence[str] | None = None,
    negatives_from: Path | None = None,
) -> dict[str, float]:
    """Train to cfg.steps, resuming from runs/last.pt when it matches; returns best validation.

    A fresh run starts from the weights in ``init`` when given (a checkpoint of the same
    architecture, e.g. the best model of an earlier session), else from random weights.
    Hard negatives are the clean crops that ``negatives_from``'s weights fire on (default:
    ``init``'s); a run with neither has none, since random weights fire everywhere.
    Validation draws its marks from ``val_assets``: fonts and logos training never sees.
    Validation runs the served pipeline with ``pipeline`` (default: its defaults). Runs on the
    GPU when there is one; ``workers`` processes synthesise batches alongside (on a
    GPU the synthesis, not the network, is the bottleneck; 0 makes them in this process).

    Under torchrun (``process``: training/distributed.py) every process steps an identical
    copy on batches of its own; the main process alone reads and writes ``runs`` and
    ``log_dir`` and validates, and every process returns its summary (the losses logged are
    its batches'). Batch size is per process. ``train_sources`` (training/examples.py
    photo_sources of the training photos; None: all "other") weigh the draws by
    ``cfg.source_shares``.
    """
    main = process.is_main
    if main:
        runs.mkdir(parents=True, exist_ok=True)
    pipeline = pipeline or PipelineConfig()
    gates = {"served": pipeline}
    if cfg.val_loose_gate:
        gates["loose"] = replace(pipeline, **cfg.val_loose_gate)
    torch.manual_seed(cfg.seed)  # the same initial weights in every process
    device = process.device
    model = WatermarkRemover(model_cfg) if init is None else initial_model(init, model_cfg)
    weights = None
    if cfg.source_shares is not None:
        sources = train_sources or ["other"] * len(train_photos)
        weights = sampling_weights(sources, cfg.source_shares)
    negatives = None
    if negatives_from is not None:
        miner = initial_model(negatives_from, model_cfg)
        negatives = mined_negatives(miner, cfg, train_photos, main, weights)
    elif init is not None:
        negatives = mined_negatives(model, cfg, train_photos, main, weights)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    # use_buffers: BatchNorm's running statistics are averaged too, so the EMA model is whole.
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True)
    fingerprint = cfg.fingerprint(
        model_cfg, [*train_photos, *val_photos], [train_assets, val_assets]
    )
    start, best = 0, {"val_psnr": -math.inf, "step": -1}
    last_path, best_path = runs / "last.pt", runs / "best.pt"
    state = None
    if main and last_path.exists():
        state = torch.load(last_path, map_location="cpu", weights_only=False)
        if state["fingerprint"] != fingerprint:
            print("runs/last.pt was trained with other settings: starting afresh")
            state = None
    # Only the main process can read runs/ (another machine's processes have none of it).
    state = from_main(state, process)
    if state is not None:
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        start, best = state["step"], state["best"]
        if main:
            print(f"resuming from step {start} (best {best['val_psnr']:.2f} dB)")

    model.to(device)
    ema.to(device)
    network = data_parallel(model, process)
    val_batch, input_psnr = {}, math.nan
    if main:
        val_batch, input_psnr = validation_set(cfg, val_photos, val_assets, device)
    if main and start == 0:  # what the weights score before this run: a warm start's bar
        print(f"step 0: val {describe(validation_scores(model, val_batch, gates))}")
    live = _open_live(log_dir, resume=start > 0) if main else None
    model.train()
    batches = torch.utils.data.DataLoader(
        TrainingBatches(cfg, train_photos, train_assets, negatives, process.rank, weights),
        batch_size=None,  # the dataset's items are whole batches
        sampler=range(start, cfg.steps),
        num_workers=workers,
        pin_memory=device.type == "cuda",
    )
    progress = tqdm(
        range(start, cfg.steps), initial=start, total=cfg.steps, desc="train", disable=not main
    )
    running: dict[str, float] = {}
    tic = time.perf_counter()
    for step, cpu_batch in zip(progress, batches, strict=True):
        batch = {name: t.to(device, non_blocking=True) for name, t in cpu_batch.items()}
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(cfg, step)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
            pred = network(batch["watermarked"])
        losses = removal_losses(float_prediction(pred), batch, cfg.loss_weights)
        optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        # Every process then holds the same weights and buffers, and so the same average.
        share_buffers(model, process)
        ema.update_parameters(model)
        for name, value in losses.items():
            running[name] = 0.9 * running.get(name, value.item()) + 0.1 * value.item()
        progress.set_postfix(loss=f"{running['total']:.4f}")

        done = step + 1
        if main and (done % cfg.eval_every == 0 or done == cfg.steps):
            gated = validation_scores(ema.module, val_batch, gates)
            scores = gated["served"]
            val = scores["psnr"]
            if val > best["val_psnr"]:
                best = {"val_psnr": val, "val_mask_f1": scores["mask_f1"], "step": done}
                save_checkpoint(best_path, serving_payload(ema.module, done))
            if live is not None:
                live.step = done
                for name, value in running.items():
                    live.log_metric(f"train/loss_{name}", value)
                live.log_metric("val/psnr_output", val)
                live.log_metric("val/mask_f1", scores["mask_f1"])
                live.log_metric("val/worst_crop_db", scores["worst_db"])
                if "loose" in gated:
                    live.log_metric("val/loose_psnr_output", gated["loose"]["psnr"])
                    live.log_metric("val/loose_worst_crop_db", gated["loose"]["worst_db"])
                live.log_metric("val/psnr_input", input_psnr)
                live.log_metric("lr", learning_rate(cfg, step))
                live.log_metric("seconds_per_step", (time.perf_counter() - tic) / cfg.eval_every)
                live.next_step()
            tic = time.perf_counter()
            progress.write(
                f"step {done}: loss {running['total']:.4f}, val {describe(gated)} "
                f"(input {input_psnr:.2f} dB, best {best['val_psnr']:.2f} at {best['step']})"
            )
        if main and (done % cfg.checkpoint_every == 0 or done == cfg.steps):
            save_checkpoint(
                last_path,
                {
                    "model": model.state_dict(),
                    # training/export.py exports a run's last step from here, as served: the EMA.
                    "model_args": asdict(model.cfg),
                    "ema": ema.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "step": done,
                    "best": best,
                    "fingerprint": fingerprint,
                },
            )
    if live is not None:
        live.end()
    return from_main({"val_psnr_input": input_psnr, **best}, process)


def validation_set(
    cfg: TrainConfig, photos: list[np.ndarray], assets: MarkAssets, device: torch.device
) -> tuple[dict[str, torch.Tensor], float]:
    """The fixed validation batch on ``device``, and the mean PSNR (dB) of its inputs."""
    batch = collate(
        validation_examples(photos, assets, cfg.val_count, cfg.val_crop_size, cfg.val_seed)
    )
    input_psnr = float(
        np.mean(
            [
                psnr(w, c)
                for w, c in zip(
                    to_uint8(batch["watermarked"]), to_uint8(batch["clean"]), strict=True
                )
            ]
        )
    )
    return {name: t.to(device) for name, t in batch.items()}, input_psnr


def initial_model(path: Path, model_cfg: ModelConfig) -> WatermarkRemover:
    """The network of the checkpoint at ``path`` (training/checkpoint.py), refused unless of
    ``model_cfg``'s architecture."""
    model = load_model(path)
    # Compared as configs: a checkpoint written before a field existed has its default.
    if model.cfg != model_cfg:
        raise ValueError(f"{path} has architecture {model.cfg}, not {model_cfg}")
    return model


def mined_negatives(
    model: WatermarkRemover,
    cfg: TrainConfig,
    photos: list[np.ndarray],
    report: bool = True,
    photo_weights: np.ndarray | None = None,
) -> np.ndarray:
    """Hard negatives for ``cfg`` from ``model``'s starting weights (training/negatives.py);
    drawn from their own stream of the run's seed, so a resumed run mines the very same crops
    (and every process of a torchrun the same ones; only one ``report``s them)."""
    if cfg.hard_negative_keep == 0:
        return np.zeros((0, cfg.crop_size, cfg.crop_size, 3), dtype=np.uint8)
    model.eval()

    def probability(batch: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            return torch.sigmoid(predict(model, batch).mask_logits.float())

    tic = time.perf_counter()
    negatives = training.negatives.mine_hard_negatives(
        probability,
        photos,
        np.random.default_rng([cfg.seed, MINING_STREAM]),
        cfg.hard_negative_pool,
        cfg.hard_negative_keep,
        cfg.crop_size,
        cfg.min_scale,
        cfg.hard_negative_threshold,
        photo_weights,
    )
    if report:
        print(
            f"hard negatives: {len(negatives)} of {cfg.hard_negative_pool} clean crops fired on "
            f"({time.perf_counter() - tic:.0f} s)"
        )
    return negatives


def _open_live(log_dir: Path | None, resume: bool) -> Any:
    if log_dir is None:
        return None
    from dvclive import Live

    return Live(str(log_dir), resume=resume, dvcyaml=None, save_dvc_exp=False, report=None)


def load_params(path: Path) -> tuple[TrainConfig, ModelConfig]:
    params = yaml.safe_load(path.read_text())
    return TrainConfig(**params["train"]), ModelConfig(**params["model"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--photos", type=Path, required=True, help="prepare stage's output")
    parser.add_argument("--runs", type=Path, required=True, help="checkpoint folder")
    parser.add_argument("--log-dir", type=Path, default=None, help="dvclive folder")
    parser.add_argument("--init", type=Path, default=None, help="weights to start from")
    parser.add_argument(
        "--negatives-from", type=Path, default=None,
        help="weights whose firing picks the hard negatives (default: --init's)",
    )  # fmt: skip
    parser.add_argument(
        "--threads", type=int, default=None,
        help="default: the machine's cores shared among its torchrun processes",
    )  # fmt: skip
    parser.add_argument("--workers", type=int, default=0, help="batch-making processes")
    parser.add_argument(
        "--serving-config", type=Path, default=None,
        help="handler/model-config.yaml: validation runs the pipeline with its settings",
    )  # fmt: skip
    args = parser.parse_args()
    process = from_environment()
    torch.set_num_threads(args.threads or max(1, (os.cpu_count() or 1) // process.local_world_size))
    cfg, model_cfg = load_params(args.params)
    inputs = load_training_inputs(args.photos)
    with process_group(process):
        summary = train(
            cfg,
            model_cfg,
            inputs.train_photos,
            inputs.val_photos,
            inputs.train_assets,
            inputs.val_assets,
            args.runs,
            args.log_dir,
            args.init,
            args.workers,
            None if args.serving_config is None else PipelineConfig.from_settings(
                serving_settings(args.serving_config)
            ),
            process,
            inputs.train_sources,
            args.negatives_from,
        )  # fmt: skip
    if process.is_main:
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
