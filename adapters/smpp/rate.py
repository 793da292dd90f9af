"""A bind's send rate: the carrier's TPS, slowed down when the SMSC says "throttled".

Every submit_sm (every part of a long message) passes :meth:`BindRate.acquire`; the window of
asyncio-throttle is a tenth of a second so a bind never fires a second's quota at once. An
answer of ESME_RTHROTTLED or ESME_RMSGQFUL halves the rate (multiplicative decrease, at most
once per ``cooldown``); each second without one adds back a twentieth of the agreed TPS
(additive increase) until the agreed TPS is reached again. A bind with no agreed TPS runs
unthrottled until its first "throttled", then starts from nine tenths of the rate the SMSC
accepted over the last second.
"""

from __future__ import annotations

import time

from asyncio_throttle.throttler import Throttler

WINDOW = 0.1  # seconds
COOLDOWN = 1.0  # seconds between two decreases
MIN_RATE = 1.0


class BindRate:
    def __init__(self, tps: float = 0.0) -> None:
        self.limit = tps  # the rate agreed with the carrier (0: none)
        self.rate = tps  # the rate in force now (0: unthrottled)
        self._throttler: Throttler | None = None
        if tps:
            self._throttler = Throttler(self._per_window(tps), WINDOW)
        self._last_decrease = 0.0
        self._last_increase = time.monotonic()
        self._sent = 0
        self._since = time.monotonic()
        self._accepted: list[float] = [0.0, 0.0]  # this second's and the last one's
        self._second = int(time.monotonic())
        self.decreases = 0

    @staticmethod
    def _per_window(rate: float) -> int:
        return max(1, round(rate * WINDOW))

    def _set(self, rate: float) -> None:
        self.rate = rate
        if rate <= 0:
            self._throttler = None
        elif self._throttler is None:
            self._throttler = Throttler(self._per_window(rate), WINDOW)
        else:
            self._throttler.rate_limit = self._per_window(rate)

    async def acquire(self) -> None:
        self._sent += 1
        if self._throttler is not None:
            await self._throttler.acquire()  # type: ignore[no-untyped-call]

    def accepted(self, n: int) -> None:
        """``n`` submits were accepted (status 0)."""
        second = int(time.monotonic())
        if second != self._second:
            self._accepted = [0.0, self._accepted[0] if second == self._second + 1 else 0.0]
            self._second = second
        self._accepted[0] += n

    def accepted_rate(self) -> float:
        """Accepted submits per second, over the last whole second and this one so far."""
        part = time.monotonic() % 1.0
        return (self._accepted[0] + self._accepted[1] * (1 - part)) / 1.0

    def observed(self) -> float:
        """Submits per second since the last change of rate."""
        elapsed = time.monotonic() - self._since
        return self._sent / elapsed if elapsed > 0 else 0.0

    def throttled(self) -> None:
        now = time.monotonic()
        if now - self._last_decrease < COOLDOWN:
            return
        # halve the rate in force, or start from what the SMSC took over the last second
        new = self.rate / 2 if self.rate else 0.9 * (self.accepted_rate() or self.observed())
        self._set(max(MIN_RATE, new))
        self._last_decrease = self._last_increase = now
        self._sent, self._since = 0, now
        self.decreases += 1

    def tick(self) -> None:
        """Recover a step if a second has passed since the last change."""
        now = time.monotonic()
        if self.rate == self.limit or now - self._last_increase < 1.0:
            return
        self._last_increase = now
        step = max(MIN_RATE, (self.limit or self.rate) / 20)
        if self.limit:
            self._set(min(self.limit, self.rate + step))
        elif self.rate + step >= 2 * max(self.observed(), MIN_RATE):
            self._set(0.0)  # sending well below the rate again: back to unthrottled
        else:
            self._set(self.rate + step)
