"""A route's send rate: asyncio-throttle's sliding window, acquired per batch.

The window is a tenth of a second (``rate / 10`` messages per 0.1 s), so a route never sends a
whole second's quota in one burst. The rate can change while running (a carrier answering
"throttled" slows its links down). Urgent batches go first: while one waits, routine batches
take nothing, so the route's next messages are the urgent ones.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from asyncio_throttle.throttler import Throttler

WINDOW = 0.1  # seconds


class RouteThrottle:
    def __init__(self, rate: float) -> None:
        self._throttler = Throttler(rate_limit=self._per_window(rate), period=WINDOW)
        self.rate = rate
        self._urgent = 0  # urgent batches waiting
        self._clear = asyncio.Event()  # set when no urgent batch waits
        self._clear.set()

    @staticmethod
    def _per_window(rate: float) -> int:
        return max(1, round(rate * WINDOW))

    def set_rate(self, rate: float) -> None:
        self.rate = rate
        self._throttler.rate_limit = self._per_window(rate)

    async def acquire(self, n: int, give_up: Callable[[], bool] | None = None, *,
                      urgent: bool = False) -> None:
        """Wait until ``n`` more messages may be sent, or until ``give_up()`` says to stop
        waiting (asked once per window's quota). An ``urgent`` batch is served before every
        routine one."""
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
        acquire = self._throttler.acquire
        every = self._throttler.rate_limit
        for i in range(n):
            if give_up is not None and i and i % every == 0 and give_up():
                return
            if not urgent and self._urgent:
                await self._clear.wait()
                if give_up is not None and give_up():
                    return
            await acquire()  # type: ignore[no-untyped-call]
