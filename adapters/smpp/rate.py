"""A bind's send rate: the carrier's TPS, slowed down when the SMSC says "throttled".

Every submit_sm (every part of a long message) passes :meth:`BindRate.acquire`, a token bucket
(adapters/bucket.py) at the rate in force: any fraction per second, and after a pause at most
``burst_seconds`` of it at once (the link's ``tps_burst_seconds``).

Answers of ESME_RTHROTTLED or ESME_RMSGQFUL slow the bind down (multiplicative decrease, at
most once per ``COOLDOWN``) when they are a real share of the bind's recent answers
(``SIGNIFICANT`` of at least ``SAMPLE``): a carrier that throttles answers many submits so,
while a stray "queue full" among thousands of accepted submits is retried like any transient
error and leaves the rate alone.

A decrease halves the rate in force, or, on a bind that had none (no agreed TPS, or recovered
to unthrottled), starts from what the SMSC really took: the busiest second of the last
``HISTORY`` seconds (since the first answer, for a bind younger than a second), never from a
quiet second or the first moments of a bind. The rate never goes below ``floor`` (the link's
``tps_floor``, a share) of the agreed TPS (or of that first estimate), nor below ``MIN_RATE``.

Recovery climbs back to the rate before the decrease in ``RECOVERY_SECONDS``; a carrier that
throttles again on the way (or soon after, at the target) lowers that target to the rate it
throttled at, so a carrier that really throttles hard is followed down to what it takes. From
the target on, each second without a throttle adds a twentieth of the agreed TPS (up to it),
and a bind with no agreed TPS goes back to unthrottled once it sends well below its rate.

Throttling that does not follow the bind's rate (a carrier refusing a steady share of every
bind's submits, whatever their pace) is told apart by the next decrease's judgement of the last
one: a carrier limit keeps what the SMSC accepts per second when the bind slows down, a steady
share lowers it with the rate. When what was accepted since the decrease is nearer the second,
the rate goes back to where it was, and the share of throttled answers since becomes the
bind's ``steady`` one: only a share clearly above it (by ``STEADY_MARGIN`` of what it leaves, and
by two standard deviations of the last ``HISTORY`` seconds' answers, so a slow bind's few answers
do not count as a change) slows the bind down again, until ``CALM_SECONDS`` pass without a
throttled answer. While a decrease waits to be judged (``JUDGE_SAMPLE`` answers, or
``JUDGE_SECONDS`` with ``JUDGE_LEAST`` of them), the rate stays where it put it.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable

from adapters.bucket import DEFAULT_BURST_SECONDS, TokenBucket

WINDOW = 0.1  # seconds: the recent-pace estimate never divides by less
COOLDOWN = 1.0  # seconds between two decreases
MIN_RATE = 0.1  # per second: the lowest rate a decrease sets
MIN_STEP = 1.0  # per second: recovery steps are at least this (or a twentieth of the TPS)
DECREASE = 0.5  # the rate in force is multiplied by this on a decrease
FLOOR = 0.1  # share of the agreed TPS (or the first estimate) a decrease never goes below
STEADY_MARGIN = 0.2  # a share of throttled answers above the steady one by this much of 1 - it
JUDGE_SAMPLE = 20  # answers after a decrease before it is judged (did the share fall?)
JUDGE_SECONDS = 3.0  # ... or this long after it, on a slow bind (with JUDGE_LEAST at least)
JUDGE_LEAST = 4
JUDGE_SLOWER = 0.75  # a decrease is judged when the pace after it is below this of the one before
HISTORY = 5  # seconds of answers kept for the estimate
SIGNIFICANT = 0.01  # share of throttled answers (last two seconds) above which it slows down
SAMPLE = 100  # answers the share is taken of, at least (a quiet bind: any few throttles count)
RECOVERY_SECONDS = 3.0  # back to the rate before the decrease in this long
STEP_SECONDS = 0.25  # how often recovery raises the rate
TARGET_DECREASE = 0.9  # throttled again at the target: the next target is this much of it
CALM_SECONDS = 10.0  # a decrease this long after the last one is a first one again


class BindRate:
    def __init__(self, tps: float = 0.0, *, floor: float = FLOOR,
                 burst_seconds: float = DEFAULT_BURST_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = tps  # the rate agreed with the carrier (0: none)
        self.rate = tps  # the rate in force now (0: unthrottled)
        self.floor = floor
        self._burst = burst_seconds
        self._clock = clock
        self._bucket: TokenBucket | None = None
        if tps:
            self._bucket = TokenBucket(tps, burst_seconds=burst_seconds, clock=clock)
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
        # answers since the last decrease: [accepted, throttled]
        self._since_decrease = [0, 0]
        # the last decrease still to be judged: (accepted and answered per second between the
        # two decreases before, the rate before the last)
        self._judge: tuple[float, float, float] | None = None
        self._episode = tps  # the rate before the first decrease of this spell of throttling
        self.steady = 0.0  # share of throttled answers that does not follow the rate
        self._last_throttled = now

    def _set(self, rate: float) -> None:
        self.rate = rate
        if rate <= 0:
            self._bucket = None
        elif self._bucket is None:
            self._bucket = TokenBucket(rate, burst_seconds=self._burst, clock=self._clock)
        else:
            self._bucket.set_rate(rate)

    async def acquire(self) -> None:
        """Wait for this submit's turn at the rate in force; a submit that has to wait also
        lets recovery take its step (a long batch at a low rate is not one step)."""
        self._sent += 1
        bucket = self._bucket
        if bucket is not None:
            wait = bucket.take(1)
            if wait:
                self.tick()
                await asyncio.sleep(wait)

    def _second(self, now: float) -> list[int]:
        second = int(now)
        if not self._answers or self._answers[-1][0] != second:
            self._answers.append([second, 0, 0])
        if self._first is None:
            self._first = now
        return self._answers[-1]

    def accepted(self, n: int) -> None:
        """``n`` submits were accepted (status 0)."""
        if n:
            self._second(self._clock())[1] += n
            self._since_decrease[0] += n

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
        """The share of throttled answers in the last two seconds, of at least ``SAMPLE``."""
        second = int(now)
        accepted = throttled = 0
        for at, a, t in self._answers:
            if at >= second - 1:
                accepted += a
                throttled += t
        return throttled / max(SAMPLE, accepted + throttled)

    def _above_steady(self) -> bool:
        """The share of throttled answers of the last ``HISTORY`` seconds is clearly above the
        steady one: by ``STEADY_MARGIN`` of what it leaves, and by two standard deviations of
        a sample that size (a slow bind's few answers vary a lot)."""
        answered = throttled = 0
        for _, a, t in self._answers:
            answered += a + t
            throttled += t
        if not answered:
            return False
        steady = self.steady
        margin = max(STEADY_MARGIN * (1 - steady),
                     2 * math.sqrt(steady * (1 - steady) / answered))
        return throttled / answered > steady + margin

    def throttled(self) -> None:
        """A submit was answered ESME_RTHROTTLED or ESME_RMSGQFUL."""
        now = self._clock()
        self._second(now)[2] += 1
        self._since_decrease[1] += 1
        if now - self._last_decrease < COOLDOWN:
            return
        if self.steady and now - self._last_throttled >= CALM_SECONDS:
            self.steady = 0.0  # a calm spell: the steady share is history
        self._last_throttled = now
        if self._steady_throttling(now):
            return
        if self._throttled_share(now) <= SIGNIFICANT or (
                self.steady and not self._above_steady()):
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
        floor = max(MIN_RATE, self.floor * self._reference)
        new = max(floor, min(base, DECREASE * base))
        self._set(new)
        self._step = max(self._min_step(),
                         (self._target - new) * STEP_SECONDS / RECOVERY_SECONDS)
        # The answers since the last decrease of this spell were all under throttling: what
        # the next decrease's judgement compares with.
        answered, interval = sum(self._since_decrease), now - self._last_decrease
        if (self.decreases and interval < CALM_SECONDS and answered >= JUDGE_LEAST
                and self._since_decrease[0] and new < base):
            self._judge = (self._since_decrease[0] / interval, answered / interval, base)
        else:
            self._judge = None
            self._episode = base  # the first decrease of a spell: what recovery may go back to
        self._since_decrease = [0, 0]
        self._last_decrease = self._last_increase = now
        self._sent, self._since = 0, now
        self.decreases += 1

    def _min_step(self) -> float:
        return min(MIN_STEP, max(MIN_RATE, (self.limit or self._reference) / 20))

    def _steady_throttling(self, now: float) -> bool:
        """Judge the last decrease: if what the SMSC accepts per second fell with the pace
        instead of staying (as under a carrier limit), the throttling does not follow this
        bind's rate: go back to the rate before the decrease, take the share of throttled
        answers as steady, and say so."""
        if self._judge is None:
            return False
        accepted, throttled = self._since_decrease
        elapsed = now - self._last_decrease
        if (accepted + throttled < JUDGE_SAMPLE and elapsed < JUDGE_SECONDS) or (
                accepted + throttled < JUDGE_LEAST and elapsed < CALM_SECONDS):
            return True  # too few answers yet to tell: hold the rate
        if accepted + throttled < JUDGE_LEAST:
            self._judge = None
            return False
        before_accepted, before_sent, old = self._judge
        self._judge = None
        after_accepted, after_sent = accepted / elapsed, (accepted + throttled) / elapsed
        if after_sent >= JUDGE_SLOWER * before_sent:
            return False  # it did not really slow down: nothing to tell
        steady = before_accepted * after_sent / before_sent  # accepted if the share stayed
        if after_accepted >= (before_accepted + steady) / 2:
            return False  # accepted stayed: a carrier limit, follow it down
        self.steady = throttled / (accepted + throttled)
        self._target = max(self._target, self._episode)
        self._set(old)
        self._last_decrease = self._last_increase = now
        self._since_decrease = [0, 0]
        self._sent, self._since = 0, now
        return True

    def tick(self) -> None:
        """Recover a step if enough time has passed since the last change."""
        now = self._clock()
        if self.rate == self.limit or now - self._last_increase < STEP_SECONDS:
            return
        if self._judge is not None and now - self._last_decrease < CALM_SECONDS:
            return  # a decrease being judged: the pace after it stays what it set
        if self.rate < self._target:
            self._last_increase = now
            self._set(min(self._target, self.rate + self._step))
            return
        if now - self._last_increase < 1.0:
            return
        self._last_increase = now
        step = max(self._min_step(), (self.limit or self.rate) / 20)
        if self.limit:
            self._set(min(self.limit, self.rate + step))
        elif self.rate + step >= 2 * max(self.observed(), MIN_STEP):
            self._set(0.0)  # sending well below the rate again: back to unthrottled
            self._target = 0.0
        else:
            self._set(self.rate + step)
