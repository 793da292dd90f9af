"""``loa demo``: a level-4 wave of every channel through the whole engine, in one command.

It generates an audience, imports it, sets the level to 4, and has the reconciler create the
next wave of each channel of the level-4 plan at once (as if its slot were due now). The engine
fans the waves out and its workers send them through in-process channels that answer like real
ones (a small share of transient and permanent failures), with retries and dead letters. Wave
ids are the plan's slot ids: run it twice on the same Redis and the second run sends nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from adapters.base import Adapter
from adapters.memory import MemoryAdapter
from dispatcher import audiencegen
from dispatcher.audience import Validator
from dispatcher.engine import Engine, Progress, wave_progress
from dispatcher.importer import import_audience
from dispatcher.level import set_level
from dispatcher.model import WAVE_FINAL, Channel
from dispatcher.msisdn import Numbering
from dispatcher.plan import Plan
from dispatcher.province import Province
from dispatcher.settings import Settings
from dispatcher.store import open_store
from dispatcher.store.base import Store

DEMO_LEVEL = 4
RETRY_RATIO = 0.002  # transient failures the demo's channels answer
FAIL_RATIO = 0.0005  # permanent failures (invalid destination)


class DemoResult(msgspec.Struct):
    recipients: int
    messages: dict[str, int]
    sent: int
    duplicates: int
    failed: int
    dead_letters: int
    seconds: float
    msgs_per_s: float
    waves: list[str] = []
    already_done: list[str] = []


ProgressCallback = Callable[[dict[str, Progress]], None]


async def run_demo(*, recipients: int, redis_url: str | None, plan: Plan, numbering: Numbering,
                   province: Province, settings: Settings,
                   on_progress: ProgressCallback | None = None) -> DemoResult:
    store = open_store(redis_url)
    try:
        with tempfile.TemporaryDirectory(prefix="loa-demo-") as tmp:
            path = Path(tmp) / "audience.csv"
            audiencegen.generate(path, recipients, seed=1, numbering=numbering,
                                 province=province)
            await import_audience(path, store, Validator(numbering, province),
                                  chunk_size=settings.engine.chunk_size)
        now = dt.datetime.now(dt.UTC)
        current = await store.level.get()
        if current is None or current.level != DEMO_LEVEL:
            await set_level(store, plan, now=now, level=DEMO_LEVEL, reason="loa demo",
                            user="demo")
        adapters: dict[Channel, MemoryAdapter] = {
            c: MemoryAdapter(retry_ratio=RETRY_RATIO, fail_ratio=FAIL_RATIO, seed=n)
            for n, c in enumerate(Channel)}
        engine = Engine(store, plan, settings, province, dict[Channel, Adapter](adapters),
                        numbering.carriers, reconcile=False)
        states_before = await store.waves.states()
        wave_ids = await engine.reconciler.trigger_now(now)
        before = {w: await _progress(store, w) for w in wave_ids}
        started = time.perf_counter()
        stop = asyncio.Event()
        runner = asyncio.create_task(engine.run(stop))
        try:
            while True:
                states = await store.waves.states(wave_ids)
                snapshot = {w: await _progress(store, w) for w in wave_ids}
                if on_progress is not None:
                    on_progress(snapshot)
                if all(states.get(w) in WAVE_FINAL for w in wave_ids):
                    break
                if runner.done():
                    break  # the engine stopped on an error: runner.result() raises it below
                await asyncio.sleep(0.2)
        finally:
            stop.set()
            await runner
        seconds = time.perf_counter() - started
        after = {w: await _progress(store, w) for w in wave_ids}
        for adapter in adapters.values():
            await adapter.aclose()
    finally:
        await store.aclose()
    sent = sum(a.messages for a in adapters.values())
    failed = sum(after[w].failed - before[w].failed for w in wave_ids)
    dead = sum(after[w].dead_letters - before[w].dead_letters for w in wave_ids)
    return DemoResult(
        recipients=recipients,
        messages={c.value: a.messages for c, a in adapters.items()},
        sent=sent,
        duplicates=sum(a.duplicates for a in adapters.values()),
        failed=failed,
        dead_letters=dead,
        seconds=round(seconds, 3),
        msgs_per_s=round(sent / seconds, 1) if seconds > 0 else 0.0,
        waves=wave_ids,
        already_done=[w for w in wave_ids if states_before.get(w) in WAVE_FINAL],
    )


async def _progress(store: Store, wave_id: str) -> Progress:
    wave = await store.waves.get(wave_id)
    return await wave_progress(store, wave) if wave is not None else Progress()
