"""``loa chaos``: a wave under a fault, and what reached the handsets.

A :class:`Stage` is a small deployment on this machine: a private Redis with AOF
(``appendfsync everysec``), the SMSC and Zalo simulators in this process (so that a scenario
can drop their connections, refuse binds or fail requests at a chosen moment), and ``loa
worker`` processes. A scenario (bench/scenarios.py) sends one SMS and one Zalo wave to a
generated audience while it injects its fault, and the figures come from the simulators: every
recipient must have been reached, and duplicates stay within the bound the scenario states.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
from redis.exceptions import BusyLoadingError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from adapters.smpp.simulator import Smsc, SmscConfig
from adapters.zalo.simulator import ZaloSim, ZaloSimConfig
from bench import audiencegen, localredis, procstat, simconfig
from bench.wavebench import ALERT, WorkerProcess, create_waves
from dispatcher.domain import repeats
from dispatcher.domain.audience import Validator
from dispatcher.domain.errors import LoaError
from dispatcher.domain.model import Batch, Channel, Selector, Wave, WaveState
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.province import Province
from dispatcher.engine import routing
from dispatcher.engine.importer import import_audience
from dispatcher.engine.process import wave_progress
from dispatcher.service.settings import Settings
from dispatcher.store import RedisStore, keys

BINDS = 2
WINDOW = 64
TPS = 1000  # agreed per bind: a throttled bind never goes below a tenth of it
ZALO_CONCURRENCY = 64  # the Zalo adapter's requests in flight
CHUNK = 128
STATE_REFRESH = 0.2  # [engine] state_refresh_seconds of the workers: how soon they obey a stop
RECONCILE = 1.0  # [engine] reconcile_seconds: how often the reconcilers look at the level


class ChaosResult(msgspec.Struct, kw_only=True):
    scenario: str
    expected: int  # messages the waves must deliver (SMS + Zalo recipients)
    delivered: int  # distinct recipients reached, at the simulators
    lost: int  # expected, neither delivered nor dead-lettered with a reason
    duplicates: int  # messages beyond the first to one recipient, at the simulators
    duplicate_bound: int  # what the fault may cost at most (see docs/guarantees.md)
    dead_letters: int
    seconds: float
    details: dict[str, Any] = {}
    failures: list[str] = []  # the scenario's own checks that failed (beyond lost/duplicates)


def worker_config(smsc_port: int, zalo_url: str, *, lease_seconds: float) -> str:
    engine = f"""zalo_tokens_file = "zalo-tokens.json"
[engine]
batch_size = 200
chunk_size = {CHUNK}
chunks_per_step = 4
lease_seconds = {lease_seconds}
state_refresh_seconds = {STATE_REFRESH}
reconcile_seconds = {RECONCILE}

