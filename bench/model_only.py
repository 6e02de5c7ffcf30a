"""The handler's own work, in process (no HTTP, no TorchServe): its public hooks timed one by one.

The handler is initialised as TorchServe would (model-config.yaml as the context's yaml config,
hence the same torch threads, precision and region settings). Per image: one untimed run
counts the FLOPs the handler actually executes (region-aware inference skips unmarked tiles) and
the dtype its convolutions compute in; then ``repeats`` timed runs of preprocess (decode),
inference (the network, the only part in megapixels per second) and postprocess (encode).
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode
from ts.context import Context, RequestProcessor

from bench.stats import rounded, significant
from handler.clearmark_handler import CHECKPOINT_FILE, RESTORER_FILE, ClearmarkHandler
from training.checkpoint import load_detector
from training.evaluate import model_cost

# Side of the blank square the network's full-image cost is counted on: a fully convolutional
# network's FLOPs grow with the pixels, so any side a multiple of its stride gives the same
# GFLOP per megapixel.
COST_SIDE = 512
# Ops that do the network's arithmetic; which of the two levels a dispatch mode sees depends on
# the modes around it, so both the composite and the decomposed names are listed.
COMPUTE_OPS = frozenset({"conv2d", "convolution", "_convolution", "linear", "mm", "addmm", "bmm"})


class ComputeDtypes(TorchDispatchMode):
    """Counts the convolutions and matrix products that run, by the dtype of their input (under
    autocast: the dtype autocast cast them to)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[str] = Counter()

    def __torch_dispatch__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None
    ) -> Any:
        if func.overloadpacket.__name__ in COMPUTE_OPS and isinstance(args[0], torch.Tensor):
            self.calls[str(args[0].dtype).removeprefix("torch.")] += 1
        return func(*args, **(kwargs or {}))


def load_handler(
    checkpoint: Path,
    model_config: dict[str, Any],
    model_dir: Path,
    batch: int,
    restorer: Path | None = None,
) -> ClearmarkHandler:
    """A handler initialised from ``checkpoint`` and the learned ``restorer`` when given (linked
    into ``model_dir`` under the archive's file names) with TorchServe's context for up to
    ``batch`` requests."""
    model_dir.mkdir(parents=True, exist_ok=True)
    for name, weights in ((CHECKPOINT_FILE, checkpoint), (RESTORER_FILE, restorer)):
        (model_dir / name).unlink(missing_ok=True)
        if weights is not None:
            (model_dir / name).symlink_to(weights.resolve())
    context = Context(
        "clearmark", str(model_dir), {}, batch, None, "0.12.0", model_yaml_config=model_config
    )
    # postprocess sets each response's content type through its request's processor.
    context.request_processor = [RequestProcessor({}) for _ in range(batch)]
    handler = ClearmarkHandler()
    handler.initialize(context)
    return handler


def measure(
    handler: ClearmarkHandler, body: bytes, megapixels: float, batch: int, repeats: int
) -> dict[str, Any]:
    """Seconds (medians) of decode, inference and encode of a batch of ``batch`` copies of the
    image ``body``, its megapixels per second of inference, and the FLOPs executed."""
    requests = [{"body": body} for _ in range(batch)]
    with ComputeDtypes() as dtypes, FlopCounterMode(display=False) as flops:
        handler.inference(handler.preprocess(requests))
    decode_s, inference_s, encode_s = [], [], []
    for _ in range(repeats):
        start = time.perf_counter()
        decoded = handler.preprocess(requests)
        decoded_at = time.perf_counter()
        cleaned = handler.inference(decoded)
        inferred_at = time.perf_counter()
        handler.postprocess(cleaned)
        decode_s.append(decoded_at - start)
        inference_s.append(inferred_at - decoded_at)
        encode_s.append(time.perf_counter() - inferred_at)
    seconds = statistics.median(inference_s)
    gflop = flops.get_total_flops() / 1e9
    return {
        "batch": batch,
        "repeats": repeats,
        "decode_s": rounded(statistics.median(decode_s)),
        "inference_s": rounded(seconds),
        "encode_s": rounded(statistics.median(encode_s)),
        "megapixels_per_s": round(batch * megapixels / seconds, 4),
        "executed_gflop": significant(gflop),
        "executed_gflop_per_megapixel": significant(gflop / (batch * megapixels)),
        "achieved_gflops": significant(gflop / seconds),
        "compute_dtype_calls": dict(dtypes.calls.most_common()),
    }


def model_gflop_per_megapixel(checkpoint: Path) -> float:
    """The network's GFLOP per megapixel when it sees every pixel (no region skipping)."""
    return significant(model_cost(load_detector(checkpoint), COST_SIDE)["gflop_per_megapixel"])


def forward_speed(
    handler: ClearmarkHandler, shapes: tuple[tuple[int, int, int], ...], repeats: int
) -> list[dict[str, Any]]:
    """Megapixels per second of the handler's network call (its precision and layout) on
    random batches of each (batch, height, width): how the pixels per forward should be sized.
    """
    results = []
    with torch.inference_mode():
        for batch, height, width in shapes:
            images = torch.rand(batch, 3, height, width)
            handler.engine.network(images)  # untimed: warms oneDNN's kernels for this shape
            seconds = []
            for _ in range(repeats):
                start = time.perf_counter()
                handler.engine.network(images)
                seconds.append(time.perf_counter() - start)
            median = statistics.median(seconds)
            results.append({
                "batch": batch,
                "height": height,
                "width": width,
                "seconds": significant(median),
                "megapixels_per_s": significant(batch * height * width / 1e6 / median),
            })  # fmt: skip
    return results
