"""Test fixtures: a private redis-server and a private Redis Cluster per test session (see
bench.localredis)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis

from adapters.smpp.simulator import Smsc, SmscConfig
from adapters.zalo.simulator import ZaloSim, ZaloSimConfig
from bench import localredis
from dispatcher.domain.audience import Validator
from dispatcher.domain.errors import LoaError
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.province import Province
from dispatcher.engine.importer import import_audience
from dispatcher.engine.process import Engine
from dispatcher.store import MemoryStore, RedisStore, Store
from dispatcher.store.base import AudienceMeta

RedisServer = localredis.LocalRedis


def start_redis(
    workdir: Path, *, persistence: bool = False
) -> tuple[subprocess.Popen[bytes], RedisServer]:
    """Start a private redis-server on a free loopback port; persistence (AOF) only on request."""
    try:
        return localredis.start(workdir, appendonly=persistence)
    except LoaError as exc:
        pytest.fail(f"{exc}; `make test` installs it")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server of this test session only, with no persistence."""
    proc, server = start_redis(tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        localredis.stop(proc)


#: A level-4 alert: two UCS-2 parts.
def daytime() -> dt.datetime:
    """The last 10:00 in the province (Asia/Ho_Chi_Minh), inside the plan's sending hours and
    never in the future: an engine with this clock starts routine waves at any hour of the test."""
    local = dt.datetime.now(ZoneInfo("Asia/Ho_Chi_Minh"))
    ten = local.replace(hour=10, minute=0, second=0, microsecond=0)
    return (ten if ten <= local else ten - dt.timedelta(days=1)).astimezone(dt.UTC)


VIETNAMESE = ("KHẨN: Covid-19 lây lan rộng tại Quảng Ninh. Chỉ ra ngoài khi thật cần thiết, đeo "
              "khẩu trang. Sốt, ho, khó thở: gọi y tế xã, phường.")


@pytest.fixture
async def sim() -> AsyncIterator[ZaloSim]:
    """The Zalo simulator on a free loopback port, default settings."""
    server = ZaloSim(ZaloSimConfig())
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def smsc() -> AsyncIterator[Smsc]:
    """The project's SMSC simulator on a free loopback port, keeping the texts it received."""
    server = Smsc(SmscConfig(keep_texts=True))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def imported(store: Store, path: Path, numbering: Numbering,
                   province: Province) -> AudienceMeta:
    """``path`` imported as the current audience (chunks of 64), and its description."""
    await import_audience(path, store, Validator(numbering, province), chunk_size=64)
    found = await store.audiences.meta()
    assert found is not None
    return found


async def run_engine_until(engine: Engine, done: Callable[[], Awaitable[bool]],
                           timeout: float = 30) -> None:
    """Run ``engine`` until ``done()`` answers True (or fail after ``timeout`` seconds), then
    stop it and wait for it; an error that stopped the engine is raised here."""
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))
    try:
        async def wait() -> None:
            while not await done():
                if task.done():
                    task.result()
                await asyncio.sleep(0.05)
        await asyncio.wait_for(wait(), timeout)
    finally:
        stop.set()
        await task


@pytest.fixture(params=["memory", "redis", "cluster"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    """A fresh, empty store of each implementation (the Redis one on one server and on a
    cluster): the tests using it are the contract."""
    if request.param == "memory":
        opened: Store = MemoryStore()
    else:
        opened = RedisStore(request.getfixturevalue(f"{request.param}_url"))
    try:
        yield opened
    finally:
        await opened.aclose()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """The URL of the session's redis-server, emptied before each test."""
    client = redis.Redis(host=redis_server.host, port=redis_server.port)
    client.flushall()
    client.close()
    yield redis_server.url


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[localredis.LocalCluster]:
    """A Redis Cluster of three masters of this test session only, with no persistence."""
    if shutil.which("redis-cli") is None:
        pytest.skip("redis-cli is not installed (Debian package redis-tools); `make test` "
                    "installs it")
    with contextlib.ExitStack() as stack:
        try:
            cluster = stack.enter_context(
                localredis.cluster(tmp_path_factory.mktemp("redis-cluster")))
        except LoaError as exc:
            pytest.fail(str(exc))
        yield cluster


@pytest.fixture
def cluster_url(redis_cluster: localredis.LocalCluster) -> Iterator[str]:
    """The URL of the session's Redis Cluster, every node emptied before each test."""
    for port in redis_cluster.ports:
        client = redis.Redis(host=redis_cluster.host, port=port)
        client.flushall()
        client.close()
    yield redis_cluster.url


@contextlib.contextmanager
def loa_process(args: list[str], *, cwd: Path, ready: list[str], env: dict[str, str],
                text: bool = False, timeout: float = 20) -> Iterator[subprocess.Popen[Any]]:
    """``loa ARGS`` as a process of its own, yielded once each URL of ``ready`` answers (any
    status; bounded by ``timeout``: a bound on a hang, not a measure of speed); killed on the way
    out if it is still running, its output left to ``communicate()``."""
    proc = subprocess.Popen([sys.executable, "-m", "dispatcher.service.cli", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=text, env=env)
    try:
        deadline = time.monotonic() + timeout
        for url in ready:
            while not _answers(url):
                assert proc.poll() is None, proc.communicate()[1]
                assert time.monotonic() < deadline, f"{url} did not answer in {timeout:g} s"
                time.sleep(0.1)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # an answer, whatever its status
    except OSError:
        return False
