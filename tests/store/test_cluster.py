"""The Redis store on a real Redis Cluster (three masters started by bench.localredis).

The store contract runs on the cluster through the ``store`` fixture of tests/conftest.py; this
file holds what belongs to the cluster alone: the hash-tag layout, the private cluster itself, a
completion interrupted between its per-slot steps, and a whole wave (SMS and Zalo) through
fan-out and workers, with a worker that dies between the steps of its first completion.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest
import redis
from redis.crc import key_slot

from adapters.base import Envelope, Results
from adapters.memory import MemoryAdapter
from bench import localredis
from dispatcher.domain.audience import Validator
from dispatcher.domain.model import Batch, Channel, Selector, Wave, WaveState
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.province import Province
from dispatcher.engine import routing
from dispatcher.engine.importer import import_audience
from dispatcher.engine.worker import Worker
from dispatcher.store import RedisStore, keys
from dispatcher.store.base import Completion, DeadLetter, Entry, RetryItem
from dispatcher.store.redis import RedisQueue
from tests.engine.test_worker_durability import (
    SETTINGS,
    Running,
    assert_exactly_once,
    audience_csv,
    depth,
    fan,
    pending_of,
    running,
    until,
)

__all__ = ["audience_csv"]  # a fixture of the durability tests, used here as well

ROUTE = "zalo-zns"
SMS_ROUTE = "sms-viettel"


def _slot(*names: str) -> set[int]:
    return {key_slot(name.encode()) for name in names}


# -- the layout --------------------------------------------------------------------------------


def test_keys_used_together_share_one_slot() -> None:
    assert len(_slot(keys.LEVEL, keys.LEVEL_HISTORY)) == 1
    assert len(_slot(keys.AUDIENCE_CURRENT, keys.audience_meta("v1"),
                     keys.audience_meta("2024-03-01T08:00:00"))) == 1
    assert len(_slot(keys.CAMPAIGNS, keys.CAMPAIGN_REVISIONS)) == 1
    assert len(_slot(keys.WAVES, keys.WAVE_STATES)) == 1
    for route in (ROUTE, SMS_ROUTE, "email"):
        assert len(_slot(keys.stream(route), keys.retries(route), keys.dead(route),
                         keys.dead_count(route), keys.cursor(route),
                         keys.route_progress(route, "w1"),
                         keys.route_progress(route, "c1:zalo:2024-03-01T08:00.sms"))) == 1
    for wave_id in ("w1", "c1:sms:2024-03-01T08:00", "c1:zalo:2024-03-01T08:00.sms"):
        assert len(_slot(keys.sent(wave_id), keys.progress(wave_id),
                         keys.wave_routes(wave_id))) == 1
    # routes and waves spread over the cluster rather than sharing a slot
    assert len(_slot(*(keys.stream(f"sms-{c}") for c in ("viettel", "vinaphone", "mobifone")),
                     keys.sent("w1"), keys.WAVES)) == 5


# -- the private cluster -------------------------------------------------------------------------


def test_the_private_cluster_serves_every_slot(redis_cluster: localredis.LocalCluster) -> None:
    assert len(redis_cluster.ports) == 3
    assert redis_cluster.url == f"redis+cluster://127.0.0.1:{redis_cluster.ports[0]}"
    client = redis.RedisCluster(host=redis_cluster.host, port=redis_cluster.ports[0])
    try:
        info = client.cluster_info()
        assert info["cluster_state"] == "ok"
        assert int(info["cluster_slots_assigned"]) == 16384
        assert int(info["cluster_known_nodes"]) == 3
    finally:
        client.close()


def _processes_under(directory: Path) -> list[int]:
    """Processes whose command line names ``directory`` (Linux)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if str(directory).encode() in cmdline:
                found.append(int(entry.name))
    return found


