"""Cancel stops a wave within ``state_refresh_seconds``, also a batch a worker holds while it
waits for its route's rate: none of it is sent after the cancel. A wave cancelled before or
during its fan-out counts what it never enqueued as cancelled: its progress settles (nothing
reads as queued for ever), counted against what the channel received."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path

import msgspec
import pytest

from adapters.memory import MemoryAdapter
from bench import audiencegen
from dispatcher.domain.model import Batch, Campaign, CampaignState, Channel, Wave, WaveState
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.engine import routing
from dispatcher.engine.process import Engine, wave_progress
from dispatcher.engine.worker import Worker
from dispatcher.service.settings import EngineSettings, Settings
from dispatcher.store.base import FANNED, UNFANNED, AudienceMeta, Store
from tests.conftest import imported, run_engine_until

ROUTE = "sms.viettel"
RATE = 20.0  # messages a second: a batch of 200 takes 10 s
REFRESH = 0.1
SETTINGS = Settings(engine=EngineSettings(batch_size=200, state_refresh_seconds=REFRESH,
                                          consumers_per_route=1),
                    rates={ROUTE: RATE})


async def test_a_batch_waiting_for_its_rate_is_not_sent_once_its_wave_is_cancelled(
        store: Store) -> None:
    n = 200
    wave = Wave(id="w-cancel", campaign_id="c", channel=Channel.SMS, text="x",
                created_at=dt.datetime.now(dt.UTC), audience_version="v", total=n,
                start_now=True)
    await store.waves.create(wave, WaveState.SENDING)
    batch = Batch(wave=wave.id, channel=Channel.SMS, ids=list(range(n)),
                  addrs=[f"8498{i:07d}" for i in range(n)])
    assert await store.queue.enqueue(ROUTE, wave.id, 0, [batch])
    channel = MemoryAdapter()
    stop = asyncio.Event()
    task = asyncio.create_task(Worker(store, {Channel.SMS: channel}, [ROUTE], SETTINGS,
                                      name="w").run(stop))
    try:
        await asyncio.sleep(0.5)  # the batch is taken and waits for its rate
        await store.waves.set_state(wave.id, WaveState.CANCELLED)
        cancelled_at = time.monotonic()
        deadline = cancelled_at + 5  # the rate would have held the batch for 10 s
        while (await store.waves.progress(wave.id)).get("cancelled", 0) == 0:
            assert time.monotonic() < deadline, "the cancel did not reach the waiting batch"
            await asyncio.sleep(0.02)
    finally:
        stop.set()
        await task
    assert channel.messages == 0  # the batch was held back whole, then dropped
    assert await store.waves.progress(wave.id) == {"fanned": n, "cancelled": n}


# -- a wave cancelled before or during its fan-out ----------------------------------------------

ROWS = 600
# one audience chunk per fan-out step and one unread batch of lead per route: the fan-out of
# 600 recipients takes many steps, each waiting for the senders (20 messages a second a route)
FANOUT = Settings(engine=EngineSettings(batch_size=10, chunk_size=64, chunks_per_step=1,
                                        ahead_batches=1, lease_seconds=2.0,
                                        state_refresh_seconds=0.1))


@pytest.fixture(scope="module")
def audience_file(tmp_path_factory: pytest.TempPathFactory, numbering: Numbering,
                  province: Province) -> Path:
    path = tmp_path_factory.mktemp("cancel") / "audience.csv"
    audiencegen.generate(path, ROWS, seed=5, numbering=numbering, province=province)
    return path


async def sms_wave(store: Store, meta: AudienceMeta, wave_id: str) -> Wave:
    await store.campaigns.create(Campaign(
        id=f"c-{wave_id}", title="t", channels=[Channel.SMS], texts={Channel.SMS: "x"},
        created_at=dt.datetime.now(dt.UTC), created_by="t", state=CampaignState.RUNNING))
    wave = Wave(id=wave_id, campaign_id=f"c-{wave_id}", channel=Channel.SMS, text="x",
                created_at=dt.datetime.now(dt.UTC), audience_version=meta.version,
                total=meta.count, start_now=True)
    await store.waves.create(wave, WaveState.CREATED)
    return wave


def engine_for(store: Store, plan: Plan, numbering: Numbering, province: Province,
               channel: MemoryAdapter) -> Engine:
    routes = routing.routes(Channel.SMS, numbering.carriers, FANOUT)
    settings = msgspec.structs.replace(FANOUT, rates=dict.fromkeys(routes, 20.0))
    return Engine(store, plan, settings, province, {Channel.SMS: channel}, numbering.carriers,
                  reconcile=False, numbering=numbering)


async def settled(store: Store, wave: Wave) -> bool:
    p = await wave_progress(store, wave)
    return p.queued == 0 and p.retrying == 0


async def test_a_wave_cancelled_during_its_fan_out_counts_what_it_never_enqueued(
        store: Store, audience_file: Path, plan: Plan, numbering: Numbering,
        province: Province) -> None:
    meta = await imported(store, audience_file, numbering, province)
    channel = MemoryAdapter()
    engine = engine_for(store, plan, numbering, province, channel)
    wave = await sms_wave(store, meta, "w-mid-fanout")

    async def cancelled_mid_fan_out() -> bool:
        state = (await store.waves.states([wave.id]))[wave.id]
        if state is WaveState.FANNING_OUT and channel.messages >= 10:
            await store.waves.set_state(wave.id, WaveState.CANCELLED)
        if state is not WaveState.CANCELLED:
            assert state is WaveState.FANNING_OUT or channel.messages < 10, state
            return False
        return await settled(store, wave)

    await run_engine_until(engine, cancelled_mid_fan_out, timeout=30)
    counts = await store.waves.progress(wave.id)
    p = await wave_progress(store, wave)
    assert 0 < counts[UNFANNED] < meta.count  # the fan-out was cut short
    assert counts[FANNED] + counts[UNFANNED] == meta.count
    assert p.sent == channel.messages > 0
    assert p.sent + p.cancelled == meta.count and p.queued == 0


async def test_a_wave_cancelled_before_its_fan_out_settles_all_cancelled(
        store: Store, audience_file: Path, plan: Plan, numbering: Numbering,
        province: Province) -> None:
    meta = await imported(store, audience_file, numbering, province)
    channel = MemoryAdapter()
    engine = engine_for(store, plan, numbering, province, channel)
    wave = await sms_wave(store, meta, "w-never")
    await store.waves.set_state(wave.id, WaveState.CANCELLED)
    await run_engine_until(engine, lambda: settled(store, wave), timeout=30)
    p = await wave_progress(store, wave)
    assert p.cancelled == meta.count and p.sent == channel.messages == 0
    assert (await store.waves.progress(wave.id))[UNFANNED] == meta.count
