"""The performance targets on a 2-core CPU machine (issue: "make bench"), and checking them."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass

COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    "<": operator.lt,
    ">=": operator.ge,
}


@dataclass(frozen=True)
class Target:
    name: str  # a key of the measurements passed to check_targets
    comparison: str  # one of COMPARISONS: measured <comparison> limit meets it
    limit: float
    unit: str
    measured_on: str  # what the measured value is, in words

    def met(self, measured: float | None) -> bool:
        """Whether ``measured`` meets the target; nothing measured (None) never does."""
        return measured is not None and COMPARISONS[self.comparison](measured, self.limit)


TARGETS = (
    Target("e2e_p50_1mp_s", "<=", 0.6, "s",
           "end to end p50, 1 MP JPEG with a corner mark, concurrency 1"),
    Target("e2e_p50_12mp_s", "<=", 3.0, "s",
           "end to end p50, 12 MP JPEG with a corner mark, concurrency 1"),
    Target("e2e_p50_12mp_grid_s", "<=", 15.0, "s",
           "end to end p50, 12 MP JPEG covered by a grid, concurrency 1"),
    Target("e2e_over_model_only", ">=", 0.85, "",
           "1 MP: end-to-end MP/s at concurrency 16 / model-only MP/s at the served batchSize"),
    Target("achieved_over_peak", ">=", 0.5, "",
           "model-only executed GFLOP / inference s, all images, / matmul peak in its dtype"),
    Target("worker_peak_gib", "<", 3.0, "GiB",
           "largest VmHWM of a TorchServe worker after the 4096x4096 grid-marked input"),
)  # fmt: skip


def check_targets(measured: dict[str, float | None]) -> list[dict[str, object]]:
    """Each target with its measured value (None: not measured) and whether it is met."""
    checked: list[dict[str, object]] = []
    for t in TARGETS:
        value = measured.get(t.name)
        checked.append({
            "name": t.name,
            "target": f"{t.comparison} {t.limit:g} {t.unit}".rstrip(),
            "measured": value,
            "met": t.met(value),
            "measured_on": t.measured_on,
        })  # fmt: skip
    return checked
