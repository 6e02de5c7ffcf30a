"""The document's derived numbers: the serving ratio, the targets' inputs, the compute dtype."""

from __future__ import annotations

from bench.suite import compute_dtype, e2e_over_model_only, ratio, target_measurements

IN_PROCESS = {
    "images": {"1mp": {"megapixels_per_s": 2.4}},
    "saturated": {"megapixels_per_s": 1.6},
    "achieved_over_peak": 0.35,
}
END_TO_END = {
    "throughput": {
        "concurrency_4": {"megapixels_per_s": 1.5}, "concurrency_16": {"megapixels_per_s": 1.36},
    },
    "latency": {
        "1mp": {"p50_s": 0.52}, "4mp": {"p50_s": 0.9}, "12mp": {"p50_s": 1.9},
        "12mp-grid": {"p50_s": None},
    },
    "largest_input": {"worker_peak_gib": 1.5},
}  # fmt: skip


def test_ratio_is_none_without_both_numbers():
    assert ratio(1.36, 1.6) == 0.85
    assert ratio(None, 1.6) is None and ratio(1.0, 0) is None and ratio(1.0, None) is None


def test_serving_ratio_is_taken_at_saturation_against_both_model_only_batches():
    assert e2e_over_model_only(IN_PROCESS, END_TO_END) == {
        "image": "1mp",
        "concurrency": 16,
        "e2e_megapixels_per_s": 1.36,
        "model_only_megapixels_per_s": 1.6,
        "ratio": 0.85,
        "model_only_batch_1_megapixels_per_s": 2.4,
        "ratio_vs_batch_1": 0.567,
    }


def test_target_measurements_pick_each_targets_value():
    serving = e2e_over_model_only(IN_PROCESS, END_TO_END)
    assert target_measurements(IN_PROCESS, END_TO_END, serving) == {
        "e2e_p50_1mp_s": 0.52,
        "e2e_p50_12mp_s": 1.9,
        "e2e_p50_12mp_grid_s": None,
        "e2e_over_model_only": 0.85,
        "achieved_over_peak": 0.35,
        "worker_peak_gib": 1.5,
    }


def test_compute_dtype_is_the_one_most_calls_ran_in():
    runs = [{"compute_dtype_calls": {"bfloat16": 40, "float32": 6}},
            {"compute_dtype_calls": {"float32": 30}}]  # fmt: skip
    assert compute_dtype(runs) == "bfloat16"
    assert compute_dtype([{"compute_dtype_calls": {}}]) == "float32"
