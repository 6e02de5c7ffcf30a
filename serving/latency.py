"""Latency of one photo through a running gateway: the first request, then the steady state.

    python -m serving.latency --url http://127.0.0.1:8000 --megapixels 1 --repeat 10

The photo is a bundled one resized to the asked size, with a synthetic watermark, sent as
JPEG. Prints one JSON document: first-request seconds and the median of the rest.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time
import urllib.request

from PIL import Image

from bench.images import three_by_two, watermarked_jpeg
from serving.client import proof_of_work_headers


def post_seconds(url: str, body: bytes) -> float:
    """Seconds one upload takes; its proof of work, when the gateway asks one, is solved
    before the clock starts."""
    headers = {"Content-Type": "image/jpeg", **proof_of_work_headers(url)}
    request = urllib.request.Request(f"{url}/api/v1/remove", data=body, headers=headers)
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=300) as response:
        response.read()
        if response.status != 200:
            raise RuntimeError(f"status {response.status}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--megapixels", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    body = watermarked_jpeg(*three_by_two(args.megapixels))
    timings = [post_seconds(args.url, body) for _ in range(args.repeat + 1)]
    width, height = Image.open(io.BytesIO(body)).size
    result = {
        "image": f"{width}x{height} JPEG, {len(body)} bytes",
        "first_request_s": round(timings[0], 3),
        "steady_median_s": round(statistics.median(timings[1:]), 3),
        "steady_min_s": round(min(timings[1:]), 3),
        "repeats": args.repeat,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
