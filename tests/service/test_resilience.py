"""Resilience with real processes: a ``loa worker`` sending a wave over SMPP (to the SMSC
simulator in this process) while its redis-server (AOF, ``appendfsync everysec``) is killed
with SIGKILL and started again; and a worker stopped by SIGTERM while Redis is away.

What a Redis crash costs, reasoned out. AOF is a log, so what a restarted Redis holds is
everything up to some moment T and nothing after it. A batch's completion (sent bits, counters,
retries, acknowledgement) is one MULTI/EXEC, so its bits and its acknowledgement survive or are
lost together: a message whose sent bit was lost belongs to a batch that is pending again, and
is sent again (a duplicate), never lost. A killed redis-server has already written every reply's
change to the AOF file (the ``write`` precedes the reply; ``everysec`` only delays the
``fsync``), so SIGKILL alone loses nothing; a machine crash loses what was not fsynced, up to
about a second, which the second variant simulates by cutting the AOF back to its length one
second before the kill. Duplicates are then bounded by what was in flight at T plus what the
SMSC accepted after T.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from adapters.smpp.simulator import Smsc, SmscConfig
from bench import audiencegen, localredis, simconfig
from dispatcher.domain.audience import Validator
from dispatcher.domain.model import Channel, Priority, Wave, WaveState
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.province import Province
from dispatcher.engine import routing
from dispatcher.engine.campaigns import Campaigns, wave_id
from dispatcher.engine.importer import import_audience
from dispatcher.engine.metrics import STORE_TRANSIENT
from dispatcher.engine.process import wave_progress
from dispatcher.service.settings import EngineSettings, Settings
from dispatcher.store import RedisStore

RECIPIENTS = 10_000
BATCH = 200
CONSUMERS = 2
LEASE = 5.0
TPS = 1000.0  # per bind, two binds: the wave takes about 5 s
OUTAGE = 2.0  # seconds between the kill and the restart
STOP_BOUND = 15.0  # seconds a SIGTERM'd worker may take to exit
TIMEOUT = 90.0


def config(smsc_port: int) -> str:
    return f"""[engine]
batch_size = {BATCH}
chunk_size = 128
chunks_per_step = 4
lease_seconds = {LEASE}
consumers_per_route = {CONSUMERS}
state_refresh_seconds = 0.2
reconcile_seconds = 1.0

[retry]
max_attempts = 8
base_seconds = 0.2
max_seconds = 2.0

