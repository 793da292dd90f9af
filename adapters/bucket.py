"""A token bucket: ``rate`` permits per second (any fraction), at most a burst held.

The bucket fills continuously at ``rate`` and holds at most ``burst_seconds`` of it (never
less than one permit). :meth:`TokenBucket.take` takes ``n`` permits at once and says how long
to wait before using them: permits not there yet are borrowed from the future, so several
acquirers line up in the order they took, and the schedule is kept by arithmetic, not by how
punctually the event loop wakes a sleeper (a late wake-up never lowers the rate; the next
acquirer's wait is shorter by as much). One clock read and a few float operations per call,
no allocation: cheap enough for every submit_sm of a bind.

A new bucket holds one permit: the first message leaves at once, the next after ``1/rate``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

DEFAULT_BURST_SECONDS = 0.1


class TokenBucket:
    __slots__ = ("_capacity", "_clock", "_last", "_tokens", "burst_seconds", "rate")

    def __init__(self, rate: float, *, burst_seconds: float = DEFAULT_BURST_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be more than 0, not {rate}")
        if burst_seconds < 0:
            raise ValueError(f"burst_seconds must be 0 or more, not {burst_seconds}")
        self.rate = rate
        self.burst_seconds = burst_seconds
        self._capacity = max(1.0, rate * burst_seconds)
        self._clock = clock
        self._tokens = 1.0
        self._last = clock()

    @property
    def capacity(self) -> float:
        """The most permits the bucket holds: what may leave at once after a pause."""
        return self._capacity

    def _fill(self, now: float) -> None:
        tokens = self._tokens + (now - self._last) * self.rate
        self._tokens = tokens if tokens < self._capacity else self._capacity
        self._last = now

    def set_rate(self, rate: float) -> None:
        """From now on, ``rate`` per second; what has filled until now stays."""
        if rate <= 0:
            raise ValueError(f"rate must be more than 0, not {rate}")
        self._fill(self._clock())
        self.rate = rate
        self._capacity = max(1.0, rate * self.burst_seconds)
        self._tokens = min(self._tokens, self._capacity)

    def take(self, n: int = 1) -> float:
        """Take ``n`` permits; returns the seconds to wait before using them (0.0: at once)."""
        now = self._clock()
        tokens = self._tokens + (now - self._last) * self.rate
        self._last = now
        if tokens > self._capacity:  # noqa: PLR1730 (per submit: a comparison, not a call)
            tokens = self._capacity
        tokens -= n
        self._tokens = tokens
        if tokens >= 0:
            return 0.0
        return -tokens / self.rate

    def give_back(self, n: int) -> None:
        """Return ``n`` permits taken and not used (a send that gave up waiting)."""
        self._fill(self._clock())
        self._tokens = min(self._capacity, self._tokens + n)

    async def acquire(self, n: int = 1) -> None:
        """Wait until ``n`` permits may be used."""
        wait = self.take(n)
        if wait:
            await asyncio.sleep(wait)
