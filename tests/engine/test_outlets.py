"""Outlet channels through the engine: a wave is published once to each target it was made with
(the province's and its districts' pages), never to the audience; the sent bits, retries,
reclaims, pause, cancel and the emergency stop treat a target as they treat a recipient."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest

from adapters.memory import MemoryAdapter
from bench import audiencegen
from dispatcher.domain.config import default_path, read_toml
from dispatcher.domain.errors import InputError
from dispatcher.domain.model import (
    WAVE_FINAL,
    Campaign,
    CampaignState,
    Channel,
    Priority,
    Selector,
    StopState,
    Wave,
    WaveState,
)
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.outlet import Target
from dispatcher.domain.plan import Plan, plan_from_dict
from dispatcher.domain.province import Province
from dispatcher.engine import routing
from dispatcher.engine.campaigns import Campaigns, wave_id
from dispatcher.engine.fanout import fan_out
from dispatcher.engine.level import set_level
from dispatcher.engine.process import Engine, wave_progress
from dispatcher.engine.recipients import look_up
from dispatcher.engine.reconciler import Reconciler
from dispatcher.engine.settings import EngineConfig, EngineSettings, RetrySettings
from dispatcher.engine.worker import Worker
from dispatcher.store import Store
from dispatcher.store.base import UNFANNED, AudienceMeta
from tests.conftest import daytime, imported, run_engine_until

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
ROUTE = Channel.FACEBOOK.value
PAGES = [Target("province", "Trang UBND tỉnh"), Target("so-tttt", "Trang Sở TT&TT"),
         Target("ha-long", "Trang TP Hạ Long", "ha-long"),
         Target("cam-pha", "Trang TP Cẩm Phả", "cam-pha"),
         Target("co-to", "Trang huyện Cô Tô", "co-to")]


class PageSettings(EngineConfig, frozen=True):
    """Engine settings with Facebook pages configured (what ``[facebook] pages`` gives)."""

    pages: list[Target] = msgspec.field(default_factory=list)

    def targets(self, channel: Channel) -> list[Target]:
        return list(self.pages) if channel is Channel.FACEBOOK else []


SETTINGS = PageSettings(
    pages=PAGES,
    retry=RetrySettings(max_attempts=3, base_seconds=0.05, max_seconds=0.2, jitter=0.1),
    engine=EngineSettings(batch_size=2, chunk_size=64, lease_seconds=1.0,
                          state_refresh_seconds=0.05, reconcile_seconds=0.1))


@pytest.fixture(scope="module")
def audience_file(tmp_path_factory: pytest.TempPathFactory, numbering: Numbering,
                  province: Province) -> Path:
    path = tmp_path_factory.mktemp("outlets") / "audience.csv"
    audiencegen.generate(path, 300, seed=3, numbering=numbering, province=province)
    return path


@pytest.fixture
async def meta(store: Store, audience_file: Path, numbering: Numbering,
               province: Province) -> AudienceMeta:
    return await imported(store, audience_file, numbering, province)


def facebook_plan() -> Plan:
    """The shipped plan, level 4 posting on Facebook at 10:00 with a text naming {district}."""
    data: dict[str, Any] = read_toml(default_path("plan.toml"))
    level = next(level for level in data["levels"] if level["level"] == 4)
    level["channels"]["facebook"] = {
        "activity": "Đăng tin trên các trang Facebook của tỉnh", "quantity": "01 lần/ngày",
        "lead": "Phòng Thông tin - Báo chí - Xuất bản", "kinds": ["resident"],
        "period_days": 1, "slots": ["10:00"],
        "template": "KHẨN ({district}): chỉ ra ngoài khi thật cần thiết. Đường dây nóng "
                    "{hotline}."}
    return plan_from_dict(data, source="test plan")


def engine(store: Store, plan: Plan, province: Province, numbering: Numbering,
           channel: MemoryAdapter, settings: EngineConfig = SETTINGS,
           now: dt.datetime | None = None) -> Engine:
    """An engine of the Facebook channel; ``now``: its clock stands there (inside the sending
    hours, whatever the time of the test)."""
    return Engine(store, plan, settings, province, {Channel.FACEBOOK: channel},
                  numbering.carriers, reconcile=False,
                  clock=(lambda: now) if now is not None else lambda: dt.datetime.now(dt.UTC))


async def finished(store: Store, *wave_ids: str) -> bool:
    states = await store.waves.states(list(wave_ids))
    return all(states.get(w) in WAVE_FINAL for w in wave_ids)


async def outlet_campaign(store: Store, province: Province, *, selector: Selector | None = None,
                          text: str = "Cập nhật tình hình dịch tại {district}.",
                          priority: Priority = Priority.NORMAL) -> Campaign:
    campaigns = Campaigns(store, SETTINGS, province)
    return await campaigns.create(
        title="Facebook", channels=[Channel.FACEBOOK], texts={Channel.FACEBOOK: text},
        created_by="op", now=dt.datetime.now(dt.UTC), selector=selector, priority=priority)


# -- which targets ------------------------------------------------------------------------------


def test_a_wave_reaches_the_province_targets_and_those_of_its_districts() -> None:
    everywhere = routing.targets(Channel.FACEBOOK, Selector(), SETTINGS)
    assert everywhere == PAGES
    two = routing.targets(Channel.FACEBOOK, Selector(districts=["ha-long", "uong-bi"]), SETTINGS)
    assert [t.id for t in two] == ["province", "so-tttt", "ha-long"]
    assert routing.targets(Channel.SMS, Selector(), SETTINGS) == []
    assert routing.targets(Channel.PORTAL, Selector(), SETTINGS) == []


def test_reach_counts_the_targets_of_an_outlet(meta_free_groups: AudienceMeta) -> None:
    assert routing.reach(meta_free_groups, Selector(districts=["co-to"]), Channel.FACEBOOK,
                         SETTINGS) == 3
    # without the settings an outlet reaches no one of the audience
    assert routing.reach(meta_free_groups, Selector(), Channel.FACEBOOK) == 0
    assert routing.reach(meta_free_groups, Selector(), Channel.SMS, SETTINGS) == 7


@pytest.fixture
def meta_free_groups() -> AudienceMeta:
    """An audience description with one group of 7 (no store needed)."""
    return msgspec.convert({"version": "v", "created_at": "2024-03-05T00:00:00Z", "count": 7,
                            "groups": [{"district": "co-to", "kind": "resident",
                                        "chunks": [0], "count": 7, "zalo": 0, "email": 0}]},
                           AudienceMeta)


# -- plan waves ---------------------------------------------------------------------------------


async def test_a_plan_slot_posts_once_to_every_page_with_its_districts_text(
        store: Store, meta: AudienceMeta, province: Province, numbering: Numbering) -> None:
    plan = facebook_plan()
    day = dt.date(2024, 3, 5)
    now = dt.datetime.combine(day, dt.time(10, 0, 30), tzinfo=TZ)
    await set_level(store, plan, now=now - dt.timedelta(days=2), level=4)
    reconciler = Reconciler(store, plan, province, settings=SETTINGS)
    report = await reconciler.tick(now)
    slot = f"L4-facebook-{day:%Y%m%d}T1000"
    assert slot in report.created
    wave = await store.waves.get(slot)
    assert wave is not None
    assert wave.targets == PAGES and wave.total == len(PAGES)
    assert wave.repeat_scope == ""  # a place is not a person: no ledger of repeats
    # a second tick, and a reconciler of another process, make no second wave
    again = await Reconciler(store, plan, province, settings=SETTINGS).tick(now)
    assert slot not in again.created
    channel = MemoryAdapter()
    await run_engine_until(engine(store, plan, province, numbering, channel, now=now),
                           lambda: finished(store, slot))
    assert channel.received == {(slot, page.id): 1 for page in PAGES}
    by_page = {addr: text for addr, text in channel.texts}
    assert by_page["ha-long"].startswith("KHẨN (Hạ Long)")
    assert by_page["co-to"].startswith("KHẨN (Cô Tô)")
    assert by_page["province"] == wave.text  # the province's page: the neutral text
    p = await wave_progress(store, wave)
    assert (p.total, p.sent, p.queued, p.failed) == (len(PAGES), len(PAGES), 0, 0)


async def test_a_level_change_opens_on_the_pages_too(
        store: Store, meta: AudienceMeta, province: Province) -> None:
    plan = facebook_plan()
    now = dt.datetime(2024, 3, 5, 9, 0, tzinfo=TZ)
    await set_level(store, plan, now=now, level=4)
    report = await Reconciler(store, plan, province, settings=SETTINGS).tick(
        now + dt.timedelta(seconds=5))
    opening = next(w for w in report.opened if "-facebook-" in w)
    wave = await store.waves.get(opening)
    assert wave is not None and wave.targets == PAGES
    assert wave.priority is Priority.URGENT  # level 4 is urgent: it opens at once


async def test_without_targets_a_plan_wave_publishes_nothing_and_completes(
        store: Store, meta: AudienceMeta, province: Province, numbering: Numbering) -> None:
    plan = facebook_plan()
    now = dt.datetime(2024, 3, 5, 10, 0, 30, tzinfo=TZ)
    await set_level(store, plan, now=now - dt.timedelta(days=2), level=4)
    none = PageSettings(engine=SETTINGS.engine, retry=SETTINGS.retry)
    await Reconciler(store, plan, province, settings=none).tick(now)
    slot = "L4-facebook-20240305T1000"
    wave = await store.waves.get(slot)
    assert wave is not None and wave.total == 0 and wave.targets == []
    channel = MemoryAdapter()
    await run_engine_until(engine(store, plan, province, numbering, channel, none, now),
                           lambda: finished(store, slot))
    assert channel.messages == 0


# -- campaigns ----------------------------------------------------------------------------------


async def test_a_campaign_for_some_districts_posts_to_the_province_and_their_pages(
        store: Store, meta: AudienceMeta, plan: Plan, province: Province,
        numbering: Numbering) -> None:
    campaign = await outlet_campaign(store, province,
                                     selector=Selector(districts=["ha-long", "co-to"]))
    assert campaign.state is CampaignState.APPROVED  # a handful of pages needs no approval
    channel = MemoryAdapter()
    wid = wave_id(campaign.id, Channel.FACEBOOK)

    async def done() -> bool:
        return await store.waves.get(wid) is not None and await finished(store, wid)

    await run_engine_until(engine(store, plan, province, numbering, channel, now=daytime()),
                           done)  # a routine campaign: inside the sending hours
    assert sorted(addr for _, addr in channel.received) == ["co-to", "ha-long", "province",
                                                           "so-tttt"]
    assert channel.duplicates == 0
    texts = {addr: text for addr, text in channel.texts}
    assert texts["co-to"] == "Cập nhật tình hình dịch tại Cô Tô."
    assert (await store.campaigns.get(campaign.id)).state is CampaignState.COMPLETED  # type: ignore[union-attr]


async def test_a_campaign_on_an_outlet_without_targets_is_refused_naming_it(
        store: Store, meta: AudienceMeta, province: Province) -> None:
    bare = Campaigns(store, PageSettings(), province)
    with pytest.raises(InputError, match="facebook has no target configured") as caught:
        await bare.create(title="t", channels=[Channel.SMS, Channel.FACEBOOK],
                          texts={Channel.SMS: "x", Channel.FACEBOOK: "x"}, created_by="op",
                          now=dt.datetime.now(dt.UTC))
    assert caught.value.field == "channels"
    only_districts = PageSettings(pages=[t for t in PAGES if t.district])
    with pytest.raises(InputError, match="no facebook target serves uong-bi"):
        await Campaigns(store, only_districts, province).create(
            title="t", channels=[Channel.FACEBOOK], texts={Channel.FACEBOOK: "x"},
            created_by="op", now=dt.datetime.now(dt.UTC),
            selector=Selector(districts=["uong-bi"]))
    assert await store.campaigns.all() == []


# -- once per target ----------------------------------------------------------------------------


def outlet_wave(wave_id_: str = "w-fb", targets: list[Target] = PAGES) -> Wave:
    return Wave(id=wave_id_, campaign_id="c-fb", channel=Channel.FACEBOOK, text="Tin mới",
                created_at=dt.datetime.now(dt.UTC), audience_version="v", total=len(targets),
                start_now=True, targets=targets)


async def test_fan_out_enqueues_the_targets_once_however_often_it_runs(store: Store) -> None:
    wave = outlet_wave()
    await store.waves.create(wave, WaveState.FANNING_OUT)

    async def proceed() -> bool:
        return True

    assert await fan_out(store, wave, SETTINGS, [], proceed=proceed) == len(PAGES)
    assert await fan_out(store, wave, SETTINGS, [], proceed=proceed) == 0  # resumed: nothing
    deliveries = await store.queue.read(ROUTE, "reader", 10, 0)
    batches = [b for d in deliveries for b in d.batches]
    assert sorted(i for b in batches for i in b.ids) == list(range(len(PAGES)))
    assert sorted(a for b in batches for a in b.addrs) == sorted(p.id for p in PAGES)
    assert (await store.waves.progress(wave.id))["fanned"] == len(PAGES)


async def test_a_page_retried_and_a_batch_reclaimed_are_each_posted_once(store: Store) -> None:
    wave = outlet_wave()
    await store.waves.create(wave, WaveState.FANNING_OUT)

    async def proceed() -> bool:
        return True

    await fan_out(store, wave, SETTINGS, [], proceed=proceed)
    await store.waves.set_state(wave.id, WaveState.SENDING)
    # a worker took the first batch, posted it (its sent bits are written as the channel
    # answers) and died before recording it: its batch is reclaimed after the lease
    dead = await store.queue.read(ROUTE, "dead-worker", 1, 0)
    assert dead
    first = dead[0].batches[0]
    await store.queue.mark_sent({wave.id: first.ids})
    channel = MemoryAdapter(retry_addrs=frozenset({"cam-pha"}))  # throttled at first
    stop = asyncio.Event()
    worker = Worker(store, {Channel.FACEBOOK: channel}, [ROUTE], SETTINGS, name="w")
    task = asyncio.create_task(worker.run(stop))
    try:
        async def retried() -> None:
            while channel.batches < 3:
                await asyncio.sleep(0.02)
        await asyncio.wait_for(retried(), 10)
        channel.retry_addrs = frozenset()  # the page accepts again: the retry goes through

        async def settled() -> None:  # the retry went, and the dead worker's batch was taken
            while True:
                p = await wave_progress(store, wave)
                if p.queued == 0 and p.retrying == 0 and p.skipped:
                    return
                await asyncio.sleep(0.02)
        await asyncio.wait_for(settled(), 10)
    finally:
        stop.set()
        await task
    posted = {addr for _, addr in channel.received}
    assert posted == {p.id for p in PAGES} - set(first.addrs)  # the reclaimed ones: skipped
    assert channel.duplicates == 0
    p = await wave_progress(store, wave)
    assert p.sent == len(PAGES) and p.skipped == len(first.ids)


# -- stop, pause, cancel --------------------------------------------------------------------------


async def test_a_wave_cancelled_before_it_fans_out_counts_its_targets_cancelled(
        store: Store, plan: Plan, province: Province, numbering: Numbering) -> None:
    await store.campaigns.create(Campaign(
        id="c-fb", title="t", channels=[Channel.FACEBOOK], texts={Channel.FACEBOOK: "x"},
        created_at=dt.datetime.now(dt.UTC), created_by="t", state=CampaignState.RUNNING))
    wave = outlet_wave()
    await store.waves.create(wave, WaveState.CANCELLED)
    channel = MemoryAdapter()

    async def counted() -> bool:
        return UNFANNED in await store.waves.progress(wave.id)

    await run_engine_until(engine(store, plan, province, numbering, channel), counted)
    p = await wave_progress(store, wave)
    assert (p.cancelled, p.queued, channel.messages) == (len(PAGES), 0, 0)


async def test_nothing_is_posted_under_the_emergency_stop_and_all_of_it_after(
        store: Store, plan: Plan, province: Province, numbering: Numbering) -> None:
    await store.stop.set(StopState(active=True, at=dt.datetime.now(dt.UTC), by="op",
                                   reason="wrong text"))
    await store.campaigns.create(Campaign(
        id="c-fb", title="t", channels=[Channel.FACEBOOK], texts={Channel.FACEBOOK: "x"},
        created_at=dt.datetime.now(dt.UTC), created_by="t", state=CampaignState.RUNNING))
    wave = outlet_wave()
    await store.waves.create(wave, WaveState.CREATED)
    channel = MemoryAdapter()
    runner = engine(store, plan, province, numbering, channel)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        await asyncio.sleep(0.5)
        assert channel.messages == 0
        assert (await store.waves.states([wave.id]))[wave.id] is WaveState.CREATED
        await store.stop.set(StopState(active=False, at=dt.datetime.now(dt.UTC), by="op"))

        async def done() -> None:
            while not await finished(store, wave.id):
                await asyncio.sleep(0.05)
        await asyncio.wait_for(done(), 15)
    finally:
        stop.set()
        await task
    assert channel.received == {(wave.id, p.id): 1 for p in PAGES}


# -- what concerns people only --------------------------------------------------------------------


async def test_the_recipient_lookup_leaves_outlet_waves_out(
        store: Store, meta: AudienceMeta, province: Province, numbering: Numbering,
        plan: Plan) -> None:
    campaign = await outlet_campaign(store, province)
    await Campaigns(store, SETTINGS, province).start(campaign.id, dt.datetime.now(dt.UTC))
    chunk = (await store.audiences.chunks(meta.version, [meta.groups[0].chunks[0]]))[0]
    view = await look_up(store, chunk.recipients[0].msisdn)
    assert view is not None
    assert [w.channel for w in view.waves if w.channel.outlet] == []
