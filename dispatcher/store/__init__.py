"""What the engine keeps: :func:`open_store` gives the Redis store for a URL, else memory."""

from __future__ import annotations

from dispatcher.store.base import Store
from dispatcher.store.memory import MemoryStore
from dispatcher.store.redis import RedisStore


def open_store(url: str | None) -> Store:
    """The Redis store at ``url`` (``redis://host:port/db``, or ``redis+cluster://host:port``
    for Redis Cluster), or a new in-memory store."""
    return RedisStore(url) if url else MemoryStore()


__all__ = ["MemoryStore", "RedisStore", "Store", "open_store"]
