"""SMPP bind leases: workers sharing a link never hold one bind slot twice, share the slots,
take over a dead worker's, and close their binds when they cannot renew."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from adapters.base import Envelope
from adapters.smpp.adapter import DEFAULT_LINK, LinkConfig, SmppAdapter
from adapters.smpp.simulator import Smsc
from dispatcher.domain.errors import ChannelError
from dispatcher.domain.model import Campaign, CampaignState, Channel, WaveState
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.engine.binds import BindLeases
from dispatcher.engine.process import wave_progress
from dispatcher.service.process import build_engine
from dispatcher.service.settings import EngineSettings, RetrySettings, Settings
from dispatcher.store import RedisStore
from dispatcher.store.base import Leases
from tests.conftest import VIETNAMESE
from tests.engine.test_smpp_engine import sms_wave


class Holder:
    """Records the slots it is told to hold, as the SMPP adapter would open them."""

    def __init__(self) -> None:
        self.slots: dict[str, frozenset[int]] = {}

    async def hold(self, link: str, slots: frozenset[int]) -> None:
        self.slots[link] = slots


def manager(leases: Leases, owner: str, binds: dict[str, int], ttl: float = 3.0,
            ) -> tuple[BindLeases, Holder]:
    holder = Holder()
    return BindLeases(leases, holder, binds, owner=owner, ttl=ttl, interval=ttl / 3), holder


@pytest.fixture
async def redis_store(redis_url: str) -> AsyncIterator[RedisStore]:
    store = RedisStore(redis_url)
    yield store
    await store.aclose()


async def test_workers_that_start_together_share_the_binds_evenly(
        redis_store: RedisStore) -> None:
    binds = {"viettel": 4, "mobifone": 2}
    a, held_a = manager(redis_store.leases, "a", binds)
    b, held_b = manager(redis_store.leases, "b", binds)
    for _ in range(5):
        await a.step()
        await b.step()
    for link, n in binds.items():
        assert held_a.slots[link] | held_b.slots[link] == frozenset(range(n))
        assert not held_a.slots[link] & held_b.slots[link]
        assert len(held_a.slots[link]) == len(held_b.slots[link]) == n // 2


async def test_a_single_worker_takes_one_more_bind_per_round_until_it_has_all(
        redis_store: RedisStore) -> None:
    a, held = manager(redis_store.leases, "a", {"viettel": 3})
    sizes = []
    for _ in range(4):
        await a.step()
        sizes.append(len(held.slots["viettel"]))
    assert sizes == [1, 2, 3, 3]


async def test_a_stopped_worker_gives_its_binds_back_and_they_are_taken_over(
        redis_store: RedisStore) -> None:
    binds = {"viettel": 2}
    a, held_a = manager(redis_store.leases, "a", binds)
    b, held_b = manager(redis_store.leases, "b", binds)
    await a.step()
    await b.step()
    stop = asyncio.Event()
    stop.set()
    await a.run(stop)  # one round, then the binds close and the leases are released
    assert held_a.slots["viettel"] == frozenset()
    await b.step()
    assert held_b.slots["viettel"] == frozenset({0, 1})


async def test_a_dead_worker_s_binds_are_taken_over_only_when_its_leases_run_out(
        redis_store: RedisStore) -> None:
    binds = {"viettel": 1}
    dead, _ = manager(redis_store.leases, "dead", binds, ttl=0.6)
    await dead.step()  # holds the only slot and never renews it
    alive, held = manager(redis_store.leases, "alive", binds, ttl=0.6)
    await alive.step()
    assert held.slots.get("viettel", frozenset()) == frozenset()
    await asyncio.sleep(0.7)
    await alive.step()
    assert held.slots["viettel"] == frozenset({0})


class Unreachable:
    """Leases on a Redis that stopped answering."""

    async def acquire(self, name: str, owner: str, ttl: float) -> bool:
        raise RedisConnectionError("Connection refused")

    async def release(self, name: str, owner: str) -> None:
        raise RedisConnectionError("Connection refused")


async def test_binds_close_before_their_leases_can_run_out_when_renewals_fail(
        redis_store: RedisStore) -> None:
    a, held = manager(redis_store.leases, "a", {"viettel": 1}, ttl=0.6)
    await a.step()
    assert held.slots["viettel"] == frozenset({0})
    a.leases = Unreachable()
    stop = asyncio.Event()
    running = asyncio.create_task(a.run(stop))
    await asyncio.sleep(0.45)  # renewals fail for longer than half the lease
    assert held.slots["viettel"] == frozenset()
    stop.set()
    await running  # gives nothing back (unreachable) and does not raise


async def test_the_adapter_opens_only_the_binds_it_holds(smsc: Smsc) -> None:
    sms = SmppAdapter({DEFAULT_LINK: LinkConfig(host="127.0.0.1", port=smsc.port,
                                                system_id="loa", binds=3)}, leased=True)
    try:
        assert not sms.serves("sms.viettel")
        with pytest.raises(ChannelError, match="no bind is held"):
            await sms.send(Envelope(wave="w", channel=Channel.SMS, text="x",
                                    addrs=["84912345678"], route="sms.viettel"))
        await sms.hold(DEFAULT_LINK, frozenset({2}))
        assert sms.serves("sms.viettel")
        await asyncio.wait_for(sms.links[DEFAULT_LINK].sessions[0].bound.wait(), 5)
        assert smsc.connections == 1
        await sms.hold(DEFAULT_LINK, frozenset({0, 2}))
        assert [s.name for s in sms.links[DEFAULT_LINK].sessions] == ["default#2", "default#0"]
        await sms.hold(DEFAULT_LINK, frozenset())
        assert not sms.serves("sms.viettel")
        await asyncio.sleep(0.1)
        assert smsc.connections == 0
    finally:
        await sms.aclose()


async def test_two_workers_on_one_redis_never_open_more_binds_than_the_link_has(
        redis_url: str, smsc: Smsc, tmp_path: Path, plan: Plan, numbering: Numbering,
        province: Province) -> None:
    link = LinkConfig(host="127.0.0.1", port=smsc.port, system_id="loa", binds=2, window=32)
    settings = Settings(smpp={DEFAULT_LINK: link},
                        engine=EngineSettings(batch_size=100, chunk_size=128, lease_seconds=1.5,
                                              state_refresh_seconds=0.1),
                        retry=RetrySettings(max_attempts=4, base_seconds=0.05, max_seconds=0.2))
    stores = [RedisStore(redis_url), RedisStore(redis_url)]
    wave = await sms_wave(stores[0], tmp_path, numbering, province, 3000, VIETNAMESE)
    await stores[0].waves.create(wave, WaveState.CREATED)
    await stores[0].campaigns.create(Campaign(
        id="c", title="t", channels=[Channel.SMS], texts={Channel.SMS: VIETNAMESE},
        created_at=dt.datetime.now(dt.UTC), created_by="a", state=CampaignState.RUNNING))
    engines = [build_engine(s, settings, plan, province, numbering, reconcile=False,
                            name=f"w{n}") for n, s in enumerate(stores)]
    stop = asyncio.Event()
    running = [asyncio.create_task(e.run(stop)) for e in engines]
    peak = 0
    try:
        async def sent() -> None:
            nonlocal peak
            while (await wave_progress(stores[0], wave)).sent < wave.total:
                peak = max(peak, smsc.connections)
                for task in running:
                    if task.done():
                        task.result()
                await asyncio.sleep(0.02)
        await asyncio.wait_for(sent(), 60)
        held = [e.binds.held[DEFAULT_LINK] for e in engines if e.binds is not None]
    finally:
        stop.set()
        await asyncio.gather(*running)
        for s in stores:
            await s.aclose()
    assert peak <= link.binds
    assert sorted(len(h) for h in held) == [1, 1] and not held[0] & held[1]
    assert smsc.stats.messages == wave.total
    assert all(n == 1 for n in smsc.received.values())
