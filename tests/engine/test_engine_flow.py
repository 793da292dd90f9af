"""The whole engine in one process: campaigns start, fan out, send exactly once, retry with
backoff into dead letters, pause and resume, cancel. Every wait is bounded.

The last tests put a thin hook into a real store to land another process's (or operator's)
action at one exact point between two steps of this one: races that are otherwise a matter of
timing. The store underneath is real; only the moment is chosen.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import msgspec
import pytest

from adapters.base import Adapter, Envelope, Results
from adapters.memory import MemoryAdapter
from bench import audiencegen
from dispatcher.domain.audience import Recipient, Validator
from dispatcher.domain.errors import StateError
from dispatcher.domain.model import Campaign, CampaignState, Channel, Priority, Wave, WaveState
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.engine import routing
from dispatcher.engine.campaigns import Campaigns, wave_id
from dispatcher.engine.importer import import_audience
from dispatcher.engine.process import Engine, Progress, wave_progress
from dispatcher.service.settings import EngineSettings, RetrySettings, Settings
from dispatcher.store import Store
from dispatcher.store.base import (
    AudienceStore,
    CampaignStore,
    Leases,
    LevelStore,
    Queue,
    WaveStore,
)

ROWS = 2000
TIMEOUT = 30.0
SETTINGS = Settings(
    retry=RetrySettings(max_attempts=3, base_seconds=0.05, max_seconds=0.2, jitter=0.1),
    engine=EngineSettings(batch_size=100, chunk_size=128, lease_seconds=1.0,
                          reconcile_seconds=0.2),
)
TEXTS = {Channel.SMS: "Deo khau trang, rua tay, khai bao y te.",
         Channel.ZALO: "Đeo khẩu trang, rửa tay, khai báo y tế."}


@pytest.fixture(scope="module")
def audience_file(tmp_path_factory: pytest.TempPathFactory, numbering: Numbering,
                  province: Province) -> Path:
    path = tmp_path_factory.mktemp("engine") / "audience.csv"
    audiencegen.generate(path, ROWS, seed=9, numbering=numbering, province=province)
    return path


@pytest.fixture
async def audience(store: Store, audience_file: Path, numbering: Numbering,
                   province: Province) -> list[Recipient]:
    """Import the audience into the store; the recipients, by id."""
    await import_audience(audience_file, store, Validator(numbering, province),
                          chunk_size=SETTINGS.engine.chunk_size)
    meta = await store.audiences.meta()
    assert meta is not None and meta.count == ROWS
    numbers = sorted(n for g in meta.groups for n in g.chunks)
    by_id: dict[int, Recipient] = {}
    for chunk in await store.audiences.chunks(meta.version, numbers):
        for offset, r in enumerate(chunk.recipients):
            by_id[chunk.first_id + offset] = r
    return [by_id[i] for i in range(meta.count)]


class RecordingAdapter(MemoryAdapter):
    """A memory channel that also records every address it was offered, and when."""

    def __init__(self, *, fail_addrs: frozenset[str] = frozenset(),
                 retry_addrs: frozenset[str] = frozenset()) -> None:
        super().__init__(fail_addrs=fail_addrs, retry_addrs=retry_addrs)
        self.offered: list[tuple[float, str]] = []

    async def send(self, envelope: Envelope) -> Results:
        now = time.monotonic()
        self.offered.extend((now, a) for a in envelope.addrs)
        return await super().send(envelope)


def addresses(channel: Channel, audience: list[Recipient]) -> list[str]:
    return [a for r in audience if (a := routing.address(channel, r)) is not None]


def make_engine(store: Store, plan: Plan, province: Province, numbering: Numbering,
                adapters: dict[Channel, MemoryAdapter], settings: Settings = SETTINGS,
                *, name: str = "engine-1", reconcile: bool = True) -> Engine:
    return Engine(store, plan, settings, province, dict[Channel, Adapter](adapters),
                  numbering.carriers, name=name, reconcile=reconcile)


@contextlib.asynccontextmanager
async def running(engine: Engine) -> AsyncIterator[asyncio.Task[None]]:
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def until(task: asyncio.Task[None], cond: Callable[[], Awaitable[bool]], what: str,
                timeout: float = TIMEOUT) -> None:
    """Wait (bounded) for ``cond``; fail early if the engine stopped."""
    async def poll() -> None:
        while not await cond():
            if task.done():
                task.result()  # raises the engine's error
                raise AssertionError(f"the engine stopped before {what}")
            await asyncio.sleep(0.05)

    try:
        await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout} s waiting for {what}") from None


async def progress_of(store: Store, wid: str) -> Progress:
    wave = await store.waves.get(wid)
    assert wave is not None, f"no wave {wid}"
    return await wave_progress(store, wave)


async def campaign_state(store: Store, campaign_id: str) -> CampaignState:
    campaign = await store.campaigns.get(campaign_id)
    assert campaign is not None
    return campaign.state


async def _is(store: Store, campaign_id: str, state: CampaignState) -> bool:
    return await campaign_state(store, campaign_id) is state


async def create(campaigns: Campaigns, channels: list[Channel]) -> Campaign:
    campaign = await campaigns.create(
        title="Thông báo khẩn", channels=channels, texts={c: TEXTS[c] for c in channels},
        created_by="alice", now=_clock(), priority=Priority.URGENT)
    assert campaign.state is CampaignState.APPROVED
    return campaign


def _clock() -> dt.datetime:
    """The engine runs on the wall clock; so do the campaigns the tests create."""
    return dt.datetime.now(dt.UTC)


# -- a campaign, end to end -----------------------------------------------------------------------


async def test_an_urgent_campaign_reaches_everyone_exactly_once(
        store: Store, audience: list[Recipient], plan: Plan, province: Province,
        numbering: Numbering) -> None:
    adapters = {Channel.SMS: MemoryAdapter(), Channel.ZALO: MemoryAdapter()}
    engine = make_engine(store, plan, province, numbering, adapters)
    campaign = await create(engine.campaigns, [Channel.SMS, Channel.ZALO])

    async with running(engine) as task:
        await until(task, lambda: _is(store, campaign.id, CampaignState.COMPLETED),
                    "the campaign to complete")

    for channel, adapter in adapters.items():
        wid = wave_id(campaign.id, channel)
        expected = addresses(channel, audience)
        assert adapter.duplicates == 0
        assert adapter.received == Counter({(wid, a): 1 for a in expected})
        p = await progress_of(store, wid)
        assert p.total == len(expected)
        assert (p.sent, p.queued, p.failed, p.expired, p.retrying) == (p.total, 0, 0, 0, 0)
        assert (await store.waves.states([wid]))[wid] is WaveState.COMPLETED
    assert len(addresses(Channel.ZALO, audience)) < ROWS == adapters[Channel.SMS].messages


async def test_transient_failures_back_off_then_dead_letter(
        store: Store, audience: list[Recipient], plan: Plan, province: Province,
        numbering: Numbering) -> None:
    zalo_addrs = addresses(Channel.ZALO, audience)
    retry_addrs = frozenset(zalo_addrs[10:15])
    fail_addrs = frozenset(addresses(Channel.SMS, audience)[100:104])
    zalo = RecordingAdapter(retry_addrs=retry_addrs)
    sms = RecordingAdapter(fail_addrs=fail_addrs)
    engine = make_engine(store, plan, province, numbering, {Channel.SMS: sms, Channel.ZALO: zalo})
    campaign = await create(engine.campaigns, [Channel.SMS, Channel.ZALO])

    async with running(engine) as task:
        await until(task, lambda: _is(store, campaign.id, CampaignState.COMPLETED),
                    "the campaign to complete")

    max_attempts = SETTINGS.retry.max_attempts
    offered = Counter(a for _, a in zalo.offered)
    assert {a: offered[a] for a in retry_addrs} == dict.fromkeys(retry_addrs, max_attempts)
    assert all(n == 1 for a, n in offered.items() if a not in retry_addrs)
    # backoff: the n-th retry waits at least base * 2**(n-1), less the jitter
    base, jitter = SETTINGS.retry.base_seconds, SETTINGS.retry.jitter
    for addr in retry_addrs:
        times = sorted(t for t, a in zalo.offered if a == addr)
        for n, (earlier, later) in enumerate(itertools.pairwise(times), 1):
            assert later - earlier >= base * 2 ** (n - 1) * (1 - jitter) - 0.005

    zalo_wave = wave_id(campaign.id, Channel.ZALO)
    dead = await store.queue.dead_letters("zalo")
    assert sorted(d.addr for d in dead) == sorted(retry_addrs)
    assert all(d.wave == zalo_wave and d.attempts == max_attempts for d in dead)
    assert all(d.reason.startswith("retries exhausted") and "throttled" in d.reason for d in dead)
    p = await progress_of(store, zalo_wave)
    assert (p.expired, p.failed, p.retrying, p.queued) == (len(retry_addrs), 0, 0, 0)
    assert p.sent == p.total - len(retry_addrs) == zalo.messages
    assert p.dead_letters == len(retry_addrs)
    assert (await store.waves.states([zalo_wave]))[zalo_wave] is WaveState.COMPLETED

    # permanent failures: dead-lettered with their reason after one attempt
    sms_offered = Counter(a for _, a in sms.offered)
    assert all(n == 1 for n in sms_offered.values()) and len(sms_offered) == ROWS
    sms_wave = wave_id(campaign.id, Channel.SMS)
    sms_dead = [d for r in routing.routes(Channel.SMS, numbering.carriers, SETTINGS)
                for d in await store.queue.dead_letters(r)]
    assert sorted(d.addr for d in sms_dead) == sorted(fail_addrs)
    assert all(d.reason == "invalid destination" and d.attempts == 1 and d.wave == sms_wave
               for d in sms_dead)
    sp = await progress_of(store, sms_wave)
    assert (sp.failed, sp.expired, sp.retrying, sp.queued) == (len(fail_addrs), 0, 0, 0)
    assert sp.sent == ROWS - len(fail_addrs) == sms.messages
    assert sms.duplicates == zalo.duplicates == 0


# -- pause and cancel while sending ---------------------------------------------------------------

SLOW = msgspec.structs.replace(
    SETTINGS, engine=msgspec.structs.replace(SETTINGS.engine, batch_size=50,
                                             consumers_per_route=2))
LATENCY = 0.1  # seconds per batch: ~40 zalo batches over 2 consumers, ~2 s in all


async def test_pause_stops_sending_and_resume_finishes(
        store: Store, audience: list[Recipient], plan: Plan, province: Province,
        numbering: Numbering) -> None:
    zalo = MemoryAdapter(latency=LATENCY)
    engine = make_engine(store, plan, province, numbering, {Channel.ZALO: zalo}, SLOW)
    campaign = await create(engine.campaigns, [Channel.ZALO])
    wid = wave_id(campaign.id, Channel.ZALO)
    total = len(addresses(Channel.ZALO, audience))

    async with running(engine) as task:
        async def sending() -> bool:
            return zalo.messages > 0

        await until(task, sending, "the first messages")
        await engine.campaigns.pause(campaign.id)
        paused_at = time.monotonic()
        assert (await store.waves.states([wid]))[wid] is WaveState.PAUSED

        await asyncio.sleep(max(0.0, paused_at + 1.0 - time.monotonic()))
        after_1s = zalo.messages
        await asyncio.sleep(0.5)
        after_15s = zalo.messages
        assert after_1s == after_15s, "messages were sent more than 1 s after pausing"
        assert after_15s < total, "the pause came too late to show anything"
        p = await progress_of(store, wid)
        assert p.sent == after_15s
        assert (await store.waves.states([wid]))[wid] is WaveState.PAUSED
        assert await campaign_state(store, campaign.id) is CampaignState.PAUSED

        await engine.campaigns.resume(campaign.id)
        await until(task, lambda: _is(store, campaign.id, CampaignState.COMPLETED),
                    "the campaign to complete after resuming")

    assert zalo.duplicates == 0
    assert zalo.received == Counter({(wid, a): 1 for a in addresses(Channel.ZALO, audience)})
    p = await progress_of(store, wid)
    assert (p.sent, p.queued, p.retrying) == (total, 0, 0)


async def test_cancel_stops_sending_and_accounts_for_every_message(
        store: Store, audience: list[Recipient], plan: Plan, province: Province,
        numbering: Numbering) -> None:
    zalo = MemoryAdapter(latency=LATENCY)
    engine = make_engine(store, plan, province, numbering, {Channel.ZALO: zalo}, SLOW)
    campaign = await create(engine.campaigns, [Channel.ZALO])
    wid = wave_id(campaign.id, Channel.ZALO)
    total = len(addresses(Channel.ZALO, audience))

    async with running(engine) as task:
        async def fanned_out_and_sending() -> bool:
            state = (await store.waves.states([wid])).get(wid)
            return state is WaveState.SENDING and zalo.messages > 0

        await until(task, fanned_out_and_sending, "the wave to be queued and sending")
        await engine.campaigns.cancel(campaign.id)
        cancelled_at = time.monotonic()

        async def accounted() -> bool:
            p = await progress_of(store, wid)
            return p.sent + p.cancelled == total

        await until(task, accounted, "every message to be sent or cancelled")
        await asyncio.sleep(max(0.0, cancelled_at + 1.0 - time.monotonic()))
        after_1s = zalo.messages
        await asyncio.sleep(0.5)
        assert zalo.messages == after_1s, "messages were sent more than 1 s after cancelling"

    p = await progress_of(store, wid)
    assert p.sent == zalo.messages < total
    assert p.cancelled == total - p.sent > 0
    assert (p.queued, p.failed, p.expired, p.retrying) == (0, 0, 0, 0)
    assert zalo.duplicates == 0
    assert (await store.waves.states([wid]))[wid] is WaveState.CANCELLED
    assert await campaign_state(store, campaign.id) is CampaignState.CANCELLED


# -- races, with the other party's action landed at one exact point --------------------------------

Hook = Callable[[], Awaitable[None]]


class Hooks:
    """Hooks run once each, at a named point of the hooked store."""

    def __init__(self) -> None:
        self.pending: dict[str, Hook] = {}
        self.fired: list[str] = []

    def at(self, point: str, hook: Hook) -> None:
        self.pending[point] = hook

    async def fire(self, point: str) -> None:
        hook = self.pending.pop(point, None)
        if hook is not None:
            self.fired.append(point)
            await hook()


class HookedCampaigns:
    def __init__(self, inner: CampaignStore, hooks: Hooks) -> None:
        self.inner, self.hooks = inner, hooks

    async def create(self, campaign: Campaign) -> bool:
        return await self.inner.create(campaign)

    async def get(self, campaign_id: str) -> Campaign | None:
        return await self.inner.get(campaign_id)

    async def replace(self, campaign: Campaign, revision: int) -> bool:
        return await self.inner.replace(campaign, revision)

    async def all(self) -> list[Campaign]:
        found = await self.inner.all()
        await self.hooks.fire("campaigns.all")  # after the read: the reader acts on old news
        return found

    async def many(self, campaign_ids: list[str]) -> dict[str, Campaign]:
        return await self.inner.many(campaign_ids)


class HookedWaves:
    def __init__(self, inner: WaveStore, hooks: Hooks) -> None:
        self.inner, self.hooks = inner, hooks

    async def create(self, wave: Wave, state: WaveState) -> bool:
        created = await self.inner.create(wave, state)
        await self.hooks.fire("waves.create")
        return created

    async def get(self, wave_id: str) -> Wave | None:
        return await self.inner.get(wave_id)

    async def all(self) -> list[Wave]:
        await self.hooks.fire("waves.all")  # before the read: the new wave is in it
        return await self.inner.all()

    async def since(self, at: dt.datetime) -> list[Wave]:
        return await self.inner.since(at)

    async def set_state(self, wave_id: str, state: WaveState) -> None:
        await self.inner.set_state(wave_id, state)

    async def transition(self, wave_id: str, allowed: frozenset[WaveState],
                         state: WaveState) -> bool:
        return await self.inner.transition(wave_id, allowed, state)

    async def pause(self, wave_id: str) -> bool:
        return await self.inner.pause(wave_id)

    async def resume(self, wave_id: str) -> bool:
        return await self.inner.resume(wave_id)

    async def states(self, wave_ids: list[str] | None = None) -> dict[str, WaveState]:
        return await self.inner.states(wave_ids)

    async def progress(self, wave_id: str) -> dict[str, int]:
        return await self.inner.progress(wave_id)

    async def mark_skipped(self, slot_id: str) -> bool:
        return await self.inner.mark_skipped(slot_id)

    async def count_unfanned(self, wave_id: str, n: int) -> bool:
        return await self.inner.count_unfanned(wave_id, n)


class HookedLeases:
    def __init__(self, inner: Leases, hooks: Hooks) -> None:
        self.inner, self.hooks = inner, hooks

    async def acquire(self, name: str, owner: str, ttl: float) -> bool:
        if name.startswith("fanout:"):
            await self.hooks.fire("leases.acquire fanout")  # before: while the task waits
        return await self.inner.acquire(name, owner, ttl)

    async def release(self, name: str, owner: str) -> None:
        await self.inner.release(name, owner)


class HookedStore:
    """A real store seen by one process, with hooks where another party acts."""

    def __init__(self, inner: Store) -> None:
        self.hooks = Hooks()
        self.level: LevelStore = inner.level
        self.stop = inner.stop
        self.situation = inner.situation
        self.incoming = inner.incoming
        self.plan_texts = inner.plan_texts
        self.checklist = inner.checklist
        self.openings = inner.openings
        self.ledger = inner.ledger
        self.audiences: AudienceStore = inner.audiences
        self.queue: Queue = inner.queue
        self.webhook_seen = inner.webhook_seen
        self.cap = inner.cap
        self.wifi = inner.wifi
        self.broadcasts = inner.broadcasts
        self.suppressions = inner.suppressions
        self.campaigns = HookedCampaigns(inner.campaigns, self.hooks)
        self.waves = HookedWaves(inner.waves, self.hooks)
        self.leases = HookedLeases(inner.leases, self.hooks)
        self.receipts = inner.receipts
        self.recipients = inner.recipients

    async def aclose(self) -> None:
        return None  # the inner store belongs to the fixture


async def _step(engine: Engine) -> BaseException | None:
    """One runner pass with its fan-out tasks run to the end; the error it raised, if any."""
    stop = asyncio.Event()
    try:
        async with asyncio.TaskGroup() as tasks:
            await engine.step(stop, tasks)
    except ExceptionGroup as group:  # returned to the test, which asserts on it
        return group.exceptions[0]
    return None


async def _queued(store: Store, numbering: Numbering, channel: Channel) -> int:
    """Stream entries (batches) on the channel's routes, delivered or not."""
    total = 0
    for route in routing.routes(channel, numbering.carriers, SETTINGS):
        total += (await store.queue.depth(route))[0]
    return total


