"""Commands packed in one C call: hiredis's ``pack_command`` over the whole argument tuple.

redis-py (8.x) packs a command through hiredis too, but first passes every argument through
its ``Encoder.encode`` in a Python generator: about 0.25 µs per argument, 2 µs per id of a
``BITFIELD ... SET u1 <id> 1`` (measured in bench/RESULTS.md, "Account for every
microsecond"). hiredis encodes what Loa sends itself (``bytes``, ``str`` as UTF-8, ``int``,
``float``, ``memoryview``) in C, so the connections Loa opens give it the tuple as it is. A
command whose name has a space (``"XINFO GROUPS"``: redis-py splits it into two arguments) or
an argument hiredis does not take (a ``bool``: redis-py refuses it with its own error) goes
the way redis-py packs it.
"""

from __future__ import annotations

from typing import Any

import hiredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import Connection

_made: dict[type, type] = {}


def packing(cls: type) -> type:
    """``cls`` (a redis-py connection class) with its commands packed by hiredis at once."""
    if cls in _made or cls in _made.values():
        return _made.get(cls, cls)
    inherited = cls.pack_command  # type: ignore[attr-defined]

    def pack_command(self: Any, *args: Any) -> list[bytes]:
        name = args[0]
        if (type(name) is str and " " not in name) or (type(name) is bytes and b" " not in name):
            try:
                return [hiredis.pack_command(args)]
            except TypeError:
                pass
        packed: list[bytes] = inherited(self, *args)
        return packed

    made = type(f"Hiredis{cls.__name__}", (cls,), {"pack_command": pack_command})
    _made[cls] = made
    return made


def install(client: Any) -> Any:
    """``client`` (one server's or a cluster's), its connections made by :func:`packing`."""
    if isinstance(client, RedisCluster):
        manager = client.nodes_manager
        kwargs = manager.connection_kwargs
        kwargs["connection_class"] = packing(kwargs.get("connection_class") or Connection)
        for node in [*manager.startup_nodes.values(), *manager.nodes_cache.values()]:
            node.connection_class = packing(node.connection_class)
    else:
        pool = client.connection_pool
        pool.connection_class = packing(pool.connection_class)
    return client

