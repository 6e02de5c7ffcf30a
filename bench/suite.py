"""The whole benchmark in one run on one set of images: model-only in process first (nothing
else running), then end to end on the served archive, then the batchSize variants."""

from __future__ import annotations

import dataclasses
import gc
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
import yaml

from bench.end_to_end import bench_stack, largest_input, latency, throughput, warm_up
from bench.images import BenchImage, bench_image
from bench.model_only import forward_speed, load_handler, measure, model_gflop_per_megapixel
from bench.peak import CpuInfo, matmul_gflops, parse_cpuinfo, theoretical_gflops
from bench.plan import (
    BATCH_SIZES,
    FORWARD_REPEATS,
    FORWARD_SHAPES,
    IMAGES,
    LARGEST,
    LATENCY_REPEATS,
    MODEL_ONLY_REPEATS,
    SATURATED_REPEATS,
    SATURATION,
    SEED,
    THROUGHPUT_IMAGE,
    THROUGHPUT_REQUESTS,
)
from bench.stats import rounded
from bench.targets import check_targets
from bench.variants import variant_store
from handler.archive import MODEL_CONFIG
from handler.engine import Engine

PEAK_DTYPES = ("float32", "bfloat16")


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 3)


def compute_dtype(measurements: list[dict[str, Any]]) -> str:
    """The dtype most of the handler's convolutions and matmuls ran in, over all runs."""
    calls: dict[str, int] = {}
    for m in measurements:
        for dtype, count in m["compute_dtype_calls"].items():
            calls[dtype] = calls.get(dtype, 0) + count
    return max(calls, key=calls.__getitem__) if calls else "float32"


def machine_peak(cpu: CpuInfo, dtype: str, threads: int) -> dict[str, dict[str, float]]:
    """GFLOP/s of a large matmul in float32, bfloat16 and the handler's ``dtype`` with the
    current torch threads, and the theoretical peaks of as many cores."""
    dtypes = dict.fromkeys((*PEAK_DTYPES, dtype))
    return {
        "measured_matmul_gflops": {d: round(matmul_gflops(getattr(torch, d)), 1) for d in dtypes},
        "theoretical_gflops": {
            d: round(theoretical_gflops(cpu, d, threads), 1) for d in PEAK_DTYPES
        },
    }


def model_only(
    checkpoint: Path,
    config: dict[str, Any],
    images: dict[str, BenchImage],
    cpu: CpuInfo,
    out: Path,
    restorer: Path | None = None,
) -> dict[str, Any]:
    """In process: each image alone, the throughput image at the served batchSize, the
    network's full-image cost, and the machine's peak at the handler's thread count."""
    batch_size = int(config["batchSize"])
    handler = load_handler(checkpoint, config, out / "model", batch_size, restorer)
    threads = torch.get_num_threads()  # as the handler set them
    print(f"model only, in process ({threads} threads) ...", flush=True)
    per_image = {
        name: measure(handler, image.body, image.megapixels, 1, MODEL_ONLY_REPEATS[name])
        for name, image in images.items()
    }
    tp_image = images[THROUGHPUT_IMAGE]
    saturated = measure(handler, tp_image.body, tp_image.megapixels, batch_size, SATURATED_REPEATS)
    forwards = forward_speed(handler, FORWARD_SHAPES, FORWARD_REPEATS)
    # The same forwards without bfloat16 autocast and channels-last: what the precision buys.
    # Last, because the float32 engine takes the handler's model over.
    engine = handler.engine
    handler.engine = Engine(
        engine.model,
        engine.device,
        dataclasses.replace(engine.cfg, precision="float32", channels_last=False),
        engine.regions,
        engine.pipeline,
    )
    forwards_float32 = forward_speed(handler, FORWARD_SHAPES, FORWARD_REPEATS)
    del handler, engine
    gc.collect()
    dtype = compute_dtype([*per_image.values(), saturated])
    peak = machine_peak(cpu, dtype, threads)
    measured = peak["measured_matmul_gflops"]
    achieved = sum(m["executed_gflop"] for m in per_image.values()) / sum(
        m["inference_s"] for m in per_image.values()
    )
    for m in [*per_image.values(), saturated]:
        m["of_peak"] = ratio(m["achieved_gflops"], measured[dtype])
    return {
        "threads": threads,
        "compute_dtype": dtype,
        "gflop_per_megapixel_full_image": model_gflop_per_megapixel(checkpoint),
        "images": per_image,
        "saturated": {"image": THROUGHPUT_IMAGE, **saturated},
        "forward_sizes": forwards,
        "forward_sizes_float32": forwards_float32,
        "achieved_gflops_all_images": round(achieved, 2),
        "achieved_over_peak": ratio(achieved, measured[dtype]),
        "peak": peak,
    }


