"""Durability and exactly-once-per-recipient, end to end against a real Redis.

A generated audience is imported, a wave is created and fanned out, and workers send it through
in-memory channels that count what every address received. The tests kill workers mid-batch,
crash fan-outs, re-trigger them, stop workers gracefully and take a channel down, and check that
every recipient got exactly one message and that the wave's counters add up.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest

from adapters.base import Adapter, Envelope, Results
from adapters.memory import MemoryAdapter
from bench import audiencegen
from dispatcher.domain.audience import Validator
from dispatcher.domain.model import Batch, Channel, Selector, Wave, WaveState
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.province import Province
from dispatcher.engine import routing
from dispatcher.engine.fanout import fan_out
from dispatcher.engine.importer import import_audience
from dispatcher.engine.worker import Worker
from dispatcher.service.settings import EngineSettings, RetrySettings, Settings
from dispatcher.store import RedisStore, keys
from dispatcher.store.base import Completion, Entry
from dispatcher.store.redis import RedisQueue

RECIPIENTS = 3_000
WAVE_ID = "w-durability"
SETTINGS = Settings(
    engine=EngineSettings(batch_size=100, chunk_size=128, lease_seconds=1.0,
                          state_refresh_seconds=0.1, consumers_per_route=2),
    retry=RetrySettings(max_attempts=3, base_seconds=0.05, max_seconds=0.2, jitter=0.1),
)
TIMEOUT = 30.0  # seconds any one wait may take before the test fails


# -- fixtures and helpers -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def audience_csv(tmp_path_factory: pytest.TempPathFactory, numbering: Numbering,
                 province: Province) -> Path:
    path = tmp_path_factory.mktemp("durability") / "audience.csv"
    audiencegen.generate(path, RECIPIENTS, seed=7, numbering=numbering, province=province)
    return path


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[RedisStore]:
    opened = RedisStore(redis_url)
    try:
        yield opened
    finally:
        await opened.aclose()


@pytest.fixture
def routes(numbering: Numbering) -> list[str]:
    return routing.routes(Channel.SMS, numbering.carriers, SETTINGS)


@dataclass
class Setup:
    wave: Wave
    addrs: dict[int, str]  # recipient id -> address on the wave's channel

    @property
    def total(self) -> int:
        return self.wave.total


@pytest.fixture
async def setup(store: RedisStore, audience_csv: Path, numbering: Numbering,
                province: Province) -> Setup:
    """The audience imported and an SMS wave to all of it created (not fanned out yet)."""
    await import_audience(audience_csv, store, Validator(numbering, province),
                          chunk_size=SETTINGS.engine.chunk_size)
    meta = await store.audiences.meta()
    assert meta is not None
    total = routing.reach(meta, Selector(), Channel.SMS)
    wave = Wave(id=WAVE_ID, campaign_id="c-durability", channel=Channel.SMS,
                text="Đeo khẩu trang nơi công cộng", created_at=dt.datetime.now(dt.UTC),
                audience_version=meta.version, total=total, start_now=True)
    assert await store.waves.create(wave, WaveState.SENDING)
    numbers = [n for g in meta.groups for n in g.chunks]
    addrs: dict[int, str] = {}
    for chunk in await store.audiences.chunks(meta.version, numbers):
        for offset, r in enumerate(chunk.recipients):
            addr = routing.address(Channel.SMS, r)
            assert addr is not None
            addrs[chunk.first_id + offset] = addr
    assert len(addrs) == total > 2_500
    assert len(set(addrs.values())) == total  # addresses are unique: received counts are exact
    return Setup(wave, addrs)


async def go_on() -> bool:
    return True


async def fan(store: RedisStore, wave: Wave, numbering: Numbering,
              proceed: Callable[[], Awaitable[bool]] = go_on) -> int:
    return await fan_out(store, wave, SETTINGS, numbering.carriers, proceed=proceed)


def worker(store: RedisStore, adapter: Adapter, routes: list[str], name: str,
           settings: Settings = SETTINGS) -> Worker:
    return Worker(store, {Channel.SMS: adapter}, routes, settings, name=name)


class Running:
    """A worker's run() in a task, with its stop event."""

    def __init__(self, w: Worker) -> None:
        self.worker = w
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(w.run(self.stop))

    async def finish(self, timeout: float = 10.0) -> None:
        """Graceful stop: set the event and wait for run() to return."""
        self.stop.set()
        await asyncio.wait_for(self.task, timeout)

    async def kill(self) -> None:
        """Cancel the task: nothing in hand is completed or acknowledged."""
        self.task.cancel()
        done, _ = await asyncio.wait({self.task}, timeout=1)
        if not done:
            # A worker loop lost the cancellation (redis-py can swallow one that arrives
            # mid-command; see test_a_cancelled_worker_ends_even_if_a_redis_call_loses_it):
            # end what is left of this worker.
            self.stop.set()
            for t in asyncio.all_tasks():
                frame = getattr(t.get_coro(), "cr_frame", None)
                if frame is not None and frame.f_locals.get("self") is self.worker:
                    t.cancel()
            done, _ = await asyncio.wait({self.task}, timeout=10)
        if not done:
            pytest.fail(f"worker {self.worker.name} did not end when cancelled")
        if not self.task.cancelled():
            error = self.task.exception()
            if error is not None and not isinstance(error, asyncio.CancelledError):
                raise error