def _path_with(tmp_path: Path, *programs: str) -> str:
    """A PATH that holds only ``programs`` (from the real PATH)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for program in programs:
        real = next(Path(d) / program for d in os.environ["PATH"].split(os.pathsep)
                    if (Path(d) / program).exists())
        (bin_dir / program).symlink_to(real)
    return str(bin_dir)


def test_a_missing_redis_cli_is_a_clear_error(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", _path_with(tmp_path, "redis-server"))
    with pytest.raises(localredis.LocalRedisError, match="redis-cli is not installed"), \
            localredis.cluster(tmp_path / "cluster"):
        pass


def test_nodes_are_stopped_when_the_cluster_does_not_form(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = Path(_path_with(tmp_path, "redis-server"))
    failing = bin_dir / "redis-cli"
    failing.write_text("#!/bin/sh\necho '[ERR] Node is not empty' >&2\nexit 1\n")
    failing.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    directory = tmp_path / "cluster"
    with pytest.raises(localredis.LocalRedisError, match="Node is not empty"), \
            localredis.cluster(directory):
        pass
    assert len(list(directory.glob("node-*/redis.log"))) == 3  # the nodes had started
    assert _processes_under(directory) == []


# -- a completion interrupted between its steps -------------------------------------------------


class SimulatedCrash(Exception):
    """Not a store error the worker rides out: it ends the worker, as a crash would."""


class DiesBeforeAck:
    """A cluster client whose process dies when it comes to its first transaction (the last
    step of a completion): the steps before it are done, the acknowledgement is not."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.died = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def pipeline(self, transaction: bool | None = None) -> Any:
        if transaction and not self.died:
            self.died = True
            raise SimulatedCrash("the process dies before the acknowledging transaction")
        return self._client.pipeline(transaction=transaction)


class DyingQueue(RedisQueue):
    def __init__(self, client: Any) -> None:
        super().__init__(client)
        self.hook = DiesBeforeAck(self._r)
        self._r = self.hook


@pytest.fixture
async def cluster_store(cluster_url: str) -> AsyncIterator[RedisStore]:
    opened = RedisStore(cluster_url)
    try:
        yield opened
    finally:
        await opened.aclose()


def _zalo_outcome(entry: Entry, batch: Batch, first: bool) -> Completion:
    """What a worker records for a Zalo batch of ids 1..6: 1-2 sent, 3 to retry, 4 dead,
    5-6 not on Zalo (an SMS each on another route); a second run finds 1-2 already sent."""
    done = Completion()
    zalo, sms = batch.wave, f"{batch.wave}.sms"
    if first:
        done.sent[zalo] = [1, 2]  # the store counts them as sent
        done.remote = {"m-1": (zalo, 1, 0), "m-2": (zalo, 2, 0)}
    else:
        done.count(zalo, "skipped", 2)
    done.retries.append((time.time() + 60, RetryItem(zalo, Channel.ZALO, 3, "u3", 1)))
    done.count(zalo, "retrying", 1)
    done.dead.append(DeadLetter(zalo, Channel.ZALO, 4, "u4", 1, "invalid"))
    done.count(zalo, "failed", 1)
    done.reroute[SMS_ROUTE] = [(time.time(), RetryItem(sms, Channel.SMS, i, f"8498{i}", 0))
                               for i in (5, 6)]
    done.count(sms, "retrying", 2)
    done.count(zalo, "fallback", 2)
    return done