@pytest.mark.parametrize("other", ["start", "cancel"])
async def test_a_campaign_moved_by_another_process_does_not_stop_the_runner(
        store: Store, audience: list[Recipient], plan: Plan, province: Province,
        numbering: Numbering, other: str) -> None:
    hooked = HookedStore(store)
    adapters = {Channel.ZALO: MemoryAdapter()}
    engine = make_engine(hooked, plan, province, numbering, adapters, reconcile=False)
    elsewhere = Campaigns(store, SETTINGS, province)  # another engine, or the API
    campaign = await create(elsewhere, [Channel.ZALO])

    async def act() -> None:
        if other == "start":
            await elsewhere.start(campaign.id, _clock())
        else:
            await elsewhere.cancel(campaign.id)

    hooked.hooks.at("campaigns.all", act)
    error = await _step(engine)
    assert hooked.hooks.fired == ["campaigns.all"]
    assert error is None, f"step raised {error!r}"


async def test_a_cancel_while_the_fan_out_waits_for_its_lease_is_kept(
        store: Store, audience: list[Recipient], plan: Plan, province: Province,
        numbering: Numbering) -> None:
    hooked = HookedStore(store)
    engine = make_engine(hooked, plan, province, numbering, {Channel.ZALO: MemoryAdapter()},
                         reconcile=False)
    operator = Campaigns(store, SETTINGS, province)
    campaign = await create(operator, [Channel.ZALO])
    await operator.start(campaign.id, _clock())
    wid = wave_id(campaign.id, Channel.ZALO)

    async def cancel() -> None:
        await operator.cancel(campaign.id)

    hooked.hooks.at("leases.acquire fanout", cancel)
    assert await _step(engine) is None
    assert hooked.hooks.fired == ["leases.acquire fanout"]
    assert await campaign_state(store, campaign.id) is CampaignState.CANCELLED
    assert await _queued(store, numbering, Channel.ZALO) == 0, "a cancelled wave was queued"
    assert (await store.waves.states([wid]))[wid] is WaveState.CANCELLED


