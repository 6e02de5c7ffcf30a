"""training.train under torchrun: two CPU processes (gloo) train one model on their own
batches, on tiny data the test makes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image

from tests.images import photo
from training.distributed import ALONE, Process, batch_seed, from_environment
from training.fonts import matplotlib_fonts
from training.model import ModelConfig, WatermarkRemover
from training.synth import MarkAssets
from training.train import TrainingBatches, load_params

REPO = Path(__file__).resolve().parents[2]
TORCHRUN = Path(sys.executable).with_name("torchrun")
WORKER = Path(__file__).with_name("ddp_worker.py")
TINY = {"batch_size": 2, "crop_size": 32, "eval_every": 2, "checkpoint_every": 1,
        "val_count": 2, "val_crop_size": 32, "warmup_steps": 1}  # fmt: skip


def test_processes_come_from_torchruns_variables():
    assert from_environment({}) == ALONE and ALONE.is_main and ALONE.world_size == 1
    env = {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}
    process = from_environment(env)
    assert process == Process(rank=3, world_size=4, local_rank=1, local_world_size=2)
    assert not process.is_main


def test_each_process_draws_its_own_batches_and_the_first_a_lone_runs():
    assert batch_seed(7, 5, rank=0) == [7, 5], "a single-process run's stream, unchanged"
    cfg, _ = load_params(REPO / "params.yaml")
    cfg = replace(cfg, steps=2, **TINY)
    photos, assets = [photo(80, 96)], MarkAssets(tuple(matplotlib_fonts()))
    first, second = (TrainingBatches(cfg, photos, assets, rank=r)[1] for r in (0, 1))
    assert not torch.equal(first["watermarked"], second["watermarked"])
    assert torch.equal(first["watermarked"], TrainingBatches(cfg, photos, assets)[1]["watermarked"])


def make_data(root: Path, steps: int) -> list[str]:
    """A photos folder as the prepare stage writes it, and params.yaml for a tiny run."""
    for split, name in (("train", "skimage-coffee"), ("val", "skimage-chelsea")):
        (root / "photos" / split).mkdir(parents=True)
        Image.fromarray(photo(80, 96, name)).save(root / "photos" / split / f"{name}.png")
    fonts = [str(f) for f in matplotlib_fonts()]
    marks = {split: {"fonts": fonts, "logos": []} for split in ("train", "val")}
    (root / "photos" / "marks.json").write_text(json.dumps(marks))
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["train"].update(TINY, steps=steps)
    params["model"] = {"widths": [4, 8, 8], "max_alpha": 0.9}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return ["--params", str(root / "params.yaml"), "--photos", str(root / "photos"),
            "--runs", str(root / "runs"), "--log-dir", str(root / "live"),
            "--threads", "1"]  # fmt: skip


def torchrun(out: Path, arguments: list[str]) -> str:
    """Two processes of training.train through tests/training/ddp_worker.py; their stdout."""
    out.mkdir()
    command = [str(TORCHRUN), "--standalone", "--nproc_per_node=2", str(WORKER), str(out),
               *arguments]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"the processes disagree on {different}"


@pytest.mark.skipif(not TORCHRUN.is_file(), reason="torchrun is installed with torch")
def test_two_processes_end_with_the_same_weights_and_resume(tmp_path):
    arguments = make_data(tmp_path, steps=2)
    cfg, _ = load_params(tmp_path / "params.yaml")
    torch.manual_seed(cfg.seed)  # as train() seeds the initial weights
    initial = WatermarkRemover(ModelConfig(widths=(4, 8, 8))).state_dict()

    stdout = torchrun(tmp_path / "first", arguments)
    ranks = [torch.load(tmp_path / "first" / f"rank-{r}.pt") for r in (0, 1)]
    assert_same(ranks[0]["model"], ranks[1]["model"])
    assert_same(ranks[0]["ema"], ranks[1]["ema"])
    moved = [k for k in initial if not torch.equal(initial[k], ranks[0]["model"][k])]
    assert len(moved) > len(initial) / 2, "two steps changed the weights"
    # Only the main process writes: last.pt after each of the 2 steps, best.pt after the 2nd.
    assert ranks[1]["checkpoints"] == 0 and ranks[0]["checkpoints"] == 3
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["best.pt", "last.pt"]
    last = torch.load(tmp_path / "runs" / "last.pt", weights_only=False)
    assert last["step"] == 2
    assert_same(last["model"], ranks[0]["model"])
    assert json.loads((tmp_path / "live" / "metrics.json").read_text())["step"] == 2
    assert stdout.count("step 0: val served PSNR") == 1, "one process reports"

    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    params["train"]["steps"] = 3
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    stdout = torchrun(tmp_path / "resumed", arguments)
    assert stdout.count("resuming from step 2") == 1
    resumed = [torch.load(tmp_path / "resumed" / f"rank-{r}.pt") for r in (0, 1)]
    assert_same(resumed[0]["model"], resumed[1]["model"])
    assert_same(resumed[0]["ema"], resumed[1]["ema"])
    assert torch.load(tmp_path / "runs" / "last.pt", weights_only=False)["step"] == 3