async def test_a_completion_cut_before_its_acknowledgement_is_finished_once_by_the_reclaimer(
        cluster_store: RedisStore) -> None:
    dying = DyingQueue(cluster_store.client)
    batch = Batch(wave="wz", channel=Channel.ZALO, ids=list(range(1, 7)),
                  addrs=[f"u{i}" for i in range(1, 7)])
    assert await dying.enqueue(ROUTE, "wz", 0, [batch])
    (delivery,) = await dying.read(ROUTE, "worker-a", 1, 0)
    with pytest.raises(SimulatedCrash):
        await dying.complete(ROUTE, delivery.entry, _zalo_outcome(delivery.entry, batch, True))
    assert dying.hook.died
    q = cluster_store.queue
    # What the steps before the acknowledgement left: the sent bits, the message ids of the
    # receipts to come, the rerouted SMS, the two sent counted; no retry, dead letter or
    # counter of the route yet but the fan-out's count of what it enqueued.
    assert await q.sent_mask("wz", [1, 2, 3]) == [True, True, False]
    assert set(await cluster_store.receipts.match(["m-1", "m-2"])) == {"m-1", "m-2"}
    assert await q.depth(SMS_ROUTE) == (0, 2, 0)
    assert await q.depth(ROUTE) == (1, 0, 0)
    assert await q.owner(ROUTE, delivery.entry) == "worker-a"
    assert await cluster_store.waves.progress("wz") == {"sent": 2, "fanned": 6}

    (again,) = await q.reclaim(ROUTE, "worker-b", 0, 10)
    assert again.entry == delivery.entry
    mask = await q.sent_mask("wz", again.batches[0].ids)
    assert mask == [True, True, False, False, False, False]  # 1 and 2 are not sent again
    await q.complete(ROUTE, again.entry, _zalo_outcome(again.entry, batch, False))

    assert await q.depth(ROUTE) == (0, 1, 1)
    assert await q.depth(SMS_ROUTE) == (0, 2, 0)  # the same two SMS, not four
    assert await q.owner(ROUTE, delivery.entry) is None
    assert await cluster_store.waves.progress("wz") == {
        "sent": 2, "skipped": 2, "retrying": 1, "failed": 1, "fallback": 2, "fanned": 6}
    assert await cluster_store.waves.progress("wz.sms") == {"retrying": 2}
    assert [d.id for d in await q.dead_letters(ROUTE)] == [4]


async def test_counters_of_a_wave_add_up_over_routes_and_receipts(
        cluster_store: RedisStore) -> None:
    q = cluster_store.queue
    for n, route in enumerate((SMS_ROUTE, "sms-mobifone", "sms-vinaphone")):
        ids = [10 * n + 1, 10 * n + 2]
        assert await q.enqueue(route, "ws", 0, [Batch(wave="ws", channel=Channel.SMS, ids=ids,
                                                       addrs=[str(i) for i in ids])])
        (d,) = await q.read(route, "c1", 1, 0)
        done = Completion(sent={"ws": ids})  # counted as sent by the bits they set
        await q.complete(route, d.entry, done)
    await cluster_store.receipts.count({"ws": {"delivered": 5}})
    assert await cluster_store.waves.progress("ws") == {"sent": 6, "delivered": 5, "fanned": 6}


# -- one client shared by many coroutines ------------------------------------------------------


async def test_blocking_reads_and_other_commands_share_a_fresh_cluster_client(
        cluster_url: str) -> None:
    """A worker's first moments: consumers of many routes block in XREADGROUP while other
    coroutines take leases, all on one client that does not know the cluster yet. Commands
    sent before it knew the layout used to go to random nodes, and the MOVED answers made the
    client close every connection, the blocking reads' included."""
    store = RedisStore(cluster_url)
    failures: list[BaseException] = []

    async def reader(route: str) -> None:
        for _ in range(4):
            assert await store.queue.read(route, "c1", 1, 100) == []

    async def leaser(n: int) -> None:
        for _ in range(30):
            assert await store.leases.acquire(f"bind:test:{n}", "me", 10)
            await asyncio.sleep(0.005)

    try:
        results = await asyncio.wait_for(asyncio.gather(
            *(reader(f"sms-r{n}") for n in range(24)), *(leaser(n) for n in range(4)),
            return_exceptions=True), 20)
        failures = [r for r in results if isinstance(r, BaseException)]
        misrouted = store.client.reinitialize_counter  # MOVED answers received
    finally:
        await store.aclose()
    assert not failures, f"{len(failures)} of 28 tasks failed, first: {failures[0]!r}"
    assert misrouted == 0


