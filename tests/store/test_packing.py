"""Commands packed by hiredis in one call (dispatcher.store.packing): the same bytes on the wire as
redis-py's own packing, and the same answers from a real Redis and Redis Cluster."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio.connection import Connection
from redis.exceptions import DataError

from dispatcher.store import packing
from dispatcher.store.redis import RedisStore

COMMANDS: list[tuple[Any, ...]] = [
    ("SET", b"loa:k", "Quảng Ninh", "EX", 60),
    ("BITFIELD", b"loa:{w}:delivered", "SET", "u1", 1_000_123, 1, "SET", "u1", 7, 1),
    ("HMGET", "loa:h", *[f"84912{i:06d}".encode() for i in range(50)]),
    ("ZADD", "loa:z", 1.5, b"m", 2, memoryview(b"n")),
    ("XINFO GROUPS", "loa:s"),  # a name with a space: redis-py's way
]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: str(a[0]))
def test_the_bytes_are_redis_py_s(args: tuple[Any, ...]) -> None:
    plain, fast = Connection(), packing.packing(Connection)()
    assert b"".join(fast.pack_command(*args)) == b"".join(plain.pack_command(*args))
    assert b"".join(fast.pack_commands([args, args])) == b"".join(
        plain.pack_commands([args, args]))


def test_what_hiredis_does_not_take_is_refused_as_redis_py_refuses_it() -> None:
    with pytest.raises(DataError):
        packing.packing(Connection)().pack_command("SET", "k", True)


def test_a_class_is_made_once() -> None:
    made = packing.packing(Connection)
    assert packing.packing(Connection) is made and packing.packing(made) is made


@pytest.mark.parametrize("kind", ["redis", "cluster"])
async def test_a_store_s_connections_pack_with_hiredis(kind: str, redis_url: str,
                                                       cluster_url: str) -> None:
    store = RedisStore(redis_url if kind == "redis" else cluster_url)
    try:
        client = store.client
        await client.set(b"loa:{t}:k", "Hạ Long")
        await client.execute_command("BITFIELD", b"loa:{t}:b", "SET", "u1", 5, 1, "SET", "u1",
                                     9, 1)
        assert await client.get(b"loa:{t}:k") == "Hạ Long".encode()
        assert await client.bitcount(b"loa:{t}:b") == 2
        async with client.pipeline(transaction=False) as pipe:
            pipe.hset(b"loa:{t}:h", mapping={b"a": 1, b"b": 2.5})
            pipe.hmget(b"loa:{t}:h", [b"a", b"b", b"c"])
            assert (await pipe.execute())[1] == [b"1", b"2.5", None]
        if kind == "redis":
            classes = {type(c) for c in client.connection_pool._available_connections}
        else:
            classes = {type(c) for node in client.get_nodes() for c in node._connections}
        assert classes and all(c.__name__.startswith("Hiredis") for c in classes), classes
    finally:
        await store.aclose()
