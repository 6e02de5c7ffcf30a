"""The benchmark's JSON document as markdown (var/bench/bench.md, for the README)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def cell(value: object) -> str:
    """A table cell: None is a hyphen, True/False read yes/**no**, floats keep 3 significant
    digits (all the integer digits from 1000 up)."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if isinstance(value, float):
        return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.3g}"
    return str(value)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def failures(run: dict[str, Any]) -> str:
    """``0``, or the count and its statuses: ``3 (2x 503, 1x 0)``."""
    statuses = ", ".join(f"{n}x {status}" for status, n in run["failure_statuses"].items())
    return f"{run['failures']} ({statuses})" if statuses else "0"


def targets_table(targets: list[dict[str, Any]]) -> str:
    return markdown_table(
        ("target", "goal", "measured", "met"),
        [(t["measured_on"], t["target"], t["measured"], t["met"]) for t in targets],
    )


def images_table(document: dict[str, Any]) -> str:
    """Per image: the handler in process, then end to end at concurrency 1."""
    model, latency = document["model_only"]["images"], document["end_to_end"]["latency"]
    rows = []
    for image in document["images"]:
        name = image["name"]
        if name in model:
            m, e = model[name], latency[name]
            rows.append((
                f"{name} ({image['mark']})", f"{image['width']}x{image['height']}",
                m["decode_s"], m["inference_s"], m["encode_s"], m["megapixels_per_s"],
                m["executed_gflop"], m["achieved_gflops"],
                e["p50_s"], e["p95_s"], e["outside_handler_s"], failures(e),
            ))  # fmt: skip
    return markdown_table(
        ("image", "pixels", "decode s", "inference s", "encode s", "MP/s", "GFLOP run",
         "GFLOP/s", "e2e p50 s", "e2e p95 s", "e2e outside handler s", "e2e failures"),
        rows,
    )  # fmt: skip


def throughput_table(document: dict[str, Any]) -> str:
    """The served archive at each concurrency, then the batchSize variants."""
    served = document["model_config"]["batchSize"]
    runs = [
        (f"batchSize {served} (served)", run)
        for key, run in document["end_to_end"]["throughput"].items()
        if key.startswith("concurrency_")
    ]
    runs += [
        (f"batchSize {key.removeprefix('batch_')}", run)
        for key, run in document["batching"].items()
        if key.startswith("batch_")
    ]
    return markdown_table(
        ("archive", "concurrency", "requests", "failures", "req/s", "MP/s", "p50 s", "p95 s"),
        [(label, run["concurrency"], run["requests"], failures(run), run["requests_per_s"],
          run["megapixels_per_s"], run["p50_s"], run["p95_s"]) for label, run in runs],
    )  # fmt: skip


def forwards_table(model: dict[str, Any]) -> str:
    """Megapixels per second of one network call by batch and size, served precision and
    float32 side by side."""
    rows = []
    for fast, exact in zip(model["forward_sizes"], model["forward_sizes_float32"], strict=True):
        shape = f"{fast['batch']} x {fast['height']}x{fast['width']}"
        rows.append((shape, fast["megapixels_per_s"], exact["megapixels_per_s"]))
    return markdown_table(
        ("forward", f"MP/s, {model['compute_dtype']} channels-last", "MP/s, float32"), rows
    )


def render(document: dict[str, Any]) -> str:
    machine, model = document["machine"], document["model_only"]
    peak, largest = model["peak"], document["end_to_end"]["largest_input"]
    batching, ratio = document["batching"], document["e2e_over_model_only"]
    measured = ", ".join(f"{d} {cell(v)}" for d, v in peak["measured_matmul_gflops"].items())
    theoretical = ", ".join(f"{d} {cell(v)}" for d, v in peak["theoretical_gflops"].items())
    return "\n\n".join([
        f"Measured {document['measured_at']} on {machine['cpu']} ({machine['cores']} cores, "
        f"{model['threads']} torch threads, torch {machine['torch']}) in "
        f"{document['seconds']:.0f} s.",
        targets_table(document["targets"]),
        "Per image, batch 1: decode, inference and encode are the handler's hooks timed in "
        "process; e2e is through the gateway and TorchServe at concurrency 1, and what it "
        "spends outside the handler's hooks. The network costs "
        f"{cell(model['gflop_per_megapixel_full_image'])} GFLOP a megapixel when it sees every "
        f"pixel, and computes in {model['compute_dtype']}.",
        images_table(document),
        f"Throughput with the {document['end_to_end']['throughput']['image']} photo. End to end "
        f"at concurrency {ratio['concurrency']} / model-only: {cell(ratio['ratio'])} (model-only "
        f"at the served batchSize), {cell(ratio['ratio_vs_batch_1'])} (model-only at batch 1). "
        f"Batching speed-up at concurrency {batching['concurrency']}: "
        f"{cell(batching['speedup'])}x.",
        throughput_table(document),
        f"Peak GFLOP/s, measured (matmul): {measured}; theoretical: {theoretical}. Achieved "
        f"over all images: {cell(model['achieved_gflops_all_images'])} GFLOP/s.",
        "The network alone on random batches (how many pixels one forward should hold):",
        forwards_table(model),
        f"Largest input ({largest['image']}): status {largest['status']} in "
        f"{cell(largest['latency_s'])} s; worker peak memory {cell(largest['worker_peak_gib'])} "
        "GiB.",
    ]) + "\n"  # fmt: skip
