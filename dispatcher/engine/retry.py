"""When a transient failure is tried again: exponential backoff with jitter, then dead letters."""

from __future__ import annotations

import random

from dispatcher.engine.settings import RetrySettings


class RetryPolicy:
    def __init__(self, settings: RetrySettings, rng: random.Random | None = None) -> None:
        self.max_attempts = settings.max_attempts
        self.base = settings.base_seconds
        self.cap = settings.max_seconds
        self.jitter = settings.jitter
        self._rand = (rng or random.Random()).random

    def exhausted(self, attempts_made: int) -> bool:
        """True when a message sent ``attempts_made`` times may not be sent again."""
        return attempts_made >= self.max_attempts

    def delay(self, attempts_made: int) -> float:
        """Seconds to wait before the next attempt after ``attempts_made`` failed ones."""
        wait = min(self.cap, self.base * float(2 ** max(attempts_made - 1, 0)))
        return wait * (1 + self.jitter * (2 * self._rand() - 1))