""" + simconfig.smpp_table(smsc_port, "resilience", binds=2, window=64, tps=TPS,
                            bind_wait=1.0) + simconfig.simulate_table(
    "zalo", "email", "app", "facebook", "loudspeaker", "cell_broadcast")


@dataclass
class Stage:
    tmp: Path
    smsc: Smsc
    server: localredis.LocalRedis
    redis: subprocess.Popen[bytes]  # the redis-server process (killed and started again)
    store: RedisStore
    wave_id: str
    in_flight: int  # messages a worker can hold: batches in hand on every route
    workers: list[asyncio.subprocess.Process] = field(default_factory=list)
    found: Wave | None = None

    @property
    def wave(self) -> Wave:
        assert self.found is not None
        return self.found

    async def started(self) -> Wave:
        """The wave, once a worker has started the campaign."""
        async def wait() -> Wave:
            while True:
                found = await self.store.waves.get(self.wave_id)
                if found is not None:
                    return found
                await asyncio.sleep(0.05)
        self.found = await asyncio.wait_for(wait(), TIMEOUT)
        return self.found

    async def worker(self, name: str) -> asyncio.subprocess.Process:
        log = (self.tmp / f"{name}.log").open("wb")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "dispatcher.service.cli", "worker", "--config",
            str(self.tmp / "worker.toml"), "--redis", self.server.url, "--name", name,
            "--no-reconcile", stdout=asyncio.subprocess.DEVNULL, stderr=log)
        log.close()
        self.workers.append(proc)
        return proc

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")

    async def sent(self) -> int:
        return (await wave_progress(self.store, self.wave)).sent

    async def until_sent(self, n: int) -> None:
        async def wait() -> None:
            while await self.sent() < n:
                await asyncio.sleep(0.02)
        await asyncio.wait_for(wait(), TIMEOUT)

    async def completed(self) -> None:
        async def wait() -> None:
            while True:
                with contextlib.suppress(*STORE_TRANSIENT):  # still loading its AOF
                    states = await self.store.waves.states([self.wave.id])
                    if states.get(self.wave.id) is WaveState.COMPLETED:
                        return
                await asyncio.sleep(0.1)
        await asyncio.wait_for(wait(), TIMEOUT)


@pytest.fixture
async def stage(tmp_path: Path, numbering: Numbering,
                province: Province) -> AsyncIterator[Stage]:
    smsc = Smsc(SmscConfig())
    await smsc.start()
    proc, server = localredis.start(tmp_path, appendonly=True)
    store = RedisStore(server.url)
    s: Stage | None = None
    try:
        path = tmp_path / "audience.csv"
        audiencegen.generate(path, RECIPIENTS, seed=4, numbering=numbering, province=province)
        await import_audience(path, store, Validator(numbering, province), chunk_size=128)
        (tmp_path / "worker.toml").write_text(config(smsc.port), encoding="utf-8")
        campaigns = Campaigns(store, Settings(), province)
        campaign = await campaigns.create(
            title="Khẩn", channels=[Channel.SMS], texts={Channel.SMS: "Deo khau trang"},
            created_by="alice", now=dt.datetime.now(dt.UTC), priority=Priority.URGENT)
        settings = Settings(engine=EngineSettings(batch_size=BATCH,
                                                  consumers_per_route=CONSUMERS))
        routes = routing.routes(Channel.SMS, numbering.carriers, settings)
        s = Stage(tmp_path, smsc, server, proc, store, wave_id(campaign.id, Channel.SMS),
                  in_flight=len(routes) * CONSUMERS * BATCH)
        yield s
    finally:
        if s is not None:
            for worker in s.workers:
                if worker.returncode is None:
                    worker.kill()
                    await worker.wait()
            proc = s.redis
        await store.aclose()
        localredis.stop(proc)
        await smsc.stop()


class AofSampler:
    """The AOF's length and the messages the SMSC accepted, every 20 ms: where a crash one
    second before the kill would have cut the file, and what was sent since."""

    def __init__(self, s: Stage) -> None:
        self.s = s
        self.samples: list[tuple[float, int, int]] = []

    async def run(self) -> None:
        while True:
            aof = localredis.aof_file(self.s.server)
            if aof is not None:
                self.samples.append((time.monotonic(), aof.stat().st_size,
                                     self.s.smsc.stats.messages))
            await asyncio.sleep(0.02)

    def second_before(self, moment: float) -> tuple[int, int]:
        """(AOF length, messages accepted) at the last sample a second before ``moment``."""
        earlier = [x for x in self.samples if x[0] <= moment - 1.0]
        assert earlier, "no AOF sample a second before the kill"
        return earlier[-1][1], earlier[-1][2]


def unrecorded(log: str) -> int:
    """Messages a worker said it sent without recording them."""
    total = 0
    for line in log.splitlines():
        if "sent but not recorded" in line:
            total += int(line.split(" messages of ", 1)[0].rsplit(" ", 1)[-1])
    return total


@pytest.mark.parametrize("lose_last_second", [
    pytest.param(False, id="sigkill"),
    pytest.param(True, id="machine-crash", marks=pytest.mark.slow),
])
async def test_a_worker_survives_redis_killed_mid_wave(stage: Stage,
                                                       lose_last_second: bool) -> None:
    s = stage
    worker = await s.worker("w1")
    await s.started()
    total = s.wave.total
    sampler = AofSampler(s)
    sampling = asyncio.create_task(sampler.run())
    try:
        await s.until_sent(total // 4)
        killed = time.monotonic()
        localredis.kill(s.redis)
        at_kill = s.smsc.stats.messages
        cut = lost_window = 0
        if lose_last_second:
            length, accepted = sampler.second_before(killed)
            aof = localredis.aof_file(s.server)
            assert aof is not None
            cut = aof.stat().st_size - length
            with aof.open("r+b") as f:
                f.truncate(length)
            lost_window = at_kill - accepted  # accepted by the SMSC after the cut
    finally:
        sampling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampling
    await asyncio.sleep(OUTAGE)
    during = s.smsc.stats.messages - at_kill
    s.redis = localredis.restart(s.server)
    restarted = time.monotonic()
    assert worker.returncode is None, s.log("w1")[-3000:]
    await s.completed()
    took = time.monotonic() - restarted
    assert worker.returncode is None, "the worker died with its Redis"

    progress = await wave_progress(s.store, s.wave)
    received, duplicates = s.smsc.received, s.smsc.stats.duplicates
    print(f"\n[{'machine crash' if lose_last_second else 'SIGKILL'}] wave of {total:,}: Redis "
          f"killed at {at_kill:,} sent, down {OUTAGE:.0f} s (SMSC took {during:,} meanwhile); "
          f"AOF cut by {cut:,} bytes, {lost_window:,} messages accepted after the cut; "
          f"completed {took:.1f} s after the restart; duplicates {duplicates:,}, unrecorded "
          f"by the worker {unrecorded(s.log('w1')):,}, in-flight bound {s.in_flight:,}; "
          f"recipients reached {len(received):,}/{total:,}; counters: sent {progress.sent:,}, "
          f"skipped {progress.skipped:,}, dead letters {progress.dead_letters:,}")
    # nothing lost: every recipient got the message, and the counters say so
    assert len(received) == total and progress.dead_letters == 0
    assert progress.sent == total  # counted by the bits set for the first time
    # duplicates: what was in flight when Redis lost its writes, plus what was sent after that
    assert duplicates <= s.in_flight + lost_window
    if not lose_last_second:
        # batches in hand were finished, not resent; of those that were not, the messages
        # marked sent as they were answered are not sent again
        assert duplicates <= unrecorded(s.log("w1"))
    log = s.log("w1")
    assert log.count("store unreachable") == 1, log[-3000:]  # once per outage
    assert log.count("store answers again") == 1

    worker.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(worker.wait(), STOP_BOUND) == 0


async def test_sigterm_during_a_redis_outage_exits_and_a_new_worker_finishes(
        stage: Stage) -> None:
    s = stage
    first = await s.worker("w1")
    await s.started()
    total = s.wave.total
    await s.until_sent(total // 4)
    localredis.kill(s.redis)
    await asyncio.sleep(0.5)
    asked = time.monotonic()
    first.send_signal(signal.SIGTERM)
    code = await asyncio.wait_for(first.wait(), STOP_BOUND)
    exit_seconds = time.monotonic() - asked
    assert code == 0, s.log("w1")[-3000:]

    s.redis = localredis.restart(s.server)
    await s.worker("w2")
    await s.completed()
    progress = await wave_progress(s.store, s.wave)
    duplicates = s.smsc.stats.duplicates
    left = unrecorded(s.log("w1"))
    print(f"\n[SIGTERM during a Redis outage] worker exited {exit_seconds:.2f} s after the "
          f"signal; a new worker finished the wave of {total:,}: reached "
          f"{len(s.smsc.received):,}, duplicates {duplicates:,} (the first worker left "
          f"{left:,} sent but unrecorded; in-flight bound {s.in_flight:,})")
    assert exit_seconds < STOP_BOUND
    assert len(s.smsc.received) == total
    assert progress.sent == total and progress.dead_letters == 0
    assert duplicates <= left <= s.in_flight
