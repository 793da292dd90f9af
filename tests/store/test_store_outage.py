"""A Redis that went away is the store's own error, :class:`StoreUnavailable` (retryable), from
every kind of call: a command, a transaction, a script. It is still the error redis-py raised,
so what handled that one handles it the same."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from bench.localredis import free_port
from dispatcher.domain.errors import LoaError, StoreUnavailable
from dispatcher.domain.model import LevelState
from dispatcher.engine import metrics
from dispatcher.service.audit import AuditLog, audited, read_audit
from dispatcher.store import RedisStore
from dispatcher.store.outage import ERRORS, UNAVAILABLE, unavailable

CALLS: dict[str, Callable[[RedisStore], Awaitable[object]]] = {
    "command": lambda store: store.level.get(),
    "transaction": lambda store: store.level.set(LevelState(level=2, at=dt.datetime.now(dt.UTC))),
    "script": lambda store: store.leases.acquire("link", "w1", 1.0),
    "ping": lambda store: store.ping(),
}


@pytest.mark.parametrize("call", sorted(CALLS))
async def test_a_redis_that_went_away_is_store_unavailable(call: str) -> None:
    store = RedisStore(f"redis://127.0.0.1:{free_port()}")  # nothing listens there
    try:
        with pytest.raises(StoreUnavailable) as raised:
            await CALLS[call](store)
    finally:
        await store.aclose()
    error = raised.value
    assert isinstance(error, LoaError) and error.retryable
    assert isinstance(error, RedisConnectionError)  # and still what redis-py raised
    assert isinstance(error, metrics.STORE_TRANSIENT)  # what the engine's loops ride out
    assert isinstance(error.__cause__, RedisConnectionError)
    assert not isinstance(error.__cause__, StoreUnavailable)
    assert str(error) == str(error.__cause__)
    assert type(error).__name__ == "ConnectionError"  # as the logs named it


async def test_a_refused_command_is_left_as_redis_raised_it(redis_url: str) -> None:
    store = RedisStore(redis_url)
    try:
        await store.client.set("loa:test:text", b"x")
        with pytest.raises(ERRORS) as raised:
            await store.client.hget("loa:test:text", "f")  # WRONGTYPE: a bug, not an outage
    finally:
        await store.client.delete("loa:test:text")
        await store.aclose()
    assert not isinstance(raised.value, UNAVAILABLE)


async def test_the_audit_records_a_store_outage_by_its_class_only(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"

    async def change() -> None:
        raise unavailable(RedisConnectionError("redis://:s3cret@redis:6379 refused"))

    with pytest.raises(StoreUnavailable):
        await audited(AuditLog(path), who="olga", role="operator", action="stop",
                      target="everything", work=change())
    _, outcome = read_audit(path)
    assert outcome.outcome == "ConnectionError (internal error)"  # as redis-py's error was
    assert "s3cret" not in path.read_text(encoding="utf-8")
