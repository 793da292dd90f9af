"""The retention of published CAP messages (dispatcher.engine.retention,
dispatcher.domain.capretention): a message past ``[cap] retention_days`` goes unless it is still
in force, shown (the feed, the notice) or referenced (its thread's last while the thread may get
another, a wave's or campaign's not yet final, a Cancel of one kept); one process removes it, and
the publisher never publishes it again."""

from __future__ import annotations

import asyncio
import datetime as dt

from prometheus_client import REGISTRY

from dispatcher.domain.cap import (
    CapAlert,
    CapInfo,
    CapSettings,
    Certainty,
    MsgType,
    Severity,
    Status,
    Urgency,
)
from dispatcher.domain.model import Campaign, CampaignState, Channel, Wave, WaveState
from dispatcher.domain.numberlist import ListSettings
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.engine.cap import CapPublisher
from dispatcher.engine.retention import Retention
from dispatcher.engine.settings import EngineConfig
from dispatcher.store import Store
from tests.engine.test_cap_publisher import plan_wave

NOW = dt.datetime(2026, 6, 1, 1, 0, tzinfo=dt.UTC)
SENDER = "soyte@quangninh.gov.vn"
CAP = CapSettings(sender=SENDER, retention_days=90, feed_entries=5)


def days_ago(days: float) -> dt.datetime:
    return NOW - dt.timedelta(days=days)


def config(cap: CapSettings = CAP) -> EngineConfig:
    return EngineConfig(cap=cap, lists=ListSettings(retention_days=0))


def pruned_messages() -> float:
    return REGISTRY.get_sample_value("loa_retention_pruned_total", {"data": "cap_message"}) or 0.0


def message(ident: str, thread: str, *, days: float = 100,
            msg_type: MsgType = MsgType.ALERT, expires: float | None = -99,
            cancels: CapAlert | None = None) -> CapAlert:
    """A message sent ``days`` ago, expiring ``expires`` days from now (None: never)."""
    info = CapInfo(event="Dịch COVID-19", urgency=Urgency.EXPECTED, severity=Severity.SEVERE,
                   certainty=Certainty.OBSERVED, headline=ident,
                   expires=None if expires is None else NOW + dt.timedelta(days=expires))
    return CapAlert(identifier=f"loa.{ident}", sender=SENDER, sent=days_ago(days),
                    status=Status.ACTUAL, msg_type=msg_type, thread=thread, origin="wave",
                    event_at=days_ago(days), infos=[info],
                    references=[cancels.reference] if cancels else [])


async def publish(store: Store, *alerts: CapAlert) -> None:
    for alert in alerts:
        assert await store.cap.publish(alert) is not None


async def fillers(store: Store, n: int = 30, thread: str = "plan.L2.zalo") -> None:
    """``n`` messages of yesterday: the newest, shown on the feed and the notice."""
    await publish(store, *(message(f"wave.new-{i}", thread, days=1) for i in range(n)))


async def add_campaign(store: Store, campaign_id: str, state: CampaignState) -> None:
    assert await store.campaigns.create(Campaign(
        id=campaign_id, title="Khẩn", channels=[Channel.SMS], texts={Channel.SMS: "O nha"},
        created_at=days_ago(100), created_by="olga", state=state))


async def add_wave(store: Store, wave_id: str, state: WaveState) -> None:
    assert await store.waves.create(Wave(
        id=wave_id, campaign_id="plan-L3-zalo", channel=Channel.ZALO, text="x",
        created_at=days_ago(100), audience_version="v"), state)


async def identifiers(store: Store) -> list[str]:
    return [p.alert.identifier.removeprefix("loa.") for p in await store.cap.after(0, 1000)]


