"""``loa bench engine``: fan-out and workers of one process on a real Redis, measured.

A generated audience is imported, one wave per channel is created and fanned out while one
worker sends it through in-process channels; the figures are messages per second (wall clock,
fan-out included), the process's CPU time per message, and what Redis holds.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from adapters.base import Adapter
from adapters.memory import MemoryAdapter
from dispatcher import audiencegen, keys, localredis, routing
from dispatcher.audience import Validator
from dispatcher.fanout import fan_out
from dispatcher.importer import import_audience
from dispatcher.model import Channel, Selector, Wave, WaveState
from dispatcher.msisdn import Numbering
from dispatcher.province import Province
from dispatcher.settings import Settings
from dispatcher.store.redis import RedisStore
from dispatcher.worker import Worker


class EngineBenchResult(msgspec.Struct):
    recipients: int
    channels: list[str]
    messages: int
    seconds: float
    msgs_per_s: float
    cpu_us_per_msg: float
    duplicates: int
    dedup_bytes_per_recipient: float  # Redis memory of the sent bitmaps, per recipient per wave
    redis_used_mb: float
    peak_rss_mb: float


async def _run(url: str, path: Path, channels: list[Channel], numbering: Numbering,
               province: Province, settings: Settings,
               on_progress: Callable[[int, int], None] | None) -> EngineBenchResult:
    store = RedisStore(url)
    try:
        await store.client.flushdb()
        result = await import_audience(path, store, Validator(numbering, province),
                                       chunk_size=settings.engine.chunk_size)
        meta = await store.audiences.meta()
        assert meta is not None
        now = dt.datetime.now(dt.UTC)
        waves = [Wave(id=f"bench-{c}", campaign_id="bench", channel=c, text="Loa benchmark",
                      created_at=now, audience_version=meta.version,
                      total=routing.reach(meta, Selector(), c))
                 for c in channels]
        for wave in waves:
            await store.waves.create(wave, WaveState.SENDING)
        adapters = {c: MemoryAdapter() for c in channels}
        routes = [r for c in channels for r in routing.routes(c, numbering.carriers, settings)]
        worker = Worker(store, dict[Channel, Adapter](adapters), routes, settings, name="bench")
        total = sum(w.total for w in waves)
        stop = asyncio.Event()
        started, cpu = time.perf_counter(), time.process_time()
        working = asyncio.create_task(worker.run(stop))

        async def proceed() -> bool:
            return True

        try:
            for wave in waves:
                await fan_out(store, wave, settings, numbering.carriers, proceed=proceed)
            while (sent := sum(a.messages for a in adapters.values())) < total:
                if working.done():
                    break
                if on_progress is not None:
                    on_progress(sent, total)
                await asyncio.sleep(0.05)
        finally:
            stop.set()
            await working
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu
        sent = sum(a.messages for a in adapters.values())
        bitmaps = sum([await store.client.memory_usage(keys.sent(w.id)) or 0 for w in waves])
        info = await store.client.info("memory")
        return EngineBenchResult(
            recipients=result.recipients, channels=[c.value for c in channels], messages=sent,
            seconds=round(seconds, 3), msgs_per_s=round(sent / seconds),
            cpu_us_per_msg=round(cpu / max(sent, 1) * 1e6, 2),
            duplicates=sum(a.duplicates for a in adapters.values()),
            dedup_bytes_per_recipient=round(bitmaps / max(result.recipients, 1) / len(waves), 3),
            redis_used_mb=round(info["used_memory"] / 1e6, 1),
            peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1))
    finally:
        await store.aclose()


async def engine_bench(*, recipients: int, channels: list[Channel], redis_url: str | None,
                       numbering: Numbering, province: Province, settings: Settings,
                       on_progress: Callable[[int, int], None] | None = None,
                       ) -> EngineBenchResult:
    """Run the engine benchmark; without ``redis_url`` a private redis-server is started."""
    with tempfile.TemporaryDirectory(prefix="loa-bench-") as tmp:
        path = Path(tmp) / "audience.csv"
        audiencegen.generate(path, recipients, seed=1, numbering=numbering, province=province)
        if redis_url:
            return await _run(redis_url, path, channels, numbering, province, settings,
                              on_progress)
        with localredis.running(Path(tmp)) as server:
            return await _run(server.url, path, channels, numbering, province, settings,
                              on_progress)
