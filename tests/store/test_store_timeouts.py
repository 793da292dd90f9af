"""A Redis that stops answering without closing its connections (a frozen process, a network
cut that drops packets) is an outage the engine's loops ride out, not a call that waits for
ever."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
from redis.exceptions import TimeoutError as RedisTimeoutError

from bench import localredis
from dispatcher.engine import metrics
from dispatcher.store import RedisStore
from dispatcher.store.redis import TIMEOUTS


async def test_a_frozen_redis_times_out_as_an_outage_and_is_used_again_once_it_answers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(TIMEOUTS, "socket_timeout", 0.5)  # the default, shortened
    proc, server = localredis.start(tmp_path)
    store = RedisStore(server.url)
    try:
        assert await store.level.get() is None
        os.kill(proc.pid, signal.SIGSTOP)
        with pytest.raises(RedisTimeoutError) as raised:  # after 0.5 s, not asyncio's 5
            await asyncio.wait_for(store.level.get(), 5)
        assert isinstance(raised.value, metrics.STORE_TRANSIENT)  # what the loops ride out
        os.kill(proc.pid, signal.SIGCONT)
        assert await store.level.get() is None
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        await store.aclose()
        localredis.stop(proc)


def test_every_client_has_timeouts_unless_its_url_sets_others(redis_url: str) -> None:
    plain = RedisStore(redis_url).client.connection_pool.connection_kwargs
    assert {k: plain[k] for k in TIMEOUTS} == TIMEOUTS
    tuned = RedisStore(redis_url + "?socket_timeout=2").client.connection_pool.connection_kwargs
    assert tuned["socket_timeout"] == 2.0
