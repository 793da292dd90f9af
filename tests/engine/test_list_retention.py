"""The retention of uploaded lists (dispatcher.engine.retention): a list past ``[lists]
retention_days`` that no campaign in progress names is removed, rows and all, once, by one
process; a list a campaign not yet final names stays until that campaign is final."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

import msgspec
import pytest
from prometheus_client import REGISTRY

from adapters.memory import MemoryAdapter
from dispatcher.domain.cap import CapSettings
from dispatcher.domain.model import Campaign, CampaignState, Channel
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.numberlist import ListSettings
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.engine.process import Engine
from dispatcher.engine.retention import LEASE, Retention
from dispatcher.engine.settings import EngineConfig
from dispatcher.store import MemoryStore, Store
from tests.conftest import run_engine_until
from tests.store.test_list_store import number, stored

NOW = dt.datetime(2026, 6, 1, 1, 0, tzinfo=dt.UTC)
SETTINGS = EngineConfig(lists=ListSettings(retention_days=30), cap=CapSettings())
NOT_FINAL = (CampaignState.DRAFT, CampaignState.PENDING_APPROVAL, CampaignState.APPROVED,
             CampaignState.RUNNING, CampaignState.PAUSED)


def days_ago(days: float) -> dt.datetime:
    return NOW - dt.timedelta(days=days)


def pruned_lists() -> float:
    return REGISTRY.get_sample_value("loa_retention_pruned_total", {"data": "list"}) or 0.0


async def campaign(store: Store, campaign_id: str, state: CampaignState,
                   audience_list: str) -> Campaign:
    made = Campaign(id=campaign_id, title="Khu phong tỏa", channels=[Channel.SMS],
                    texts={Channel.SMS: "O nha"}, created_at=days_ago(40), created_by="olga",
                    state=state, audience_list=audience_list)
    assert await store.campaigns.create(made)
    return made


async def is_whole(store: Store, version: str, n: int) -> bool:
    return (await store.audiences.meta(version) is not None
            and await store.recipients.find(version, number(n - 1)) == n - 1
            and len(await store.audiences.chunks(version, [0])) == 1)


async def is_gone(store: Store, version: str, n: int) -> bool:
    return (await store.audiences.meta(version) is None
            and await store.recipients.find(version, number(n - 1)) is None
            and await store.audiences.chunks(version, [0]) == [])


async def test_an_unused_list_past_retention_goes_and_one_in_use_stays(store: Store) -> None:
    await stored(store, "l-old", 250, days_ago(31))
    await stored(store, "l-done", 5, days_ago(60))  # its campaign is completed
    await stored(store, "l-fresh", 5, days_ago(29))
    for state in NOT_FINAL:
        await stored(store, f"l-{state}", 5, days_ago(60))
        await campaign(store, f"c-{state}", state, f"l-{state}")
    await campaign(store, "c-done", CampaignState.COMPLETED, "l-done")
    before = pruned_lists()
    retention = Retention(store, SETTINGS, name="one")
    assert sorted((await retention.tick(NOW)).lists) == ["l-done", "l-old"]
    assert pruned_lists() - before == 2
    assert await is_gone(store, "l-old", 250) and await is_gone(store, "l-done", 5)
    assert await is_whole(store, "l-fresh", 5)
    for state in NOT_FINAL:
        assert await is_whole(store, f"l-{state}", 5), state
    # the running campaign completes: its list goes at the next pass of this process
    running = await store.campaigns.get(f"c-{CampaignState.RUNNING}")
    assert running is not None
    assert await store.campaigns.replace(msgspec.structs.replace(
        running, state=CampaignState.COMPLETED, revision=1), 0)
    assert (await retention.tick(NOW + dt.timedelta(minutes=30))).lists == []  # not yet due
    assert (await retention.tick(NOW + dt.timedelta(hours=1))).lists == [
        f"l-{CampaignState.RUNNING}"]
    assert await is_gone(store, f"l-{CampaignState.RUNNING}", 5)


async def test_a_campaign_made_as_its_list_goes_keeps_it(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A campaign created naming the list between the pass's look at the campaigns and the
    list's removal: the list is put back whole."""
    await stored(store, "l-old", 20, days_ago(31))
    forget = store.audiences.forget

    async def racing(versions: list[str]) -> list[object]:
        gone = await forget(versions)
        await campaign(store, "c-late", CampaignState.APPROVED, "l-old")
        return list(gone)

    monkeypatch.setattr(store.audiences, "forget", racing)
    assert (await Retention(store, SETTINGS, name="one").tick(NOW)).lists == []
    assert await is_whole(store, "l-old", 20)
    assert await store.audiences.kept_before(NOW) == ["l-old"]


async def test_two_processes_remove_a_list_once_and_a_held_lease_holds_the_pass(
        store: Store, caplog: pytest.LogCaptureFixture) -> None:
    for version in ("l-a", "l-b"):
        await stored(store, version, 5, days_ago(45))
    assert await store.leases.acquire(LEASE, "another", 60)
    one, two = Retention(store, SETTINGS, name="one"), Retention(store, SETTINGS, name="two")
    assert (await one.prune(NOW)).lists == []  # another process prunes
    assert await is_whole(store, "l-a", 5)
    await store.leases.release(LEASE, "another")
    before = pruned_lists()
    with caplog.at_level(logging.INFO, logger="dispatcher.engine.retention"):
        passes = await asyncio.gather(one.prune(NOW), two.prune(NOW))
        assert (await one.prune(NOW)).lists == []  # nothing left: no line
    assert sorted(v for done in passes for v in done.lists) == ["l-a", "l-b"]
    assert pruned_lists() - before == 2
    [line] = [r.getMessage() for r in caplog.records if r.name == "dispatcher.engine.retention"]
    assert line.startswith("retention: removed 2 lists of numbers (l-")
    assert await store.audiences.kept() == []
    assert await store.leases.acquire(LEASE, "another", 60)  # let go after the pass


async def test_retention_days_0_keeps_every_list(store: Store) -> None:
    await stored(store, "l-old", 5, days_ago(400))
    forever = EngineConfig(lists=ListSettings(retention_days=0))
    assert (await Retention(store, forever, name="one").tick(NOW)).lists == []
    assert await is_whole(store, "l-old", 5)


async def test_the_engine_prunes_as_it_reconciles(plan: Plan, province: Province,
                                                  numbering: Numbering) -> None:
    store = MemoryStore()
    await stored(store, "l-old", 5, dt.datetime.now(dt.UTC) - dt.timedelta(days=31))
    engine = Engine(store, plan, SETTINGS, province, {Channel.SMS: MemoryAdapter()},
                    numbering.carriers, numbering=numbering)

    async def pruned() -> bool:
        return await store.audiences.meta("l-old") is None

    await run_engine_until(engine, pruned, timeout=30)
    assert await is_gone(store, "l-old", 5)