async def test_a_moved_answer_does_not_close_the_connections_of_others(
        cluster_store: RedisStore) -> None:
    """A command that reaches the wrong node (answered MOVED) is followed to the right one;
    a blocking read in flight meanwhile is not cut (redis-py closes the whole client every
    ``reinitialize_steps`` MOVED answers unless told not to)."""
    client = cluster_store.client
    await client.set("moved-probe", b"v")
    owner = client.get_node_from_key("moved-probe")
    elsewhere = next(n for n in client.get_primaries() if n.name != owner.name)
    reading = asyncio.create_task(cluster_store.queue.read(ROUTE, "c1", 1, 600))
    await asyncio.sleep(0.1)  # the read now blocks on its node
    for _ in range(12):
        assert await client.execute_command("GET", "moved-probe", target_nodes=elsewhere) == b"v"
    assert not reading.done()
    assert await asyncio.wait_for(reading, 5) == []


# -- a whole wave on the cluster ---------------------------------------------------------------


class RetriesFirst(MemoryAdapter):
    """A memory channel that answers "try again" the first time it is offered one of
    ``flaky``, and sends everything else."""

    def __init__(self, flaky: set[str]) -> None:
        super().__init__()
        self.flaky = set(flaky)
        self.retried: Counter[str] = Counter()

    async def send(self, envelope: Envelope) -> Results:
        results = Results()
        for i, addr in enumerate(envelope.addrs):
            if addr in self.flaky:
                self.flaky.discard(addr)
                self.retried[addr] += 1
                results.retry.append((i, "throttled"))
            else:
                results.sent.append(i)
        results.remote_ids = [f"{envelope.wave}-{addr}" for addr in
                              (envelope.addrs[i] for i in results.sent)]
        self.batches += 1
        self.received.update((envelope.wave, envelope.addrs[i]) for i in results.sent)
        return results


@dataclass
class Waves:
    sms: Wave
    zalo: Wave
    addrs: dict[str, list[str]]  # wave id -> its addresses


@pytest.fixture
async def waves(cluster_store: RedisStore, audience_csv: Path, numbering: Numbering,
                province: Province) -> Waves:
    """The durability tests' audience imported on the cluster, and an SMS and a Zalo wave
    to all of it, fanned out."""
    store = cluster_store
    await import_audience(audience_csv, store, Validator(numbering, province),
                          chunk_size=SETTINGS.engine.chunk_size)
    meta = await store.audiences.meta()
    assert meta is not None
    numbers = [n for g in meta.groups for n in g.chunks]
    recipients = [r for c in await store.audiences.chunks(meta.version, numbers)
                  for r in c.recipients]
    made: dict[Channel, Wave] = {}
    addrs: dict[str, list[str]] = {}
    for channel in (Channel.SMS, Channel.ZALO):
        wave = Wave(id=f"w-cluster-{channel.value}", campaign_id="c-cluster", channel=channel,
                    text="Đeo khẩu trang nơi công cộng", created_at=dt.datetime.now(dt.UTC),
                    audience_version=meta.version,
                    total=routing.reach(meta, Selector(), channel), start_now=True)
        assert await store.waves.create(wave, WaveState.SENDING)
        assert await fan(store, wave, numbering) == wave.total
        addrs[wave.id] = [a for r in recipients if (a := routing.address(channel, r))]
        assert len(addrs[wave.id]) == len(set(addrs[wave.id])) == wave.total
        made[channel] = wave
    assert made[Channel.SMS].total > 2_500 and made[Channel.ZALO].total > 1_000
    return Waves(made[Channel.SMS], made[Channel.ZALO], addrs)


def _received(wave: Wave, *channels: MemoryAdapter) -> Counter[str]:
    got: Counter[str] = Counter()
    for channel in channels:
        got.update({a: n for (w, a), n in channel.received.items() if w == wave.id})
    return got


