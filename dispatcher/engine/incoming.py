"""Messages and events from citizens: classified, stored and counted in batches.

Channels hand what citizens send (SMS replies, Zalo messages, follows and unfollows) to
:meth:`IncomingIntake.add` as :class:`~dispatcher.domain.incoming.Incoming`, in the event loop
and with no I/O. Every ``interval`` the intake takes up to ``batch`` of them: replies whose
first words are an opt-out keyword become opt-outs (:class:`~dispatcher.domain.incoming.Keywords`),
the batch is stored in one round trip (``store.incoming.add``), counted in
``loa_incoming_total{channel,kind}`` once per batch, and its opt-outs (keyword replies with a
number, Zalo unfollows) are handed to ``on_opt_outs`` in one call.

Nothing is lost silently: a store outage keeps the batch for the next pass; past ``max_held``
items waiting (a flood while the store is down) the oldest are dropped, logged and counted in
``loa_incoming_dropped_total``. An ``on_opt_outs`` that fails is called again with the same
opt-outs on the next pass (the items are stored once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter as Tally

from prometheus_client import Counter

from adapters.metrics import INCOMING
from dispatcher.domain.incoming import UNFOLLOW, Incoming, Keywords
from dispatcher.domain.optout import OnOptOuts, OptOut
from dispatcher.engine import metrics
from dispatcher.store.base import Store

log = logging.getLogger(__name__)

FAILED_WAIT = 5.0  # seconds before on_opt_outs is called again after it failed
DROPPED = Counter("loa_incoming_dropped", "Messages from citizens dropped because max_held "
                  "of them already waited for the store")


def opt_out_of(item: Incoming) -> OptOut | None:
    """The opt-out ``item`` says, if it says one and names its sender."""
    if not item.opt_out or not item.number:
        return None
    reason = "unfollow" if item.kind == UNFOLLOW else f"keyword:{item.keyword}"
    return OptOut(item.channel, item.number, reason, item.at)


class IncomingIntake:
    def __init__(self, store: Store, keywords: Keywords, on_opt_outs: OnOptOuts | None = None,
                 *, interval: float = 0.5, batch: int = 1000, max_held: int = 100_000) -> None:
        self.store = store
        self.keywords = keywords
        self.on_opt_outs = on_opt_outs
        self.interval = interval
        self.batch = batch
        self.max_held = max_held
        self._new: list[Incoming] = []
        self._opt_outs: list[OptOut] = []  # stored, not yet taken by on_opt_outs
        self.stored = 0
        self.dropped = 0

    def add(self, items: list[Incoming]) -> None:
        """Take ``items`` (no I/O)."""
        self._new.extend(items)
        over = len(self._new) - self.max_held
        if over > 0:
            del self._new[:over]
            self.dropped += over
            DROPPED.inc(over)
            log.error("%d messages from citizens dropped: %d already wait for the store",
                      over, self.max_held)

    @property
    def pending(self) -> int:
        return len(self._new)

    async def run(self, stop: asyncio.Event) -> None:
        """Passes until ``stop``, then one last one; a store outage delays them."""
        backoff = metrics.Backoff("the incoming messages' intake")
        wait = self.interval
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
            wait = self.interval
            try:
                await self.take_now()
            except metrics.STORE_TRANSIENT as exc:  # logged once per outage
                wait = max(wait, backoff.failed(exc))
            except Exception as exc:
                log.error("handing %d opt-outs on failed (tried again): %s",
                          len(self._opt_outs), exc, exc_info=exc)
                wait = max(wait, FAILED_WAIT)
            else:
                backoff.ok()
        try:
            await self.take_now()
        except Exception as exc:  # noqa: BLE001 - stopping: what is left is logged below
            log.error("storing messages from citizens at stop failed: %s", exc)
        if self._new or self._opt_outs:
            log.error("%d messages from citizens were not stored and %d opt-outs not handed "
                      "on before the process stopped", len(self._new), len(self._opt_outs))

    async def take_now(self) -> None:
        """Store what waits, a batch (one round trip) at a time; hand the opt-outs on."""
        await self._hand_opt_outs()  # those a failed call left
        while self._new:
            todo = [self.keywords.classify(i) for i in self._new[:self.batch]]
            await self.store.incoming.add(todo)
            del self._new[:len(todo)]
            self.stored += len(todo)
            counts = Tally((i.channel.value, i.kind) for i in todo)
            for (channel, kind), n in counts.items():
                INCOMING.labels(channel, kind).inc(n)
            self._opt_outs.extend(o for o in map(opt_out_of, todo) if o is not None)
            await self._hand_opt_outs()

    async def _hand_opt_outs(self) -> None:
        if not self._opt_outs or self.on_opt_outs is None:
            self._opt_outs.clear()
            return
        opt_outs = self._opt_outs
        self._opt_outs = []
        try:
            await self.on_opt_outs(opt_outs)
        except BaseException:
            self._opt_outs = opt_outs + self._opt_outs
            raise

