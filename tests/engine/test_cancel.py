"""Cancel stops a wave within ``state_refresh_seconds``, also a batch a worker holds while it
waits for its route's rate: none of it is sent after the cancel."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

from adapters.memory import MemoryAdapter
from dispatcher.domain.model import Batch, Channel, Wave, WaveState
from dispatcher.engine.worker import Worker
from dispatcher.service.settings import EngineSettings, Settings
from dispatcher.store.base import Store

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
    assert await store.waves.progress(wave.id) == {"cancelled": n}
