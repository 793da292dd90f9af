"""The kept audience versions (uploaded lists of numbers) as the retention pass removes them: the
oldest found by their upload time, their descriptions forgotten at once, their chunks and number
index deleted in batches, on memory, Redis and Redis Cluster alike."""

from __future__ import annotations

import datetime as dt

from dispatcher.domain.audience import Recipient
from dispatcher.domain.model import Kind
from dispatcher.store import RedisStore, Store
from dispatcher.store.base import AudienceChunk, AudienceGroup, AudienceMeta

T0 = dt.datetime(2026, 3, 1, 1, 0, tzinfo=dt.UTC)
CHUNK = 100


def number(i: int) -> str:
    return f"849{i * 7919:08d}"  # spread over many buckets of the number index


async def stored(store: Store, version: str, n: int, at: dt.datetime) -> AudienceMeta:
    """A kept version of ``n`` recipients, uploaded at ``at``."""
    chunks = [AudienceChunk(first, [Recipient(number(i), "viettel", "", Kind.RESIDENT, False)
                                    for i in range(first, min(first + CHUNK, n))])
              for first in range(0, n, CHUNK)]
    await store.audiences.put_chunks(version, 0, chunks)
    meta = AudienceMeta(version=version, created_at=at, count=n, source=f"{version}.csv",
                        groups=[AudienceGroup("", Kind.RESIDENT, list(range(len(chunks))), n,
                                              0, 0, [c.first_id for c in chunks])])
    await store.audiences.keep(meta)
    return meta


async def redis_keys(store: Store, version: str) -> list[bytes]:
    """The Redis keys that name ``version`` (on every node of a cluster)."""
    assert isinstance(store, RedisStore)
    return [k async for k in store.client.scan_iter(match=f"*:{version}:*", count=1000)]


async def test_the_oldest_lists_are_found_by_their_upload_time(store: Store) -> None:
    for version, days in (("l-b", 20), ("l-a", 40), ("l-c", 1)):
        await stored(store, version, 3, T0 - dt.timedelta(days=days))
    assert await store.audiences.kept_before(T0 - dt.timedelta(days=10)) == ["l-a", "l-b"]
    assert await store.audiences.kept_before(T0 - dt.timedelta(days=40)) == []  # not before
    assert await store.audiences.kept_before(T0) == ["l-a", "l-b", "l-c"]


async def test_a_forgotten_list_is_gone_at_once_and_its_rows_after_discard(store: Store) -> None:
    old = await stored(store, "l-old", 1000, T0 - dt.timedelta(days=40))
    kept = await stored(store, "l-kept", 5, T0)
    if isinstance(store, RedisStore):
        assert len(await redis_keys(store, "l-old")) > 100  # chunks, many buckets, the meta
    assert await store.audiences.forget(["l-old", "l-never"]) == [old]
    assert await store.audiences.meta("l-old") is None
    assert await store.audiences.kept() == [kept]
    assert await store.audiences.kept_before(T0) == []
    assert await store.audiences.forget(["l-old"]) == []  # once
    assert await store.recipients.find("l-old", number(999)) == 999  # until discarded
    await store.audiences.discard("l-old")
    assert await store.audiences.chunks("l-old", [0, 9]) == []
    assert await store.recipients.find("l-old", number(999)) is None
    if isinstance(store, RedisStore):
        assert await redis_keys(store, "l-old") == []
    assert await store.audiences.meta("l-kept") == kept  # the other list is whole
    assert await store.recipients.find("l-kept", number(4)) == 4
    assert len(await store.audiences.chunks("l-kept", [0])) == 1


async def test_a_list_put_back_is_whole_again(store: Store) -> None:
    old = await stored(store, "l-old", 10, T0 - dt.timedelta(days=40))
    [meta] = await store.audiences.forget(["l-old"])
    await store.audiences.keep(meta)
    assert await store.audiences.meta("l-old") == old
    assert await store.audiences.kept_before(T0) == ["l-old"]
    assert await store.recipients.find("l-old", number(7)) == 7
