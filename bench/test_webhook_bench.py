"""The delivery webhook's dedup on a real redis-server: one script per request, whatever the
number of events in it."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
import uvloop
from pytest_benchmark.fixture import BenchmarkFixture

from bench import localredis
from dispatcher.store.redis import RedisStore


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with localredis.running(tmp_path_factory.mktemp("redis")) as server:
        yield server.url


@pytest.mark.parametrize("events", [1, 100])
def test_webhook_dedup(benchmark: BenchmarkFixture, redis_url: str, events: int) -> None:
    """``first`` for one request of ``events`` new ids (Zalo posts one event per request)."""
    loop = uvloop.new_event_loop()
    store = RedisStore(redis_url)
    counter = itertools.count()

    async def one_request() -> None:
        n = next(counter)
        ids = [f"msg-{events}-{n}-{i}" for i in range(events)]
        assert all(await store.webhook_seen.first(ids, 1_800_000_000.0))

    try:
        benchmark(lambda: loop.run_until_complete(one_request()))
    finally:
        loop.run_until_complete(store.aclose())
        loop.close()
