"""Data-parallel training under torchrun: which process this is, and what its copies share.

torchrun starts one process per device and tells each its place through RANK, WORLD_SIZE and
LOCAL_RANK; without them this is the only process and every function here is a no-op.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


@dataclass(frozen=True)
class Process:
    rank: int = 0  # 0 is the main process: the only one that validates and writes files
    world_size: int = 1
    local_rank: int = 0  # rank among the processes of this machine: its GPU
    local_world_size: int = 1  # processes on this machine: they share its cores

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def device(self) -> torch.device:
        """This process's GPU when there are any, else the CPU."""
        if not torch.cuda.is_available():
            return torch.device("cpu")
        # A single process keeps the plain "cuda" it always used (the current device).
        return torch.device("cuda" if self.world_size == 1 else f"cuda:{self.local_rank}")


ALONE = Process()  # a run without torchrun


def from_environment(environ: Mapping[str, str] = os.environ) -> Process:
    """The place torchrun gave this process; a lone process without torchrun's variables."""
    if "WORLD_SIZE" not in environ:
        return ALONE
    return Process(
        rank=int(environ["RANK"]),
        world_size=int(environ["WORLD_SIZE"]),
        local_rank=int(environ.get("LOCAL_RANK", "0")),
        local_world_size=int(environ.get("LOCAL_WORLD_SIZE", "1")),
    )


def batch_seed(seed: int, step: int, rank: int) -> list[int]:
    """The random stream of batch ``step`` on process ``rank``: each process draws batches of
    its own, and the main process the very ones a single-process run draws, so one process
    under torchrun trains exactly as without it."""
    return [seed, step] if rank == 0 else [seed, step, rank]


@contextmanager
def process_group(process: Process) -> Iterator[None]:
    """Join the other processes (gloo on CPUs, nccl between GPUs) for the duration; wait for
    all of them before leaving, so that none exits while another still needs it."""
    if process.world_size == 1:
        yield
        return
    if process.device.type == "cuda":
        torch.cuda.set_device(process.device)
    dist.init_process_group("nccl" if process.device.type == "cuda" else "gloo")
    try:
        yield
        dist.barrier()
    finally:
        dist.destroy_process_group()


def data_parallel(model: nn.Module, process: Process) -> nn.Module:
    """``model`` (already on its device) with its gradients averaged over the processes.

    Buffers are not broadcast at each forward: ``share_buffers`` gives every process the main
    process's after each step instead, so that all copies also agree after the last one."""
    if process.world_size == 1:
        return model
    device_ids = [process.device] if process.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids, broadcast_buffers=False)


def share_buffers(model: nn.Module, process: Process) -> None:
    """Give every process the main process's buffers (BatchNorm's running statistics).

    Each process's forward updates them from its own batch; SyncBatchNorm would pool them
    but runs on GPUs only, so, as DDP itself does, the main process's statistics count."""
    if process.world_size == 1:
        return
    for buffer in model.buffers():
        dist.broadcast(buffer, src=0)


def from_main(value: Any, process: Process) -> Any:
    """The main process's ``value`` in every process (a picklable object, e.g. a checkpoint
    only the main process can read)."""
    if process.world_size == 1:
        return value
    shared = [value if process.is_main else None]
    dist.broadcast_object_list(shared, src=0)
    return shared[0]
