"""Cell broadcasts once the carriers' centres took them: their states, and their Cancels.

A cell broadcast lives on after its alert is taken: the carrier's CBC repeats it in the area's
cells until it expires. So, beside the worker that submits the alerts, a pass of this tracker
runs every second in each process whose cell broadcast channel can read and withdraw what it
published (:class:`adapters.base.Withdrawable`), one process at a time (the lease
``broadcasts``):

* it records each (wave, carrier) whose sent bit is set as a broadcast
  (:class:`dispatcher.domain.broadcast.Broadcast`, kept once in the store);
* it reads each live broadcast's state from its CBC every ``status_seconds``, at most
  ``status_reads`` times (shown by ``GET /v1/cell-broadcasts``, counted by
  ``loa_cell_broadcast_status{carrier,status}``);
* it sends the CAP Cancel of every broadcast that is still live when its wave is cancelled, or
  was live while the emergency stop was on (recorded before the last lift, or while it is on),
  or whose wave an operator withdrew (``POST /v1/cell-broadcasts/{wave}/cancel``: a wave
  completes once every carrier took it, and its broadcasts go on until they expire).
  Each is cancelled once: the Cancel is recorded in the store (once, whichever process), its
  identifier is the same from every process and every try, and a CBC that took it already
  answers 409. A Cancel a CBC did not take is tried again, one pass later, doubling up to
  :data:`RETRY_MOST` seconds.

Once a cancelled wave is settled (nothing of it queued or in flight), the carriers whose outcome
Loa never learnt (an acceptance lost to a crash) get its Cancel too: a CBC that never had the
alert answers 404 (recorded ``absent``).

The emergency stop itself does not wait for any of it: it is a flag every worker obeys; the
Cancels follow within a pass, and still go while the stop is on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import msgspec

from adapters.base import Envelope, Standing, Withdrawable
from dispatcher.domain.broadcast import FINAL, Broadcast, Reason, State, Withdrawal
from dispatcher.domain.errors import LoaError
from dispatcher.domain.model import Channel, Priority, Wave, WaveState
from dispatcher.engine import metrics, routing
from dispatcher.store.base import Store

log = logging.getLogger(__name__)

PASS_SECONDS = 1.0
LEASE = "broadcasts"  # the lease of the pass (one process at a time)
GAUGE_SECONDS = 15.0
GAUGE_RECORDS = 1000
RETRY_FIRST = 1.0
RETRY_MOST = 60.0
STOP_HISTORY = 20


class Report(msgspec.Struct):
    """What a pass did."""

    held: bool = False  # this process held the lease: it did the work
    recorded: int = 0
    read: int = 0
    cancelled: list[str] = []  # "<wave> <carrier>" of the Cancels a CBC took


class _LeaseLost(Exception):
    pass


def envelope_of(wave: Wave) -> Envelope:
    """The wave as its adapter saw it (its addresses aside): what names its publication."""
    return Envelope(wave=wave.id, channel=wave.channel, text=wave.text, addrs=[],
                    route=wave.channel.value, urgent=wave.priority is Priority.URGENT,
                    created_at=wave.created_at.timestamp(),
                    districts=routing.districts_of(wave), level=wave.level)


class BroadcastTracker:
    """The pass (see the module's documentation). ``settled`` says whether a wave has nothing
    queued or in flight any more."""

    def __init__(self, store: Store, channel: Channel, adapter: Withdrawable, name: str,
                 settled: Callable[[Wave], Awaitable[bool]], *,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.channel = channel
        self.adapter = adapter
        self.name = name
        self.settled = settled
        self.clock = clock
        self.ttl = max(15.0, 3 * adapter.timeout)  # longer than any call of the pass
        self._waves: dict[str, Wave | None] = {}  # wave id -> the wave, if of the channel
        self._done: set[str] = set()  # waves with nothing more to do
        self._retry: dict[str, tuple[float, float]] = {}  # key -> (next try, its back-off)
        self._gauged = 0.0

    async def tick(self) -> Report:
        report = Report()
        now = self.clock()
        if not await self.store.leases.acquire(LEASE, self.name, self.ttl):
            return report
        report.held = True
        stopped_until = await self._stopped_until(now)
        withdrawn = await self.store.broadcasts.requests()
        states = await self.store.waves.states()
        try:
            for wave_id, state in states.items():
                if wave_id in self._done:
                    continue
                wave = await self._wave(wave_id)
                if wave is None:
                    self._done.add(wave_id)
                    continue
                await self._pass(wave, state, now, stopped_until, wave_id in withdrawn, report)
        except _LeaseLost:
            log.warning("cell broadcast: the lease %r went to another process mid-pass", LEASE)
        if now >= self._gauged + GAUGE_SECONDS:
            self._gauged = now
            await self._gauge(now)
        return report

    async def _wave(self, wave_id: str) -> Wave | None:
        if wave_id not in self._waves:
            wave = await self.store.waves.get(wave_id)
            tracked = wave is not None and wave.channel is self.channel and bool(wave.targets)
            self._waves[wave_id] = wave if tracked else None
        return self._waves[wave_id]

    async def _stopped_until(self, now: float) -> float:
        """Broadcasts recorded up to this time were live while the emergency stop was on: now
        while it is on, else the time of the lift that ended the last stop (0: none)."""
        lift = 0.0
        for entry in await self.store.stop.history(STOP_HISTORY):  # newest first
            if entry.active:
                return lift or now
            if not lift:
                lift = entry.at.timestamp()
        return 0.0

    async def _pass(self, wave: Wave, state: WaveState, now: float, stopped_until: float,
                    withdrawn: bool, report: Report) -> None:
        route = wave.channel.value
        if await self.store.queue.cursor(route, wave.id) < 0:  # nothing of it enqueued yet
            if state is WaveState.CANCELLED:
                self._done.add(wave.id)  # and never will be
            return
        pairs = [(wave.id, t.id) for t in wave.targets]
        records = await self.store.broadcasts.get(pairs)
        new = await self._recorded(wave, state, records, now)
        if new:
            report.recorded += await self.store.broadcasts.add(new)
            records = await self.store.broadcasts.get(pairs)
        live = False
        for record in records:
            if record is None:
                continue
            if record.withdrawal is not None or record.over(now):
                continue
            live = True
            reason = (Reason.CANCELLED if state is WaveState.CANCELLED
                      else Reason.WITHDRAWN if withdrawn
                      else Reason.STOP if record.seen_at <= stopped_until else None)
            if reason is not None:
                await self._withdraw(wave, record, reason, now, report)
            elif record.next_read and now >= record.next_read:
                await self._read(wave, record, now, report)
        if not live and state in (WaveState.COMPLETED, WaveState.CANCELLED) and (
                state is WaveState.COMPLETED or await self.settled(wave)):
            self._done.add(wave.id)

    async def _recorded(self, wave: Wave, state: WaveState, records: list[Broadcast | None],
                        now: float) -> list[Broadcast]:
        """The broadcasts to record: those a CBC took (their sent bit is set) that are not yet;
        of a cancelled wave that is settled, the carriers whose outcome is not known too."""
        missing = [i for i, record in enumerate(records) if record is None]
        if not missing:
            return []
        sent = await self.store.queue.sent_mask(wave.id, missing)
        unconfirmed = (state is WaveState.CANCELLED and not all(sent)
                       and await self.settled(wave))
        envelope = envelope_of(wave)
        until = self.adapter.live_until(envelope)
        reads = self.adapter.status_reads
        found = []
        for i, taken in zip(missing, sent, strict=True):
            if not taken and not unconfirmed:
                continue
            found.append(Broadcast(
                wave=wave.id, carrier=wave.targets[i].id,
                identifier=self.adapter.identifier(envelope), seen_at=now, live_until=until,
                state=State.ACCEPTED if taken else State.UNKNOWN, unconfirmed=not taken,
                next_read=now + self.adapter.status_seconds if taken and reads else 0.0))
        return found

    def _due(self, key: str, now: float) -> bool:
        retry = self._retry.get(key)
        return retry is None or now >= retry[0]

    def _failed(self, key: str, now: float) -> float:
        backoff = min(RETRY_MOST, self._retry[key][1] * 2 if key in self._retry
                      else RETRY_FIRST)
        self._retry[key] = (now + backoff, backoff)
        return backoff

    async def _renew(self) -> None:
        if not await self.store.leases.acquire(LEASE, self.name, self.ttl):
            raise _LeaseLost

    async def _withdraw(self, wave: Wave, record: Broadcast, reason: Reason, now: float,
                        report: Report) -> None:
        if not self._due(record.key, now):
            return
        await self._renew()  # no other process sends this Cancel while this one does
        try:
            standing = await self.adapter.withdraw(envelope_of(wave), record.carrier)
        except Exception as exc:  # any failure of the channel: tried again, nothing lost
            backoff = self._failed(record.key, now)
            metrics.CELL_BROADCAST_CANCEL_FAILURES.labels(record.carrier).inc()
            log.warning("cell broadcast: the Cancel of wave %s to %s did not go (tried again "
                        "in %g s): %s", wave.id, record.carrier, backoff, exc,
                        exc_info=not isinstance(exc, LoaError))
            return
        self._retry.pop(record.key, None)
        withdrawal = Withdrawal(at=now, reason=reason, state=standing.state,
                                detail=standing.detail)
        if await self.store.broadcasts.withdrawn(wave.id, record.carrier, withdrawal):
            metrics.CELL_BROADCAST_CANCELS.labels(reason.value).inc()
            report.cancelled.append(record.key)
            log.warning("cell broadcast of wave %s on %s cancelled (%s): %s", wave.id,
                        record.carrier, reason.value, standing.detail or standing.state,
                        extra={"wave": wave.id, "channel": wave.channel})
        await self.store.broadcasts.put(self._stood(record, standing, now, reads=False))

    async def _read(self, wave: Wave, record: Broadcast, now: float, report: Report) -> None:
        if not self._due(record.key, now):
            return
        await self._renew()
        try:
            standing = await self.adapter.standing(envelope_of(wave), record.carrier)
        except Exception as exc:  # the CBC cannot say now: read again later
            backoff = self._failed(record.key, now)
            log.info("cell broadcast: the state of wave %s on %s not read (again in %g s): %s",
                     wave.id, record.carrier, backoff, exc,
                     exc_info=not isinstance(exc, LoaError))
            await self.store.broadcasts.put(self._later(record, now))
            return
        self._retry.pop(record.key, None)
        report.read += 1
        if standing is None:  # the CBC has no status interface
            await self.store.broadcasts.put(msgspec.structs.replace(
                record, next_read=0.0, detail="the centre does not tell the state"))
            return
        await self.store.broadcasts.put(self._stood(record, standing, now, reads=True))

    def _later(self, record: Broadcast, now: float) -> Broadcast:
        reads = record.reads + 1
        more = reads < self.adapter.status_reads
        return msgspec.structs.replace(record, reads=reads, next_read=(
            now + self.adapter.status_seconds if more else 0.0))

    def _stood(self, record: Broadcast, standing: Standing, now: float, *,
               reads: bool) -> Broadcast:
        """``record`` as ``standing`` says it is."""
        after = self._later(record, now) if reads else msgspec.structs.replace(
            record, next_read=0.0)
        return msgspec.structs.replace(
            after, state=standing.state, state_at=now,
            reference=standing.reference or record.reference, detail=standing.detail,
            next_read=0.0 if standing.state in FINAL else after.next_read)

    async def _gauge(self, now: float) -> None:
        counts: dict[tuple[str, str], int] = {}
        for record in await self.store.broadcasts.latest(GAUGE_RECORDS):
            pair = (record.carrier, shown_state(record, now))
            counts[pair] = counts.get(pair, 0) + 1
        metrics.CELL_BROADCAST_STATUS.clear()
        for (carrier, status), n in sorted(counts.items()):
            metrics.CELL_BROADCAST_STATUS.labels(carrier, status).set(n)


def shown_state(record: Broadcast, now: float) -> str:
    """A broadcast's state for people: its Cancel's outcome, expired once its expiry passed
    while the CBC last said it was live, else as the CBC last said it."""
    if record.withdrawal is not None:
        return record.withdrawal.state.value
    if record.state not in FINAL and record.live_until and now >= record.live_until:
        return State.EXPIRED.value
    return record.state.value
