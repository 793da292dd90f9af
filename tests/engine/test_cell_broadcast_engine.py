"""Cell broadcast through the whole engine, against the broadcast centre simulator over loopback:
each carrier gets a wave's alert once, its state is read, and it is cancelled once (a CAP Cancel
referencing it) when its wave is cancelled or the emergency stop is raised, whichever process
does it and however often it restarts; the stop itself does not wait for the Cancels. Alerts and
Cancels are counted at the simulator."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from adapters.cellbroadcast import CellBroadcastAdapter
from adapters.cellbroadcast.simulator import CbcSim, CbcSimConfig
from dispatcher.domain.broadcast import Broadcast, Reason, Request, State
from dispatcher.domain.model import (
    WAVE_FINAL,
    Campaign,
    CampaignState,
    Channel,
    Priority,
    Wave,
    WaveState,
)
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.engine.campaigns import Campaigns
from dispatcher.engine.process import Engine, wave_progress
from dispatcher.engine.settings import EngineSettings, RetrySettings
from dispatcher.engine.stop import lift, stop_all
from dispatcher.service.settings import Settings
from dispatcher.store import Store
from tests.cellbroadcast import CAP, CARRIERS, CREDENTIALS, PROVINCE, SENDER, config
from tests.conftest import run_engine_until

TEXT = "KHẨN: Covid-19 lây lan rộng tại Quảng Ninh. Chỉ ra ngoài khi thật cần thiết."
NOW = dt.datetime.now(dt.UTC)


@pytest.fixture
async def sim() -> AsyncIterator[CbcSim]:
    server = CbcSim(CbcSimConfig(carriers=CREDENTIALS))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def settings(sim: CbcSim, **changes: object) -> Settings:
    return Settings(
        cap=CAP, cell_broadcast=config(sim, **changes),
        retry=RetrySettings(max_attempts=3, base_seconds=0.05, max_seconds=0.2, jitter=0.1),
        engine=EngineSettings(lease_seconds=1.0, state_refresh_seconds=0.05))


async def wave_of(store: Store, cfg: Settings, wave_id: str = "c-cb-cell_broadcast",
                  campaign: str = "c-cb") -> Wave:
    await store.campaigns.create(Campaign(
        id=campaign, title="t", channels=[Channel.CELL_BROADCAST],
        texts={Channel.CELL_BROADCAST: TEXT}, created_at=NOW, created_by="t",
        state=CampaignState.RUNNING, priority=Priority.URGENT))
    targets = cfg.targets(Channel.CELL_BROADCAST)
    wave = Wave(id=wave_id, campaign_id=campaign, channel=Channel.CELL_BROADCAST, text=TEXT,
                created_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1),
                audience_version="v", total=len(targets), start_now=True, targets=targets,
                priority=Priority.URGENT)
    await store.waves.create(wave, WaveState.CREATED)
    return wave


def adapter_of(cfg: Settings) -> CellBroadcastAdapter:
    assert cfg.cell_broadcast is not None
    return CellBroadcastAdapter(cfg.cell_broadcast, cfg.cap, PROVINCE)


def engine(store: Store, plan: Plan, province: Province, cfg: Settings,
           adapter: CellBroadcastAdapter, name: str = "p1") -> Engine:
    return Engine(store, plan, cfg, province, {Channel.CELL_BROADCAST: adapter}, [],
                  reconcile=False, name=name)


async def records(store: Store, wave: Wave) -> list[Broadcast]:
    found = await store.broadcasts.get([(wave.id, c) for c in CARRIERS])
    return [b for b in found if b is not None]


async def run(store: Store, plan: Plan, province: Province, cfg: Settings,
              done: Callable[[CellBroadcastAdapter], Awaitable[bool]], name: str = "p1") -> None:
    adapter = adapter_of(cfg)
    try:
        await run_engine_until(engine(store, plan, province, cfg, adapter, name),
                               lambda: done(adapter))
    finally:
        await adapter.aclose()


async def test_each_carrier_broadcasts_the_wave_once_and_its_state_is_read(
        store: Store, sim: CbcSim, plan: Plan, province: Province) -> None:
    cfg = settings(sim)
    wave = await wave_of(store, cfg)
    sim.broadcast_after = 0.1

    async def read(_: CellBroadcastAdapter) -> bool:
        found = await records(store, wave)
        return len(found) == 2 and all(b.state is State.BROADCASTING for b in found)

    await run(store, plan, province, cfg, read)
    assert sim.snapshot().by_carrier == dict.fromkeys(CARRIERS, 1)
    assert not any(sim.cancels(c) for c in CARRIERS)
    found = {b.carrier: b for b in await records(store, wave)}
    for carrier in CARRIERS:
        b = found[carrier]
        assert b.identifier == "loa.cb.c-cb-cell_broadcast" and b.reads >= 1
        assert b.reference == sim.alerts(carrier)[0].reference
        assert b.withdrawal is None and not b.unconfirmed
    assert (await store.waves.states([wave.id]))[wave.id] in WAVE_FINAL


async def test_a_cancelled_wave_gets_one_cancel_per_carrier_across_restarts(
        store: Store, sim: CbcSim, plan: Plan, province: Province) -> None:
    cfg = settings(sim)
    wave = await wave_of(store, cfg)
    campaigns = Campaigns(store, cfg, province)
    sim.delay = 0.5  # the alerts are on their way when the campaign is cancelled
    done: list[bool] = []

    async def cancelled(_: CellBroadcastAdapter) -> bool:
        if not done and sim.requests == 2:
            await campaigns.cancel("c-cb", user="olga", reason="sai nội dung")
            done.append(True)
        found = await records(store, wave)
        return len(found) == 2 and all(b.withdrawal is not None for b in found)

    await run(store, plan, province, cfg, cancelled)
    for carrier in CARRIERS:
        original, = sim.alerts(carrier)
        cancel, = sim.cancels(carrier)
        assert cancel.references == [f"{SENDER},{original.identifier},{original.sent}"]
        assert sim.state(carrier, original.identifier) == "cancelled"
    for b in await records(store, wave):
        assert b.withdrawal is not None and b.withdrawal.reason is Reason.CANCELLED
        assert b.withdrawal.state is State.CANCELLED and b.state is State.CANCELLED

    # another process, and this one restarted: nothing is cancelled again
    requests = sim.requests

    async def a_while(_: CellBroadcastAdapter) -> bool:
        await asyncio.sleep(0.5)
        return True

    await run(store, plan, province, cfg, a_while, name="p2")
    await run(store, plan, province, cfg, a_while, name="p1")
    assert [len(sim.cancels(c)) for c in CARRIERS] == [1, 1]
    assert sim.requests == requests and sim.answered[409] == 0


async def test_the_stop_does_not_wait_and_live_broadcasts_get_one_cancel(
        store: Store, sim: CbcSim, plan: Plan, province: Province) -> None:
    cfg = settings(sim)
    wave = await wave_of(store, cfg)
    stopped: list[bool] = []

    async def after_stop(_: CellBroadcastAdapter) -> bool:
        found = await records(store, wave)
        if len(found) == 2 and not stopped:
            sim.delay = 0.3  # the centres are slow to answer the Cancels
            await stop_all(store, now=dt.datetime.now(dt.UTC), user="olga", reason="nhầm")
            # the stop is in force at once; no Cancel was waited for
            assert not any(sim.cancels(c) for c in CARRIERS)
            stopped.append(True)
        return len(found) == 2 and all(b.withdrawal is not None for b in found)

    await run(store, plan, province, cfg, after_stop)
    assert [len(sim.cancels(c)) for c in CARRIERS] == [1, 1]
    for b in await records(store, wave):
        assert b.withdrawal is not None and b.withdrawal.reason is Reason.STOP

    # lifted: a wave after the lift is broadcast and left alone
    await lift(store, now=dt.datetime.now(dt.UTC), user="olga", reason="ok")
    sim.delay = 0.0
    later = await wave_of(store, cfg, "c-cb2-cell_broadcast", "c-cb2")

    async def broadcast(_: CellBroadcastAdapter) -> bool:
        found = await records(store, later)
        return len(found) == 2 and all(b.reads >= 1 for b in found)

    await run(store, plan, province, cfg, broadcast)
    assert all(b.withdrawal is None for b in await records(store, later))
    assert [len(sim.cancels(c)) for c in CARRIERS] == [1, 1]


async def test_two_processes_cancel_each_broadcast_once(
        store: Store, sim: CbcSim, plan: Plan, province: Province) -> None:
    cfg = settings(sim)
    wave = await wave_of(store, cfg)
    await run(store, plan, province, cfg,
              lambda _: _recorded(store, wave))
    await stop_all(store, now=dt.datetime.now(dt.UTC), user="olga", reason="nhầm")
    first, second = adapter_of(cfg), adapter_of(cfg)
    engines = [engine(store, plan, province, cfg, first, "p1"),
               engine(store, plan, province, cfg, second, "p2")]

    async def all_cancelled() -> bool:
        return all(b.withdrawal is not None for b in await records(store, wave))

    try:
        await asyncio.gather(*(run_engine_until(e, all_cancelled) for e in engines))
    finally:
        await first.aclose()
        await second.aclose()
    assert [len(sim.cancels(c)) for c in CARRIERS] == [1, 1]
    assert first.stats.cancels + second.stats.cancels == 2 and sim.answered[409] == 0


async def _recorded(store: Store, wave: Wave) -> bool:
    return len(await records(store, wave)) == 2


async def test_an_acceptance_lost_when_its_wave_is_cancelled_is_cancelled_all_the_same(
        store: Store, sim: CbcSim, plan: Plan, province: Province) -> None:
    """The centres took the alert but their answers were lost; the wave is cancelled before
    the retry: nothing says they took it, so once the wave is settled both get the Cancel."""
    cfg = settings(sim, timeout=0.3)
    cfg = Settings(cap=cfg.cap, cell_broadcast=cfg.cell_broadcast, engine=cfg.engine,
                   retry=RetrySettings(max_attempts=3, base_seconds=2.0, max_seconds=2.0,
                                       jitter=0.0))
    wave = await wave_of(store, cfg)
    campaigns = Campaigns(store, cfg, province)
    sim.hang_after_accept = 1.0

    async def cancelled(adapter: CellBroadcastAdapter) -> bool:
        if adapter.stats.unanswered >= 2 and (await store.campaigns.get(
                "c-cb")).state is not CampaignState.CANCELLED:  # type: ignore[union-attr]
            sim.hang_after_accept = 0.0
            await campaigns.cancel("c-cb", user="olga", reason="sai")
        found = await records(store, wave)
        return len(found) == 2 and all(b.withdrawal is not None for b in found)

    await run(store, plan, province, cfg, cancelled)
    assert [len(sim.alerts(c)) for c in CARRIERS] == [1, 1]  # taken once, never again
    assert [len(sim.cancels(c)) for c in CARRIERS] == [1, 1]
    for b in await records(store, wave):
        assert b.unconfirmed and b.withdrawal is not None
        assert b.withdrawal.state is State.CANCELLED
    p = await wave_progress(store, wave)
    assert p.sent == 0 and p.queued == 0


async def test_an_operator_withdraws_a_completed_waves_live_broadcasts(
        store: Store, sim: CbcSim, plan: Plan, province: Province) -> None:
    cfg = settings(sim)
    wave = await wave_of(store, cfg)

    async def completed(_: CellBroadcastAdapter) -> bool:
        return await _recorded(store, wave) and (
            await store.waves.states([wave.id]))[wave.id] is WaveState.COMPLETED

    await run(store, plan, province, cfg, completed)
    assert not any(sim.cancels(c) for c in CARRIERS)  # completed: still broadcasting
    await store.broadcasts.request(wave.id, Request(at=0.0, by="olga", reason="sai"))

    async def withdrawn(_: CellBroadcastAdapter) -> bool:
        return all(b.withdrawal is not None for b in await records(store, wave))

    await run(store, plan, province, cfg, withdrawn)
    assert [len(sim.cancels(c)) for c in CARRIERS] == [1, 1]
    for b in await records(store, wave):
        assert b.withdrawal is not None and b.withdrawal.reason is Reason.WITHDRAWN
