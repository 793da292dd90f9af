"""The engine of one process: reconciler, wave runner and worker, on one store.

With the reconciler runs the CAP publisher (:mod:`dispatcher.engine.cap`): the public alerts as
CAP messages, each published once whichever processes run it; in the reconciler's loop, the
retention pass (:mod:`dispatcher.engine.retention`, hourly), which removes the lists of numbers
and the CAP messages past their retention, one process at a time; and, when Wi-Fi controllers are
configured, the pusher of each new public notice to them (:mod:`dispatcher.engine.wifi`), under
a store lease: one process pushes. A process whose cell broadcast channel can read and withdraw
what it published runs the broadcast tracker (:mod:`dispatcher.engine.broadcasts`): the
broadcasts' states, and their Cancels when their wave is cancelled or the emergency stop is
raised.

The wave runner starts the fan-out of waves that may start (urgent or ``start_now``, or inside
the sending hours), holding a lease per wave so that one process fans a wave out at a time and
another resumes it if that process dies; it starts approved campaigns and marks waves and
campaigns completed when every message has an outcome. Any number of processes may run an
engine on the same Redis. As a Zalo wave's fan-out begins, the OA's daily quota is read
(:mod:`dispatcher.engine.capacity`): the recipients beyond it are counted on the wave.

A store outage stops none of its loops: they wait (0.1 s doubling up to 2 s) and go on when the
store answers. A fan-out that meets one ends and is started again by the runner once the store
answers, from the cursors the store has then (a Redis that restarted may have lost its last
second of writes: those steps are enqueued again, never skipped).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import socket
from collections.abc import Callable, Mapping

import msgspec

from adapters.base import Adapter, QuotaReader, Withdrawable
from dispatcher.domain.errors import PermissionDenied, StateError
from dispatcher.domain.model import (
    WAVE_FINAL,
    Campaign,
    CampaignState,
    Channel,
    Priority,
    Wave,
    WaveState,
)
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.engine import logs, metrics, routing
from dispatcher.engine.binds import BindLeases
from dispatcher.engine.broadcasts import PASS_SECONDS as BROADCAST_SECONDS
from dispatcher.engine.broadcasts import BroadcastTracker
from dispatcher.engine.campaigns import Campaigns
from dispatcher.engine.cap import PUBLISH_SECONDS, CapPublisher
from dispatcher.engine.capacity import check_wave
from dispatcher.engine.fallback import SmsFallback
from dispatcher.engine.fanout import fan_out
from dispatcher.engine.incoming import IncomingIntake
from dispatcher.engine.receipts import ReceiptMatcher
from dispatcher.engine.reconciler import Reconciler
from dispatcher.engine.reminders import Reminders
from dispatcher.engine.retention import Retention
from dispatcher.engine.settings import EngineConfig
from dispatcher.engine.stop import is_stopped
from dispatcher.engine.unfanned import Unfanned
from dispatcher.engine.wifi import WifiPusher
from dispatcher.engine.worker import Worker
from dispatcher.store.base import Store

log = logging.getLogger(__name__)

RUNNER_SECONDS = 0.2
TRANSIENT = metrics.STORE_TRANSIENT
STARTABLE = frozenset({WaveState.CREATED, WaveState.FANNING_OUT})
FANNING_OUT = frozenset({WaveState.FANNING_OUT})
SENDING = frozenset({WaveState.SENDING})
COMPLETED = frozenset({WaveState.COMPLETED})
OUTCOMES = ("sent", "failed", "expired", "cancelled", "repeats", "suppressed")


class Progress(msgspec.Struct):
    """Where a wave (or the sum of several) stands; ``queued`` is what has no outcome yet."""

    total: int = 0
    queued: int = 0
    sent: int = 0
    failed: int = 0
    expired: int = 0
    retrying: int = 0
    dead_letters: int = 0
    cancelled: int = 0
    skipped: int = 0
    delivered: int = 0  # receipts: delivered to the handset
    undelivered: int = 0  # receipts: undeliverable, rejected, deleted
    receipt_expired: int = 0  # receipts: expired at the SMSC
    fallback: int = 0  # not reachable on Zalo: sent by SMS in the companion wave instead
    repeats: int = 0  # not sent: got the same text on the channel within the window already
    fallback_capped: int = 0  # not reachable on Zalo and not sent by SMS: the day's cap
    suppressed: int = 0  # not sent: on the channel's suppression list (fan-out)
    fallback_suppressed: int = 0  # not reachable on Zalo and on the SMS list: no fallback
    over_quota: int = 0  # Zalo: recipients beyond the OA's daily quota read at the wave's start
    quota_unknown: int = 0  # Zalo: 1 when the quota could not be read at the wave's start

    def add(self, other: Progress) -> None:
        for field in self.__struct_fields__:
            setattr(self, field, getattr(self, field) + getattr(other, field))


async def wave_progress(store: Store, wave: Wave) -> Progress:
    counts = await store.waves.progress(wave.id)
    p = Progress(**{k: v for k, v in counts.items() if k in Progress.__struct_fields__})
    # A fallback wave grows as Zalo refuses recipients; one refused twice (its Zalo batch was
    # processed again) is added twice and skipped once by the sent bitmap.
    p.total = wave.total + counts.get("added", 0) - (counts.get("skipped", 0)
                                                     if "added" in counts else 0)
    p.dead_letters = p.failed + p.expired
    p.queued = max(0, p.total - sum(counts.get(k, 0) for k in OUTCOMES) - p.retrying)
    return p


def default_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Engine:
    def __init__(self, store: Store, plan: Plan, settings: EngineConfig, province: Province,
                 adapters: Mapping[Channel, Adapter], carriers: list[str], *,
                 name: str | None = None, reconcile: bool = True,
                 receipts: ReceiptMatcher | None = None, numbering: Numbering | None = None,
                 incoming: IncomingIntake | None = None,
                 binds: BindLeases | None = None, gate: Callable[[str], bool] | None = None,
                 wifi: WifiPusher | None = None,
                 reminders: Reminders | None = None,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:
        self.store = store
        self.receipts = receipts
        self.reminders = reminders  # the checklist's daily e-mail to the lead units
        self.incoming = incoming  # what citizens send, stored in batches
        self.clock = clock
        self.plan = plan
        self.settings = settings
        self.adapters = adapters
        self.carriers = carriers
        self.name = name or default_name()
        self.reconcile = reconcile
        self.reconciler = Reconciler(store, plan, province, settings=settings)
        self.campaigns = Campaigns(store, settings, province)
        self.cap = CapPublisher(store, plan, province, settings.cap)  # the public alerts
        self.retention = Retention(store, settings, name=self.name)  # old lists and CAP messages
        self.wifi = wifi  # pushes each new public notice to the Wi-Fi controllers
        routes = [r for c in adapters for r in routing.routes(c, carriers, settings)]
        fallback = (SmsFallback(store, settings, numbering, plan, clock=self.now)
                    if numbering is not None else None)
        self.binds = binds  # SMPP bind leases, when workers share the links
        self.worker = Worker(store, adapters, routes, settings, name=self.name,
                             fallback=fallback, gate=gate)
        self.collector = metrics.Collector(store, routes, wave_progress)  # store-read gauges
        # cell broadcasts: their states, and their Cancels
        self.trackers = [BroadcastTracker(store, channel, adapter, self.name, self._settled)
                         for channel, adapter in adapters.items()
                         if isinstance(adapter, Withdrawable)]
        self._fanning: set[str] = set()
        self._unfanned = Unfanned(store, settings, carriers, self.name)
        # urgent waves have slots of their own: routine fan-outs waiting for their routes to
        # drain never hold an urgent one back
        self._slots = asyncio.Semaphore(settings.engine.fanout_concurrency)
        self._urgent_slots = asyncio.Semaphore(settings.engine.fanout_concurrency)

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop``; the SMPP binds held by lease close only after the batches in hand
        are finished."""
        if self.binds is None:
            await self._run(stop)
            return
        closing = asyncio.Event()
        async with asyncio.TaskGroup() as outer:
            outer.create_task(self.binds.run(closing))
            try:
                await self._run(stop)
            finally:
                closing.set()

    async def _run(self, stop: asyncio.Event) -> None:
        async with asyncio.TaskGroup() as tasks:
            if self.reconcile:
                tasks.create_task(self._reconcile_loop(stop))
                if self.settings.cap.enabled:
                    log.info("publishing the public alerts as CAP 1.2 messages from %s",
                             self.settings.cap.sender)
                    tasks.create_task(self._cap_loop(stop))
                if self.wifi is not None:
                    tasks.create_task(self.wifi.run(stop))
            tasks.create_task(self._runner_loop(stop, tasks))
            tasks.create_task(self.worker.run(stop))
            tasks.create_task(self.collector.run(stop))
            for tracker in self.trackers:
                tasks.create_task(self._broadcast_loop(stop, tracker))
            if self.receipts is not None:
                tasks.create_task(self.receipts.run(stop))
            if self.incoming is not None:
                tasks.create_task(self.incoming.run(stop))
            if self.reminders is not None:
                tasks.create_task(self.reminders.run(stop))

    async def _sleep(self, stop: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)

    async def _reconcile_loop(self, stop: asyncio.Event) -> None:
        backoff = metrics.Backoff("the reconciler")
        while not stop.is_set():
            wait = self.settings.engine.reconcile_seconds
            try:
                now = self.clock()
                await self.reconciler.tick(now)
                await self.retention.tick(now)
            except TRANSIENT as exc:  # logged once per outage, by metrics.StoreHealth
                wait = min(wait, backoff.failed(exc))
            else:
                backoff.ok()
            await self._sleep(stop, wait)

    async def _cap_loop(self, stop: asyncio.Event) -> None:
        backoff = metrics.Backoff("the CAP publisher")
        while not stop.is_set():
            wait = PUBLISH_SECONDS
            try:
                await self.cap.tick(self.clock())
            except TRANSIENT as exc:
                wait = max(wait, backoff.failed(exc))
            else:
                backoff.ok()
            await self._sleep(stop, wait)

    async def _broadcast_loop(self, stop: asyncio.Event, tracker: BroadcastTracker) -> None:
        backoff = metrics.Backoff("the cell broadcast tracker")
        while not stop.is_set():
            wait = BROADCAST_SECONDS
            try:
                await tracker.tick()
            except TRANSIENT as exc:
                wait = max(wait, backoff.failed(exc))
            else:
                backoff.ok()
            await self._sleep(stop, wait)

    async def _runner_loop(self, stop: asyncio.Event, tasks: asyncio.TaskGroup) -> None:
        backoff = metrics.Backoff("the wave runner")
        while not stop.is_set():
            wait = RUNNER_SECONDS
            try:
                await self.step(stop, tasks)
            except TRANSIENT as exc:
                wait = max(wait, backoff.failed(exc))
            else:
                backoff.ok()
            await self._sleep(stop, wait)

    async def step(self, stop: asyncio.Event, tasks: asyncio.TaskGroup) -> None:
        """One pass: start campaigns and fan-outs (not while the emergency stop is on), finish
        waves and campaigns."""
        now = self.clock()
        stopped = await is_stopped(self.store)
        campaigns = await self.store.campaigns.all()
        for campaign in campaigns:
            if not stopped and campaign.state is CampaignState.APPROVED and (
                    campaign.start_at is None or campaign.start_at <= now):
                await self._start(campaign, now)
        states = await self.store.waves.states()
        await self._unfanned.count((w for w, s in states.items() if s is WaveState.CANCELLED),
                                   self._fanning)
        for wave_id, state in states.items():
            if state in (WaveState.CREATED, WaveState.FANNING_OUT):
                if stopped or wave_id in self._fanning:
                    continue
                wave = await self.store.waves.get(wave_id)
                if wave is not None and self._may_start(wave, now):
                    self._fanning.add(wave_id)
                    tasks.create_task(self._fan_out(wave, stop))
            elif state is WaveState.SENDING:
                wave = await self.store.waves.get(wave_id)
                if wave is not None and await self._settled(wave) and (
                        await self.store.waves.transition(wave_id, SENDING,
                                                          WaveState.COMPLETED)):
                    if not await self._settled(wave):
                        # work came back between the look and the move (its dead letters
                        # replayed: dispatcher.engine.deadletters): sending until it is done
                        await self.store.waves.transition(wave_id, COMPLETED, WaveState.SENDING)
                        continue
                    log.info("wave %s completed", wave_id,
                             extra={"wave": wave_id, "campaign": wave.campaign_id,
                                    "channel": wave.channel})
        running = [c for c in campaigns  # the plan's campaigns run as long as their level
                   if c.state is CampaignState.RUNNING and c.level is None]
        if running:
            await self._finish_campaigns(running, await self.store.waves.states())

    async def _start(self, campaign: Campaign, now: dt.datetime) -> None:
        """Start an approved campaign; one above the threshold (this process's settings) that no
        second user approved is refused: marked failed, with the reason."""
        try:
            await self.campaigns.start(campaign.id, now)
        except StateError:  # another process, or an operator, won
            return
        except PermissionDenied as exc:
            metrics.CAMPAIGNS_REFUSED.inc()
            log.warning("%s", exc, extra={"campaign": campaign.id})

    def now(self) -> dt.datetime:
        """The engine's clock (replaceable in tests: ``engine.clock``)."""
        return self.clock()

    def _may_start(self, wave: Wave, now: dt.datetime) -> bool:
        return wave.start_now or wave.priority is Priority.URGENT or self.plan.in_sending_hours(now)

    async def _settled(self, wave: Wave) -> bool:
        """Every message of the wave has an outcome and none waits for a retry."""
        p = await wave_progress(self.store, wave)
        return p.queued == 0 and p.retrying <= 0

    async def _may_fan_out(self, wave: Wave) -> bool:
        """Only waves of running campaigns are sent."""
        campaign = await self.store.campaigns.get(wave.campaign_id)
        return campaign is not None and campaign.state is CampaignState.RUNNING

    async def _fan_out(self, wave: Wave, stop: asyncio.Event) -> None:
        with logs.context(wave=wave.id, campaign=wave.campaign_id, channel=wave.channel):
            await self._fan_out_wave(wave, stop)

    async def _fan_out_wave(self, wave: Wave, stop: asyncio.Event) -> None:
        lease = f"fanout:{wave.id}"
        ttl = self.settings.engine.lease_seconds
        try:
            slots = self._urgent_slots if wave.priority is Priority.URGENT else self._slots
            async with slots:
                if not await self.store.leases.acquire(lease, self.name, ttl):
                    return
                first = (await self.store.waves.states([wave.id])).get(wave.id)
                if not await self._may_fan_out(wave) or not await self.store.waves.transition(
                        wave.id, STARTABLE, WaveState.FANNING_OUT):
                    await self.store.leases.release(lease, self.name)
                    return  # paused, cancelled or started elsewhere since it was listed

                async def proceed() -> bool:
                    while True:
                        if stop.is_set() or not await self.store.leases.acquire(
                                lease, self.name, ttl):
                            return False
                        state = (await self.store.waves.states([wave.id])).get(wave.id)
                        if state is not WaveState.PAUSED and not await is_stopped(self.store):
                            return state is WaveState.FANNING_OUT
                        if state is not WaveState.PAUSED and state is not WaveState.FANNING_OUT:
                            return False
                        await self._sleep(stop, RUNNER_SECONDS)

                reader = self.adapters.get(wave.channel)
                check = (asyncio.create_task(check_wave(self.store, wave, reader))
                         if first is WaveState.CREATED and isinstance(reader, QuotaReader)
                         else None)  # the quota is read as the fan-out begins, not before it
                try:
                    enqueued = await fan_out(self.store, wave, self.settings, self.carriers,
                                             proceed=proceed)
                except BaseException:
                    if check is not None:  # the fan-out failed or was stopped: so is the read
                        check.cancel()
                        with contextlib.suppress(asyncio.CancelledError, *TRANSIENT):
                            await check
                    raise
                if check is not None:
                    await check
                if not stop.is_set() and await self.store.waves.transition(
                        wave.id, FANNING_OUT, WaveState.SENDING):
                    log.info("wave %s fanned out (%d messages by this process)", wave.id,
                             enqueued, extra={"wave": wave.id, "campaign": wave.campaign_id,
                                              "channel": wave.channel})
                await self.store.leases.release(lease, self.name)
        except TRANSIENT as exc:
            # Started again by the runner when the store answers, from the cursors it has then;
            # the lease is this process's until then.
            metrics.Backoff(f"the fan-out of {wave.id}").failed(exc)
        finally:
            self._fanning.discard(wave.id)

    async def _finish_campaigns(self, running: list[Campaign],
                                states: dict[str, WaveState]) -> None:
        by_campaign: dict[str, list[WaveState]] = {}
        for wave in await self.store.waves.all():
            state = states.get(wave.id)
            if state is not None:  # a wave created since the states were read is not done
                by_campaign.setdefault(wave.campaign_id, []).append(state)
        for campaign in running:
            waves = by_campaign.get(campaign.id, [])
            if waves and all(s in WAVE_FINAL for s in waves):
                with contextlib.suppress(StateError):  # cancelled or completed meanwhile
                    await self.campaigns.complete(campaign.id)
