"""What the outlet channels share: each publishes a wave once to each of its targets (a Facebook
page, a portal site, a carrier's broadcast centre, a loudspeaker system) over HTTP, and holds a
target back while it must wait: backing off (throttled, down) for what it asked (``Retry-After``)
or the channel's own pause, doubling while it lasts (:func:`backoff`); or stopped for a fault an
operator must fix (the channel's ``STOPS``), with an ALERT, its items requeued without using an
attempt and one tried every ``alert_probe_seconds`` until the target takes one again.

:class:`Outlet` keeps those holds, the answers each target gave in a row that Loa does not know,
and the alerts. :class:`BatchOutlet` sends an envelope: one task per target, at most
``concurrency`` requests in flight; a batch whose every request found the peer away is requeued
and the route paused (1 s, doubling up to ``outage_pause_max``); a batch whose every item was
held pauses the route until the first target may go again, for routine batches only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Mapping
from typing import ClassVar, Generic, Protocol, TypeVar

from prometheus_client import Counter

from adapters.base import HALTED, Envelope, Results, halted, results_for
from dispatcher.domain.errors import ChannelError


class Settings(Protocol):
    @property
    def alert_probe_seconds(self) -> float: ...


class BatchSettings(Settings, Protocol):
    @property
    def concurrency(self) -> int: ...

    @property
    def outage_pause_max(self) -> float: ...


class Counts(Protocol):  # what every outlet channel counts (its stats hold more)
    retried: int
    failed: int
    requeued: int
    alerts: int


C = TypeVar("C", bound=Settings)
B = TypeVar("B", bound=BatchSettings)
S = TypeVar("S", bound=Counts)
T = TypeVar("T")


class Hold:
    """A target (or the whole route) held back: of which kind, why, until when, for how long."""

    __slots__ = ("backoff", "kind", "reason", "until")

    def __init__(self, kind: str, reason: str, until: float, backoff: float = 0.0) -> None:
        self.kind = kind
        self.reason = reason
        self.until = until
        self.backoff = backoff


def backoff(last: float | None, first: float, most: float, *, asked: float | None = None,
            least: float = 0.0) -> float:
    """The next pause of a back-off: what the peer ``asked`` (``Retry-After``) when it did, else
    ``first``, then twice the ``last`` pause (None: none yet); at least ``least``, at most
    ``most``."""
    wait = asked if asked is not None else first if last is None else last * 2
    return min(most, max(wait, least))


class Batch:
    """One envelope on its way: its results, and what its requests met."""

    __slots__ = ("down", "envelope", "held", "results", "targets", "tried")

    def __init__(self, envelope: Envelope, results: Results) -> None:
        self.envelope = envelope
        self.results = results
        self.down = 0  # requests the peer did not answer, or answered 5xx
        self.tried = 0  # items that made a request
        self.held = 0  # items requeued because their target is held
        self.targets: set[str] = set()  # the targets of those items

    def held_back(self, i: int, target: str, reason: str) -> None:
        """Requeue item ``i``: its target is held."""
        self.results.requeue.append((i, reason))
        self.held += 1
        self.targets.add(target)


class Outlet(Generic[C, S]):
    """The holds, unknown answers and alerts of an outlet channel's targets (see the module's
    documentation). ``now`` is the clock of the holds."""

    NAME: ClassVar[str]  # the channel in log lines: "Facebook", "cell broadcast"
    LOG: ClassVar[logging.Logger]
    EXTRA: ClassVar[Mapping[str, str]]  # the ``extra`` of its log lines
    WHO: ClassVar[str] = ""  # a target in words, before its id: "page ", "system "
    ITEMS: ClassVar[str] = "posts"  # what a target is sent: posts, alerts, bulletins
    STOPS: ClassVar[Collection[str]]  # the hold kinds an operator must lift (ALERT kinds)
    LIFTED: ClassVar[str]  # logged with a stopped target and the kind when it takes again
    ALERT_COUNTER: ClassVar[Counter | None] = None  # the channel's alerts by reason

    def __init__(self, config: C, stats: S, *, now: Callable[[], float] = time.time) -> None:
        self.config = config
        self.stats = stats
        self._now = now
        self._route: Hold | None = None  # the whole route held (a channel's own faults)
        self._holds: dict[str, Hold] = {}  # target id -> its hold
        self._unknown: dict[str, int] = {}  # target id -> answers Loa does not know, in a row
        self._closed = False

    @property
    def stopped(self) -> dict[str, str]:
        """The targets stopped for a fault an operator must fix: target id -> its kind."""
        return {target: hold.kind for target, hold in self._holds.items()
                if hold.kind in self.STOPS}

    def _count(self, results: Results) -> Results:
        stats = self.stats
        stats.retried += len(results.retry)
        stats.failed += len(results.failed)
        stats.requeued += len(results.requeue)
        return results

    def _took(self, results: Results, i: int, target: str, remote: str) -> None:
        """Item ``i`` is published (``remote``: the target's id of it)."""
        results.sent.append(i)
        results.remote_ids.append(remote)
        self._accepted(target)

    def _accepted(self, target: str) -> None:
        """The target took an item: whatever held it is over."""
        self._unknown.pop(target, None)
        hold = self._holds.pop(target, None)
        if hold is not None and hold.kind in self.STOPS:
            self.LOG.warning(self.LIFTED, target, hold.kind, extra=self.EXTRA)
        if self._route is not None and self._route.until <= self._now():
            self._route = None

    def _unknowns(self, target: str, limit: int) -> int:
        """Count an answer of ``target`` that Loa does not know: how many came in a row once
        they reach ``limit`` (counted afresh after), else 0."""
        count = self._unknown[target] = self._unknown.get(target, 0) + 1
        if count < limit:
            return 0
        del self._unknown[target]
        return count

    def _hold(self, target: str, kind: str, reason: str, asked: float | None = None) -> str:
        """Hold ``target``: stopped (a kind of ``STOPS``) or backing off (its pause from
        :meth:`_pause`, ``asked`` the answer's ``Retry-After``); the reason its items are
        requeued with. A hold of this kind in force stays as it is."""
        now = self._now()
        hold = self._holds.get(target)
        if hold is not None and hold.until > now and hold.kind == kind:
            return hold.reason
        if kind in self.STOPS:
            return self._stop(target, kind, reason)
        last = hold.backoff if hold is not None and hold.kind == kind else None
        seconds, why = self._pause(target, kind, reason, last, asked)
        self._holds[target] = Hold(kind, why, now + seconds, seconds)
        return why

    def _pause(self, target: str, kind: str, reason: str, last: float | None,
               asked: float | None) -> tuple[float, str]:
        """How long ``target`` backs off for ``kind`` (``last``: its last pause of this kind),
        and why (what its items are requeued with)."""
        raise NotImplementedError(f"{self.NAME}: no back-off for {kind}")

    def _stop(self, target: str, kind: str, reason: str) -> str:
        """Stop ``target`` until its next try, every ``alert_probe_seconds``, with an ALERT; the
        reason its items are requeued with."""
        probe = self.config.alert_probe_seconds
        why = f"{reason}; {self.WHO}{target} stopped, tried again every {probe:g} s"
        self._stop_alert(target, kind, reason)
        self._holds[target] = Hold(kind, why, self._now() + probe, probe)
        return why

    def _stop_alert(self, target: str, kind: str, reason: str) -> None:
        self._alert(kind, f"{self.WHO}{target} stopped, its {self.ITEMS} kept queued, an "
                          f"operator must act: {reason}")

    def _alert(self, reason: str, text: str) -> None:
        self.stats.alerts += 1
        if self.ALERT_COUNTER is not None:
            self.ALERT_COUNTER.labels(reason).inc()
        self.LOG.error(f"ALERT {self.NAME} (%s): %s", reason, text, extra=self.EXTRA)


class BatchOutlet(Outlet[B, S], Generic[B, S, T]):
    """An outlet channel that sends an envelope's items side by side, one per target of
    ``targets`` (target id -> what the channel needs of it)."""

    KEY: ClassVar[str]  # its settings table: "facebook", "cell_broadcast"
    KIND: ClassVar[str]  # a target of the table: "page", "carrier"
    ITEM: ClassVar[str] = "post"  # one item: post, alert
    AWAY: ClassVar[str] = "the peer is away"  # why a batch that found the peer away waits
    FAILURE_EXTRA: ClassVar[Mapping[str, str] | None] = None  # of an item's internal error
    # a batch whose every item was held waits for the first of its own targets (True) or for
    # the first of the channel's held targets (False)
    OWN_TARGETS: ClassVar[bool] = False

    def __init__(self, config: B, stats: S, targets: Mapping[str, T], *,
                 now: Callable[[], float] = time.time) -> None:
        super().__init__(config, stats, now=now)
        self._targets = targets
        self._slots = asyncio.Semaphore(config.concurrency)
        self._outage = 0.0  # the route's last pause for the peer away (0: none since)

    async def send(self, envelope: Envelope) -> Results:
        if self._closed:
            raise ChannelError(f"the {self.NAME} channel is closed")
        results = results_for(envelope)
        n = len(envelope.addrs)
        if not n:
            return results
        hold = self._route
        if hold is not None and self._now() < hold.until:
            results.requeue = [(i, hold.reason) for i in range(n)]
            results.pause_until = hold.until
            return self._count(results)
        batch = Batch(envelope, results)
        async with asyncio.TaskGroup() as tasks:
            for i in range(n):
                tasks.create_task(self._guarded(batch, i))
        self._after(batch, n)
        return self._count(results)

    def _after(self, batch: Batch, n: int) -> None:
        """The route's pause after a batch: the peer away, the route held, only held targets."""
        results = batch.results
        if batch.down and batch.down >= batch.tried:
            self._outage = min(self.config.outage_pause_max, max(1.0, self._outage * 2))
            results.requeue.extend((i, f"{self.AWAY}: {why}") for i, why in results.retry)
            results.retry = []
            results.pause_until = max(results.pause_until, self._now() + self._outage)
            self._away(self._outage)
        elif batch.down == 0:
            self._outage = 0.0
        now = self._now()
        hold = self._route
        if hold is not None and hold.until > now:
            results.pause_until = max(results.pause_until, hold.until)
        elif batch.held == n:  # nothing of it could go: wait for the first target's next try
            waits = [h.until for target, h in self._holds.items() if h.until > now
                     and (target in batch.targets or not self.OWN_TARGETS)]
            if waits:
                results.pause_until = max(results.pause_until, min(waits))
                results.urgent_passes = True

    def _away(self, seconds: float) -> None:
        """Every request of a batch found the peer away: the route pauses ``seconds``."""
        raise NotImplementedError(f"{self.NAME}: a batch is not paused for the peer away")

    async def _guarded(self, batch: Batch, i: int) -> None:
        try:
            await self._one(batch, i)
        except Exception as exc:  # a bug must not lose the batch: the item is tried again
            self.LOG.exception(f"{self.NAME}: {self.ITEM} %d of a batch failed", i,
                               extra=self.FAILURE_EXTRA)
            batch.results.retry.append((i, f"internal error: {exc!r}"))

    def _waiting(self, batch: Batch, i: int, target: str) -> bool:
        """Requeue item ``i`` if it may not go now (halted, the route or its target held)."""
        results = batch.results
        if halted(batch.envelope):
            results.requeue.append((i, HALTED))
            return True
        now = self._now()
        if self._route is not None and now < self._route.until:
            results.requeue.append((i, self._route.reason))
            return True
        hold = self._holds.get(target)
        if hold is not None and now < hold.until:
            batch.held_back(i, target, hold.reason)
            return True
        return False

    async def _one(self, batch: Batch, i: int) -> None:
        addr = batch.envelope.addrs[i]
        target = self._targets.get(addr)
        if target is None:
            batch.results.failed.append(
                (i, f"{self.KEY}: no {self.KIND} {addr!r} in [{self.KEY}] {self.KIND}s"))
            return
        unfit = self._unfit(batch.envelope, target)
        if unfit:
            batch.results.failed.append((i, unfit))
            return
        if self._waiting(batch, i, addr):
            return
        async with self._slots:
            if self._waiting(batch, i, addr):  # held while this item waited for its turn
                return
            batch.tried += 1
            await self._deliver(batch, i, target)

    def _unfit(self, envelope: Envelope, target: T) -> str:
        """Why no try can publish the envelope to ``target`` ("": none, it may go)."""
        return ""

    async def _deliver(self, batch: Batch, i: int, target: T) -> None:
        """Send item ``i`` to ``target`` and settle its outcome."""
        raise NotImplementedError
