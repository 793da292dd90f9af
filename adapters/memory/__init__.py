"""An in-process channel for demos, tests and benchmarks of the engine.

It answers like a real channel (sent, retry, failed), with configurable latency and failure
injection, and counts what every address received so a test can prove exactly-once delivery.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter

from adapters.base import HALTED, Envelope, Results, halted
from dispatcher.domain.errors import ChannelError


class MemoryAdapter:
    """A channel in memory.

    ``retry_ratio`` and ``fail_ratio`` answer that share of messages with a transient or a
    permanent failure; ``fail_addrs`` always fail, ``retry_addrs`` always ask for a retry;
    ``down`` makes every send raise :class:`ChannelError`. ``latency`` is seconds per batch.
    """

    def __init__(self, *, latency: float = 0.0, retry_ratio: float = 0.0,
                 fail_ratio: float = 0.0, fail_addrs: frozenset[str] = frozenset(),
                 retry_addrs: frozenset[str] = frozenset(), seed: int = 0) -> None:
        self.latency = latency
        self.retry_ratio = retry_ratio
        self.fail_ratio = fail_ratio
        self.fail_addrs = fail_addrs
        self.retry_addrs = retry_addrs
        self.down = False
        self.closed = False
        self._rng = random.Random(seed)
        self.received: Counter[tuple[str, str]] = Counter()  # (wave, addr) -> messages sent
        self.texts: Counter[tuple[str, str]] = Counter()  # (addr, text) -> messages sent
        self.batches = 0
        self._next_id = 0

    @property
    def messages(self) -> int:
        return self.received.total()

    @property
    def duplicates(self) -> int:
        """Messages beyond the first that one address received in one wave."""
        return sum(n - 1 for n in self.received.values() if n > 1)

    @property
    def repeats(self) -> int:
        """Messages beyond the first that one address received with the same text, whatever
        wave they came from (what a citizen would see twice)."""
        return sum(n - 1 for n in self.texts.values() if n > 1)

    async def send(self, envelope: Envelope) -> Results:
        if self.closed:
            raise ChannelError("memory channel is closed")
        if self.latency:
            await asyncio.sleep(self.latency)
        if self.down:
            raise ChannelError("memory channel is down")
        self.batches += 1
        addrs = envelope.addrs
        results = Results()
        if halted(envelope):
            results.requeue = [(i, HALTED) for i in range(len(addrs))]
            return results
        if not (self.retry_ratio or self.fail_ratio or self.fail_addrs or self.retry_addrs):
            results.sent = list(range(len(addrs)))
        else:
            self._inject(addrs, results)
        first = self._next_id
        self._next_id += len(results.sent)
        results.remote_ids = [f"mem-{n}" for n in range(first, self._next_id)]
        wave = envelope.wave
        self.received.update((wave, addrs[i]) for i in results.sent)
        text = envelope.text
        self.texts.update((addrs[i], text) for i in results.sent)
        return results

    def _inject(self, addrs: list[str], results: Results) -> None:
        rand = self._rng.random
        for i, addr in enumerate(addrs):
            if addr in self.fail_addrs:
                results.failed.append((i, "invalid destination"))
            elif addr in self.retry_addrs:
                results.retry.append((i, "throttled"))
            else:
                r = rand()
                if r < self.fail_ratio:
                    results.failed.append((i, "invalid destination"))
                elif r < self.fail_ratio + self.retry_ratio:
                    results.retry.append((i, "throttled"))
                else:
                    results.sent.append(i)

    async def aclose(self) -> None:
        self.closed = True
