"""The markdown rendering of a small benchmark document."""

from __future__ import annotations

from bench.report import cell, markdown_table, render


def run(concurrency: int, rps: float, failures: dict[str, int]) -> dict[str, object]:
    return {
        "concurrency": concurrency, "requests": 16, "failures": sum(failures.values()),
        "failure_statuses": failures, "requests_per_s": rps, "megapixels_per_s": rps,
        "p50_s": 1.5, "p95_s": 2.25,
    }  # fmt: skip


DOCUMENT = {
    "measured_at": "2025-01-02T03:04:05+00:00",
    "seconds": 512.4,
    "machine": {"cpu": "Example CPU", "cores": 2, "torch": "2.15.0"},
    "model_config": {"batchSize": 4},
    "images": [
        {"name": "1mp", "width": 1225, "height": 817, "mark": "corner"},
        {"name": "16mp-grid", "width": 4096, "height": 4096, "mark": "grid"},
    ],
    "model_only": {
        "threads": 2,
        "compute_dtype": "bfloat16",
        "gflop_per_megapixel_full_image": 52.32,
        "images": {
            "1mp": {
                "decode_s": 0.009,
                "inference_s": 2.402,
                "encode_s": 0.011,
                "megapixels_per_s": 0.4166,
                "executed_gflop": 62.03,
                "achieved_gflops": 25.82,
            }
        },
        "achieved_gflops_all_images": 30.1,
        "forward_sizes": [
            {"batch": 8, "height": 320, "width": 320, "seconds": 0.21, "megapixels_per_s": 3.85},
            {"batch": 1, "height": 1024, "width": 1024, "seconds": 0.3, "megapixels_per_s": 3.5},
        ],
        "forward_sizes_float32": [
            {"batch": 8, "height": 320, "width": 320, "seconds": 0.6, "megapixels_per_s": 1.37},
            {"batch": 1, "height": 1024, "width": 1024, "seconds": 1.0, "megapixels_per_s": 1.05},
        ],
        "peak": {
            "measured_matmul_gflops": {"float32": 82.8, "bfloat16": 195.3},
            "theoretical_gflops": {"float32": 332.3, "bfloat16": 664.6},
        },
    },
    "end_to_end": {
        "latency": {
            "1mp": {
                "p50_s": 2.61,
                "p95_s": 2.9,
                "outside_handler_s": 0.188,
                "failures": 0,
                "failure_statuses": {},
            }
        },
        "throughput": {"image": "1mp", "concurrency_4": run(4, 0.45, {})},
        "largest_input": {
            "image": "16mp-grid",
            "status": 200,
            "latency_s": 41.2,
            "worker_peak_gib": 2.5,
        },
    },
    "e2e_over_model_only": {"concurrency": 16, "ratio": 0.91, "ratio_vs_batch_1": 0.6},
    "batching": {
        "concurrency": 16,
        "batch_8": run(16, 0.5, {"503": 2}),
        "batch_1": run(16, 0.4, {}),
        "speedup": 1.25,
    },
    "targets": [
        {
            "name": "a",
            "target": "<= 0.6 s",
            "measured": 2.61,
            "met": False,
            "measured_on": "1 MP p50",
        },
        {"name": "b", "target": "< 3 GiB", "measured": 2.5, "met": True, "measured_on": "memory"},
    ],
}


def test_cells():
    assert [cell(None), cell(True), cell(False), cell(3)] == ["-", "yes", "**no**", "3"]
    assert [cell(0.41664), cell(25.82), cell(1234.5), cell(0.0)] == ["0.417", "25.8", "1234", "0"]


def test_markdown_table():
    assert markdown_table(("a", "b"), [(1, None), (0.5, True)]) == (
        "| a | b |\n|---|---|\n| 1 | - |\n| 0.5 | yes |"
    )


def test_render_has_every_table_row_and_the_headline_numbers():
    text = render(DOCUMENT)
    lines = text.splitlines()
    assert "| 1 MP p50 | <= 0.6 s | 2.61 | **no** |" in lines
    assert "| memory | < 3 GiB | 2.5 | yes |" in lines
    assert (
        "| 1mp (corner) | 1225x817 | 0.009 | 2.4 | 0.011 | 0.417 | 62 | 25.8 | 2.61 | 2.9 "
        "| 0.188 | 0 |"
    ) in lines
    assert "| batchSize 4 (served) | 4 | 16 | 0 | 0.45 | 0.45 | 1.5 | 2.25 |" in lines
    assert "| batchSize 8 | 16 | 16 | 2 (2x 503) | 0.5 | 0.5 | 1.5 | 2.25 |" in lines
    assert "| batchSize 1 | 16 | 16 | 0 | 0.4 | 0.4 | 1.5 | 2.25 |" in lines
    assert "| forward | MP/s, bfloat16 channels-last | MP/s, float32 |" in lines
    assert "| 8 x 320x320 | 3.85 | 1.37 |" in lines and "| 1 x 1024x1024 | 3.5 | 1.05 |" in lines
    assert "16mp-grid" not in "\n".join(line for line in lines if line.startswith("|"))
    assert "Example CPU (2 cores, 2 torch threads, torch 2.15.0) in 512 s" in text
    assert "52.3 GFLOP a megapixel" in text and "computes in bfloat16" in text
    assert "at concurrency 16 / model-only: 0.91 (model-only at the served batchSize), 0.6 " in text
    assert "Batching speed-up at concurrency 16: 1.25x." in text
    assert "measured (matmul): float32 82.8, bfloat16 195" in text
    assert "Largest input (16mp-grid): status 200 in 41.2 s; worker peak memory 2.5 GiB" in text
    assert text.endswith("GiB.\n")