@contextlib.asynccontextmanager
async def running(*workers: Worker) -> AsyncIterator[list[Running]]:
    """Run workers; on the way out stop them (or cancel those that do not stop) and await."""
    started = [Running(w) for w in workers]
    try:
        yield started
    finally:
        for r in started:
            r.stop.set()
        for r in started:
            if r.task.done():
                continue
            try:
                await asyncio.wait_for(asyncio.shield(r.task), 10)
            except TimeoutError:
                await r.kill()
        for r in started:  # a worker that crashed must fail the test
            if r.task.done() and not r.task.cancelled():
                error = r.task.exception()
                if error is not None:
                    raise error


async def until(condition: Callable[[], Awaitable[bool]], what: str, *,
                watch: Iterable[Running] = (), timeout: float = TIMEOUT) -> None:
    """Poll ``condition`` until it holds; fail on timeout or when a watched worker died."""
    watched = list(watch)

    async def poll() -> None:
        while not await condition():
            for r in watched:
                if r.task.done() and not r.stop.is_set():
                    r.task.result()  # raises what the worker died of
                    pytest.fail(f"worker {r.worker.name} returned while waiting for {what}")
            await asyncio.sleep(0.02)

    try:
        await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        pytest.fail(f"timed out after {timeout} s waiting for {what}")


async def progress(store: RedisStore) -> dict[str, int]:
    return await store.waves.progress(WAVE_ID)


async def depth(store: RedisStore, routes: list[str]) -> tuple[int, int, int]:
    """(stream entries, scheduled retries, dead letters) over every route."""
    queued = retrying = dead = 0
    for route in routes:
        q, r, d = await store.queue.depth(route)
        queued, retrying, dead = queued + q, retrying + r, dead + d
    return queued, retrying, dead


def settled(store: RedisStore, routes: list[str], total: int) -> Callable[[], Awaitable[bool]]:
    """Every message of the wave has an outcome and nothing is queued or scheduled."""
    async def check() -> bool:
        p = await progress(store)
        done = p.get("sent", 0) + p.get("skipped", 0) + p.get("failed", 0) + p.get("expired", 0)
        return done >= total and p.get("retrying", 0) == 0 and await depth(store, routes) == (
            0, 0, 0)
    return check


def received(*adapters: MemoryAdapter) -> Counter[str]:
    """Messages per address of the test wave, summed over the adapters."""
    total: Counter[str] = Counter()
    for a in adapters:
        total.update({addr: n for (w, addr), n in a.received.items() if w == WAVE_ID})
    return total


def assert_exactly_once(got: Counter[str], expected: Iterable[str]) -> None:
    want = set(expected)
    missing = want - set(got)
    extra = set(got) - want
    duplicated = {a: n for a, n in got.items() if n > 1}
    assert not missing, f"{len(missing)} recipients got nothing, e.g. {sorted(missing)[:3]}"
    assert not extra, f"{len(extra)} addresses outside the wave got messages"
    assert not duplicated, (f"{len(duplicated)} recipients got more than one message, "
                            f"e.g. {sorted(duplicated.items())[:3]}")