async def test_a_cancel_while_start_creates_the_waves_leaves_nothing_to_send(
        store: Store, audience: list[Recipient], plan: Plan, province: Province,
        numbering: Numbering) -> None:
    hooked = HookedStore(store)
    starter = Campaigns(hooked, SETTINGS, province)
    operator = Campaigns(store, SETTINGS, province)
    campaign = await create(operator, [Channel.SMS, Channel.ZALO])

    async def cancel() -> None:
        await operator.cancel(campaign.id)

    hooked.hooks.at("waves.create", cancel)  # after the first wave, before the second
    with contextlib.suppress(StateError):
        await starter.start(campaign.id, _clock())
    assert hooked.hooks.fired == ["waves.create"]
    assert await campaign_state(store, campaign.id) is CampaignState.CANCELLED

    # An engine's next pass must find nothing of this campaign to send.
    engine = make_engine(store, plan, province, numbering,
                         {Channel.SMS: MemoryAdapter(), Channel.ZALO: MemoryAdapter()},
                         reconcile=False)
    assert await _step(engine) is None
    queued = {c: await _queued(store, numbering, c) for c in (Channel.SMS, Channel.ZALO)}
    assert queued == {Channel.SMS: 0, Channel.ZALO: 0}, "a cancelled campaign was queued"
    states = await store.waves.states()
    assert set(states.values()) <= {WaveState.CANCELLED}, states


