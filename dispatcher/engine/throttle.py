"""A route's send rate: a token bucket (adapters/bucket.py), acquired per batch.

The rate may be any fraction (3 per second is 3, not a tenth-second window's rounding), and
what a route may send at once after a pause is bounded by ``burst_seconds`` of its rate
(``[engine] rate_burst_seconds``). A batch takes its permits in pieces of at most one burst,
so a route never fires a whole batch's quota ahead of time. Urgent batches go first: while one
waits, routine batches take nothing, so the route's next messages are the urgent ones.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from adapters.bucket import DEFAULT_BURST_SECONDS, TokenBucket


class RouteThrottle:
    def __init__(self, rate: float, *, burst_seconds: float = DEFAULT_BURST_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._bucket = TokenBucket(rate, burst_seconds=burst_seconds, clock=clock)
        self._urgent = 0  # urgent batches waiting
        self._clear = asyncio.Event()  # set when no urgent batch waits
        self._clear.set()

    @property
    def rate(self) -> float:
        return self._bucket.rate

    def set_rate(self, rate: float) -> None:
        self._bucket.set_rate(rate)

    async def acquire(self, n: int, give_up: Callable[[], bool] | None = None, *,
                      urgent: bool = False) -> None:
        """Wait until ``n`` more messages may be sent, or until ``give_up()`` says to stop
        waiting (asked before each burst's worth of permits after the first). An ``urgent``
        batch is served before every routine one."""
        if urgent:
            self._urgent += 1
            self._clear.clear()
            try:
                await self._take(n, give_up, urgent=True)
            finally:
                self._urgent -= 1
                if not self._urgent:
                    self._clear.set()
            return
        await self._take(n, give_up, urgent=False)

    async def _take(self, n: int, give_up: Callable[[], bool] | None, *, urgent: bool) -> None:
        bucket = self._bucket
        left = n
        while left > 0:
            if give_up is not None and left < n and give_up():
                return
            if not urgent and self._urgent:
                await self._clear.wait()
                if give_up is not None and give_up():
                    return
            piece = min(left, max(1, int(bucket.capacity)))
            left -= piece
            wait = bucket.take(piece)
            if wait:
                await asyncio.sleep(wait)