[retry]
max_attempts = 8
base_seconds = 0.5
max_seconds = 4.0
"""
    return "\n".join([
        engine,
        simconfig.smpp_table(smsc_port, "chaos", binds=BINDS, window=WINDOW, tps=TPS,
                             response_timeout=5.0, bind_wait=1.0),
        simconfig.zalo_table(zalo_url, concurrency=ZALO_CONCURRENCY, timeout=5.0,
                             quota_probe_seconds=2.0, outage_pause_max=4.0),
        # the plan's other channels: no waves here
        simconfig.simulate_table("email", "app", "facebook", "loudspeaker", "cell_broadcast")])


class Stage:
    """Redis (AOF), the simulators in this process, and ``loa worker`` processes."""

    def __init__(self, tmp: Path, carriers: list[str], *, recipients: int,
                 lease_seconds: float = 3.0, fault_seconds: float = 10.0) -> None:
        self.tmp = tmp
        self.fault_seconds = fault_seconds  # how long a lasting fault lasts
        self.carriers = carriers
        self.recipients = recipients
        self.lease_seconds = lease_seconds
        self.smsc = Smsc(SmscConfig())
        self.zalo = ZaloSim(ZaloSimConfig())
        self.redis: subprocess.Popen[bytes] | None = None
        self.redis_port = 0
        self.store: RedisStore | None = None
        self.workers: dict[str, WorkerProcess] = {}
        self.waves: list[Wave] = []
        self._n = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def db(self) -> RedisStore:
        assert self.store is not None
        return self.store

    async def start(self, numbering: Numbering, province: Province) -> None:
        await self.smsc.start()
        await self.zalo.start()
        self.start_redis()
        self.store = RedisStore(self.url)
        path = self.tmp / "audience.csv"
        audiencegen.generate(path, self.recipients, seed=3, numbering=numbering,
                             province=province, zalo_accounts=self.recipients * 9 // 10)
        await import_audience(path, self.store, Validator(numbering, province),
                              chunk_size=CHUNK)
        (self.tmp / "worker.toml").write_text(
            worker_config(self.smsc.port, self.zalo.url, lease_seconds=self.lease_seconds),
            encoding="utf-8")

    def start_redis(self) -> None:
        """Start (or start again, on the same port and files) the AOF redis-server."""
        self.redis, server = localredis.start(self.tmp, appendonly=True, port=self.redis_port)
        self.redis_port = server.port

    def kill_redis(self) -> None:
        if self.redis is not None:
            self.redis.send_signal(signal.SIGKILL)
            self.redis.wait()

    async def send(self) -> list[Wave]:
        """Create the SMS and Zalo waves; the workers fan them out."""
        meta = await self.db.audiences.meta()
        assert meta is not None
        reach = {c: routing.reach(meta, Selector(), c) for c in (Channel.SMS, Channel.ZALO)}
        self.waves = await create_waves(self.db, ALERT, meta.version, reach)
        return self.waves

    async def add_worker(self, *extra: str) -> WorkerProcess:
        worker = WorkerProcess(self._n, self.tmp / "worker.toml", self.url, extra=list(extra))
        self._n += 1
        os.chdir(self.tmp)  # the tokens file lands here
        await worker.start()
        self.workers[worker.name] = worker
        return worker

    def kill(self, worker: WorkerProcess) -> None:
        assert worker.proc is not None
        worker.proc.send_signal(signal.SIGKILL)

    async def done(self, channel: Channel | None = None) -> int:
        """Messages of the waves (of ``channel``, or all) that have an outcome (sent, failed,
        expired)."""
        done = 0
        for w in self.waves:
            if channel is not None and w.channel is not channel:
                continue
            p = await wave_progress(self.db, w)
            done += p.sent + p.failed + p.expired
        return done

    @property
    def due(self) -> list[Wave]:
        """The waves whose messages the far end is due: of waves with one text on one channel
        (a level's opening and its first slot), each recipient gets it once
        (dispatcher.domain.repeats), so they count as one."""
        kept: dict[str, Wave] = {}
        for w in self.waves:
            key = repeats.ledger(w) or w.id
            if key not in kept or w.total > kept[key].total:
                kept[key] = w
        return list(kept.values())

    @property
    def total(self) -> int:
        """Messages due at the far end."""
        return sum(w.total for w in self.due)

    def total_of(self, channel: Channel) -> int:
        """Messages due at the far end on ``channel``."""
        return sum(w.total for w in self.due if w.channel is channel)

    async def until(self, share: float, timeout: float, channel: Channel | None = None) -> None:
        """Until ``share`` of the waves' messages (of ``channel``, or all) have an outcome."""
        deadline = time.monotonic() + timeout
        total = self.total if channel is None else self.total_of(channel)
        while await self.done(channel) < share * total:
            if time.monotonic() > deadline:
                raise LoaError(f"the waves did not reach {share:.0%} in {timeout:g} s")
            await asyncio.sleep(0.05)

    async def completed(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                states = await self.db.waves.states([w.id for w in self.waves])
            except (RedisConnectionError, RedisTimeoutError, BusyLoadingError):
                states = {}  # Redis is restarting (a scenario's fault): ask again
            if all(states.get(w.id) is WaveState.COMPLETED for w in self.waves):
                return
            if time.monotonic() > deadline:
                raise LoaError(f"the waves did not complete in {timeout:g} s "
                               f"({await self.done():,} of {self.total:,})")
            await asyncio.sleep(0.2)

    async def in_hand(self, consumer: str) -> int:
        """Messages in the batches ``consumer`` has taken and not finished (its pending
        entries): what it may have sent without recording it."""
        client = self.db.client
        held = 0
        settings = Settings()  # the workers' routes: no carrier is mapped elsewhere
        for route in {r for channel in Channel
                      for r in routing.routes(channel, self.carriers, settings)}:
            for stream in (keys.stream(route), keys.urgent_stream(route)):
                with contextlib.suppress(ResponseError):  # a route never read: no group yet
                    pending = await client.xpending_range(stream, keys.GROUP, "-", "+", 10_000,
                                                          consumername=consumer)
                    for entry in pending:
                        found = await client.xrange(stream, entry["message_id"],
                                                    entry["message_id"])
                        for _, fields in found:
                            held += _batch_size(fields)
        return held

    async def result(self, scenario: str, started: float, bound: int, *,
                     failures: list[str] | None = None, **details: Any) -> ChaosResult:
        dead = 0
        for w in self.waves:
            dead += (await wave_progress(self.db, w)).dead_letters
        # SMS: the simulator counts (destination, text) pairs; Zalo counts per recipient, and
        # each recipient is due one message per Zalo text.
        zalo_waves = sum(1 for w in self.due if w.channel is Channel.ZALO)
        counts = self.zalo.received.values()
        reached = (self.smsc.stats.messages - self.smsc.stats.duplicates
                   + sum(min(n, zalo_waves) for n in counts))
        zalo_duplicates = sum(max(0, n - zalo_waves) for n in counts)
        duplicates = self.smsc.stats.duplicates + zalo_duplicates
        details.update(sms_duplicates=self.smsc.stats.duplicates,
                       zalo_duplicates=zalo_duplicates)
        expected = self.total
        return ChaosResult(
            scenario=scenario, expected=expected, delivered=reached,
            lost=max(0, expected - reached - dead), duplicates=duplicates,
            duplicate_bound=bound, dead_letters=dead,
            seconds=round(time.monotonic() - started, 2), details=details,
            failures=failures or [])

    async def metrics(self, worker: WorkerProcess, name: str) -> float:
        try:
            return procstat.metric_sum(await worker.metrics(), name)
        except OSError:
            return -1.0

    async def close(self) -> None:
        for worker in self.workers.values():
            await worker.stop()
        if self.store is not None:
            await self.store.aclose()
        if self.redis is not None and self.redis.poll() is None:
            localredis.stop(self.redis)
        await self.smsc.stop()
        await self.zalo.stop()


def _batch_size(fields: dict[bytes, bytes]) -> int:
    raw = fields.get(b"b")
    if raw is None:
        return 0
    return len(msgspec.msgpack.decode(raw, type=Batch).ids)


@contextlib.asynccontextmanager
async def stage(tmp: Path, numbering: Numbering, province: Province, *, recipients: int,
                lease_seconds: float = 3.0, fault_seconds: float = 10.0,
                ) -> AsyncIterator[Stage]:
    s = Stage(tmp, numbering.carriers, recipients=recipients, lease_seconds=lease_seconds,
              fault_seconds=fault_seconds)
    cwd = Path.cwd()
    try:
        await s.start(numbering, province)
        yield s
    finally:
        try:
            await s.close()
        finally:
            os.chdir(cwd)