async def test_a_wave_created_during_the_runner_pass_does_not_stop_it(
        store: Store, audience: list[Recipient], plan: Plan, province: Province,
        numbering: Numbering) -> None:
    hooked = HookedStore(store)
    engine = make_engine(hooked, plan, province, numbering, {Channel.ZALO: MemoryAdapter()},
                         reconcile=False)
    elsewhere = Campaigns(store, SETTINGS, province)
    running = await create(elsewhere, [Channel.ZALO])  # the runner checks running campaigns
    await elsewhere.start(running.id, _clock())

    async def start_another() -> None:
        other = await create(elsewhere, [Channel.ZALO])
        await elsewhere.start(other.id, _clock())

    hooked.hooks.at("waves.all", start_another)
    error = await _step(engine)
    assert hooked.hooks.fired == ["waves.all"]
    assert error is None, f"step raised {error!r}"


# -- when waves may start: sending hours, urgency, schedule ---------------------------------------

VN = dt.timezone(dt.timedelta(hours=7))


async def test_quiet_hours_hold_normal_waves_and_urgent_ones_go(
        store: Store, audience: list[Recipient], plan: Plan, province: Province,
        numbering: Numbering) -> None:
    night = dt.datetime(2026, 11, 26, 23, 30, tzinfo=VN)
    engine = Engine(store, plan, SETTINGS, province, {Channel.ZALO: MemoryAdapter()},
                    numbering.carriers, reconcile=False, clock=lambda: night)
    campaigns = Campaigns(store, SETTINGS, province)
    normal = await campaigns.create(title="Bản tin", channels=[Channel.ZALO],
                                    texts={Channel.ZALO: TEXTS[Channel.ZALO]},
                                    created_by="alice", now=night)
    urgent = await campaigns.create(title="Khẩn", channels=[Channel.ZALO],
                                    texts={Channel.ZALO: TEXTS[Channel.ZALO]},
                                    created_by="alice", now=night, priority=Priority.URGENT)
    assert await _step(engine) is None  # starts both campaigns: their waves exist
    assert await _step(engine) is None  # fans out what may start at 23:30
    states = await store.waves.states([wave_id(normal.id, Channel.ZALO),
                                       wave_id(urgent.id, Channel.ZALO)])
    assert states[wave_id(normal.id, Channel.ZALO)] is WaveState.CREATED
    assert states[wave_id(urgent.id, Channel.ZALO)] is WaveState.SENDING

    morning = dt.datetime(2026, 11, 27, 7, 0, tzinfo=VN)
    engine.clock = lambda: morning
    assert await _step(engine) is None
    state = (await store.waves.states([wave_id(normal.id, Channel.ZALO)]))
    assert state[wave_id(normal.id, Channel.ZALO)] is WaveState.SENDING


