"""Removing what the store would otherwise keep for good: the uploaded lists of numbers past
``[lists] retention_days`` and the published CAP messages past ``[cap] retention_days``.

A pass runs from the reconciler's loop (every process that reconciles), at most once every
:data:`PASS_SECONDS` in each process, under the store lease ``retention``: one process prunes at
a time, and a process that finds the lease held skips that pass. The lease is renewed before
each batch of work; a process that loses it stops. Each pass that removed something logs one
line and counts it (``loa_retention_pruned_total{data="list"|"cap_message"}``).

**Lists.** A list (``l-…``, :mod:`dispatcher.engine.numberlists`) uploaded more than
``retention_days`` ago that no campaign not yet final (draft, pending approval, approved,
running, paused) names as ``audience_list`` goes, :data:`LISTS_PER_BATCH` at a time: first its
description, in one transaction (from then on ``GET /v1/lists/{id}`` is 404 and a campaign
naming it is 400), then the campaigns are read again and a list that a campaign created
meanwhile names is put back; then the chunks and the number index of the others are deleted
(:meth:`~dispatcher.store.base.AudienceStore.discard`: 1,024 keys a round trip). A campaign
whose list went is refused at its start as before ("its list is gone").

**CAP messages.** The messages are read oldest first, :data:`CAP_PAGE` at a time, up to the
first sent within ``retention_days``, and judged by :mod:`dispatcher.domain.capretention`; a
page's removable ones go in one call (:meth:`~dispatcher.store.base.CapStore.prune`). The
publisher never publishes late an event older than ``retention_days``
(:mod:`dispatcher.engine.cap`), so a message removed is never published again.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging

import msgspec

from dispatcher.domain import capalerts, capretention, notice
from dispatcher.domain.capretention import Kept
from dispatcher.domain.model import WAVE_FINAL, Campaign
from dispatcher.engine import metrics
from dispatcher.engine.campaigns import FINAL
from dispatcher.engine.numberlists import is_list
from dispatcher.engine.settings import EngineConfig
from dispatcher.store.base import Store

log = logging.getLogger(__name__)

PASS_SECONDS = 3600.0
LEASE = "retention"
LEASE_SECONDS = 300.0
LISTS_PER_BATCH = 16  # descriptions forgotten in one transaction
CAP_PAGE = 200  # messages read, judged and removed per round


class Pruned(msgspec.Struct, frozen=True):
    """What one pass removed: the lists' ids and the count of CAP messages."""

    lists: list[str] = []
    cap_messages: int = 0


def _named(campaigns: list[Campaign]) -> set[str]:
    """The lists the campaigns not yet final name."""
    return {c.audience_list for c in campaigns if c.audience_list and c.state not in FINAL}


class Retention:
    def __init__(self, store: Store, settings: EngineConfig, *, name: str,
                 interval: float = PASS_SECONDS) -> None:
        self.store = store
        self.settings = settings
        self.name = name
        self.interval = dt.timedelta(seconds=interval)
        self._due: dt.datetime | None = None

    async def tick(self, now: dt.datetime) -> Pruned:
        """A pass, when this process's is due (the first at once)."""
        if self._due is not None and now < self._due:
            return Pruned()
        done = await self.prune(now)
        self._due = now + self.interval
        return done

    async def prune(self, now: dt.datetime) -> Pruned:
        """Remove what is past retention, unless another process holds the lease."""
        if not (self.settings.lists.retention_days or self.settings.cap.retention_days):
            return Pruned()
        if not await self._hold():
            return Pruned()
        try:
            lists = await self._lists(now)
            messages = await self._cap(now)
        finally:
            await self.store.leases.release(LEASE, self.name)
        if lists or messages:
            metrics.RETENTION_PRUNED.labels("list").inc(len(lists))
            metrics.RETENTION_PRUNED.labels("cap_message").inc(messages)
            log.info("retention: removed %d lists of numbers (%s) and %d CAP messages",
                     len(lists), ", ".join(lists) or "none", messages)
        return Pruned(lists, messages)

    async def _hold(self) -> bool:
        return await self.store.leases.acquire(LEASE, self.name, LEASE_SECONDS)

    async def _lists(self, now: dt.datetime) -> list[str]:
        days = self.settings.lists.retention_days
        if not days:
            return []
        old = [v for v in await self.store.audiences.kept_before(now - dt.timedelta(days=days))
               if is_list(v)]
        if not old:
            return []
        named = _named(await self.store.campaigns.all())
        candidates = [v for v in old if v not in named]
        removed: list[str] = []
        for start in range(0, len(candidates), LISTS_PER_BATCH):
            if start and not await self._hold():
                break
            forgotten = await self.store.audiences.forget(
                candidates[start:start + LISTS_PER_BATCH])
            named = _named(await self.store.campaigns.all())  # one created meanwhile keeps it
            for meta in forgotten:
                if meta.version in named:
                    await self.store.audiences.keep(meta)
                    continue
                await self.store.audiences.discard(meta.version)
                removed.append(meta.version)
        return removed

    async def _kept(self, now: dt.datetime, cutoff: dt.datetime) -> Kept:
        settings = self.settings.cap
        campaigns = await self.store.campaigns.all()
        shown = await self.store.cap.latest(max(settings.feed_entries, notice.MESSAGES))
        live_waves = [w for w, s in (await self.store.waves.states()).items()
                      if s not in WAVE_FINAL]
        return Kept(
            cutoff=cutoff, now=now, shown=frozenset(p.alert.identifier for p in shown),
            last=frozenset((await self.store.cap.heads()).values()),
            closed=frozenset(capalerts.campaign_thread(c.id) for c in campaigns
                             if c.state in FINAL),
            live=frozenset([*(capalerts.wave_id(settings, w) for w in live_waves),
                            *(capalerts.campaign_id(settings, c.id) for c in campaigns
                              if c.state not in FINAL)]))

    async def _cap(self, now: dt.datetime) -> int:
        days = self.settings.cap.retention_days
        if not days:
            return 0
        cutoff = now - dt.timedelta(days=days)
        first = await self.store.cap.after(0, 1)
        if not first or first[0].alert.sent >= cutoff:
            return 0
        kept = await self._kept(now, cutoff)
        keeping: set[str] = set()
        removed = seq = 0
        while page := await self.store.cap.after(seq, CAP_PAGE):
            old = [p.alert for p in itertools.takewhile(lambda p: p.alert.sent < cutoff, page)]
            gone = capretention.removable(old, kept, keeping)
            if gone:
                if seq and not await self._hold():
                    break
                removed += await self.store.cap.prune(gone)
            if len(old) < len(page):
                break
            seq = page[-1].seq
        return removed
