"""Which device a worker puts the model on: the GPU TorchServe assigned it, else the CPU."""

from __future__ import annotations

import pytest
import torch

from handler.clearmark_handler import ClearmarkHandler, worker_device
from tests.handler.test_handler import make_context, write_checkpoint


@pytest.mark.parametrize("gpu_id", [0, 3, "1"])
def test_the_gpu_torchserve_assigned(gpu_id):
    assert worker_device(gpu_id, cuda_available=True) == torch.device(f"cuda:{int(gpu_id)}")


@pytest.mark.parametrize(("gpu_id", "cuda_available"), [(None, True), (0, False), (None, False)])
def test_the_cpu_without_an_assigned_gpu_or_without_cuda(gpu_id, cuda_available):
    assert worker_device(gpu_id, cuda_available) == torch.device("cpu")


def test_a_worker_given_gpu_id_on_a_machine_without_cuda_runs_on_the_cpu(tmp_path, monkeypatch):
    # TorchServe sets gpu_id whenever it counts GPUs; a CPU-only torch must still serve.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    context = make_context(write_checkpoint(tmp_path), 1)
    context.system_properties["gpu_id"] = 0
    handler = ClearmarkHandler()
    handler.initialize(context)

    assert handler.device == torch.device("cpu")
    assert next(handler.engine.model.parameters()).device == torch.device("cpu")
