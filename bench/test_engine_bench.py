"""Benchmarks of the engine on a real redis-server: a whole wave, and one batch's store work.

Run with ``make bench``; results go to bench/RESULTS.md.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator

import pytest
import uvloop
from pytest_benchmark.fixture import BenchmarkFixture

from bench import localredis
from bench.enginebench import engine_bench
from dispatcher.domain.model import Batch, Channel, Wave, WaveState
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.province import Province
from dispatcher.service.settings import Settings
from dispatcher.store.base import Completion
from dispatcher.store.redis import RedisStore


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with localredis.running(tmp_path_factory.mktemp("redis")) as server:
        yield server.url


def test_engine_wave_100k(benchmark: BenchmarkFixture, redis_url: str, numbering: Numbering,
                          province: Province) -> None:
    """Fan-out and one worker: 100,000 recipients on SMS and Zalo (about 198,000 messages)."""

    def run() -> int:
        result = uvloop.run(engine_bench(recipients=100_000, channels=[Channel.SMS, Channel.ZALO],
                                         redis_url=redis_url, numbering=numbering,
                                         province=province, settings=Settings()))
        assert result.duplicates == 0
        return result.messages

    messages = benchmark.pedantic(run, rounds=3, iterations=1)  # type: ignore[no-untyped-call]
    assert messages > 190_000


def test_batch_store_work(benchmark: BenchmarkFixture, redis_url: str) -> None:
    """The store commands of one 500-message batch: dedup read, then the completion."""

    async def setup() -> RedisStore:
        store = RedisStore(redis_url)
        await store.client.flushdb()
        wave = Wave(id="w", campaign_id="c", channel=Channel.SMS, text="x",
                    created_at=dt.datetime.now(dt.UTC), audience_version="v")
        await store.waves.create(wave, WaveState.SENDING)
        return store

    loop = uvloop.new_event_loop()
    store = loop.run_until_complete(setup())
    ids = list(range(1000, 1500))
    batch = Batch("w", Channel.SMS, ids, [f"8491{i:07d}" for i in ids])
    steps = itertools.count()

    async def one_batch() -> None:
        await store.queue.enqueue("sms.viettel", "w", next(steps), [batch])
        (delivery,) = await store.queue.read("sms.viettel", "bench", 1, 0)
        await store.queue.sent_mask("w", ids)
        done = Completion(sent={"w": ids}, counts={"w": {"sent": len(ids)}})
        await store.queue.complete("sms.viettel", delivery.entry, done)

    try:
        benchmark(lambda: loop.run_until_complete(one_batch()))
    finally:
        loop.run_until_complete(store.aclose())
        loop.close()