async def test_a_scheduled_campaign_starts_at_its_time(
        store: Store, audience: list[Recipient], plan: Plan, province: Province,
        numbering: Numbering) -> None:
    now = dt.datetime(2026, 11, 26, 10, 0, tzinfo=VN)
    engine = Engine(store, plan, SETTINGS, province, {Channel.ZALO: MemoryAdapter()},
                    numbering.carriers, reconcile=False, clock=lambda: now)
    campaigns = Campaigns(store, SETTINGS, province)
    later = await campaigns.create(title="Bản tin chiều", channels=[Channel.ZALO],
                                   texts={Channel.ZALO: TEXTS[Channel.ZALO]}, created_by="alice",
                                   now=now, start_at=now + dt.timedelta(hours=6))
    assert await _step(engine) is None
    assert (await campaigns.get(later.id)).state is CampaignState.APPROVED
    assert await store.waves.all() == []
    engine.clock = lambda: now + dt.timedelta(hours=6)
    assert await _step(engine) is None
    assert (await campaigns.get(later.id)).state is CampaignState.RUNNING
    assert [w.id for w in await store.waves.all()] == [wave_id(later.id, Channel.ZALO)]


# -- the engine's own approval check --------------------------------------------------------------

GATED = msgspec.structs.replace(SETTINGS, engine=msgspec.structs.replace(
    SETTINGS.engine, approval_threshold=10))


