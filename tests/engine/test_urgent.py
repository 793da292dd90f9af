"""The urgent lane: urgent batches are read before routine ones by every worker, their retries
come back in their lane, routine fan-out keeps a bounded lead over the senders, and a routine
backlog holds an urgent wave back by no more than the routine batches already in hand."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path

import pytest

from adapters.base import Adapter, Envelope, Results
from bench import audiencegen
from dispatcher.domain.audience import Validator
from dispatcher.domain.model import (
    Batch,
    Campaign,
    CampaignState,
    Channel,
    Priority,
    Selector,
    Wave,
    WaveState,
)
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.engine import routing
from dispatcher.engine.fanout import fan_out
from dispatcher.engine.importer import import_audience
from dispatcher.engine.process import Engine
from dispatcher.service.settings import EngineSettings, Settings
from dispatcher.store import RedisStore, Store
from dispatcher.store.base import Completion, RetryItem

ROUTE = "zalo"


def batch(wave: str, first: int, n: int = 2) -> Batch:
    ids = list(range(first, first + n))
    return Batch(wave, Channel.ZALO, ids, [f"u{i}" for i in ids])


# -- the store ------------------------------------------------------------------------------------


async def test_urgent_entries_are_read_first_whenever_they_were_queued(store: Store) -> None:
    q = store.queue
    assert await q.enqueue(ROUTE, "routine", 0, [batch("routine", 0), batch("routine", 2)])
    assert await q.enqueue(ROUTE, "alert", 0, [batch("alert", 0)], urgent=True)
    assert await q.ahead(ROUTE) == 2  # routine entries not read yet
    first = await q.read(ROUTE, "a", 1, 0)
    assert first[0].entry.urgent is True
    assert first[0].batches[0].wave == "alert"
    assert await q.read(ROUTE, "a", 1, 0, urgent_only=True) == []
    rest = [d for d in first if not d.entry.urgent] + await q.read(ROUTE, "b", 5, 0)
    assert sorted(b.wave for d in rest for b in d.batches) == ["routine", "routine"]
    assert await q.ahead(ROUTE) == 0
    # an urgent entry and a routine one with the same id are two entries
    for d in [first[0], *rest]:
        assert await q.owner(ROUTE, d.entry) in ("a", "b")
        await q.complete(ROUTE, d.entry, Completion())
        assert await q.owner(ROUTE, d.entry) is None
    assert (await q.depth(ROUTE))[0] == 0


async def test_retries_of_an_urgent_wave_come_back_in_the_urgent_lane(store: Store) -> None:
    q = store.queue
    assert await q.enqueue(ROUTE, "routine", 0, [batch("routine", 0)])
    (routine,) = await q.read(ROUTE, "a", 1, 0)
    now = time.time()
    await q.complete(ROUTE, routine.entry, Completion(retries=[
        (now - 1, RetryItem("routine", Channel.ZALO, 0, "u0", 1)),
        (now - 1, RetryItem("alert", Channel.ZALO, 7, "u7", 1, urgent=True))]))
    assert (await q.depth(ROUTE))[1] == 2
    assert await q.move_due(ROUTE, now, 10) == 2
    (again,) = await q.read(ROUTE, "a", 1, 0, urgent_only=True)
    assert again.entry.urgent and again.batches[0].wave == "alert"
    assert again.batches[0].ids == [7] and again.batches[0].retried
    (later,) = await q.read(ROUTE, "a", 1, 0)
    assert not later.entry.urgent and later.batches[0].wave == "routine"


async def test_heartbeats_and_reclaims_reach_both_lanes(store: Store) -> None:
    q = store.queue
    assert await q.enqueue(ROUTE, "routine", 0, [batch("routine", 0)])
    assert await q.enqueue(ROUTE, "alert", 0, [batch("alert", 0)], urgent=True)
    held = await q.read(ROUTE, "a", 1, 0)
    assert len(held) == 2
    entries = [d.entry for d in held]
    assert sorted(await q.touch(ROUTE, "a", entries)) == sorted(entries)
    taken = await q.reclaim(ROUTE, "b", 0, 10)
    assert [d.entry.urgent for d in taken] == [True, False]
    assert await q.touch(ROUTE, "a", entries) == []
    assert all([await q.owner(ROUTE, e) == "b" for e in entries])


# -- fan-out --------------------------------------------------------------------------------------


async def _audience(store: Store, tmp_path: Path, numbering: Numbering, province: Province,
                    rows: int) -> str:
    path = tmp_path / "audience.csv"
    audiencegen.generate(path, rows, seed=2, numbering=numbering, province=province)
    await import_audience(path, store, Validator(numbering, province), chunk_size=32)
    meta = await store.audiences.meta()
    assert meta is not None
    return meta.version


async def test_routine_fan_out_keeps_a_bounded_lead_and_urgent_fan_out_does_not_wait(
        store: Store, tmp_path: Path, numbering: Numbering, province: Province) -> None:
    version = await _audience(store, tmp_path, numbering, province, 3000)
    settings = Settings(engine=EngineSettings(batch_size=20, chunks_per_step=2,
                                              ahead_batches=5))
    routine = Wave(id="r", campaign_id="c", channel=Channel.APP, text="x",
                   created_at=dt.datetime.now(dt.UTC), audience_version=version)
    route = routing.routes(Channel.APP, numbering.carriers, settings)[0]
    leads: list[int] = []
    reader_done = asyncio.Event()

    async def proceed() -> bool:
        leads.append(await store.queue.ahead(route))
        return True

    async def reader() -> int:  # a slow sender
        read = 0
        while not reader_done.is_set():
            read += len(await store.queue.read(route, "w", 1, 0))
            await asyncio.sleep(0.005)
        return read

    reading = asyncio.create_task(reader())
    enqueued = await fan_out(store, routine, settings, numbering.carriers, proceed=proceed)
    reader_done.set()
    await reading
    assert enqueued == 3000
    # a step adds at most 2 chunks x 32 recipients = 4 batches of 20 to the route
    assert max(leads) < 5 + 4

    urgent = Wave(id="u", campaign_id="c", channel=Channel.APP, text="x",
                  created_at=dt.datetime.now(dt.UTC), audience_version=version,
                  priority=Priority.URGENT)
    assert await fan_out(store, urgent, settings, numbering.carriers,
                         proceed=_true) == 3000  # nobody reads: no lead bound


async def _true() -> bool:
    return True


# -- the worker: urgent before routine, on Redis with two workers ---------------------------------


class Recording:
    """A channel that takes ``seconds`` per batch and records which wave each batch was of."""

    def __init__(self, log: list[tuple[int, str, bool]], seconds: float) -> None:
        self.log = log
        self.seconds = seconds

    async def send(self, envelope: Envelope) -> Results:
        self.log.append((len(envelope.addrs), envelope.wave, envelope.urgent))
        await asyncio.sleep(self.seconds)
        return Results(sent=list(range(len(envelope.addrs))))

    async def aclose(self) -> None:
        return None


@pytest.mark.parametrize("url", ["redis_url", "cluster_url"])
async def test_an_urgent_wave_overtakes_a_routine_backlog_on_every_worker(
        url: str, request: pytest.FixtureRequest, tmp_path: Path, plan: Plan,
        numbering: Numbering, province: Province) -> None:
    store = RedisStore(request.getfixturevalue(url))
    consumers, workers = 2, 2
    settings = Settings(engine=EngineSettings(batch_size=10, chunk_size=32,
                                              consumers_per_route=consumers,
                                              ahead_batches=1000, state_refresh_seconds=0.1))
    version = await _audience(store, tmp_path, numbering, province, 2000)
    now = dt.datetime.now(dt.UTC)
    log: list[tuple[int, str, bool]] = []
    for wid, priority in (("routine", Priority.NORMAL), ("alert", Priority.URGENT)):
        await store.campaigns.create(Campaign(
            id=wid, title=wid, channels=[Channel.ZALO], texts={Channel.ZALO: wid},
            created_at=now, created_by="a", state=CampaignState.RUNNING, priority=priority))
    meta = await store.audiences.meta()
    assert meta is not None
    routine = Wave(id="routine", campaign_id="routine", channel=Channel.ZALO, text="r",
                   created_at=now, audience_version=version, start_now=True,
                   total=routing.reach(meta, Selector(), Channel.ZALO))
    await store.waves.create(routine, WaveState.CREATED)
    engines = []
    for n in range(workers):
        adapters: dict[Channel, Adapter] = {Channel.ZALO: Recording(log, 0.02)}
        engines.append(Engine(store, plan, settings, province, adapters, numbering.carriers,
                              reconcile=False, name=f"w{n}"))
    stop = asyncio.Event()
    tasks = [asyncio.create_task(e.run(stop)) for e in engines]
    try:
        while len(log) < 20:  # the routine wave is flowing: ~180 batches of 10 queued
            await asyncio.sleep(0.01)
        alert = Wave(id="alert", campaign_id="alert", channel=Channel.ZALO, text="u",
                     created_at=now, audience_version=version, priority=Priority.URGENT,
                     start_now=True, total=routine.total)
        await store.waves.create(alert, WaveState.CREATED)
        created = time.monotonic()
        deadline = created + 60
        while (await store.waves.states(["alert", "routine"])) != {
                "alert": WaveState.COMPLETED, "routine": WaveState.COMPLETED}:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        await store.aclose()
    first_urgent = next(i for i, (_, _, urgent) in enumerate(log) if urgent)
    last_urgent = max(i for i, (_, _, urgent) in enumerate(log) if urgent)
    # from the first urgent batch on, routine batches started only while others were in hand
    # at the worker (one per consumer), never while urgent ones waited in the lane
    routine_between = sum(1 for _, _, urgent in log[first_urgent:last_urgent] if not urgent)
    assert routine_between <= consumers * workers
    assert sum(n for n, _, urgent in log if urgent) == alert.total
    assert sum(1 for _, _, urgent in log[last_urgent:] if not urgent) > 50  # routine was waiting
