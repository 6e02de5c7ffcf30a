"""What ``make bench`` runs: its images, repeat counts, concurrencies and ports. The one place to
lengthen or shorten it (about 6 minutes as set here on an idle 2-core CPU machine)."""

from __future__ import annotations

from bench.images import three_by_two

# (name, (width, height), watermark style): 3:2 photos with a small corner mark, and one covered
# by a grid (every tile holds the mark: region-aware inference saves nothing on it).
IMAGES = (
    ("1mp", three_by_two(1), "corner"),
    ("4mp", three_by_two(4), "corner"),
    ("12mp", three_by_two(12), "corner"),
    ("12mp-grid", three_by_two(12), "grid"),
)
# The largest input the gateway accepts (its max_pixels, 16,777,216), under a grid: the worst
# case for a worker's memory. Sent once, after everything else, end to end only.
LARGEST = ("16mp-grid", (4096, 4096), "grid")
SEED = 0

# Timed runs per image after one untimed one (which warms the caches and, in process, counts
# the FLOPs).
MODEL_ONLY_REPEATS = {"1mp": 5, "4mp": 3, "12mp": 3, "12mp-grid": 2}
# The same for a batch of THROUGHPUT_IMAGE at the served batchSize (a saturated worker's load).
SATURATED_REPEATS = 2
# Network forwards of (batch, height, width), FORWARD_REPEATS timed runs each: megapixels per
# second against pixels per forward (a window batch, one and four megapixels, one of four).
FORWARD_SHAPES = ((8, 320, 320), (1, 1024, 1024), (4, 1024, 1024), (1, 2048, 2048))
FORWARD_REPEATS = 3

# Requests per image at concurrency 1 after one warm-up request.
LATENCY_REPEATS = {"1mp": 10, "4mp": 6, "12mp": 5, "12mp-grid": 3}

# Throughput is measured with the 1 MP photo: small enough that 16 requests in flight finish
# well inside the gateway's timeout, and the size where batching can matter most.
THROUGHPUT_IMAGE = "1mp"
THROUGHPUT_REQUESTS = {4: 16, 16: 32}  # concurrency -> requests sent
SATURATION = 16  # the concurrency of the e2e / model-only ratio and of the batching speed-up
BATCH_SIZES = (8, 1)  # batchSize variants compared; speed-up = throughput(8) / throughput(1)

# A block of ports away from `make run`'s (8000, 8080-8082, 7070-7071), so both can run at once.
GATEWAY_HOST = "http://127.0.0.1:8100"
TORCHSERVE_PORTS = {
    "TORCHSERVE_INFERENCE_PORT": "8180",
    "TORCHSERVE_MANAGEMENT_PORT": "8181",
    "TORCHSERVE_METRICS_PORT": "8182",
    "TORCHSERVE_GRPC_INFERENCE_PORT": "7170",
    "TORCHSERVE_GRPC_MANAGEMENT_PORT": "7171",
}
