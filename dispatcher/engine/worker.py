"""Workers: read batches from route streams, drop what is already sent, throttle, send, record.

Per route a worker runs ``consumers_per_route`` consumers (batches in flight), a reclaimer that
takes over batches a dead worker left behind (after ``lease_seconds`` without a heartbeat), a
mover that puts due retries back on the stream, and a heartbeat that keeps this worker's claims
fresh, so a slow batch is never taken from a live worker. Each batch costs a fixed number of
store commands whatever its size: one to drop already-sent messages, one to finish it.

Every loop outlives a store outage (Redis restarting, unreachable, loading its AOF): it waits,
0.1 s doubling up to 2 s, and goes on when the store answers again. A batch in hand is kept
meanwhile (its store calls are tried again, and heartbeats resume with the store), so it is
finished, not sent again, unless another worker took it over or this one is stopping: then it
stays pending and is sent again by whoever reclaims it, which ``loa_messages_total{result=
"unrecorded"}`` counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import TypeVar

from adapters.base import HALTED, Abort, Adapter, Envelope, Results
from dispatcher.domain import repeats
from dispatcher.domain.errors import LoaError
from dispatcher.domain.model import Batch, Channel, OverQuota, Priority, Wave, WaveState
from dispatcher.engine import logs, metrics, routing, suppressions
from dispatcher.engine.fallback import SmsFallback
from dispatcher.engine.retry import RetryPolicy
from dispatcher.engine.sentmarks import SentMarks
from dispatcher.engine.settings import EngineConfig
from dispatcher.engine.throttle import RouteThrottle
from dispatcher.store.base import Completion, DeadLetter, Delivery, Entry, RetryItem, Store

log = logging.getLogger(__name__)

READ_BLOCK_MS = 200  # how long a consumer waits for work before looking at its stop flag
STOP_WATCH_SECONDS = 1.0  # one wait for the emergency stop: short of any socket timeout
RETRY_BATCH = 500  # retries moved back per entry
TRANSIENT = metrics.STORE_TRANSIENT
HALTING = frozenset({WaveState.PAUSED, WaveState.CANCELLED})  # states that halt a batch

T = TypeVar("T")


class Worker:
    def __init__(self, store: Store, adapters: Mapping[Channel, Adapter], routes: list[str],
                 settings: EngineConfig, *, name: str, policy: RetryPolicy | None = None,
                 fallback: SmsFallback | None = None,
                 gate: Callable[[str], bool] | None = None) -> None:
        """``gate(route)``: whether this worker may take batches of the route now (SMS routes
        whose link has no bind held by this process are left to the workers that hold one)."""
        self.store = store
        self.gate = gate
        self.adapters = adapters
        self.routes = routes
        self.settings = settings
        self.name = name
        self.policy = policy or RetryPolicy(settings.retry)
        self._waves: dict[str, Wave] = {}
        self._states: dict[str, WaveState] = {}
        # route -> entry -> when this worker last (re)claimed it, as sent to the store: no other
        # worker can take it over before that moment plus a lease
        self._held: dict[str, dict[Entry, float]] = {r: {} for r in routes}
        # route -> entries held but not started: of a paused wave, under the emergency stop,
        # or routine ones read together with urgent ones (which go first)
        self._parked: dict[str, dict[Entry, Delivery]] = {r: {} for r in routes}
        burst = settings.engine.rate_burst_seconds
        self._throttles = {r: RouteThrottle(settings.rate(r), burst_seconds=burst)
                           for r in routes if settings.rate(r) > 0}
        self.fallback = fallback
        self._paused: dict[str, float] = {}  # route -> epoch seconds (a channel's quota)
        self._urgent_passes: set[str] = set()  # paused routes whose urgent batches still go
        self.processed = 0  # deliveries finished by this worker
        self.unrecorded = 0  # messages sent whose batch this worker could not record
        self._stop = asyncio.Event()
        self.stopped = False  # the emergency stop is on (watched, and read with the states)
        self._stop_mark = ""  # the last set or lift of the stop seen by the watcher
        self._stop_notices = 0  # sets and lifts the watcher saw
        self._aborts: dict[Abort, str] = {}  # envelopes being sent -> their wave
        self._metrics = {r: metrics.for_route(r) for r in routes}  # counted per batch
        flush = settings.engine.sent_flush_seconds
        self.marks = SentMarks(store.queue, flush) if flush > 0 else None

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set; then finish the batches in hand and return."""
        self._stop = stop
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._loop(stop, "refreshing wave states", self._refresh_states))
            tasks.create_task(self._loop(stop, "watching the emergency stop", self._watch_stop))
            if self.marks is not None:
                tasks.create_task(self._loop(stop, "writing sent bits", self._write_marks))
            for route in self.routes:
                for _ in range(self.settings.engine.consumers_per_route):
                    tasks.create_task(self._loop(stop, f"a consumer of {route}",
                                                 self._consumer(route), route))
                tasks.create_task(self._loop(stop, f"the reclaimer of {route}",
                                             self._reclaimer(route), route))
                tasks.create_task(self._loop(stop, f"the retry mover of {route}",
                                             self._mover(route), route))
                tasks.create_task(self._loop(stop, f"the heartbeat of {route}",
                                             self._beat(route), route))

    # -- background loops --------------------------------------------------------------------

    async def _sleep(self, stop: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)

    @staticmethod
    def _running(stop: asyncio.Event) -> bool:
        """Whether a loop goes on. A cancellation that a client library swallowed mid-command
        still ends the loop: the task is marked as being cancelled even when no
        CancelledError reached this frame."""
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise asyncio.CancelledError
        return not stop.is_set()

    async def _loop(self, stop: asyncio.Event, where: str,
                    once: Callable[[asyncio.Event], Awaitable[None]],
                    route: str | None = None) -> None:
        """``once(stop)`` until ``stop``; a store outage makes it wait and try again. Its log
        lines carry ``route``."""
        backoff = metrics.Backoff(where)
        with logs.context(route=route):
            while self._running(stop):
                try:
                    await once(stop)
                except TRANSIENT as exc:  # logged once per outage, by metrics.StoreHealth
                    await self._sleep(stop, backoff.failed(exc))
                else:
                    backoff.ok()

    async def _refresh_states(self, stop: asyncio.Event) -> None:
        if self._waves:
            self._states.update(await self.store.waves.states(list(self._waves)))
        notices = self._stop_notices
        current = await self.store.stop.get()
        if notices == self._stop_notices:  # else the watcher saw a newer set or lift meanwhile
            self._obey(current is not None and current.active)
        await self._sleep(stop, self.settings.engine.state_refresh_seconds)

    async def _watch_stop(self, stop: asyncio.Event) -> None:
        """Obey each set or lift of the emergency stop as it is made (the state refresh reads
        it too, should a notice be missed): the envelopes being sent are halted before their
        next message."""
        watch = asyncio.ensure_future(self.store.stop.watch(self._stop_mark, STOP_WATCH_SECONDS))
        stopping = asyncio.ensure_future(stop.wait())
        try:  # a worker that is stopping does not wait for the watch's timeout
            await asyncio.wait({watch, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pending in (watch, stopping):
                pending.cancel()
            await asyncio.gather(watch, stopping, return_exceptions=True)
        if stop.is_set() or watch.cancelled():
            return
        mark, state = watch.result()  # a store outage raises: the loop waits, then watches
        self._stop_mark = mark
        if state is not None:
            self._stop_notices += 1
            self._obey(state.active)

    def _obey(self, stopped: bool) -> None:
        if stopped != self.stopped:
            self.stopped = stopped
            log.warning("emergency stop %s", "on: nothing is sent" if stopped else "lifted")
        self._halt_aborted()

    def _halt_aborted(self) -> None:
        """Halt the envelopes being sent whose wave may not send now: the adapters send no
        more of them (what they had not sent is requeued)."""
        states = self._states
        for abort, wave in self._aborts.items():
            if self.stopped or states.get(wave) in HALTING:
                abort.halted = True

    async def _write_marks(self, stop: asyncio.Event) -> None:
        assert self.marks is not None
        await self._sleep(stop, self.marks.interval)
        await self.marks.flush()

    def _consumer(self, route: str) -> Callable[[asyncio.Event], Awaitable[None]]:
        queue = self.store.queue

        async def once(stop: asyncio.Event) -> None:
            if self.stopped or (self.gate is not None and not self.gate(route)):
                await self._sleep(stop, READ_BLOCK_MS / 1000)
                return
            wait = self._paused.get(route, 0.0) - time.time()
            if wait > 0:  # the channel said "no more until then": leave the batches queued
                if route in self._urgent_passes:  # ... but for urgent ones (e.g. SMS at night)
                    urgent = await queue.read(route, self.name, 1, 0, urgent_only=True)
                    for delivery in urgent:
                        await self._process(route, delivery, time.monotonic())
                    if urgent:
                        return
                    await self._sleep(stop, min(wait, READ_BLOCK_MS / 1000))
                    return
                await self._sleep(stop, min(wait, 1.0))
                return
            claimed = time.monotonic()
            if self._parked[route]:  # batches in hand wait for the urgent lane to be empty
                urgent = await queue.read(route, self.name, 1, 0, urgent_only=True)
                for delivery in urgent:
                    await self._process(route, delivery, claimed)
                if urgent or await self._unpark(route):
                    return
            deliveries = await queue.read(route, self.name, 1, READ_BLOCK_MS)
            urgent_read = any(d.entry.urgent for d in deliveries)
            for delivery in deliveries:
                if urgent_read and not delivery.entry.urgent:
                    # read with an urgent one: it starts once no urgent batch waits
                    self._parked[route][delivery.entry] = delivery
                else:
                    await self._process(route, delivery, claimed)
        return once

    def _reclaimer(self, route: str) -> Callable[[asyncio.Event], Awaitable[None]]:
        lease_ms = int(self.settings.engine.lease_seconds * 1000)

        async def once(stop: asyncio.Event) -> None:
            await self._sleep(stop, self.settings.engine.lease_seconds / 2)
            if stop.is_set() or self.stopped or (self.gate is not None and not self.gate(route)):
                return
            claimed = time.monotonic()
            for delivery in await self.store.queue.reclaim(route, self.name, lease_ms, 16):
                await self._process(route, delivery, claimed)
        return once

    def _mover(self, route: str) -> Callable[[asyncio.Event], Awaitable[None]]:
        async def once(stop: asyncio.Event) -> None:
            if self.stopped:  # retries wait where they are
                await self._sleep(stop, 0.2)
                return
            moved = await self.store.queue.move_due(route, time.time(), RETRY_BATCH)
            if moved < RETRY_BATCH:
                await self._sleep(stop, 0.2)
        return once

    def _beat(self, route: str) -> Callable[[asyncio.Event], Awaitable[None]]:
        async def once(stop: asyncio.Event) -> None:
            await self._sleep(stop, self.settings.engine.lease_seconds / 3)
            await self._touch(route)
        return once

    async def _touch(self, route: str) -> None:
        held = self._held[route]
        entries = list(held) + list(self._parked[route])
        if entries:
            touched = time.monotonic()
            for entry in await self.store.queue.touch(route, self.name, entries):
                if entry in held:
                    held[entry] = touched

    async def _persist(self, where: str, call: Callable[[], Awaitable[T]]) -> T:
        """``call()``, a store call made with a batch in hand, tried again while the store is
        away; raised when this worker is stopping."""
        backoff = metrics.Backoff(where)
        while True:
            try:
                result = await call()
            except TRANSIENT as exc:
                if self._stop.is_set():
                    raise
                await self._sleep(self._stop, backoff.failed(exc))
            else:
                backoff.ok()
                return result

    # -- one entry ---------------------------------------------------------------------------

    async def _wave(self, wave_id: str) -> tuple[Wave | None, WaveState | None]:
        wave = self._waves.get(wave_id)
        if wave is None:
            wave = await self.store.waves.get(wave_id)
            if wave is None:
                return None, None
            self._waves[wave_id] = wave
            self._states.update(await self.store.waves.states([wave_id]))
        return wave, self._states.get(wave_id)

    async def _unpark(self, route: str) -> bool:
        parked = self._parked[route]
        if self.stopped:
            return False
        for entry, delivery in list(parked.items()):
            if all(self._states.get(b.wave) is not WaveState.PAUSED for b in delivery.batches):
                del parked[entry]
                # A parked entry is kept by heartbeats but may have been taken over meanwhile:
                # claimed "long ago" makes the ownership check run before any send.
                await self._process(route, delivery, 0.0)
                return True
        return False

    async def _process(self, route: str, delivery: Delivery, claimed: float) -> None:
        held = self._held[route]
        held[delivery.entry] = claimed
        completion = Completion()
        try:
            if not await self._process_held(route, delivery, completion):
                self._unrecorded(route, completion)
        except TRANSIENT:  # stopping during a store outage: the batch stays pending
            self._unrecorded(route, completion)
            raise
        finally:
            held.pop(delivery.entry, None)

    def _unrecorded(self, route: str, completion: Completion) -> None:
        """The messages of ``completion`` were sent but will not be recorded by this worker:
        whoever takes their batch over sends them again."""
        n = sum(len(ids) for ids in completion.sent.values())
        if n:
            self.unrecorded += n
            self._metrics[route].unrecorded.inc(n)
            log.warning("%d messages of %s sent but not recorded: sent again when their batch "
                        "is taken over", n, route, extra={"route": route})

    async def _process_held(self, route: str, delivery: Delivery,
                            completion: Completion) -> bool:
        """Send and record ``delivery``; False if it was sent in part and left to another
        worker, unrecorded."""
        for batch in delivery.batches:
            _, state = await self._persist("reading a wave", partial(self._wave, batch.wave))
            if state is WaveState.PAUSED or self.stopped:  # kept in hand, sent when it may
                self._parked[route][delivery.entry] = delivery
                return True
        for batch in delivery.batches:
            wave, state = await self._persist("reading a wave", partial(self._wave, batch.wave))
            if wave is None or state is WaveState.CANCELLED:
                self._cancelled(route, batch, len(batch.ids), completion)
                if wave is not None and batch.retried and repeats.ledger(wave) is not None:
                    # claimed by an earlier attempt; those sent by one before keep theirs
                    await self._release(wave, await self._unsent_ids(batch))
                continue
            with logs.context(wave=wave.id, campaign=wave.campaign_id):
                if not await self._send(route, delivery.entry, wave, batch, completion):
                    return False  # taken over by another worker while slow: not ours
        if not await self._complete(route, delivery.entry, completion):
            return False
        refused = [d for d in completion.dead if d.unreachable]
        if refused:  # after the letters are written: a crash before loses the entries only
            await self._persist("adding to the suppression list",
                                lambda: self.store.suppressions.add(suppressions.refused(refused)))
        self.processed += 1
        return True

    async def _complete(self, route: str, entry: Entry, completion: Completion) -> bool:
        """Record a finished entry. When the store does not answer, the transaction may or may
        not have been applied: once it answers again, it is applied only if the entry is still
        pending with this worker (the acknowledgement is part of it). False if another worker
        took the entry over meanwhile."""
        backoff = metrics.Backoff(f"completing a batch of {route}")
        try:
            await self.store.queue.complete(route, entry, completion)
            return True
        except TRANSIENT as exc:
            if self._stop.is_set():
                raise
            await self._sleep(self._stop, backoff.failed(exc))
        while True:
            try:
                owner = await self.store.queue.owner(route, entry)
                if owner == self.name:
                    await self.store.queue.complete(route, entry, completion)
            except TRANSIENT as exc:
                if self._stop.is_set():
                    raise
                await self._sleep(self._stop, backoff.failed(exc))
                continue
            backoff.ok()
            # None: not pending any more, acknowledged by the first attempt
            return owner == self.name or owner is None

    async def _still_ours(self, route: str, entry: Entry) -> bool:
        """Whether this worker still holds ``entry``. Asked of the store only when a lease
        could have run out since the last claim or heartbeat, which is rare."""
        claimed = self._held[route].get(entry, 0.0)
        if time.monotonic() - claimed < self.settings.engine.lease_seconds / 2:
            return True
        owner = await self._persist("checking a batch's owner",
                                    lambda: self.store.queue.owner(route, entry))
        return owner == self.name

    async def _send(self, route: str, entry: Entry, wave: Wave, batch: Batch,
                    completion: Completion) -> bool:
        """Send what of ``batch`` is not sent yet; False if the entry is no longer ours."""
        keep = await self._unsent(route, wave, batch, completion)
        if not keep:
            return True
        keep = await self._unrepeated(route, wave, batch, keep, completion)
        if not keep:
            return True
        m = self._metrics[route]
        urgent = wave.priority is Priority.URGENT
        if not await self._throttle(route, wave, batch, keep, completion, urgent):
            return True
        if not await self._still_ours(route, entry):
            return False
        marks = self.marks
        progress, handle = marks.open(wave.id, batch.ids, keep) if marks else (None, None)
        abort = Abort()
        self._aborts[abort] = wave.id
        envelope = Envelope(wave=wave.id, channel=wave.channel,
                            text=wave.text_for(batch.district) if batch.district else wave.text,
                            addrs=[batch.addrs[i] for i in keep], route=route,
                            subject=wave.subject, strip_diacritics=wave.strip_diacritics,
                            progress=progress, abort=abort, urgent=urgent, zns=wave.zns,
                            over_quota_sms=self.fallback is not None
                            and wave.quota_policy_in_force is OverQuota.SMS,
                            created_at=wave.created_at.timestamp(),
                            districts=routing.districts_of(wave) if wave.channel.outlet else {},
                            level=wave.level)
        self._halt_aborted()  # stopped or paused since the batch was read: send none of it
        started = time.perf_counter()
        try:
            results = await self.adapters[routing.channel_of(route)].send(envelope)
        except LoaError as exc:
            if not exc.retryable:
                raise
            results = Results(requeue=[(k, str(exc)) for k in range(len(keep))])
        finally:
            del self._aborts[abort]
            if marks is not None and handle is not None:
                marks.close(handle)
        m.batch.observe(time.perf_counter() - started)
        if results.pause_until > time.time():
            self._paused[route] = results.pause_until
            if results.urgent_passes:
                self._urgent_passes.add(route)
            else:
                self._urgent_passes.discard(route)
            log.warning("route %s paused by its channel until %s", route,
                        time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(results.pause_until)),
                        extra={"route": route, "wave": wave.id, "campaign": wave.campaign_id})
        m.count(results, self._record(wave, batch, keep, results, completion))
        if self.fallback is not None and wave.fallback_text:
            await self._reroute(route, wave, batch, keep, results, completion)
        return True

    async def _unsent(self, route: str, wave: Wave, batch: Batch,
                      completion: Completion) -> list[int]:
        """The messages of ``batch`` whose sent bit is not set; the others count ``skipped``."""
        mask = await self._persist("reading sent bits",
                                   lambda: self.store.queue.sent_mask(batch.wave, batch.ids))
        if batch.retried and len(set(batch.ids)) < len(batch.ids):
            seen: set[int] = set()  # one recipient scheduled twice: the first goes, not both
            for i, recipient in enumerate(batch.ids):
                mask[i] = mask[i] or recipient in seen
                seen.add(recipient)
        if not any(mask):
            return list(range(len(batch.ids)))
        keep = [i for i, done in enumerate(mask) if not done]
        skipped = len(batch.ids) - len(keep)
        completion.count(wave.id, "skipped", skipped)
        self._metrics[route].skipped.inc(skipped)
        if batch.retried:
            completion.count(wave.id, "retrying", -skipped)
        return keep

    async def _reroute(self, route: str, wave: Wave, batch: Batch, keep: list[int],
                       results: Results, completion: Completion) -> None:
        """The failures another channel may deliver (``Results.fallback``: Zalo refusals), to
        the wave's SMS fallback."""
        fallback = self.fallback
        cured = [keep[k] for k in results.fallback]
        if fallback is None or not cured:
            return
        rerouted, capped = await self._persist(
            "rerouting to SMS", lambda: fallback.reroute(wave, batch, cured, completion))
        m = self._metrics[route]
        m.fallback.inc(rerouted)
        m.fallback_capped.inc(capped)

    async def _unrepeated(self, route: str, wave: Wave, batch: Batch, keep: list[int],
                          completion: Completion) -> list[int]:
        """``keep`` less the recipients who got the wave's text on its channel from another
        wave within its window (dispatcher.domain.repeats); those are counted ``repeats``."""
        ledger = repeats.ledger(wave)
        if ledger is None:
            return keep
        ids = [batch.ids[i] for i in keep]
        claim = partial(self.store.ledger.claim, ledger, ids, now=repeats.minute(time.time()),
                        window=wave.repeat_window, tag=repeats.tag(wave.id),
                        ttl=repeats.LEDGER_TTL.total_seconds())
        allowed = await self._persist("claiming recipients", claim)
        refused = allowed.count(False)
        if not refused:
            return keep
        completion.count(wave.id, "repeats", refused)
        self._metrics[route].repeats.inc(refused)
        if batch.retried:  # each was counted as retrying when it was scheduled
            completion.count(wave.id, "retrying", -refused)
        return [i for i, ok in zip(keep, allowed, strict=True) if ok]

    async def _unsent_ids(self, batch: Batch) -> list[int]:
        """The recipients of ``batch`` whose sent bit is not set."""
        mask = await self._persist("reading sent bits",
                                   lambda: self.store.queue.sent_mask(batch.wave, batch.ids))
        return [r for r, done in zip(batch.ids, mask, strict=True) if not done]

    async def _release(self, wave: Wave, ids: list[int]) -> None:
        """Free the ledger claims of recipients of ``wave`` that will not be sent it (the wave
        is cancelled): another wave with the text may reach them."""
        ledger = repeats.ledger(wave)
        if ledger is not None and ids:
            await self._persist("releasing claims", lambda: self.store.ledger.release(
                ledger, ids, tag=repeats.tag(wave.id)))

    async def _throttle(self, route: str, wave: Wave, batch: Batch, keep: list[int],
                        completion: Completion, urgent: bool) -> bool:
        """Wait for the route's rate to allow ``n`` messages; False if the wave was cancelled
        (none of them is sent, all are counted cancelled), paused or the emergency stop came
        meanwhile (all are put back, without using an attempt)."""
        throttle = self._throttles.get(route)
        if throttle is None:
            return True
        waited = time.perf_counter()
        states = self._states
        wave_id = wave.id

        def halted() -> bool:
            return self.stopped or states.get(wave_id) in HALTING

        await throttle.acquire(len(keep), halted, urgent=urgent)
        self._metrics[route].throttle.inc(time.perf_counter() - waited)
        state = states.get(wave_id)
        if state is WaveState.CANCELLED:
            self._cancelled(route, batch, len(keep), completion)
            await self._release(wave, [batch.ids[i] for i in keep])  # unsent: read before
            return False
        if self.stopped or state in HALTING:
            # they wait for the wave to be resumed or the stop to be lifted, on the route's
            # retry schedule, without using an attempt
            results = Results(requeue=[(k, HALTED) for k in range(len(keep))])
            self._metrics[route].count(results, self._record(wave, batch, keep, results,
                                                             completion))
            return False
        return True

    def _cancelled(self, route: str, batch: Batch, n: int, completion: Completion) -> None:
        """``n`` messages of ``batch`` not sent: their wave is cancelled."""
        completion.count(batch.wave, "cancelled", n)
        self._metrics[route].cancelled.inc(n)
        if batch.retried:  # each was counted as retrying when it was scheduled
            completion.count(batch.wave, "retrying", -n)

    def _record(self, wave: Wave, batch: Batch, keep: list[int], results: Results,
                completion: Completion) -> int:
        """Put the batch's outcomes in ``completion``; returns how many retries ran out."""
        ids = batch.ids
        expired = 0
        urgent = wave.priority is Priority.URGENT
        district = batch.district
        if batch.retried:  # each of these was counted as retrying when it was scheduled
            completion.count(wave.id, "retrying", -len(keep))
        sent = [ids[keep[k]] for k in results.sent]
        completion.sent.setdefault(wave.id, []).extend(sent)
        if results.receipts:
            remote = completion.remote
            for recipient, remote_id in zip(sent, results.remote_ids, strict=True):
                for part, part_id in enumerate(remote_id.split(",")):
                    remote[part_id] = (wave.id, recipient, part)
        # the wave's sent counter moves with the sent bits (Queue.mark_sent, Queue.complete)
        now = time.time()
        dead = completion.dead
        for k, reason in results.retry:
            i = keep[k]
            attempts = batch.attempt(i) + 1
            if self.policy.exhausted(attempts):
                expired += 1
                dead.append(DeadLetter(wave.id, wave.channel, ids[i], batch.addrs[i], attempts,
                                       f"retries exhausted: {reason}", expired=True,
                                       district=district))
                completion.count(wave.id, "expired", 1)
            else:
                item = RetryItem(wave.id, wave.channel, ids[i], batch.addrs[i], attempts,
                                 urgent=urgent, district=district)
                completion.retries.append((now + self.policy.delay(attempts), item))
                completion.count(wave.id, "retrying", 1)
        for k, _reason in results.requeue:  # never reached the channel: no attempt used
            i = keep[k]
            item = RetryItem(wave.id, wave.channel, ids[i], batch.addrs[i], batch.attempt(i),
                             urgent=urgent, district=district)
            completion.retries.append((now + self.policy.delay(1), item))
            completion.count(wave.id, "retrying", 1)
        unreachable = set(results.unreachable)
        for k, reason in results.failed:
            i = keep[k]
            dead.append(DeadLetter(wave.id, wave.channel, ids[i], batch.addrs[i],
                                   batch.attempt(i) + 1, reason, unreachable=k in unreachable,
                                   district=district))
            completion.count(wave.id, "failed", 1)
        return expired