def served(
    model_store: Path,
    images: dict[str, BenchImage],
    largest: BenchImage,
    in_process: dict[str, Any],
    out: Path,
) -> dict[str, Any]:
    """The served archive: latency per image, throughput, then the largest input."""
    with bench_stack(model_store, out, "served") as stack_pid:
        print("end to end: latency at concurrency 1 ...", flush=True)
        latencies = {name: latency(image, LATENCY_REPEATS[name]) for name, image in images.items()}
        print("end to end: throughput ...", flush=True)
        tp_image = images[THROUGHPUT_IMAGE]
        throughputs = {
            f"concurrency_{c}": throughput(tp_image, n, c) for c, n in THROUGHPUT_REQUESTS.items()
        }
        print(f"end to end: {largest.name} ...", flush=True)
        largest_result = largest_input(largest, stack_pid)
    # Where the time goes: the handler's own decode + inference + encode, and the rest (HTTP,
    # gateway checks, TorchServe's queue and batching delay, copies between processes).
    for name, entry in latencies.items():
        m = in_process["images"][name]
        handler_s = m["decode_s"] + m["inference_s"] + m["encode_s"]
        entry["model_only_handler_s"] = round(handler_s, 3)
        entry["outside_handler_s"] = rounded(
            None if entry["p50_s"] is None else entry["p50_s"] - handler_s
        )
    return {
        "latency": latencies,
        "throughput": {"image": THROUGHPUT_IMAGE, **throughputs},
        "largest_input": {"image": largest.name, **largest_result},
    }


def batching(
    checkpoint: Path, image: BenchImage, out: Path, restorer: Path | None = None
) -> dict[str, Any]:
    """Throughput at SATURATION with each of BATCH_SIZES (one warm-up request each)."""
    results = {}
    with tempfile.TemporaryDirectory(prefix="clearmark-bench-") as tmp:
        for batch_size in BATCH_SIZES:
            store = variant_store(checkpoint, batch_size, Path(tmp), restorer)
            with bench_stack(store, out, f"batch-{batch_size}"):
                warm = warm_up(image)
                requests = THROUGHPUT_REQUESTS[SATURATION]
                results[f"batch_{batch_size}"] = {**warm, **throughput(image, requests, SATURATION)}
    first, last = (
        results[f"batch_{b}"]["requests_per_s"] for b in (BATCH_SIZES[0], BATCH_SIZES[-1])
    )
    return {
        "image": image.name,
        "concurrency": SATURATION,
        **results,
        "speedup": ratio(first, last),
    }


def e2e_over_model_only(in_process: dict[str, Any], end_to_end: dict[str, Any]) -> dict[str, Any]:
    """End-to-end MP/s at SATURATION over the handler's in process with THROUGHPUT_IMAGE: at
    the served batchSize (the work a saturated worker does: the ratio is what serving costs),
    and at batch 1 (also what the batchSize costs, when batching is slower per image)."""
    e2e = end_to_end["throughput"][f"concurrency_{SATURATION}"]["megapixels_per_s"]
    served_batch = in_process["saturated"]["megapixels_per_s"]
    batch_1 = in_process["images"][THROUGHPUT_IMAGE]["megapixels_per_s"]
    return {
        "image": THROUGHPUT_IMAGE,
        "concurrency": SATURATION,
        "e2e_megapixels_per_s": e2e,
        "model_only_megapixels_per_s": served_batch,
        "ratio": ratio(e2e, served_batch),
        "model_only_batch_1_megapixels_per_s": batch_1,
        "ratio_vs_batch_1": ratio(e2e, batch_1),
    }


def target_measurements(
    in_process: dict[str, Any], end_to_end: dict[str, Any], serving: dict[str, Any]
) -> dict[str, float | None]:
    """The measured value of each of bench.targets.TARGETS, by name."""
    p50 = {name: entry["p50_s"] for name, entry in end_to_end["latency"].items()}
    return {
        "e2e_p50_1mp_s": p50["1mp"],
        "e2e_p50_12mp_s": p50["12mp"],
        "e2e_p50_12mp_grid_s": p50["12mp-grid"],
        "e2e_over_model_only": serving["ratio"],
        "achieved_over_peak": in_process["achieved_over_peak"],
        "worker_peak_gib": end_to_end["largest_input"]["worker_peak_gib"],
    }


def run_bench(
    checkpoint: Path, model_store: Path, out: Path, restorer: Path | None = None
) -> dict[str, Any]:
    started = time.monotonic()
    config = yaml.safe_load(MODEL_CONFIG.read_text())
    cpu = parse_cpuinfo(Path("/proc/cpuinfo").read_text())
    print("building the images ...", flush=True)
    images = {name: bench_image(name, *size, style, SEED) for name, size, style in IMAGES}
    largest_name, largest_size, largest_style = LARGEST
    largest = bench_image(largest_name, *largest_size, largest_style, SEED)

    in_process = model_only(checkpoint, config, images, cpu, out, restorer)
    end_to_end = served(model_store, images, largest, in_process, out)
    speedup = batching(checkpoint, images[THROUGHPUT_IMAGE], out, restorer)

    serving = e2e_over_model_only(in_process, end_to_end)
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpu": cpu.model,
            "cores": cpu.cores,
            "logical_cpus": cpu.logical_cpus,
            "mhz": cpu.mhz,
            "device": "cpu",
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "model_config": config,
        "images": [image.describe() for image in [*images.values(), largest]],
        "model_only": in_process,
        "end_to_end": end_to_end,
        "e2e_over_model_only": serving,
        "batching": speedup,
        "targets": check_targets(target_measurements(in_process, end_to_end, serving)),
        "seconds": round(time.monotonic() - started, 1),
    }
