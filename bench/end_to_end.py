"""Through the gateway and TorchServe: a stack on the benchmark's own ports, latency at
concurrency 1, throughput at a fixed concurrency, and a worker's peak memory."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.client import post_concurrently, post_image, post_sequentially
from bench.images import BenchImage
from bench.memory import GIB, worker_peaks
from bench.plan import GATEWAY_HOST, TORCHSERVE_PORTS
from bench.stats import latency_summary, rounded, throughput_summary
from serving.__main__ import gateway_ready
from serving.stack import (
    MEASUREMENT_NOTE,
    GatewayError,
    start_stack,
    stop_stack,
    wait_until_ready,
)


@contextmanager
def bench_stack(model_store: Path, out: Path, label: str) -> Iterator[int]:
    """``python -m serving`` with ``model_store`` at GATEWAY_HOST, its log in
    <out>/serving-<label>.log and its run folder <out>/run/<label>; yields its pid."""
    if gateway_ready(GATEWAY_HOST):
        raise GatewayError(f"something already serves {GATEWAY_HOST}: stop it first")
    log = out / f"serving-{label}.log"
    options = ["--model-store", str(model_store), "--run-dir", str(out / "run" / label)]
    print(f"starting the stack ({label}, {MEASUREMENT_NOTE}; log: {log}) ...", flush=True)
    stack = start_stack(GATEWAY_HOST, log, TORCHSERVE_PORTS, options)
    try:
        wait_until_ready(GATEWAY_HOST, stack, log)
        yield stack.pid
    finally:
        stop_stack(stack)


def warm_up(image: BenchImage) -> dict[str, Any]:
    """One untimed request: the first of a size pays for caches and allocations."""
    response = post_image(GATEWAY_HOST, image.body)
    return {"warm_up_s": rounded(response.seconds), "warm_up_status": response.status}


def latency(image: BenchImage, repeats: int) -> dict[str, Any]:
    """One warm-up request, then ``repeats`` one at a time."""
    return {
        **warm_up(image),
        **latency_summary(post_sequentially(GATEWAY_HOST, image.body, repeats)),
    }


def throughput(image: BenchImage, requests: int, concurrency: int) -> dict[str, Any]:
    responses, wall_s = post_concurrently(GATEWAY_HOST, image.body, requests, concurrency)
    return {"concurrency": concurrency, **throughput_summary(responses, wall_s, image.megapixels)}


def largest_input(image: BenchImage, stack_pid: int) -> dict[str, Any]:
    """The largest input once, with the workers' peak memory before and after it."""
    before = worker_peaks(stack_pid)
    response = post_image(GATEWAY_HOST, image.body)
    after = worker_peaks(stack_pid)
    return {
        "status": response.status,
        "latency_s": rounded(response.seconds),
        "workers": len(after),
        "worker_peak_gib_before": rounded(max(before.values(), default=0) / GIB),
        "worker_peak_gib": rounded(max(after.values()) / GIB) if after else None,
    }