async def test_a_wave_on_the_cluster_reaches_everyone_once_despite_a_crash_mid_completion(
        cluster_url: str, cluster_store: RedisStore, waves: Waves,
        numbering: Numbering) -> None:
    store = cluster_store
    sms_routes = routing.routes(Channel.SMS, numbering.carriers, SETTINGS)
    zalo_routes = routing.routes(Channel.ZALO, numbering.carriers, SETTINGS)
    every_route = sms_routes + zalo_routes
    sizes = {r: (await store.queue.depth(r))[0] for r in sms_routes}
    crash_route = max(sizes, key=lambda r: sizes[r])

    # Worker A: one consumer on one SMS route; its first completion dies before the
    # acknowledging transaction, and the worker with it.
    flaky = set(waves.addrs[waves.sms.id][::10]) | set(waves.addrs[waves.zalo.id][::10])
    channel_a = RetriesFirst(flaky)
    store_a = RedisStore(cluster_url)
    dying = DyingQueue(store_a.client)
    store_a.queue = dying
    one = msgspec.structs.replace(
        SETTINGS, engine=msgspec.structs.replace(SETTINGS.engine, consumers_per_route=1))
    try:
        run_a = Running(Worker(store_a, {Channel.SMS: channel_a}, [crash_route], one,
                               name="worker-a"))
        async def died() -> bool:
            return run_a.task.done()
        await until(died, "worker A to die in its first completion")
        error = run_a.task.exception()
        assert isinstance(error, BaseExceptionGroup), error
        assert error.subgroup(SimulatedCrash) is not None, error
    finally:
        await store_a.aclose()
    assert channel_a.batches == 1
    sent_by_a = [a for (_, a) in channel_a.received]
    assert 0 < len(sent_by_a) < SETTINGS.engine.batch_size  # a tenth asked for a retry
    assert list(await pending_of(store, every_route, "worker-a")) == [crash_route]
    # A's sent messages are counted with their bits; the rest with the acknowledgement
    assert await store.waves.progress(waves.sms.id) == {"sent": len(sent_by_a),
                                                        "fanned": waves.sms.total}

    # Worker B: both channels, every route; it reclaims A's batch after the lease.
    channel_b = RetriesFirst(flaky - set(channel_a.retried))
    b = Worker(store, {Channel.SMS: channel_b, Channel.ZALO: channel_b}, every_route,
               SETTINGS, name="worker-b")

    async def settled() -> bool:
        for wave in (waves.sms, waves.zalo):
            p = await store.waves.progress(wave.id)
            if p.get("sent", 0) < wave.total or p.get("retrying"):
                return False
        return await depth(store, every_route) == (0, 0, 0)

    async with running(b) as runs:
        await until(settled, "worker B to finish both waves", watch=runs)

    assert await pending_of(store, every_route, "worker-a") == {}  # B reclaimed it
    for wave in (waves.sms, waves.zalo):
        assert_exactly_once(_received(wave, channel_a, channel_b), waves.addrs[wave.id])
    # A's sent messages went out once: B found their bits and skipped them.
    assert not set(sent_by_a) & {a for (w, a) in channel_b.received if w == waves.sms.id}
    # Every flaky recipient was asked to retry once, then got its message.
    assert set(channel_a.retried) | set(channel_b.retried) == flaky
    assert all(n == 1 for n in (channel_a.retried + channel_b.retried).values())
    # The counters are exact: A's sent messages were counted as sent by the bits A set before
    # it died, and as skipped by B, which found them sent.
    assert await store.waves.progress(waves.sms.id) == {
        "sent": waves.sms.total, "skipped": len(sent_by_a), "retrying": 0,
        "fanned": waves.sms.total}
    assert await store.waves.progress(waves.zalo.id) == {
        "sent": waves.zalo.total, "retrying": 0, "fanned": waves.zalo.total}
