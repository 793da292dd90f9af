"""The waves of a window (WaveStore.since) on every store; on Redis, the sorted set behind it:
waves it does not hold (made before it existed) are still found, and the cache of decoded
records answers what Redis holds, read once."""

from __future__ import annotations

import random
from datetime import timedelta

import msgspec
import pytest
import redis

from dispatcher.domain.model import Wave, WaveState
from dispatcher.store import RedisStore, Store, keys
from dispatcher.store.wavetimes import WaveRecords
from tests.store.test_store import T0, wave


def made(n: int, *, hours: int = 1) -> list[Wave]:
    """``n`` waves, one every ``hours`` from T0, oldest first."""
    return [wave(f"w{i:02d}", created_at=T0 + timedelta(hours=hours * i)) for i in range(n)]


async def create(store: Store, waves: list[Wave]) -> None:
    for w in random.Random(7).sample(waves, len(waves)):
        assert await store.waves.create(w, WaveState.COMPLETED)


async def test_since_answers_the_waves_made_at_or_after_the_time_newest_first(
        store: Store) -> None:
    assert await store.waves.since(T0) == []
    waves = made(6)
    same_time = wave("w04b", created_at=waves[4].created_at)
    await create(store, [*waves, same_time])
    assert await store.waves.since(waves[3].created_at) == [waves[5], same_time, waves[4],
                                                           waves[3]]
    just_after = waves[3].created_at + timedelta(microseconds=1)
    assert await store.waves.since(just_after) == [waves[5], same_time, waves[4]]
    assert await store.waves.since(T0 - timedelta(days=1)) == [
        waves[5], same_time, waves[4], waves[3], waves[2], waves[1], waves[0]]
    assert await store.waves.since(T0 + timedelta(days=1)) == []


async def test_a_wave_made_after_a_read_is_in_the_next(store: Store) -> None:
    first, second = made(2)
    await create(store, [first])
    assert await store.waves.since(T0) == [first]
    await create(store, [second])
    assert await store.waves.since(T0) == [second, first]
    assert not await store.waves.create(wave("w01", created_at=T0 - timedelta(days=9)),
                                        WaveState.CREATED)  # once: its time stays
    assert await store.waves.since(T0) == [second, first]


@pytest.fixture(params=["redis_url", "cluster_url"])
def url(request: pytest.FixtureRequest) -> str:
    found: str = request.getfixturevalue(request.param)
    return found


def raw_client(url: str) -> redis.Redis | redis.RedisCluster:
    if url.startswith("redis+cluster://"):
        return redis.RedisCluster.from_url("redis://" + url.removeprefix("redis+cluster://"))
    return redis.Redis.from_url(url)


async def test_waves_the_time_index_does_not_hold_are_found_and_indexed_once(url: str) -> None:
    waves = made(8, hours=24)
    store = RedisStore(url)
    try:
        await create(store, waves)
        client = raw_client(url)
        try:
            client.delete(keys.WAVE_TIMES)  # as made before the sorted set existed
            assert await store.waves.since(waves[5].created_at) == waves[:4:-1]
            assert client.zcard(keys.WAVE_TIMES) == 8
            client.zrem(keys.WAVE_TIMES, waves[6].id, waves[1].id)  # a few missing
            old = wave("w-old", created_at=T0 - timedelta(hours=1))
            client.hset(keys.WAVES, old.id, msgspec.msgpack.encode(old))  # written without it
        finally:
            client.close()
        again = RedisStore(url)  # another process, nothing decoded yet
        try:
            assert await again.waves.since(T0 - timedelta(days=1)) == [*waves[::-1], old]
            assert await again.waves.since(waves[6].created_at) == waves[:5:-1]
            assert await store.waves.since(T0) == waves[::-1]
        finally:
            await again.aclose()
    finally:
        await store.aclose()


async def test_the_record_cache_answers_what_redis_holds_and_reads_each_once(
        redis_url: str) -> None:
    a, b = RedisStore(redis_url), RedisStore(redis_url)
    client = redis.Redis.from_url(redis_url)
    try:
        assert await a.waves.since(T0) == []
        first, second, third = made(3)
        await create(b, [first])
        assert await a.waves.since(T0) == [first]  # made by another process after a's read
        await create(b, [second, third])
        client.config_resetstat()
        assert await a.waves.since(T0) == [third, second, first]
        assert await a.waves.since(T0) == [third, second, first]
        stats = client.info("commandstats")
        assert stats["cmdstat_hmget"]["calls"] == 1  # the two new ones, then none
        assert "cmdstat_hvals" not in stats and "cmdstat_hgetall" not in stats

        small = WaveRecords(a.client, size=2)  # fewer than the window's waves
        for _ in range(3):
            assert await small.since(T0) == [third, second, first]
        assert await small.many(["w02", "missing", "w00"]) == {"w02": third, "w00": first}
    finally:
        client.close()
        await a.aclose()
        await b.aclose()


def test_the_time_index_shares_the_waves_hash_slot() -> None:
    for key in (keys.WAVES, keys.WAVE_STATES, keys.WAVE_TIMES):
        assert "{waves}" in key and key.count("{") == 1