async def pending_of(store: RedisStore, routes: list[str],
                     consumer: str) -> dict[str, list[Entry]]:
    """Routine entries ``consumer`` holds without having acknowledged them, per route."""
    found: dict[str, list[Entry]] = {}
    for route in routes:
        rows = await store.client.xpending_range(keys.stream(route), keys.GROUP, min="-",
                                                 max="+", count=1000, consumername=consumer)
        if rows:
            found[route] = [Entry(row["message_id"].decode()) for row in rows]
    return found


async def stream_ids(store: RedisStore, routes: list[str]) -> Counter[int]:
    """Recipient ids of every batch waiting in the route streams (read as an inspector)."""
    ids: Counter[int] = Counter()
    for route in routes:
        while found := await store.queue.read(route, "inspector", 1000, 0):
            for delivery in found:
                for batch in delivery.batches:
                    assert batch.wave == WAVE_ID
                    ids.update(batch.ids)
    return ids


class BlockingAdapter:
    """A channel whose sends never come back (a worker stuck mid-batch)."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()  # never set
        self.calls = 0

    async def send(self, envelope: Envelope) -> Results:
        self.calls += 1
        await self.gate.wait()
        raise AssertionError("a blocked send must never return")

    async def aclose(self) -> None:
        pass


# -- 1. two workers share the routes --------------------------------------------------------------


async def test_two_workers_share_the_routes_and_send_everything_once(
        store: RedisStore, redis_url: str, setup: Setup, routes: list[str],
        numbering: Numbering) -> None:
    assert await fan(store, setup.wave, numbering) == setup.total
    channel_a, channel_b = MemoryAdapter(latency=0.01), MemoryAdapter(latency=0.01)
    store_a, store_b = RedisStore(redis_url), RedisStore(redis_url)
    try:
        a = worker(store_a, channel_a, routes, "worker-a")
        b = worker(store_b, channel_b, routes, "worker-b")
        async with running(a, b) as runs:
            await until(settled(store, routes, setup.total), "the wave to be sent", watch=runs)
    finally:
        await store_a.aclose()
        await store_b.aclose()
    assert_exactly_once(received(channel_a, channel_b), setup.addrs.values())
    assert a.processed > 0 and b.processed > 0, (a.processed, b.processed)
    assert channel_a.messages > 0 and channel_b.messages > 0
    p = await progress(store)
    assert p.get("sent") == setup.total
    assert p.get("skipped", 0) == 0


# -- 2. a worker killed mid-batch loses nothing ---------------------------------------------------


async def test_a_worker_killed_mid_batch_loses_nothing(
        store: RedisStore, redis_url: str, setup: Setup, routes: list[str],
        numbering: Numbering) -> None:
    assert await fan(store, setup.wave, numbering) == setup.total
    stuck = BlockingAdapter()
    store_a = RedisStore(redis_url)
    try:
        run_a = Running(worker(store_a, stuck, routes, "worker-a"))
        try:
            async def all_consumers_stuck() -> bool:
                # 2 consumers on every route with work hold one batch each, blocked in send
                return stuck.calls >= 2 * len(await pending_of(store, routes, "worker-a")) > 0
            await until(all_consumers_stuck, "worker A to block in its sends", watch=[run_a])
        finally:
            await run_a.kill()
    finally:
        await store_a.aclose()
    held = await pending_of(store, routes, "worker-a")
    assert sum(map(len, held.values())) >= 2, held  # the kill left batches unacknowledged
    assert (await progress(store)).get("sent", 0) == 0

    channel_b = MemoryAdapter()
    b = worker(store, channel_b, routes, "worker-b")
    async with running(b) as runs:
        await until(settled(store, routes, setup.total), "worker B to finish the wave",
                    watch=runs)
    assert_exactly_once(received(channel_b), setup.addrs.values())
    p = await progress(store)
    assert p.get("sent") == setup.total
    assert await pending_of(store, routes, "worker-a") == {}  # B reclaimed every one


# -- 3. fan-out resumes after a crash -------------------------------------------------------------


class CrashingQueue(RedisQueue):
    """A queue whose process dies (raises) on the ``crash_at``-th enqueue, before writing it."""

    def __init__(self, client: Any, crash_at: int) -> None:
        super().__init__(client)
        self.crash_at = crash_at
        self.calls = 0

    async def enqueue(self, route: str, wave: str, step: int, batches: list[Batch], *,
                      urgent: bool = False, suppressed: int = 0) -> bool:
        self.calls += 1
        if self.calls == self.crash_at:
            raise ConnectionError("simulated crash in the middle of a fan-out step")
        return await super().enqueue(route, wave, step, batches, urgent=urgent,
                                     suppressed=suppressed)


async def test_fan_out_resumes_after_a_crash_between_steps(
        store: RedisStore, setup: Setup, routes: list[str], numbering: Numbering) -> None:
    steps = 0

    async def crash_after_three_steps() -> bool:
        nonlocal steps
        steps += 1
        return steps <= 3

    first = await fan(store, setup.wave, numbering, crash_after_three_steps)
    assert 0 < first < setup.total
    assert max([await store.queue.cursor(r, WAVE_ID) for r in routes]) == 2
    rest = await fan(store, setup.wave, numbering)
    assert first + rest == setup.total
    ids = await stream_ids(store, routes)
    assert set(ids) == set(setup.addrs)
    assert ids.most_common(1)[0][1] == 1, "a recipient was enqueued twice"


async def test_fan_out_resumes_after_a_crash_inside_a_step(
        store: RedisStore, redis_url: str, setup: Setup, routes: list[str],
        numbering: Numbering) -> None:
    crashing = RedisStore(redis_url)
    crashing.queue = CrashingQueue(crashing.client, crash_at=len(routes) + 3)
    try:
        with pytest.raises(ConnectionError):
            await fan(crashing, setup.wave, numbering)
    finally:
        await crashing.aclose()
    cursors = [await store.queue.cursor(r, WAVE_ID) for r in routes]
    assert max(cursors) >= 1  # the crash hit a step that some routes had already taken
    rest = await fan(store, setup.wave, numbering)
    assert 0 < rest < setup.total
    ids = await stream_ids(store, routes)
    assert set(ids) == set(setup.addrs)
    assert ids.most_common(1)[0][1] == 1, "a recipient was enqueued twice"


# -- 4. re-triggering a finished fan-out ----------------------------------------------------------


async def test_re_triggering_a_finished_fan_out_enqueues_and_sends_nothing(
        store: RedisStore, setup: Setup, routes: list[str], numbering: Numbering) -> None:
    assert await fan(store, setup.wave, numbering) == setup.total
    assert await fan(store, setup.wave, numbering) == 0  # while the batches still wait
    channel = MemoryAdapter()
    async with running(worker(store, channel, routes, "worker-a")) as runs:
        await until(settled(store, routes, setup.total), "the wave to be sent", watch=runs)
    assert_exactly_once(received(channel), setup.addrs.values())
    before = await progress(store)

    assert await fan(store, setup.wave, numbering) == 0  # after everything was sent
    assert await depth(store, routes) == (0, 0, 0)
    again = MemoryAdapter()
    w = worker(store, again, routes, "worker-b")
    async with running(w):
        await asyncio.sleep(3 * SETTINGS.engine.lease_seconds / 2)  # reads, reclaims, moves
    assert again.messages == 0
    assert w.processed == 0
    assert await progress(store) == before


# -- 5. messages whose sent bit is set are skipped ------------------------------------------------


async def test_messages_already_marked_sent_are_skipped_also_in_reclaimed_batches(
        store: RedisStore, setup: Setup, routes: list[str], numbering: Numbering) -> None:
    assert await fan(store, setup.wave, numbering) == setup.total
    # A "ghost" consumer takes one batch of every route and dies without finishing them.
    ghost_ids: list[int] = []
    for route in routes:
        for delivery in await store.queue.read(route, "ghost", 1, 0):
            ghost_ids += delivery.batches[0].ids
    assert ghost_ids
    # Some messages are already sent: every 7th recipient, and half of each ghost batch.
    marked = {i for i in setup.addrs if i % 7 == 0} | set(ghost_ids[::2])
    await store.queue.complete(routes[0], Entry("0-1"), Completion(sent={WAVE_ID: sorted(marked)}))
    assert all(await store.queue.sent_mask(WAVE_ID, sorted(marked)))

    channel = MemoryAdapter()
    async with running(worker(store, channel, routes, "worker-a")) as runs:
        await until(settled(store, routes, setup.total), "the wave to be sent", watch=runs)
    assert await pending_of(store, routes, "ghost") == {}  # the ghost's batches were reclaimed
    unmarked = [a for i, a in setup.addrs.items() if i not in marked]
    assert_exactly_once(received(channel), unmarked)
    p = await progress(store)
    assert p.get("skipped") == len(marked)
    assert p.get("sent") == setup.total  # each once: the marked ones when their bits were set


# -- 6. graceful shutdown -------------------------------------------------------------------------


async def test_graceful_shutdown_drains_in_flight_batches_and_a_new_worker_finishes(
        store: RedisStore, setup: Setup, routes: list[str], numbering: Numbering) -> None:
    assert await fan(store, setup.wave, numbering) == setup.total
    first = MemoryAdapter(latency=0.2)
    run_a = Running(worker(store, first, routes, "worker-a"))
    try:
        async def in_flight() -> bool:
            return first.batches >= 3 and bool(await pending_of(store, routes, "worker-a"))
        await until(in_flight, "batches in flight at worker A", watch=[run_a])
        started = time.monotonic()
        await run_a.finish(timeout=5.0)  # run() returns, in bounded time
        assert time.monotonic() - started < 5.0
    finally:
        if not run_a.task.done():
            await run_a.kill()
    # Nothing A took is left unfinished, and what it sent is recorded.
    assert await pending_of(store, routes, "worker-a") == {}
    p = await progress(store)
    assert 0 < p.get("sent", 0) == first.messages < setup.total

    second = MemoryAdapter()
    async with running(worker(store, second, routes, "worker-b")) as runs:
        await until(settled(store, routes, setup.total), "worker B to finish the wave",
                    watch=runs)
    assert_exactly_once(received(first, second), setup.addrs.values())
    assert (await progress(store)).get("sent") == setup.total == first.messages + second.messages


# -- 7. a channel that is down --------------------------------------------------------------------


async def test_a_channel_error_retries_the_batch_and_it_is_delivered_once_when_back(
        store: RedisStore, setup: Setup, routes: list[str], numbering: Numbering) -> None:
    assert await fan(store, setup.wave, numbering) == setup.total
    channel = MemoryAdapter()
    channel.down = True
    async with running(worker(store, channel, routes, "worker-a")) as runs:
        async def all_waiting_for_retry() -> bool:
            return (await progress(store)).get("retrying", 0) == setup.total
        await until(all_waiting_for_retry, "every message to be scheduled for retry",
                    watch=runs)
        assert channel.messages == 0
        channel.down = False
        await until(settled(store, routes, setup.total), "the wave to be sent after the outage",
                    watch=runs)
    assert_exactly_once(received(channel), setup.addrs.values())
    p = await progress(store)
    assert p.get("sent") == setup.total
    assert p.get("retrying") == 0
    assert p.get("expired", 0) == 0 and p.get("failed", 0) == 0
    assert await depth(store, routes) == (0, 0, 0)


# -- a worker whose heartbeat lapsed must not take its batch back or send it ----------------------


async def test_heartbeat_does_not_take_back_a_batch_another_worker_reclaimed(
        store: RedisStore, redis_url: str, setup: Setup, routes: list[str],
        numbering: Numbering) -> None:
    assert await fan(store, setup.wave, numbering) == setup.total
    stuck = BlockingAdapter()
    store_a = RedisStore(redis_url)
    try:
        async with running(worker(store_a, stuck, routes, "worker-a")) as runs:
            async def holding() -> bool:
                return stuck.calls > 0 and bool(await pending_of(store, routes, "worker-a"))
            await until(holding, "worker A to hold a batch", watch=runs)
            route, entries = next(iter((await pending_of(store, routes, "worker-a")).items()))
            # Worker B takes A's batches over, as its reclaimer does after A's lease lapsed
            # (A's event loop stalled, its process was paused...).
            taken = await store.queue.reclaim(route, "worker-b", 0, 100)
            assert {d.entry for d in taken} == set(entries)
            await asyncio.sleep(SETTINGS.engine.lease_seconds)  # A's heartbeat runs ~3 times
            owners = {e: await store.queue.owner(route, e) for e in entries}
            await runs[0].kill()
    finally:
        await store_a.aclose()
    assert owners == dict.fromkeys(entries, "worker-b")


class _Stalled(threading.Thread):
    """Worker A in its own thread and event loop (a process of its own): after its first
    ``sent_mask`` answer, its whole event loop freezes for ``stall`` seconds (a GC pause, a
    starved container, a paused VM), then goes on."""

    def __init__(self, url: str, route: str, adapter: MemoryAdapter, stall: float) -> None:
        super().__init__(daemon=True)
        self.url, self.route, self.adapter, self.stall = url, route, adapter, stall
        self.stalled = threading.Event()
        self.woke = threading.Event()
        self.quit = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001 - handed over to the test, which fails on it
            self.error = exc

    async def _main(self) -> None:
        store = RedisStore(self.url)
        thread = self

        class StallingQueue(RedisQueue):
            async def sent_mask(self, wave: str, ids: list[int]) -> list[bool]:
                mask = await super().sent_mask(wave, ids)
                if not thread.stalled.is_set():
                    thread.stalled.set()
                    time.sleep(thread.stall)  # blocks this event loop: heartbeat included
                    thread.woke.set()
                return mask

        store.queue = StallingQueue(store.client)
        one_consumer = msgspec.structs.replace(
            SETTINGS, engine=msgspec.structs.replace(SETTINGS.engine, consumers_per_route=1))
        stop = asyncio.Event()
        w = worker(store, self.adapter, [self.route], "worker-a", one_consumer)
        task = asyncio.create_task(w.run(stop))
        try:
            while not self.quit.is_set() and not task.done():
                await asyncio.sleep(0.02)
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
            await store.aclose()


async def test_a_stalled_worker_does_not_send_a_batch_another_worker_reclaimed(
        store: RedisStore, redis_url: str, setup: Setup, routes: list[str],
        numbering: Numbering) -> None:
    assert await fan(store, setup.wave, numbering) == setup.total
    sizes = {r: (await store.queue.depth(r))[0] for r in routes}
    route = max(sizes, key=lambda r: sizes[r])
    channel_a, channel_b = MemoryAdapter(), MemoryAdapter()
    a = _Stalled(redis_url, route, channel_a, stall=3 * SETTINGS.engine.lease_seconds)
    a.start()
    try:
        assert await asyncio.to_thread(a.stalled.wait, 10), "worker A never read a batch"
        assert channel_a.messages == 0  # A stalled before its first send
        async with running(worker(store, channel_b, routes, "worker-b")) as runs:
            await until(settled(store, routes, setup.total), "worker B to finish the wave",
                        watch=runs)
            assert await asyncio.to_thread(a.woke.wait, 10)
            await asyncio.sleep(0.3)  # what A does once it wakes up
    finally:
        a.quit.set()
        await asyncio.to_thread(a.join, 15)
    assert a.error is None, a.error
    assert channel_b.messages == setup.total  # B reclaimed the batch A held and sent it
    assert_exactly_once(received(channel_a, channel_b), setup.addrs.values())


class SwallowingQueue(RedisQueue):
    """The first ``move_due`` answers the way redis-py 8.1 on Python 3.11 sometimes does when
    its task is cancelled mid-command: it returns normally and the cancellation is lost (the
    task's ``cancelling()`` stays 1). Seen for real: this file hung once in ~15 runs in
    Running.kill() before kill() learnt to end such leftovers."""

    def __init__(self, client: Any) -> None:
        super().__init__(client)
        self.swallowed = asyncio.Event()
        self._armed = True

    async def move_due(self, route: str, now: float, limit: int) -> int:
        if self._armed:
            self._armed = False
            try:
                await asyncio.sleep(TIMEOUT)
            except asyncio.CancelledError:
                self.swallowed.set()
                return 0
        return await super().move_due(route, now, limit)


async def test_a_cancelled_worker_ends_even_if_a_redis_call_loses_it(
        redis_url: str, routes: list[str]) -> None:
    swallowing = RedisStore(redis_url)
    queue = SwallowingQueue(swallowing.client)
    swallowing.queue = queue
    run = Running(worker(swallowing, MemoryAdapter(), routes[:1], "worker-a"))
    try:
        await asyncio.sleep(0.3)  # the worker is up; its mover waits in its first move_due
        run.task.cancel()
        done, _ = await asyncio.wait({run.task}, timeout=1.5)
        assert queue.swallowed.is_set()
        assert done, "Worker.run() did not end after its task was cancelled"
    finally:
        await run.kill()
        await swallowing.aclose()