async def test_old_messages_go_unless_in_force_shown_or_referenced(store: Store) -> None:
    level_1 = message("level.1", "level", expires=None)
    wave_done = message("wave.w-done", "plan.L3.zalo")
    long = message("wave.w-long", "plan.L2.zalo", expires=1)  # expires tomorrow
    await publish(
        store, level_1,
        message("level.2", "level", msg_type=MsgType.UPDATE, expires=None),  # the level's last
        wave_done,
        message("wave.w-done.cancel", "plan.L3.zalo", msg_type=MsgType.CANCEL, expires=None,
                cancels=wave_done),
        message("wave.w-live", "plan.L3.zalo", msg_type=MsgType.UPDATE),  # its wave is sending
        message("wave.w-next", "plan.L3.zalo", msg_type=MsgType.UPDATE),  # the row's last
        message("campaign.c-done", "campaign.c-done"),  # completed, expired
        message("campaign.c-forever", "campaign.c-forever", expires=None),  # never expires
        message("campaign.c-paused", "campaign.c-paused"),  # its Cancel may come
        long,
        message("wave.w-long.cancel", "plan.L2.zalo", msg_type=MsgType.CANCEL, expires=None,
                cancels=long),  # withdraws a message still kept
        message("wave.recent", "plan.L2.zalo", days=10))  # within retention
    await fillers(store)
    await add_campaign(store, "c-done", CampaignState.COMPLETED)
    await add_campaign(store, "c-forever", CampaignState.COMPLETED)
    await add_campaign(store, "c-paused", CampaignState.PAUSED)
    await add_wave(store, "w-done", WaveState.COMPLETED)
    await add_wave(store, "w-live", WaveState.SENDING)
    await add_wave(store, "w-next", WaveState.COMPLETED)
    before = pruned_messages()
    assert (await Retention(store, config(), name="one").tick(NOW)).cap_messages == 4
    assert pruned_messages() - before == 4
    assert (await identifiers(store))[:8] == [
        "level.2", "wave.w-live", "wave.w-next", "campaign.c-forever", "campaign.c-paused",
        "wave.w-long", "wave.w-long.cancel", "wave.recent"]
    assert await store.cap.get("loa.wave.w-done") is None
    assert await store.cap.get("loa.level.1") is None
    heads = await store.cap.heads()
    assert "campaign.c-done" not in heads and heads["level"] == "loa.level.2"
    assert heads["campaign.c-paused"] == "loa.campaign.c-paused"
    # the next pass finds nothing more
    assert (await Retention(store, config(), name="one").tick(NOW)).cap_messages == 0


async def test_the_feed_and_the_notice_keep_their_newest_messages(store: Store) -> None:
    await publish(store, *(message(f"wave.old-{i}", "plan.L1.zalo", msg_type=MsgType.UPDATE)
                           for i in range(40)))
    wide = CapSettings(sender=SENDER, retention_days=90, feed_entries=45)
    assert (await Retention(store, config(wide), name="one").tick(NOW)).cap_messages == 0
    # the notice looks at the newest 30 whatever the feed shows
    assert (await Retention(store, config(), name="one").tick(NOW)).cap_messages == 10
    assert await identifiers(store) == [f"wave.old-{i}" for i in range(10, 40)]


async def test_two_processes_remove_a_message_once(store: Store) -> None:
    await publish(store, *(message(f"wave.old-{i}", "plan.L1.zalo") for i in range(5)))
    await fillers(store)
    before = pruned_messages()
    one, two = Retention(store, config(), name="one"), Retention(store, config(), name="two")
    passes = await asyncio.gather(one.prune(NOW), two.prune(NOW))
    assert sum(p.cap_messages for p in passes) == 4  # the row's last stays
    assert pruned_messages() - before == 4
    assert (await identifiers(store))[0] == "wave.old-4"


async def test_retention_days_0_keeps_every_message(store: Store) -> None:
    await publish(store, *(message(f"wave.old-{i}", "plan.L1.zalo") for i in range(5)))
    await fillers(store)
    forever = CapSettings(sender=SENDER, retention_days=0)
    assert (await Retention(store, config(forever), name="one").tick(NOW)).cap_messages == 0
    assert len(await identifiers(store)) == 35


async def test_a_removed_message_is_never_published_again(store: Store, plan: Plan,
                                                          province: Province) -> None:
    """Messages that never expire (expires_hours = 0): a wave's, superseded by the next wave's,
    goes after retention_days; a publisher started later does not publish it anew."""
    settings = CapSettings(sender=SENDER, expires_hours=0, retention_days=1, feed_entries=1)
    first, second = plan_wave(plan, 4, Channel.ZALO, 0), plan_wave(plan, 4, Channel.ZALO, 180)
    await store.waves.create(first, WaveState.COMPLETED)
    await store.waves.create(second, WaveState.COMPLETED)
    published = await CapPublisher(store, plan, province, settings).tick(second.created_at)
    assert [p.alert.msg_type for p in published] == [MsgType.ALERT, MsgType.UPDATE]
    later = second.created_at + dt.timedelta(days=2)
    await fillers(store, thread="campaign.c-other")
    assert (await Retention(store, config(settings), name="one").tick(later)).cap_messages == 1
    assert await store.cap.get(f"loa.wave.{first.id}") is None
    assert await CapPublisher(store, plan, province, settings).tick(later) == []
    assert await store.cap.get(f"loa.wave.{first.id}") is None
