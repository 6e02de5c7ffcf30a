"""Admission control: at most ``limit`` uploads inside the gateway at once.

An upload holds its slot from before its body is read until its answer is ready, so the
gateway's memory stays bounded (``limit`` x ``max_upload_bytes`` of request bodies) and a burst
past what the model can clean is told at once to come back (503 with Retry-After) instead of
waiting in TorchServe's queue until it times out (504) long after the user gave up.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class GatewayBusy(Exception):
    """Every slot is taken; the upload was not read."""

    status = 503

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Admission:
    """Counts uploads in progress. The gateway runs one event loop, so a plain counter is safe:
    nothing awaits between the check and the increment."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"the in-flight limit must be at least 1, got {limit}")
        self.limit = limit
        self.active = 0

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one slot for the ``with`` block, released however it ends; GatewayBusy when
        none is free."""
        if self.active >= self.limit:
            raise GatewayBusy(
                f"the service is cleaning {self.limit} images already; try again in a few seconds"
            )
        self.active += 1
        try:
            yield
        finally:
            self.active -= 1
