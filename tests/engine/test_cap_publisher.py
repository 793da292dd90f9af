"""The CAP publisher (dispatcher.engine.cap): each public event published once, as an Alert,
Update or Cancel referencing the message before, whoever publishes and however often; held
while the emergency stop is on; every message valid CAP 1.2."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

from adapters.memory import MemoryAdapter
from bench import audiencegen
from dispatcher.domain import cap
from dispatcher.domain.cap import CapSettings, MsgType, Published
from dispatcher.domain.model import (
    Campaign,
    CampaignState,
    Channel,
    Kind,
    Priority,
    Selector,
    Wave,
    WaveState,
)
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.domain.situation import Situation, SituationVersion
from dispatcher.engine.campaigns import Campaigns, wave_id
from dispatcher.engine.cap import CapPublisher
from dispatcher.engine.level import set_level
from dispatcher.engine.process import Engine
from dispatcher.engine.reconciler import plan_campaign_id
from dispatcher.engine.settings import EngineConfig
from dispatcher.engine.stop import lift, stop_all
from dispatcher.store import MemoryStore, Store
from tests.capschema import assert_valid
from tests.conftest import imported, run_engine_until

NOW = dt.datetime(2026, 3, 1, 1, 0, tzinfo=dt.UTC)
SETTINGS = CapSettings(sender="soyte@quangninh.gov.vn")


def at(minutes: float) -> dt.datetime:
    return NOW + dt.timedelta(minutes=minutes)


def publisher(store: Store, plan: Plan, province: Province,
              settings: CapSettings = SETTINGS) -> CapPublisher:
    return CapPublisher(store, plan, province, settings)


async def feed(store: Store) -> list[Published]:
    """Every message, in the order published; each valid CAP 1.2."""
    found = await store.cap.after(0, 1000)
    for item in found:
        assert_valid(cap.to_xml(item.alert))
    return found


async def test_level_changes_make_one_chain_whoever_publishes(store: Store, plan: Plan,
                                                              province: Province) -> None:
    await set_level(store, plan, now=at(0), level=2)
    one, two = publisher(store, plan, province), publisher(store, plan, province)
    published = await asyncio.gather(one.tick(at(0)), two.tick(at(0)))
    assert sum(len(p) for p in published) == 1
    await set_level(store, plan, now=at(10), cases=5)  # the same level: no message
    await set_level(store, plan, now=at(20), level=4)
    await set_level(store, plan, now=at(21), level=3)  # two changes between passes: both
    await asyncio.gather(one.tick(at(22)), two.tick(at(22)))
    await set_level(store, plan, now=at(30), level=0)
    await two.tick(at(30))
    await set_level(store, plan, now=at(40), level=1)
    await one.tick(at(40))
    for again in (one, two, publisher(store, plan, province)):  # a restart publishes nothing
        assert await again.tick(at(50)) == []
    messages = [p.alert for p in await feed(store)]
    assert [(a.msg_type, a.level) for a in messages] == [
        (MsgType.ALERT, 2), (MsgType.UPDATE, 4), (MsgType.UPDATE, 3), (MsgType.CANCEL, 0),
        (MsgType.ALERT, 1)]
    assert messages[1].references == [messages[0].reference]
    assert messages[2].references == [messages[1].reference]
    assert messages[3].references == [messages[2].reference]
    assert messages[4].references == []
    assert messages[1].infos[0].effective == at(20)
    # the level's public message: its public (Zalo) row's text, with the hotline
    assert messages[0].infos[0].description == plan.level(2).rules[Channel.ZALO].row.template


async def test_publishing_begins_with_the_level_in_force(plan: Plan,
                                                         province: Province) -> None:
    store = MemoryStore()
    for minute, level in enumerate((1, 3, 2)):
        await set_level(store, plan, now=at(minute), level=level)
    assert await publisher(store, plan, province, CapSettings()).tick(at(5)) == []  # no sender
    await publisher(store, plan, province).tick(at(5))
    assert [(p.alert.msg_type, p.alert.level) for p in await feed(store)] == [
        (MsgType.ALERT, 2)]


async def test_the_level_text_is_rendered_with_the_situation_in_force(
        plan: Plan, province: Province) -> None:
    store = MemoryStore()
    await store.situation.set(SituationVersion(Situation(
        cases_today=3, cases_total=40, date=dt.date(2026, 3, 1), hotline="0203 3825 555"),
        at=at(0)))
    await set_level(store, plan, now=at(0), level=3)
    [published] = await publisher(store, plan, province).tick(at(1))
    info = published.alert.infos[0]
    assert "0203 3825 555" in info.description and "0203 3825 555" in info.instruction
    assert info.contact == "Đường dây nóng 0203 3825 555"


async def test_the_emergency_stop_holds_alerts_and_lets_cancels_through(
        plan: Plan, province: Province) -> None:
    store = MemoryStore()
    cap_publisher = publisher(store, plan, province)
    await set_level(store, plan, now=at(0), level=2)
    await cap_publisher.tick(at(0))
    await stop_all(store, now=at(1), user="olga", reason="sai nội dung")
    await set_level(store, plan, now=at(2), level=3)
    assert await cap_publisher.tick(at(3)) == []
    await set_level(store, plan, now=at(4), level=0)
    assert await cap_publisher.tick(at(5)) == []  # in order: level 3 waits, and so does 0
    await lift(store, now=at(6), user="olga")
    await cap_publisher.tick(at(7))
    assert [p.alert.msg_type for p in await feed(store)] == [
        MsgType.ALERT, MsgType.UPDATE, MsgType.CANCEL]


async def add_campaign(store: Store, campaign_id: str, state: WaveState,
                       **extra: object) -> Campaign:
    campaign = Campaign(id=campaign_id, title="Thông báo khẩn <Cô Tô>",
                        channels=[Channel.SMS, Channel.ZALO],
                        texts={Channel.SMS: "sms", Channel.ZALO: "zalo"}, created_at=at(0),
                        created_by="olga", state=CampaignState.RUNNING,
                        priority=Priority.URGENT, **extra)  # type: ignore[arg-type]
    assert await store.campaigns.create(campaign)
    for channel in campaign.channels:
        await store.waves.create(Wave(
            id=wave_id(campaign.id, channel), campaign_id=campaign.id, channel=channel,
            text=f"{channel}: Ở nhà & đeo khẩu trang", created_at=at(0), audience_version="v",
            priority=Priority.URGENT, selector=campaign.selector), state)
    return campaign


async def test_an_urgent_campaign_is_published_when_it_goes_out_and_cancelled_once(
        store: Store, plan: Plan, province: Province) -> None:
    await set_level(store, plan, now=at(0), level=3)
    cap_publisher = publisher(store, plan, province)
    await cap_publisher.tick(at(0))
    held = await add_campaign(store, "c-held", WaveState.PAUSED)
    await add_campaign(store, "c-routine", WaveState.SENDING)
    await store.campaigns.replace(msgspec_replace(
        await store.campaigns.get("c-routine"), priority=Priority.NORMAL), 0)
    await add_campaign(store, "c-list", WaveState.SENDING, audience_list="l-1")
    await add_campaign(store, "c-officials", WaveState.SENDING,
                       selector=Selector(kinds=[Kind.OFFICIAL]))
    going = await add_campaign(store, "c-khan", WaveState.SENDING,
                               selector=Selector(districts=["co-to"]))
    [published] = await cap_publisher.tick(at(1))
    alert = published.alert
    assert alert.identifier == "loa.campaign.c-khan" and alert.msg_type is MsgType.ALERT
    info = alert.infos[0]
    assert info.headline == going.title and info.description == "zalo: Ở nhà & đeo khẩu trang"
    assert [a.desc for a in info.areas] == ["Cô Tô, tỉnh Quảng Ninh"]
    assert info.urgency is cap.Urgency.IMMEDIATE and info.severity is cap.Severity.SEVERE
    for campaign in (going, held):  # both cancelled; only the one published has a Cancel
        cancelled = msgspec_replace(campaign, state=CampaignState.CANCELLED,
                                    revision=campaign.revision + 1)
        assert await store.campaigns.replace(cancelled, campaign.revision)
    one, two = cap_publisher, publisher(store, plan, province)
    await asyncio.gather(one.tick(at(2)), two.tick(at(2)))
    messages = [p.alert for p in await feed(store)]
    assert [(a.identifier, a.msg_type) for a in messages] == [
        ("loa.level." + messages[0].identifier.split(".level.")[1], MsgType.ALERT),
        ("loa.campaign.c-khan", MsgType.ALERT),
        ("loa.campaign.c-khan.cancel", MsgType.CANCEL)]  # the held one was never published
    assert messages[2].references == [messages[1].reference]


def msgspec_replace(campaign: Campaign | None, **changes: object) -> Campaign:
    import msgspec  # noqa: PLC0415

    assert campaign is not None
    return msgspec.structs.replace(campaign, **changes)


def plan_wave(plan: Plan, level: int, channel: Channel, minute: int) -> Wave:
    when = at(minute)
    return Wave(id=f"L{level}-{channel}-{when:%Y%m%dT%H%M}",
                campaign_id=plan_campaign_id(level, channel), channel=channel,
                text=plan.level(level).rules[channel].row.template, created_at=when,
                audience_version="v", level=level, slot_at=when)


async def test_waves_of_a_public_row_update_each_other_and_a_cancel_withdraws_one(
        store: Store, plan: Plan, province: Province) -> None:
    cap_publisher = publisher(store, plan, province)
    first, second, third = (plan_wave(plan, 4, Channel.ZALO, m) for m in (0, 180, 360))
    await store.waves.create(first, WaveState.SENDING)
    await store.waves.create(plan_wave(plan, 4, Channel.SMS, 0), WaveState.SENDING)  # not public
    await store.waves.create(second, WaveState.CREATED)  # waiting: not yet
    assert [p.alert.identifier for p in await cap_publisher.tick(at(1))] == [
        f"loa.wave.{first.id}"]
    await store.waves.transition(second.id, frozenset({WaveState.CREATED}),
                                 WaveState.FANNING_OUT)
    await store.waves.create(third, WaveState.COMPLETED)
    await cap_publisher.tick(at(400))
    await store.waves.transition(second.id, frozenset({WaveState.FANNING_OUT}),
                                 WaveState.CANCELLED)
    await cap_publisher.tick(at(401))
    assert await publisher(store, plan, province).tick(at(402)) == []
    messages = [p.alert for p in await feed(store)]
    assert [(a.identifier, a.msg_type) for a in messages] == [
        (f"loa.wave.{first.id}", MsgType.ALERT), (f"loa.wave.{second.id}", MsgType.UPDATE),
        (f"loa.wave.{third.id}", MsgType.UPDATE),
        (f"loa.wave.{second.id}.cancel", MsgType.CANCEL)]
    assert messages[1].references == [messages[0].reference]
    assert messages[2].references == [messages[1].reference]
    assert messages[3].references == [messages[1].reference]
    assert messages[0].infos[0].expires == at(1) + dt.timedelta(hours=24)


async def test_a_notice_made_before_publishing_began_and_already_expired_is_not_published(
        plan: Plan, province: Province) -> None:
    store = MemoryStore()
    await store.waves.create(plan_wave(plan, 3, Channel.ZALO, 0), WaveState.COMPLETED)
    assert await publisher(store, plan, province).tick(at(60 * 25)) == []
    assert await publisher(store, plan, province).tick(at(60)) != []


async def test_the_engine_publishes_an_urgent_campaign_as_it_goes_out(
        tmp_path: Path, plan: Plan, numbering: Numbering, province: Province) -> None:
    store = MemoryStore()
    path = tmp_path / "audience.csv"
    audiencegen.generate(path, 60, seed=3, numbering=numbering, province=province)
    await imported(store, path, numbering, province)
    settings = EngineConfig(cap=SETTINGS)
    campaign = await Campaigns(store, settings, province).create(
        title="Khẩn: phong tỏa", channels=[Channel.SMS], texts={Channel.SMS: "O nha"},
        created_by="olga", now=dt.datetime.now(dt.UTC), priority=Priority.URGENT)
    engine = Engine(store, plan, settings, province, {Channel.SMS: MemoryAdapter()},
                    numbering.carriers, numbering=numbering)

    async def published() -> bool:
        return await store.cap.get(f"loa.campaign.{campaign.id}") is not None

    await run_engine_until(engine, published, timeout=30)
    [alert] = [p.alert for p in await feed(store)]
    assert alert.msg_type is MsgType.ALERT and alert.infos[0].description == "O nha"
