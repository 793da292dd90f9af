"""The level-triggered reconciler: due slots become waves once, missed slots are skipped once,
a level change cancels the old level's waves that have not started."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import msgspec
import pytest

from bench import audiencegen
from dispatcher.domain.model import CampaignState, Channel, Kind, Selector, WaveState
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.engine import routing
from dispatcher.engine.level import set_level
from dispatcher.engine.reconciler import Reconciler, plan_campaign_id
from dispatcher.store import Store
from dispatcher.store.base import AudienceMeta
from tests.conftest import imported

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
DAY = dt.date(2024, 3, 5)  # a Tuesday
STAMP = f"{DAY:%Y%m%d}"
#: The level-4 channels of the Zalo row's slots (07:30, 10:30, ...): it and those that follow it.
ZALO_CADENCE = (Channel.ZALO, Channel.EMAIL, Channel.APP, Channel.FACEBOOK,
                Channel.PORTAL)
#: ... and of the SMS row's (09:30): it and cell broadcast, which follows it.
SMS_CADENCE = (Channel.SMS, Channel.CELL_BROADCAST)
#: The level-4 rows with a slot at 10:30: those, and the loudspeakers' (07:00, 10:30, 14:00, 17:00).
AT_1030 = (*ZALO_CADENCE, Channel.LOUDSPEAKER)


def local(hour: int, minute: int = 0, day: dt.date = DAY) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=TZ)


@pytest.fixture(scope="module")
def audience_file(tmp_path_factory: pytest.TempPathFactory, numbering: Numbering,
                  province: Province) -> Path:
    path = tmp_path_factory.mktemp("reconciler") / "audience.csv"
    audiencegen.generate(path, 500, seed=5, numbering=numbering, province=province)
    return path


@pytest.fixture
def plan60(plan: Plan) -> Plan:
    """The shipped plan with a catch-up window of exactly 60 minutes."""
    return msgspec.structs.replace(plan, catch_up=dt.timedelta(minutes=60))


@pytest.fixture
async def meta(store: Store, audience_file: Path, numbering: Numbering,
               province: Province) -> AudienceMeta:
    return await imported(store, audience_file, numbering, province)


# -- nothing to do ------------------------------------------------------------------------------


async def test_no_level_says_so(store: Store, plan60: Plan, meta: AudienceMeta) -> None:
    report = await Reconciler(store, plan60).tick(local(9, 31))
    assert "level" in report.reason
    assert report.created == [] and report.skipped == []
    assert await store.waves.all() == []


async def test_level_zero_sends_nothing(store: Store, plan60: Plan, meta: AudienceMeta) -> None:
    await set_level(store, plan60, now=local(6), level=0)
    report = await Reconciler(store, plan60).tick(local(9, 31))
    assert report.reason and report.created == []
    assert await store.waves.all() == []


async def test_no_audience_says_so(store: Store, plan60: Plan) -> None:
    await set_level(store, plan60, now=local(9), level=4)
    report = await Reconciler(store, plan60).tick(local(9, 31))
    assert report.level == 4
    assert "audience" in report.reason
    assert await store.waves.all() == []


# -- due slots ----------------------------------------------------------------------------------


async def test_a_level_set_now_has_no_slot_due_yet_but_opens_every_channel(
        store: Store, plan60: Plan, meta: AudienceMeta) -> None:
    await set_level(store, plan60, now=local(9, 31), level=4)
    report = await Reconciler(store, plan60).tick(local(9, 31))
    assert report.reason == ""
    assert report.created == [] and report.skipped == []  # no slot of level 4 in [09:31, 09:31]
    opened = [f"L4-{c}-opening-{STAMP}T093100" for c in plan60.level(4).rules]
    assert sorted(report.opened) == sorted(opened)  # tests/engine/test_opening.py: the openings
    assert sorted(w.id for w in await store.waves.all()) == sorted(opened)


async def test_tick_creates_exactly_the_due_waves_once(store: Store, plan60: Plan,
                                                       meta: AudienceMeta) -> None:
    await set_level(store, plan60, now=local(9), level=4)
    reconciler = Reconciler(store, plan60)

    report = await reconciler.tick(local(9, 31))

    sms_id = f"L4-sms-{STAMP}T0930"
    assert report.level == 4
    # zalo (07:30, 10:30...) has no slot in [09:00, 09:31]
    assert sorted(report.created) == sorted(f"L4-{c}-{STAMP}T0930" for c in SMS_CADENCE)
    assert report.skipped == []
    assert len(report.opened) == len(plan60.level(4).rules)  # each channel's opening wave
    wave = await store.waves.get(sms_id)
    assert wave is not None
    row = plan60.level(4).rules[Channel.SMS].row
    assert wave.channel is Channel.SMS
    assert wave.text == row.template
    assert wave.level == 4
    assert wave.slot_at == local(9, 30)
    assert wave.audience_version == meta.version
    assert wave.campaign_id == plan_campaign_id(4, Channel.SMS)
    assert wave.total == routing.reach(meta, wave.selector, Channel.SMS) == meta.count
    assert set(wave.selector.kinds) == set(row.kinds)
    assert not wave.start_now
    assert (await store.waves.states())[sms_id] is WaveState.CREATED
    campaign = await store.campaigns.get(wave.campaign_id)
    assert campaign is not None and campaign.level == 4

    again = await reconciler.tick(local(9, 32))
    assert again.created == [] and again.skipped == [] and again.opened == []
    assert sorted(w.id for w in await store.waves.all()) == sorted([*report.created,
                                                                    *report.opened])


async def test_a_wave_reaches_only_the_kinds_of_its_row(store: Store, plan60: Plan,
                                                        meta: AudienceMeta) -> None:
    await set_level(store, plan60, now=local(10), level=4)
    report = await Reconciler(store, plan60).tick(local(10, 31))
    assert sorted(report.created) == sorted(f"L4-{c}-{STAMP}T1030" for c in AT_1030)
    email = await store.waves.get(f"L4-email-{STAMP}T1030")
    zalo = await store.waves.get(f"L4-zalo-{STAMP}T1030")
    assert email is not None and zalo is not None
    assert email.selector == Selector(kinds=[Kind.OFFICIAL])
    assert email.total == sum(g.email for g in meta.groups if g.kind is Kind.OFFICIAL) > 0
    assert zalo.total == sum(g.zalo for g in meta.groups) > 0
    assert email.subject == plan60.level(4).rules[Channel.EMAIL].row.subject != ""


async def test_concurrent_reconcilers_create_each_wave_once(store: Store, plan60: Plan,
                                                            meta: AudienceMeta) -> None:
    await set_level(store, plan60, now=local(9), level=4)
    # the window [09:30, 10:30] holds sms 09:30 and zalo/email/app/loudspeaker 10:30
    now = local(10, 30)
    reports = await asyncio.gather(*(Reconciler(store, plan60).tick(now) for _ in range(3)))

    created = [w for r in reports for w in r.created]
    expected = sorted([f"L4-{c}-{STAMP}T0930" for c in SMS_CADENCE] + [
        f"L4-{c}-{STAMP}T1030" for c in AT_1030])
    assert sorted(created) == expected, "each wave is created by exactly one reconciler"
    assert sorted(w.id for w in await store.waves.all()) == expected
    # the plan's campaigns, too, exist once each
    assert sorted(c.id for c in await store.campaigns.all()) == sorted(
        plan_campaign_id(4, c) for c in plan60.level(4).rules)


# -- catch-up -----------------------------------------------------------------------------------


async def test_slots_missed_beyond_catch_up_are_skipped_once(store: Store, plan60: Plan,
                                                             meta: AudienceMeta) -> None:
    await set_level(store, plan60, now=local(6), level=4)

    report = await Reconciler(store, plan60).tick(local(11))

    missed = [f"L4-{c}-{STAMP}T0730" for c in ZALO_CADENCE]
    missed.extend(f"L4-{c}-{STAMP}T0930" for c in SMS_CADENCE)
    missed.append(f"L4-loudspeaker-{STAMP}T0700")
    due = [f"L4-{c}-{STAMP}T1030" for c in AT_1030]
    assert sorted(report.skipped) == sorted(missed)
    assert sorted(report.created) == sorted(due)
    for slot_id in missed:
        assert await store.waves.get(slot_id) is None, f"{slot_id} was sent late"
    for slot_id in due:
        assert await store.waves.get(slot_id) is not None

    # Another process (a fresh reconciler, no memory of the first) does not count them again.
    later = await Reconciler(store, plan60).tick(local(11, 1))
    assert later.skipped == []
    assert later.created == []
    assert sorted(w.id for w in await store.waves.all()) == sorted(due)


async def test_a_slot_inside_the_window_after_downtime_is_still_sent(
        store: Store, plan60: Plan, meta: AudienceMeta) -> None:
    await set_level(store, plan60, now=local(6), level=4)
    reconciler = Reconciler(store, plan60)
    first = await reconciler.tick(local(7))
    assert first.created == [f"L4-loudspeaker-{STAMP}T0700"] and first.skipped == []
    # down from 07:00 to 08:15: 07:30 is 45 minutes late, inside the 60-minute window
    report = await reconciler.tick(local(8, 15))
    assert sorted(report.created) == sorted(
        f"L4-{c}-{STAMP}T0730" for c in ZALO_CADENCE)
    assert report.skipped == []


# -- level changes ------------------------------------------------------------------------------


async def test_leaving_a_level_cancels_its_live_waves_and_campaigns(
        store: Store, plan60: Plan, meta: AudienceMeta) -> None:
    await set_level(store, plan60, now=local(9), level=4)
    reconciler = Reconciler(store, plan60)
    created = (await reconciler.tick(local(10, 30))).created
    sending, paused = f"L4-zalo-{STAMP}T1030", f"L4-sms-{STAMP}T0930"
    assert sending in created and paused in created
    assert len(created) == len(SMS_CADENCE) + len(AT_1030)
    await store.waves.set_state(sending, WaveState.SENDING)
    await store.waves.set_state(paused, WaveState.PAUSED)

    await set_level(store, plan60, now=local(10, 40), level=2)
    report = await reconciler.tick(local(10, 41))

    assert report.level == 2
    # sending, paused and waiting alike: the old level says nothing more
    assert sorted(report.cancelled) == sorted(created)
    states = await store.waves.states()
    assert all(states[w] is WaveState.CANCELLED for w in created)
    for channel in (Channel.SMS, *ZALO_CADENCE):
        campaign = await store.campaigns.get(plan_campaign_id(4, channel))
        assert campaign is not None and campaign.state is CampaignState.CANCELLED
        assert "level 4" in campaign.state_reason

    again = await reconciler.tick(local(10, 42))
    assert again.cancelled == []

    # Level 2's own slots come in due course; level 4's cancelled waves stay cancelled.
    evening = await reconciler.tick(local(17, 1))
    assert {f"L2-{c}-{STAMP}T1700" for c in ZALO_CADENCE} <= set(
        evening.created)
    assert evening.cancelled == []


async def test_the_same_level_again_keeps_since(store: Store, plan60: Plan) -> None:
    first = await set_level(store, plan60, now=local(6), cases=200, reason="200 cases")
    assert first.level == 4 and first.since == local(6)
    second = await set_level(store, plan60, now=local(9), cases=450, reason="450 cases")
    assert second.level == 4
    assert second.since == local(6)
    assert second.at == local(9)
    assert second.cases == 450
    stored = await store.level.get()
    assert stored == second
    assert [s.cases for s in await store.level.history()] == [450, 200]

    lower = await set_level(store, plan60, now=local(10), cases=5)
    assert lower.level == 2 and lower.since == local(10)


async def test_the_same_level_again_does_not_restart_the_plan(
        store: Store, plan60: Plan, meta: AudienceMeta) -> None:
    await set_level(store, plan60, now=local(6), level=4)
    reconciler = Reconciler(store, plan60)
    await reconciler.tick(local(7))
    await set_level(store, plan60, now=local(7, 45), cases=300)
    report = await reconciler.tick(local(8))
    # since stayed 06:00, so the 07:30 slot is due (not lost by the new case count)
    assert f"L4-zalo-{STAMP}T0730" in report.created


# -- trigger_now --------------------------------------------------------------------------------


async def test_trigger_now_creates_the_next_wave_of_each_channel_once(
        store: Store, plan60: Plan, meta: AudienceMeta) -> None:
    await set_level(store, plan60, now=local(9), level=4)
    reconciler = Reconciler(store, plan60)

    ids = await reconciler.trigger_now(local(9, 31))

    tomorrow = f"{DAY + dt.timedelta(days=1):%Y%m%d}"
    assert sorted(ids) == sorted([f"L4-{c}-{tomorrow}T0930" for c in SMS_CADENCE] + [
        f"L4-{c}-{STAMP}T1030" for c in AT_1030])
    waves = await store.waves.all()
    assert sorted(w.id for w in waves) == sorted(ids)
    assert {w.channel for w in waves} == set(plan60.level(4).rules)
    assert all(w.start_now for w in waves)

    again = await reconciler.trigger_now(local(9, 32))
    assert sorted(again) == sorted(ids)
    assert sorted(w.id for w in await store.waves.all()) == sorted(ids), "nothing new"

    # The slot's own tick later does not create it a second time.
    report = await reconciler.tick(local(10, 31))
    assert report.created == []


async def test_trigger_now_without_level_or_audience_does_nothing(
        store: Store, plan60: Plan, audience_file: Path, numbering: Numbering,
        province: Province) -> None:
    reconciler = Reconciler(store, plan60)
    await set_level(store, plan60, now=local(9), level=4)
    assert await reconciler.trigger_now(local(9, 31)) == []
    await imported(store, audience_file, numbering, province)
    await set_level(store, plan60, now=local(9, 10), level=0)
    assert await reconciler.trigger_now(local(9, 31)) == []
    assert await store.waves.all() == []
