"""Per-client limits on uploads: how many a minute (moving windows) and how many at once.

Both live in a `limits` storage: this process's memory, or a Redis that several gateway
replicas share. They are checked before an upload's body is read, so a client over its limit
costs the gateway one header parse.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter

Storage = MemoryStorage | RedisStorage

# The sustained rate is measured over this many minutes; the burst over one.
RATE_WINDOW_MINUTES = 10
# Retry-After for a client with too many uploads in flight: about one photo's cleaning.
CONCURRENCY_RETRY_AFTER_S = 5


class TooManyUploads(Exception):
    """The client is over one of its limits; the upload was not read."""

    status = 429

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s


def open_storage(redis_url: str) -> Storage:
    """A Redis storage for redis://... (or rediss://), else this process's memory."""
    if not redis_url:
        return MemoryStorage()
    return RedisStorage(f"async+{redis_url}", implementation="redispy")


class ClientLimits:
    """per_minute uploads a minute averaged over RATE_WINDOW_MINUTES, at most burst within
    any one minute, and at most concurrent at once, per client key.

    slot_expiry_s bounds how long a slot can stay counted if its process dies holding it
    (a Redis shared by replicas outlives them).
    """

    def __init__(
        self,
        storage: Storage,
        per_minute: int,
        burst: int,
        concurrent: int,
        slot_expiry_s: float,
    ) -> None:
        if per_minute < 1 or burst < 1 or concurrent < 1:
            raise ValueError("per-client limits must be at least 1")
        self._storage = storage
        self._limiter = MovingWindowRateLimiter(storage)
        self._sustained = RateLimitItemPerMinute(
            per_minute * RATE_WINDOW_MINUTES, RATE_WINDOW_MINUTES
        )
        self._burst = RateLimitItemPerMinute(burst, 1)
        self._concurrent = concurrent
        self._slot_expiry = math.ceil(slot_expiry_s)
        self.per_minute = per_minute
        self.burst = burst

    @asynccontextmanager
    async def upload(self, client: str) -> AsyncIterator[None]:
        """Count one upload of client and hold one of its slots for the ``with`` block;
        TooManyUploads (with the seconds until it may try again) when over a limit."""
        await self._hit_rate(client)
        key = f"clearmark/in-flight/{client}"
        held = await self._storage.incr(key, self._slot_expiry)
        if held > self._concurrent:
            await self._storage.incr(key, self._slot_expiry, -1)
            raise TooManyUploads(
                f"you have {self._concurrent} uploads in progress already; wait for one to finish",
                CONCURRENCY_RETRY_AFTER_S,
            )
        try:
            yield
        finally:
            await self._storage.incr(key, self._slot_expiry, -1)

    async def _hit_rate(self, client: str) -> None:
        for item, what in (
            (self._burst, f"{self.burst} uploads a minute"),
            (self._sustained, f"{self.per_minute} uploads a minute on average"),
        ):
            if not await self._limiter.hit(item, "clearmark/uploads", client):
                stats = await self._limiter.get_window_stats(item, "clearmark/uploads", client)
                retry_after = max(1, math.ceil(stats.reset_time - time.time()))
                raise TooManyUploads(
                    f"too many uploads: the limit is {what}; try again in {retry_after} s",
                    retry_after,
                )
