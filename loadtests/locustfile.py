"""Locust users and load shape for ``python -m loadtests.run`` (run it through that module).

Each user uploads one watermarked 2-4 MP JPEG a minute through the public API, as the multipart
field ``image`` (with a solved proof of work when the gateway asks for one); the shape runs as
many users as the current stage's uploads a minute. Every request is recorded and, at quit,
written to the path in ``LOADTEST_RECORDS`` (analysis.py).
"""

from __future__ import annotations

import io
import math
import os
import random
import time
from pathlib import Path
from typing import Any

import gevent
import numpy as np
from locust import HttpUser, LoadTestShape, constant_pacing, events, task
from PIL import Image, UnidentifiedImageError

from loadtests.analysis import RECORDS_ENV, Request, write_records
from loadtests.schedule import PACING_S, stage_at, stages_from_env, start_window_s
from serving.client import proof_of_work_headers
from training.fonts import matplotlib_fonts
from training.photos import library_photos
from training.synth import MarkAssets, add_watermark

STAGES = stages_from_env()
# Users added per second at a step: fast, since arrivals are spread by each user's random start.
SPAWN_RATE = 100
# (library photo, megapixels at least, watermark style): every style, on real photos upscaled.
UPLOAD_MIX = (
    ("skimage-coffee", 3.5, "text"),
    ("matplotlib-grace_hopper", 2.5, "logo"),
    ("skimage-astronaut", 2.0, "grid"),
    ("skimage-chelsea", 3.0, "centre"),
    ("sklearn-china", 4.0, "corner"),
)


def watermarked_uploads(seed: int = 0) -> list[tuple[str, bytes]]:
    """(file name, JPEG bytes at quality 90) for each photo of ``UPLOAD_MIX``."""
    photos = library_photos()
    assets = MarkAssets(tuple(matplotlib_fonts()))
    rng = np.random.default_rng(seed)
    uploads = []
    for name, megapixels, style in UPLOAD_MIX:
        rgb = photos[name]()  # (H, W, 3) uint8
        scale = math.sqrt(megapixels * 1e6 / (rgb.shape[0] * rgb.shape[1]))
        size = (math.ceil(rgb.shape[1] * scale), math.ceil(rgb.shape[0] * scale))
        photo = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BICUBIC))
        marked = add_watermark(photo, rng, assets, style=style, jpeg_probability=0)
        buffer = io.BytesIO()
        Image.fromarray(marked.watermarked).save(buffer, format="JPEG", quality=90)
        uploads.append((f"{name}-{style}.jpg", buffer.getvalue()))
    return uploads


class Recorder:
    """Every request of the test, as ``Request`` records."""

    def __init__(self) -> None:
        self.started_at = 0.0  # epoch seconds
        self.requests: list[Request] = []

    def on_test_start(self, **_: Any) -> None:
        self.started_at = time.time()

    def on_request(
        self,
        start_time: float,
        response_time: float,
        response_length: int,
        exception: Any,
        **_: Any,
    ) -> None:
        start_s = start_time - self.started_at
        self.requests.append(
            Request(
                start_s=start_s,
                response_time_s=response_time / 1000,  # locust reports milliseconds
                success=exception is None,
                stage=stage_at(start_s, STAGES),
                response_bytes=response_length,
            )
        )

    def on_quitting(self, **_: Any) -> None:
        if path := os.environ.get(RECORDS_ENV):
            write_records(Path(path), STAGES, self.requests)


UPLOADS: list[tuple[str, bytes]] = []
RECORDER = Recorder()
events.init.add_listener(lambda **_: UPLOADS.extend(watermarked_uploads()))
events.test_start.add_listener(RECORDER.on_test_start)
events.request.add_listener(RECORDER.on_request)
events.quitting.add_listener(RECORDER.on_quitting)


def failure(status: int, body: bytes) -> str | None:
    """Why an answer to an upload is not a cleaned image, or None when it is one."""
    if status == 0:
        return "no response (connection failed)"
    if status != 200:
        return f"HTTP {status}"
    try:
        Image.open(io.BytesIO(body))  # reads the header only
    except UnidentifiedImageError:
        return "200 with a body that is not an image"
    return None


class Uploader(HttpUser):
    wait_time = constant_pacing(PACING_S)

    def on_start(self) -> None:
        gevent.sleep(random.uniform(0, start_window_s(STAGES)))

    @task
    def remove_watermark(self) -> None:
        name, body = random.choice(UPLOADS)
        # A solved challenge when the gateway asks for one (not recorded: urllib, not
        # self.client); none from a stack that loadtests.run started.
        headers = proof_of_work_headers(self.host)
        with self.client.post(
            "/api/v1/remove",
            files={"image": (name, body, "image/jpeg")},
            headers=headers,
            catch_response=True,
        ) as response:
            if reason := failure(response.status_code, response.content or b""):
                response.failure(reason)


class SteppedArrivals(LoadTestShape):
    """As many users as the current stage's uploads a minute; stops after the last stage."""

    def tick(self) -> tuple[int, float] | None:
        stage = stage_at(self.get_run_time(), STAGES)
        return None if stage is None else (STAGES[stage][1], SPAWN_RATE)
