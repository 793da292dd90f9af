"""Sent bits written while a batch is being sent: a worker that dies mid-batch leaves to be sent
again only what was on the wire and the answers of the last flush interval."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from adapters.base import Envelope, Progress
from adapters.smpp.adapter import DEFAULT_LINK, LinkConfig, SmppAdapter
from adapters.smpp.session import Accepted
from adapters.smpp.simulator import Smsc, SmscConfig
from adapters.zalo.adapter import ZaloAdapter
from adapters.zalo.config import ZaloConfig
from adapters.zalo.simulator import ZaloSim, ZaloSimConfig
from adapters.zalo.tokens import MemoryTokenStore
from dispatcher.domain.model import Batch, Channel, Wave, WaveState
from dispatcher.engine.sentmarks import SentMarks
from dispatcher.engine.worker import Worker
from dispatcher.service.settings import EngineSettings, Settings
from dispatcher.store.base import Queue, Store

WAVE = "w-marks"
ROUTE = "sms.viettel"
WINDOW = 8
FLUSH = 0.01
RESPONSE_DELAY = 0.02  # the SMSC answers each submit 20 ms late: ~400 messages a second
SETTINGS = Settings(engine=EngineSettings(batch_size=200, lease_seconds=1.0,
                                          state_refresh_seconds=0.1, consumers_per_route=1,
                                          sent_flush_seconds=FLUSH))


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_a_message_of_several_parts_is_accepted_once_all_its_parts_are() -> None:
    into: list[int] = []
    accepted = Accepted(into, first=10, parts=3)
    for item in (1, 0, 4, 3, 2):  # message 0's parts are items 0-2, message 1's items 3-5
        accepted.part(item)
    assert into == [10]
    accepted.part(5)
    assert into == [10, 11]
    single: list[int] = []
    one = Accepted(single, first=5)
    one.part(2)
    assert single == [7]


@pytest.fixture
async def slow_smsc() -> AsyncIterator[Smsc]:
    server = Smsc(SmscConfig(response_delay=RESPONSE_DELAY, receipts=False))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def sms_adapter(smsc: Smsc) -> SmppAdapter:
    return SmppAdapter({DEFAULT_LINK: LinkConfig(host="127.0.0.1", port=smsc.port,
                                                 system_id="loa", binds=1, window=WINDOW,
                                                 registered_delivery=0)})


def addrs(n: int) -> list[str]:
    return [f"8498{i:07d}" for i in range(n)]


@pytest.mark.parametrize("text", ["Deo khau trang", "Đeo khẩu trang " * 8])
async def test_the_smpp_adapter_tells_each_message_as_the_smsc_accepts_it(
        slow_smsc: Smsc, text: str) -> None:
    adapter = sms_adapter(slow_smsc)
    progress = Progress()
    envelope = Envelope(wave=WAVE, channel=Channel.SMS, text=text, addrs=addrs(60),
                        route=ROUTE, progress=progress)
    try:
        sending = asyncio.create_task(adapter.send(envelope))

        async def some_told() -> bool:
            return len(progress.sent) >= 10
        await until(some_told)
        assert not sending.done()  # told while the batch is still being sent
        results = await sending
    finally:
        await adapter.aclose()
    assert sorted(progress.sent) == sorted(results.sent) == list(range(60))


def zalo_adapter(sim: ZaloSim, concurrency: int) -> ZaloAdapter:
    return ZaloAdapter(ZaloConfig(base_url=sim.url, oa_url=sim.url, oauth_url=sim.url,
                                  app_id=sim.config.app_id, secret_key=sim.config.secret_key,
                                  template_id="loa-alert", concurrency=concurrency),
                       MemoryTokenStore("sim-access-token", "sim-refresh-token"))


async def test_the_zalo_adapter_tells_each_message_as_zalo_answers() -> None:
    sim = ZaloSim(ZaloSimConfig(not_zalo_share=0.2))
    await sim.start()
    adapter = zalo_adapter(sim, 4)
    progress = Progress()
    try:
        results = await adapter.send(Envelope(wave=WAVE, channel=Channel.ZALO, text="x",
                                              addrs=addrs(80), route="zalo",
                                              progress=progress))
    finally:
        await adapter.aclose()
        await sim.stop()
    assert results.failed  # some are not Zalo users: not told
    assert progress.sent == results.sent


async def test_marks_are_written_from_every_open_batch_once(
        store: Store) -> None:
    marks = SentMarks(store.queue, FLUSH)
    a, handle_a = marks.open("w-a", [100, 101, 102, 103], [0, 2, 3])  # envelope of 100, 102, 103
    b, handle_b = marks.open("w-b", [7, 8], [0, 1])
    a.sent += [2, 0]
    b.sent.append(1)
    assert await marks.flush() == 3
    assert await store.queue.sent_mask("w-a", [100, 101, 102, 103]) == [True, False, False, True]
    assert await store.queue.sent_mask("w-b", [7, 8]) == [False, True]
    a.sent.append(1)
    marks.close(handle_a)  # answered: its tail goes with the next write
    marks.close(handle_b)
    assert await marks.flush() == 1
    assert await store.queue.sent_mask("w-a", [102]) == [True]
    assert await marks.flush() == 0
    assert marks.marked == 4


class AwayOnce:
    """A queue whose first write of sent bits finds the store away."""

    def __init__(self, queue: Queue) -> None:
        self.queue = queue
        self.failed = False

    async def mark_sent(self, sent: dict[str, list[int]]) -> None:
        if not self.failed:
            self.failed = True
            raise RedisConnectionError("store away")
        await self.queue.mark_sent(sent)


async def test_marks_the_store_did_not_take_go_with_the_next_write(store: Store) -> None:
    away = AwayOnce(store.queue)
    marks = SentMarks(cast(Queue, away), FLUSH)
    progress, handle = marks.open("w-a", [5, 6, 7], [0, 1, 2])
    progress.sent += [0, 2]
    with pytest.raises(RedisConnectionError):  # the worker's loop waits and tries again
        await marks.flush()
    progress.sent.append(1)
    marks.close(handle)
    assert await marks.flush() == 3
    assert await store.queue.sent_mask("w-a", [5, 6, 7]) == [True, True, True]
    assert (await store.waves.progress("w-a"))["sent"] == 3


class Wire:
    """A channel's simulator for the kill test: its adapters, what it received, and how many
    messages may be unanswered on the wire at once (its window or concurrency)."""

    def __init__(self, route: str, channel: Channel, in_flight: int,
                 make: Callable[[], Any], received: Callable[[], int],
                 duplicates: Callable[[], int]) -> None:
        self.route, self.channel, self.in_flight = route, channel, in_flight
        self.make, self.received, self.duplicates = make, received, duplicates


@pytest.fixture(params=["sms", "zalo"])
async def wire(request: pytest.FixtureRequest, slow_smsc: Smsc) -> AsyncIterator[Wire]:
    if request.param == "sms":
        yield Wire(ROUTE, Channel.SMS, WINDOW, lambda: sms_adapter(slow_smsc),
                   lambda: slow_smsc.stats.messages, lambda: slow_smsc.stats.duplicates)
        return
    sim = ZaloSim(ZaloSimConfig(delay=RESPONSE_DELAY))
    await sim.start()

    def make() -> ZaloAdapter:
        return zalo_adapter(sim, WINDOW)
    try:
        yield Wire("zalo", Channel.ZALO, WINDOW, make, lambda: sum(sim.received.values()),
                   lambda: sum(n - 1 for n in sim.received.values()))
    finally:
        await sim.stop()


async def test_a_worker_killed_mid_batch_leaves_only_the_wire_and_one_interval_to_resend(
        store: Store, wire: Wire) -> None:
    """One batch of 200 at ~400 messages a second: the worker is cancelled (nothing completed,
    nothing acknowledged) half-way; another takes the batch over after the lease. Messages sent
    twice are at most those unanswered on the wire plus those answered in the last interval."""
    n = 200
    batch = Batch(wave=WAVE, channel=wire.channel, ids=list(range(n)), addrs=addrs(n))
    assert await store.queue.enqueue(wire.route, WAVE, 0, [batch])
    await store.waves.create(_wave(n, wire.channel), WaveState.SENDING)
    first_adapter, second_adapter = wire.make(), wire.make()
    first = Worker(store, {wire.channel: first_adapter}, [wire.route], SETTINGS, name="first")
    stop = asyncio.Event()
    task = asyncio.create_task(first.run(stop))

    async def half_sent() -> bool:
        return wire.received() >= n // 2
    try:
        await until(half_sent)
        marked = sum(await store.queue.sent_mask(WAVE, batch.ids))
        assert marked > 0  # written while the batch is in hand
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        await first_adapter.aclose()
    await asyncio.sleep(0.05)  # a write of marks already on its way lands
    marked_at_kill = sum(await store.queue.sent_mask(WAVE, batch.ids))
    # unanswered on the wire, plus the answers of the last interval (the loop's wake-up and
    # the store's round trip doubling it)
    bound = wire.in_flight * (1 + 2 * FLUSH / RESPONSE_DELAY)
    assert wire.received() - marked_at_kill <= bound
    second = Worker(store, {wire.channel: second_adapter}, [wire.route], SETTINGS,
                    name="second")
    stop2 = asyncio.Event()
    task2 = asyncio.create_task(second.run(stop2))

    async def done() -> bool:
        progress = await store.waves.progress(WAVE)
        return progress.get("sent", 0) >= n and progress.get("skipped", 0) > 0
    try:
        await until(done)
    finally:
        stop2.set()
        await task2
        await second_adapter.aclose()
    assert wire.received() - wire.duplicates() == n  # every one reached
    assert 0 < wire.duplicates() <= bound
    # each counted once: sent by the bits set first, whoever set them; skipped by the second
    progress = await store.waves.progress(WAVE)
    assert progress["sent"] == n and progress["skipped"] == marked_at_kill


def _wave(n: int, channel: Channel) -> Wave:
    return Wave(id=WAVE, campaign_id="c-marks", channel=channel, text="Deo khau trang",
                created_at=dt.datetime.now(dt.UTC), audience_version="v", total=n,
                start_now=True)
