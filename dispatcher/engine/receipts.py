"""Delivery receipts: matched to the wave and recipient they are about, counted in progress.

Channels hand receipts over as they arrive (:class:`adapters.base.Receipt`, to
:meth:`ReceiptMatcher.add`, their :class:`adapters.base.OnReceipts`; no I/O). Every
``interval`` the matcher looks their message ids up in the store in one go and adds to the
waves' counters: ``delivered``, ``undelivered`` and ``receipt_expired`` (for a message's first
part; later parts' receipts are matched and not counted again). A receipt can arrive before the
submit response that names its id, or before the batch's completion recorded it: unmatched
receipts are tried again for ``hold_seconds``, then counted as unmatched.

Looking an id up over the whole validity period costs a command per hour of it, so a receipt
is first looked for among the ids recorded in the last hour or two (where the message of an
early receipt will be), and over the whole period once, when it has waited ``FULL_AFTER``
seconds (a receipt for a message sent hours ago, from a handset that was off).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence

import msgspec

from adapters.base import ReceiptLike
from dispatcher.engine import metrics
from dispatcher.store.base import Store

log = logging.getLogger(__name__)

FULL_AFTER = 2.0  # seconds a receipt waits before its id is looked up over the whole period

OUTCOME = {"DELIVRD": "delivered", "EXPIRED": "receipt_expired", "UNDELIV": "undelivered",
           "REJECTD": "undelivered", "DELETED": "undelivered", "UNKNOWN": "undelivered",
           "SKIPPED": "undelivered"}


class MatcherStats(msgspec.Struct):
    received: int = 0
    matched: int = 0
    unmatched: int = 0
    not_final: int = 0  # ENROUTE, ACCEPTD: a later receipt will say more


class ReceiptMatcher:
    def __init__(self, store: Store, *, hold_seconds: float = 120.0,
                 interval: float = 0.2,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.clock = clock
        self.hold = hold_seconds
        self.interval = interval
        self.stats = MatcherStats()
        # (id, state, first seen, looked up over the whole period)
        self._new: list[tuple[str, str, float, bool]] = []
        self._waiting: list[tuple[str, str, float, bool]] = []

    def add(self, receipts: Sequence[ReceiptLike]) -> None:
        now = self.clock()
        for r in receipts:
            self.stats.received += 1
            if r.state in OUTCOME:
                self._new.append((r.message_id, r.state, now, False))
            else:
                self.stats.not_final += 1

    async def run(self, stop: asyncio.Event) -> None:
        """Passes until ``stop``; a store outage delays them (the receipts are kept)."""
        backoff = metrics.Backoff("the receipt matcher")
        wait = self.interval
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
            wait = self.interval
            try:
                await self.match_now()
            except metrics.STORE_TRANSIENT as exc:  # logged once per outage
                wait = max(wait, backoff.failed(exc))
            else:
                backoff.ok()

    async def match_now(self) -> None:
        """Match what came since the last pass and what still waits for its message. If the
        store fails, every receipt of the pass is kept for the next one."""
        todo = self._waiting + self._new
        if not todo:
            return
        self._new, self._waiting = [], []
        try:
            waiting = await self._match(todo)
        except BaseException:
            self._waiting = todo
            raise
        self._waiting = waiting

    async def _match(self, todo: list[tuple[str, str, float, bool]]
                     ) -> list[tuple[str, str, float, bool]]:
        """Count what of ``todo`` is matched; returns what still waits."""
        now = self.clock()
        full = [t for t in todo if not t[3] and now - t[2] >= FULL_AFTER]
        found = await self.store.receipts.match([t[0] for t in todo if t[3] or
                                                 now - t[2] < FULL_AFTER], recent=True)
        if full:
            found.update(await self.store.receipts.match([t[0] for t in full]))
        counts: dict[str, dict[str, int]] = {}
        delivered: dict[str, list[int]] = {}  # wave -> recipient ids: their delivered bits
        waiting: list[tuple[str, str, float, bool]] = []
        matched = unmatched = 0
        for remote_id, state, seen, searched in todo:
            where = found.get(remote_id)
            if where is None:
                if now - seen < self.hold:
                    waiting.append((remote_id, state, seen,
                                    searched or now - seen >= FULL_AFTER))
                else:
                    unmatched += 1
                continue
            matched += 1
            wave, recipient, part = where
            if part == 0:
                per_wave = counts.setdefault(wave, {})
                field = OUTCOME[state]
                per_wave[field] = per_wave.get(field, 0) + 1
                if field == "delivered":
                    delivered.setdefault(wave, []).append(recipient)
        if counts:
            await self.store.receipts.count(counts, delivered)
        self.stats.matched += matched
        self.stats.unmatched += unmatched
        metrics.RECEIPTS_MATCHED.inc(matched)  # per pass, not per receipt
        metrics.RECEIPTS_UNMATCHED.inc(unmatched)
        return waiting

    @property
    def pending(self) -> int:
        return len(self._new) + len(self._waiting)
