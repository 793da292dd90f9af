"""A bind's send rate: the carrier's TPS, slowed down when the SMSC says "throttled".

Every submit_sm (every part of a long message) passes :meth:`BindRate.acquire`; the window of
asyncio-throttle is a tenth of a second so a bind never fires a second's quota at once.

Answers of ESME_RTHROTTLED or ESME_RMSGQFUL slow the bind down (multiplicative decrease, at
most once per ``COOLDOWN``) when they are a real share of the bind's recent answers
(``SIGNIFICANT`` of at least ``SAMPLE``): a carrier that throttles answers many submits so,
while a stray "queue full" among thousands of accepted submits is retried like any transient
error and leaves the rate alone.

A decrease halves the rate in force, or, on a bind that had none (no agreed TPS, or recovered
to unthrottled), starts from what the SMSC really took: the busiest second of the last
``HISTORY`` seconds (since the first answer, for a bind younger than a second), never from a
quiet second or the first moments of a bind. The rate never goes below ``FLOOR`` of the
agreed TPS (or of that first estimate), nor below ``MIN_RATE``.

Recovery climbs back to the rate before the decrease in ``RECOVERY_SECONDS``; a carrier that
throttles again on the way (or soon after, at the target) lowers that target to the rate it
throttled at, so a carrier that really throttles hard is followed down to what it takes. From
the target on, each second without a throttle adds a twentieth of the agreed TPS (up to it),
and a bind with no agreed TPS goes back to unthrottled once it sends well below its rate.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from asyncio_throttle.throttler import Throttler

WINDOW = 0.1  # seconds
COOLDOWN = 1.0  # seconds between two decreases
MIN_RATE = 1.0
DECREASE = 0.5  # the rate in force is multiplied by this on a decrease
FLOOR = 0.1  # share of the agreed TPS (or the first estimate) a decrease never goes below
HISTORY = 5  # seconds of answers kept for the estimate
SIGNIFICANT = 0.01  # share of throttled answers (last two seconds) above which it slows down
SAMPLE = 100  # answers the share is taken of, at least (a quiet bind: any few throttles count)
RECOVERY_SECONDS = 3.0  # back to the rate before the decrease in this long
STEP_SECONDS = 0.25  # how often recovery raises the rate
TARGET_DECREASE = 0.9  # throttled again at the target: the next target is this much of it
CALM_SECONDS = 10.0  # a decrease this long after the last one is a first one again


class BindRate:
    def __init__(self, tps: float = 0.0, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = tps  # the rate agreed with the carrier (0: none)
        self.rate = tps  # the rate in force now (0: unthrottled)
        self._clock = clock
        self._throttler: Throttler | None = None
        if tps:
            self._throttler = Throttler(self._per_window(tps), WINDOW)
        now = clock()
        self._last_decrease = -COOLDOWN
        self._last_increase = now
        self._sent = 0
        self._since = now
        # per whole second: [second, accepted, throttled], the last HISTORY seconds
        self._answers: deque[list[int]] = deque(maxlen=HISTORY + 1)
        self._first: float | None = None  # when the first answer came
        self._reference = tps  # what FLOOR is a share of
        self._target = tps  # the rate recovery climbs back to
        self._step = 0.0  # recovery's step toward the target
        self.decreases = 0
        self.ignored = 0  # throttled answers too few to slow down for

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

    def _bucket(self, now: float) -> list[int]:
        second = int(now)
        if not self._answers or self._answers[-1][0] != second:
            self._answers.append([second, 0, 0])
        if self._first is None:
            self._first = now
        return self._answers[-1]

    def accepted(self, n: int) -> None:
        """``n`` submits were accepted (status 0)."""
        if n:
            self._bucket(self._clock())[1] += n

    def accepted_rate(self) -> float:
        """What the SMSC takes, per second: the busiest whole second of the last ``HISTORY``,
        or this second's pace if it is busier; for a bind answered for less than a second, what
        it accepted since its first answer."""
        now = self._clock()
        if self._first is None:
            return 0.0
        second = int(now)
        best = 0.0
        current = 0
        for at, accepted, _ in self._answers:
            if at == second:
                current = accepted
            elif at >= second - HISTORY:
                span = min(1.0, at + 1.0 - self._first)
                best = max(best, accepted / max(span, WINDOW))
        elapsed = now - max(float(second), self._first)
        if current and (not best or elapsed >= 0.5):  # young, or half a second in
            best = max(best, current / max(elapsed, WINDOW))
        return best

    def observed(self) -> float:
        """Submits per second since the last change of rate."""
        elapsed = self._clock() - self._since
        return self._sent / elapsed if elapsed > 0 else 0.0

    def _throttled_share(self, now: float) -> float:
        second = int(now)
        accepted = throttled = 0
        for at, a, t in self._answers:
            if at >= second - 1:
                accepted += a
                throttled += t
        return throttled / max(SAMPLE, accepted + throttled)

    def throttled(self) -> None:
        """A submit was answered ESME_RTHROTTLED or ESME_RMSGQFUL."""
        now = self._clock()
        self._bucket(now)[2] += 1
        if now - self._last_decrease < COOLDOWN:
            return
        if self._throttled_share(now) <= SIGNIFICANT:
            self.ignored += 1
            return
        if self.rate:
            base = self.rate
            # Throttled on the way back up: the carrier's limit is below the old target;
            # again at the target: a little below it.
            if base < self._target:
                self._target = base
            elif now - self._last_decrease < CALM_SECONDS:
                self._target = TARGET_DECREASE * base
            else:
                self._target = base
        else:
            base = self.accepted_rate() or self.observed()
            self._target = base
            if not self.limit:
                self._reference = max(self._reference, base)
        floor = max(MIN_RATE, FLOOR * self._reference)
        new = max(floor, min(base, DECREASE * base))
        self._set(new)
        self._step = max(MIN_RATE, (self._target - new) * STEP_SECONDS / RECOVERY_SECONDS)
        self._last_decrease = self._last_increase = now
        self._sent, self._since = 0, now
        self.decreases += 1

    def tick(self) -> None:
        """Recover a step if enough time has passed since the last change."""
        now = self._clock()
        if self.rate == self.limit or now - self._last_increase < STEP_SECONDS:
            return
        if self.rate < self._target:
            self._last_increase = now
            self._set(min(self._target, self.rate + self._step))
            return
        if now - self._last_increase < 1.0:
            return
        self._last_increase = now
        step = max(MIN_RATE, (self.limit or self.rate) / 20)
        if self.limit:
            self._set(min(self.limit, self.rate + step))
        elif self.rate + step >= 2 * max(self.observed(), MIN_RATE):
            self._set(0.0)  # sending well below the rate again: back to unthrottled
            self._target = 0.0
        else:
            self._set(self.rate + step)