@pytest.mark.parametrize("approved_by", ["", "alice"])
async def test_a_campaign_forged_as_approved_is_not_started(
        store: Store, audience: list[Recipient], plan: Plan, province: Province,
        numbering: Numbering, approved_by: str) -> None:
    """Written straight into the store as approved, over the engine's threshold, with no
    approver (it goes back to wait for one) or approved by its creator (marked failed): the
    engine does not start it and says why."""
    engine = Engine(store, plan, GATED, province, {Channel.ZALO: MemoryAdapter()},
                    numbering.carriers, reconcile=False)
    forged = Campaign(id="c-forged", title="Khẩn", channels=[Channel.ZALO],
                      texts={Channel.ZALO: TEXTS[Channel.ZALO]}, created_at=dt.datetime.now(dt.UTC),
                      created_by="alice", state=CampaignState.APPROVED, approved_by=approved_by,
                      audience_size=1, priority=Priority.URGENT)
    assert await store.campaigns.create(forged)
    assert await _step(engine) is None
    stored = await store.campaigns.get(forged.id)
    expected = CampaignState.FAILED if approved_by else CampaignState.PENDING_APPROVAL
    assert stored is not None and stored.state is expected
    assert "approv" in stored.state_reason
    assert await store.waves.all() == []


async def test_a_campaign_approved_by_another_user_is_started(
        store: Store, audience: list[Recipient], plan: Plan, province: Province,
        numbering: Numbering) -> None:
    engine = Engine(store, plan, GATED, province, {Channel.ZALO: MemoryAdapter()},
                    numbering.carriers, reconcile=False)
    campaigns = Campaigns(store, GATED, province)
    campaign = await campaigns.create(title="Khẩn", channels=[Channel.ZALO],
                                      texts={Channel.ZALO: TEXTS[Channel.ZALO]},
                                      created_by="alice", now=dt.datetime.now(dt.UTC),
                                      priority=Priority.URGENT)
    assert campaign.state is CampaignState.PENDING_APPROVAL
    await campaigns.approve(campaign.id, "bob")
    assert await _step(engine) is None
    stored = await store.campaigns.get(campaign.id)
    assert stored is not None and stored.state is CampaignState.RUNNING
