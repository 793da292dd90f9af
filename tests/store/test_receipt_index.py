"""The receipt index in Redis (dispatcher.store.receiptindex): message ids spread over the hour's
shards, found from the id alone, on one Redis and on a Redis Cluster; the hashes of a version that
did not shard are still read."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import msgspec
import pytest

from dispatcher.store import keys, receiptindex
from dispatcher.store.base import Completion, Entry
from dispatcher.store.redis import RedisStore

HOUR = 3600.0


@pytest.fixture(params=["redis", "cluster"])
async def store(request: pytest.FixtureRequest, redis_url: str,
                cluster_url: str) -> AsyncIterator[RedisStore]:
    made = RedisStore(redis_url if request.param == "redis" else cluster_url)
    yield made
    await made.aclose()


async def test_ids_spread_over_the_shards_and_are_found_from_the_id(store: RedisStore) -> None:
    now = time.time()
    remote = {f"{4_000_000_000 + n * 997}": ("w1", n, 0) for n in range(2000)}  # a day's ids
    async with store.client.pipeline(transaction=False) as pipe:
        receiptindex.write(pipe, remote, now)
        await pipe.execute()
    hour = int(now // HOUR)
    sizes = [await store.client.hlen(keys.remote_ids(hour, n))
             for n in range(receiptindex.SHARDS)]
    assert sum(sizes) == 2000 and min(sizes) > 2000 / receiptindex.SHARDS / 2  # spread
    assert await store.client.ttl(keys.remote_ids(hour, 0)) > receiptindex.HOURS * HOUR
    wanted = [*list(remote)[::7], "unknown-1"]
    found = await receiptindex.match(store.client, wanted, recent=True, now=now)
    assert found == {k: remote[k] for k in wanted if k in remote}


async def test_an_id_of_an_earlier_hour_is_found_by_the_full_lookup(store: RedisStore) -> None:
    now = time.time()
    async with store.client.pipeline(transaction=False) as pipe:
        receiptindex.write(pipe, {"m-old": ("w1", 5, 1)}, now - 30 * HOUR)
        await pipe.execute()
    assert await receiptindex.match(store.client, ["m-old"], recent=True, now=now) == {}
    assert await receiptindex.match(store.client, ["m-old"], now=now) == {"m-old": ("w1", 5, 1)}


async def test_the_hash_of_a_version_that_did_not_shard_is_still_read(
        store: RedisStore) -> None:
    now = time.time()
    hour = int(now // HOUR)
    encoded = msgspec.msgpack.encode(("w0", 9, 0))
    await store.client.hset(keys.remote_ids_unsharded(hour - 3), "m-before", encoded)
    assert await receiptindex.match(store.client, ["m-before"], now=now) == {
        "m-before": ("w0", 9, 0)}


async def test_a_completion_writes_the_index_the_matcher_reads(store: RedisStore) -> None:
    """Through the store's interfaces: what a batch's completion records, its receipts find."""
    completion = Completion(remote={"smsc-1": ("w9", 1, 0), "smsc-2": ("w9", 2, 0)})
    await store.queue.complete("sms.viettel", Entry(id="0-1"), completion)
    assert await store.receipts.match(["smsc-1", "smsc-2", "smsc-3"], recent=True) == {
        "smsc-1": ("w9", 1, 0), "smsc-2": ("w9", 2, 0)}


def test_a_batch_of_consecutive_ids_falls_in_one_or_two_shards() -> None:
    """An SMSC's ids count up: a batch's ids cost one or two commands, not one per shard."""
    for start in (0x2F0000, 0x2F0FC0, 4_000_123_456):
        batch = [f"{start + n:010x}" for n in range(500)]
        assert len({receiptindex.shard(i) for i in batch}) <= 2
    decimal = [str(4_000_123_456 + n) for n in range(500)]
    assert len({receiptindex.shard(i) for i in decimal}) <= 2
