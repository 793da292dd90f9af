"""Campaigns: validation, approval by another user, the state machine and its waves."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from bench import audiencegen
from dispatcher.domain.errors import InputError, NotFound, PermissionDenied, StateError
from dispatcher.domain.model import (
    OUTLETS,
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
from dispatcher.domain.province import Province
from dispatcher.engine import approval, routing
from dispatcher.engine.campaigns import Campaigns, wave_id
from dispatcher.service.settings import EngineSettings, Settings
from dispatcher.store import Store
from dispatcher.store.base import AudienceMeta, WaveStore
from tests.conftest import imported

NOW = dt.datetime(2024, 3, 5, 3, 0, tzinfo=dt.UTC)
SMS_TEXT = "Deo khau trang, rua tay, giu khoang cach, khai bao y te."
ZALO_TEXT = "Đeo khẩu trang, rửa tay thường xuyên, giữ khoảng cách và khai báo y tế."
TEXTS = {Channel.SMS: SMS_TEXT, Channel.ZALO: ZALO_TEXT}
SMALL = Settings(engine=EngineSettings(approval_threshold=10))


@pytest.fixture(scope="module")
def audience_file(tmp_path_factory: pytest.TempPathFactory, numbering: Numbering,
                  province: Province) -> Path:
    path = tmp_path_factory.mktemp("campaigns") / "audience.csv"
    audiencegen.generate(path, 300, seed=3, numbering=numbering, province=province)
    return path


@pytest.fixture
async def meta(store: Store, audience_file: Path, numbering: Numbering,
               province: Province) -> AudienceMeta:
    return await imported(store, audience_file, numbering, province)


@pytest.fixture
def campaigns(store: Store, province: Province) -> Campaigns:
    """Campaigns with the default threshold (10,000: the 300-row audience needs no approval)."""
    return Campaigns(store, Settings(), province)


@pytest.fixture
def strict(store: Store, province: Province) -> Campaigns:
    """Campaigns that need approval above 10 recipients."""
    return Campaigns(store, SMALL, province)


async def _create(campaigns: Campaigns, *, channels: list[Channel] | None = None,
                  user: str = "alice", priority: Priority = Priority.NORMAL,
                  selector: Selector | None = None,
                  start_at: dt.datetime | None = None) -> Campaign:
    channels = channels or [Channel.SMS, Channel.ZALO]
    return await campaigns.create(title="Khuyến cáo phòng dịch", channels=channels,
                                  texts={c: TEXTS[c] for c in channels}, created_by=user,
                                  now=NOW, priority=priority, selector=selector,
                                  start_at=start_at)


# -- approval -----------------------------------------------------------------------------------


async def test_a_small_campaign_is_approved_at_once(campaigns: Campaigns, store: Store,
                                                    meta: AudienceMeta) -> None:
    campaign = await _create(campaigns)
    assert campaign.state is CampaignState.APPROVED
    assert campaign.audience_size == meta.count  # sms reaches everyone, more than zalo
    assert campaign.revision == 0
    assert await store.campaigns.get(campaign.id) == campaign


async def test_a_campaign_above_the_threshold_waits_for_another_user(
        strict: Campaigns, store: Store, meta: AudienceMeta) -> None:
    campaign = await _create(strict, user="alice")
    assert campaign.state is CampaignState.PENDING_APPROVAL
    assert campaign.audience_size > SMALL.engine.approval_threshold

    with pytest.raises(PermissionDenied):
        await strict.approve(campaign.id, "alice")
    assert (await strict.get(campaign.id)).state is CampaignState.PENDING_APPROVAL

    approved = await strict.approve(campaign.id, "bob")
    assert approved.state is CampaignState.APPROVED
    assert approved.approved_by == "bob"
    assert approved.revision == campaign.revision + 1
    assert await store.campaigns.get(campaign.id) == approved

    with pytest.raises(StateError):
        await strict.approve(campaign.id, "carol")
    stored = await strict.get(campaign.id)
    assert stored.approved_by == "bob" and stored.revision == approved.revision


async def test_the_threshold_counts_the_selected_audience(strict: Campaigns,
                                                          meta: AudienceMeta) -> None:
    group = min((g for g in meta.groups if g.district), key=lambda g: g.count)
    assert group.count <= SMALL.engine.approval_threshold
    small = await _create(strict, channels=[Channel.SMS],
                          selector=Selector(districts=[group.district], kinds=[group.kind]))
    assert small.audience_size == group.count
    assert small.state is CampaignState.APPROVED


async def test_two_approvers_at_once_one_wins(strict: Campaigns, store: Store,
                                              meta: AudienceMeta) -> None:
    campaign = await _create(strict, user="alice")
    results = await asyncio.gather(strict.approve(campaign.id, "bob"),
                                   strict.approve(campaign.id, "carol"),
                                   return_exceptions=True)
    won = [r for r in results if isinstance(r, Campaign)]
    lost = [r for r in results if isinstance(r, BaseException)]
    assert len(won) == 1 and len(lost) == 1
    assert isinstance(lost[0], StateError)
    stored = await strict.get(campaign.id)
    assert stored == won[0]
    assert stored.revision == 1
    assert stored.approved_by in ("bob", "carol")


async def test_an_unknown_campaign_is_not_found(campaigns: Campaigns, meta: AudienceMeta) -> None:
    with pytest.raises(NotFound):
        await campaigns.approve("c-none", "bob")
    with pytest.raises(NotFound):
        await campaigns.pause("c-none")


# -- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("title", "channels", "texts", "selector", "names"), [
    ("  ", [Channel.SMS], {Channel.SMS: SMS_TEXT}, None, "title"),
    ("T", [], {Channel.SMS: SMS_TEXT}, None, "channels"),
    ("T", [Channel.SMS, Channel.ZALO], {Channel.SMS: SMS_TEXT}, None, "texts.zalo"),
    ("T", [Channel.EMAIL], {Channel.EMAIL: "   "}, None, "texts.email"),
    ("T", [Channel.SMS], {Channel.SMS: "x" * 40_000}, None, "texts.sms"),
    ("T", [Channel.SMS], {Channel.SMS: SMS_TEXT}, Selector(districts=["ha-long", "atlantis"]),
     "atlantis"),
])
async def test_invalid_campaigns_are_refused(
        campaigns: Campaigns, store: Store, meta: AudienceMeta, title: str,
        channels: list[Channel], texts: dict[Channel, str], selector: Selector | None,
        names: str) -> None:
    with pytest.raises(InputError) as info:
        await campaigns.create(title=title, channels=channels, texts=texts, created_by="alice",
                               now=NOW, selector=selector)
    assert names in str(info.value)
    assert await store.campaigns.all() == []


LONG = "Đeo khẩu trang, rửa tay, giữ khoảng cách. " * 6  # 252 characters: 4 parts of UCS-2


@pytest.mark.parametrize(("channels", "fallback", "strip", "max_parts", "error"), [
    ([Channel.SMS], False, False, 3,
     "texts.sms: 4 parts (UCS-2, 252 characters) is more than max_parts 3"),
    ([Channel.SMS], False, True, 1,
     "texts.sms: 2 parts (GSM-7, 252 characters) is more than max_parts 1"),
    ([Channel.ZALO], True, False, 3, "sms_fallback: the text cannot go by SMS: 4 parts (UCS-2, "
                                     "252 characters) is more than max_parts 3"),
    ([Channel.SMS], False, False, 0, "max_parts: must be 1 to 10, not 0"),
    ([Channel.SMS], False, False, 11, "max_parts: must be 1 to 10, not 11"),
])
async def test_an_sms_over_max_parts_is_refused(
        campaigns: Campaigns, store: Store, meta: AudienceMeta, channels: list[Channel],
        fallback: bool, strip: bool, max_parts: int, error: str) -> None:
    with pytest.raises(InputError) as info:
        await campaigns.create(title="T", channels=channels, texts=dict.fromkeys(channels, LONG),
                               created_by="alice", now=NOW, sms_fallback=fallback,
                               strip_diacritics=strip, max_parts=max_parts)
    assert str(info.value) == error
    assert await store.campaigns.all() == []


async def test_max_parts_defaults_to_three_and_is_kept(campaigns: Campaigns, store: Store,
                                                       meta: AudienceMeta) -> None:
    three = await campaigns.create(title="T", channels=[Channel.SMS],
                                   texts={Channel.SMS: "á" * 201}, created_by="alice", now=NOW)
    assert three.max_parts == 3
    four = await campaigns.create(title="T", channels=[Channel.SMS, Channel.ZALO],
                                  texts=dict.fromkeys([Channel.SMS, Channel.ZALO], LONG),
                                  created_by="alice", now=NOW, sms_fallback=True, max_parts=4)
    assert four.max_parts == 4 and (await store.campaigns.get(four.id)) == four
    stripped = await campaigns.create(title="T", channels=[Channel.SMS],
                                      texts={Channel.SMS: LONG}, created_by="alice", now=NOW,
                                      strip_diacritics=True)
    assert stripped.max_parts == 3  # 2 parts of GSM-7


async def test_a_campaign_needs_an_audience(campaigns: Campaigns, store: Store) -> None:
    with pytest.raises(StateError):
        await _create(campaigns)
    assert await store.campaigns.all() == []


async def test_a_campaign_id_is_used_once(campaigns: Campaigns, meta: AudienceMeta) -> None:
    await campaigns.create(title="A", channels=[Channel.SMS], texts=TEXTS, created_by="alice",
                           now=NOW, campaign_id="c-fixed")
    with pytest.raises(StateError):
        await campaigns.create(title="B", channels=[Channel.SMS], texts=TEXTS,
                               created_by="alice", now=NOW, campaign_id="c-fixed")
    assert (await campaigns.get("c-fixed")).title == "A"


# -- start, pause, resume, cancel ---------------------------------------------------------------


async def test_start_creates_one_wave_per_channel(campaigns: Campaigns, store: Store,
                                                  meta: AudienceMeta) -> None:
    campaign = await _create(campaigns)
    started = await campaigns.start(campaign.id, NOW)

    assert started.state is CampaignState.RUNNING
    ids = [wave_id(campaign.id, c) for c in campaign.channels]
    assert ids == [f"{campaign.id}-sms", f"{campaign.id}-zalo"]
    assert await store.waves.states(ids) == dict.fromkeys(ids, WaveState.CREATED)
    for channel, wid in zip(campaign.channels, ids, strict=True):
        wave = await store.waves.get(wid)
        assert wave is not None
        assert wave.campaign_id == campaign.id
        assert wave.channel is channel
        assert wave.text == TEXTS[channel]
        assert wave.audience_version == meta.version
        assert wave.total == routing.reach(meta, campaign.selector, channel)
        assert wave.level is None
        assert not wave.start_now
    zalo = await store.waves.get(ids[1])
    assert zalo is not None and zalo.total == sum(g.zalo for g in meta.groups) < meta.count

    with pytest.raises(StateError):
        await campaigns.start(campaign.id, NOW)


async def test_a_pending_campaign_cannot_start(strict: Campaigns, store: Store,
                                               meta: AudienceMeta) -> None:
    campaign = await _create(strict)
    with pytest.raises(StateError):
        await strict.start(campaign.id, NOW)
    assert await store.waves.all() == []


async def test_an_urgent_campaign_starts_now(campaigns: Campaigns, store: Store,
                                             meta: AudienceMeta) -> None:
    campaign = await _create(campaigns, priority=Priority.URGENT,
                             selector=Selector(kinds=[Kind.RESIDENT]))
    await campaigns.start(campaign.id, NOW)
    waves = await store.waves.all()
    assert len(waves) == 2
    assert all(w.start_now and w.priority is Priority.URGENT for w in waves)
    assert all(w.selector == Selector(kinds=[Kind.RESIDENT]) for w in waves)


async def test_pause_resume_cancel_move_the_waves(campaigns: Campaigns, store: Store,
                                                  meta: AudienceMeta) -> None:
    campaign = await _create(campaigns)
    await campaigns.start(campaign.id, NOW)
    ids = [wave_id(campaign.id, c) for c in campaign.channels]

    paused = await campaigns.pause(campaign.id)
    assert paused.state is CampaignState.PAUSED
    assert await store.waves.states(ids) == dict.fromkeys(ids, WaveState.PAUSED)
    with pytest.raises(StateError):
        await campaigns.pause(campaign.id)

    resumed = await campaigns.resume(campaign.id)
    assert resumed.state is CampaignState.RUNNING
    # paused before their fan-out began: they wait for their start again, not "fanning out"
    assert await store.waves.states(ids) == dict.fromkeys(ids, WaveState.CREATED)
    with pytest.raises(StateError):
        await campaigns.resume(campaign.id)

    # paused mid-fan-out and mid-send: both go on from their cursors
    await store.waves.set_state(ids[0], WaveState.FANNING_OUT)
    await store.waves.set_state(ids[1], WaveState.SENDING)
    await campaigns.pause(campaign.id)
    assert await store.waves.states(ids) == dict.fromkeys(ids, WaveState.PAUSED)
    await campaigns.resume(campaign.id)
    assert await store.waves.states(ids) == dict.fromkeys(ids, WaveState.FANNING_OUT)

    # A wave that has finished keeps its state through pause and cancel.
    await store.waves.set_state(ids[0], WaveState.COMPLETED)
    await campaigns.pause(campaign.id)
    assert await store.waves.states(ids) == {ids[0]: WaveState.COMPLETED,
                                             ids[1]: WaveState.PAUSED}
    cancelled = await campaigns.cancel(campaign.id)
    assert cancelled.state is CampaignState.CANCELLED
    assert await store.waves.states(ids) == {ids[0]: WaveState.COMPLETED,
                                             ids[1]: WaveState.CANCELLED}
    with pytest.raises(StateError):
        await campaigns.resume(campaign.id)
    with pytest.raises(StateError):
        await campaigns.pause(campaign.id)
    assert (await campaigns.get(campaign.id)).state is CampaignState.CANCELLED
    assert await store.waves.states(ids) == {ids[0]: WaveState.COMPLETED,
                                             ids[1]: WaveState.CANCELLED}


async def test_a_plan_campaign_is_paused_resumed_and_cancelled_with_a_reason(
        campaigns: Campaigns, store: Store) -> None:
    plan = Campaign(id="plan-L4-sms", title="Cấp độ 4: nhắn tin", channels=[Channel.SMS],
                    texts={Channel.SMS: "x"}, created_at=NOW, created_by="plan",
                    state=CampaignState.RUNNING, approved_by="plan", level=4)
    assert await store.campaigns.create(plan)
    wave = Wave(id="L4-sms-1", campaign_id=plan.id, channel=Channel.SMS, text="x",
                created_at=NOW, audience_version="v", total=10, level=4)
    assert await store.waves.create(wave, WaveState.SENDING)
    for verb in (campaigns.pause, campaigns.cancel):
        with pytest.raises(InputError, match="reason: say why the level 4 plan"):
            await verb(plan.id, user="olga")
    assert await store.waves.states([wave.id]) == {wave.id: WaveState.SENDING}

    paused = await campaigns.pause(plan.id, user="olga", reason="sai nội dung")
    assert (paused.state, paused.state_reason, paused.state_by) == (
        CampaignState.PAUSED, "sai nội dung", "olga")
    assert await store.waves.states([wave.id]) == {wave.id: WaveState.PAUSED}
    resumed = await campaigns.resume(plan.id, user="olga")
    assert resumed.state is CampaignState.RUNNING
    assert await store.waves.states([wave.id]) == {wave.id: WaveState.FANNING_OUT}
    cancelled = await campaigns.cancel(plan.id, user="olga", reason="báo động nhầm")
    assert cancelled.state is CampaignState.CANCELLED
    assert await store.waves.states([wave.id]) == {wave.id: WaveState.CANCELLED}


async def test_only_a_paused_campaign_can_be_resumed(
        campaigns: Campaigns, store: Store, meta: AudienceMeta) -> None:
    """An approved campaign waiting for its start must not become running with no wave."""
    campaign = await _create(campaigns, start_at=NOW + dt.timedelta(hours=2))
    assert campaign.state is CampaignState.APPROVED
    with pytest.raises(StateError, match="only a paused campaign can be resumed"):
        await campaigns.resume(campaign.id)
    assert (await campaigns.get(campaign.id)).state is CampaignState.APPROVED
    await campaigns.start(campaign.id, NOW)
    with pytest.raises(StateError, match="only a paused campaign can be resumed"):
        await campaigns.resume(campaign.id)


async def test_cancel_reaches_every_wave_of_the_campaign_only(
        campaigns: Campaigns, store: Store, meta: AudienceMeta) -> None:
    one = await _create(campaigns)
    other = await _create(campaigns, channels=[Channel.ZALO])
    await campaigns.start(one.id, NOW)
    await campaigns.start(other.id, NOW)
    await campaigns.cancel(one.id)
    states = await store.waves.states()
    assert states[wave_id(one.id, Channel.SMS)] is WaveState.CANCELLED
    assert states[wave_id(one.id, Channel.ZALO)] is WaveState.CANCELLED
    assert states[wave_id(other.id, Channel.ZALO)] is WaveState.CREATED


async def test_a_completed_campaign_cannot_be_resumed_or_cancelled(
        campaigns: Campaigns, meta: AudienceMeta) -> None:
    campaign = await _create(campaigns)
    await campaigns.start(campaign.id, NOW)
    done = await campaigns.complete(campaign.id)
    assert done.state is CampaignState.COMPLETED
    for action in (campaigns.resume, campaigns.pause, campaigns.cancel, campaigns.complete):
        with pytest.raises(StateError):
            await action(campaign.id)
    assert (await campaigns.get(campaign.id)).state is CampaignState.COMPLETED


async def test_a_pending_campaign_can_be_cancelled_but_not_paused(
        strict: Campaigns, meta: AudienceMeta) -> None:
    campaign = await _create(strict)
    with pytest.raises(StateError):
        await strict.pause(campaign.id)
    cancelled = await strict.cancel(campaign.id)
    assert cancelled.state is CampaignState.CANCELLED
    with pytest.raises(StateError):
        await strict.approve(campaign.id, "bob")


async def test_concurrent_pause_and_cancel_end_cancelled(
        campaigns: Campaigns, store: Store, meta: AudienceMeta) -> None:
    campaign = await _create(campaigns)
    await campaigns.start(campaign.id, NOW)
    ids = [wave_id(campaign.id, c) for c in campaign.channels]
    results = await asyncio.gather(campaigns.pause(campaign.id), campaigns.cancel(campaign.id),
                                   return_exceptions=True)
    assert not isinstance(results[1], BaseException), "cancel is allowed from running and paused"
    final = await campaigns.get(campaign.id)
    assert final.state is CampaignState.CANCELLED
    assert await store.waves.states(ids) == dict.fromkeys(ids, WaveState.CANCELLED)


# -- two operators at once, one landing between the other's two steps ---------------------------


class _WavesReadThenHook:
    """Real waves; a hook runs once right after the first read of the list of waves (the step
    between moving the campaign and moving its waves)."""

    def __init__(self, inner: WaveStore) -> None:
        self.inner = inner
        self.hook: Callable[[], Awaitable[None]] | None = None

    async def create(self, wave: Wave, state: WaveState) -> bool:
        return await self.inner.create(wave, state)

    async def get(self, wave_id: str) -> Wave | None:
        return await self.inner.get(wave_id)

    async def all(self) -> list[Wave]:
        found = await self.inner.all()
        hook, self.hook = self.hook, None
        if hook is not None:
            await hook()
        return found

    async def since(self, at: dt.datetime) -> list[Wave]:
        return await self.inner.since(at)

    async def set_state(self, wave_id: str, state: WaveState) -> None:
        await self.inner.set_state(wave_id, state)

    async def pause(self, wave_id: str) -> bool:
        return await self.inner.pause(wave_id)

    async def resume(self, wave_id: str) -> bool:
        return await self.inner.resume(wave_id)

    async def transition(self, wave_id: str, allowed: frozenset[WaveState],
                         state: WaveState) -> bool:
        return await self.inner.transition(wave_id, allowed, state)

    async def states(self, wave_ids: list[str] | None = None) -> dict[str, WaveState]:
        return await self.inner.states(wave_ids)

    async def progress(self, wave_id: str) -> dict[str, int]:
        return await self.inner.progress(wave_id)

    async def mark_skipped(self, slot_id: str) -> bool:
        return await self.inner.mark_skipped(slot_id)

    async def count_unfanned(self, wave_id: str, n: int) -> bool:
        return await self.inner.count_unfanned(wave_id, n)


class _Hooked:
    def __init__(self, inner: Store) -> None:
        self.level = inner.level
        self.stop = inner.stop
        self.situation = inner.situation
        self.incoming = inner.incoming
        self.plan_texts = inner.plan_texts
        self.checklist = inner.checklist
        self.openings = inner.openings
        self.ledger = inner.ledger
        self.audiences = inner.audiences
        self.campaigns = inner.campaigns
        self.queue = inner.queue
        self.leases = inner.leases
        self.receipts = inner.receipts
        self.recipients = inner.recipients
        self.webhook_seen = inner.webhook_seen
        self.cap = inner.cap
        self.wifi = inner.wifi
        self.broadcasts = inner.broadcasts
        self.suppressions = inner.suppressions
        self.waves = _WavesReadThenHook(inner.waves)

    async def aclose(self) -> None:
        return None


@pytest.mark.parametrize("first", ["pause", "resume"])
async def test_a_cancel_between_the_campaign_and_its_waves_wins(
        store: Store, province: Province, meta: AudienceMeta, first: str) -> None:
    hooked = _Hooked(store)
    slow = Campaigns(hooked, Settings(), province)  # the operator whose request is slower
    other = Campaigns(store, Settings(), province)
    campaign = await _create(other)
    await other.start(campaign.id, NOW)
    if first == "resume":
        await other.pause(campaign.id)

    async def cancel() -> None:
        await other.cancel(campaign.id)

    hooked.waves.hook = cancel
    await (slow.pause if first == "pause" else slow.resume)(campaign.id)

    assert (await other.get(campaign.id)).state is CampaignState.CANCELLED
    ids = [wave_id(campaign.id, c) for c in campaign.channels]
    assert await store.waves.states(ids) == dict.fromkeys(ids, WaveState.CANCELLED)


# -- approval by cost ---------------------------------------------------------------------------

LONG_SMS = "Deo khau trang, rua tay. " * 58  # 1,450 GSM-7 characters: 10 parts


async def test_a_many_part_sms_to_a_small_audience_needs_approval(
        store: Store, province: Province, meta: AudienceMeta) -> None:
    """Every part is a PDU: 10 parts to 300 people cost 3,000, more than 1,000."""
    costly = Settings(engine=EngineSettings(approval_threshold_pdus=1_000))
    campaigns = Campaigns(store, costly, province)
    short = await campaigns.create(title="Ngắn", channels=[Channel.SMS],
                                   texts={Channel.SMS: SMS_TEXT}, created_by="alice", now=NOW)
    assert short.state is CampaignState.APPROVED and short.pdus == meta.count
    long = await campaigns.create(title="Dài", channels=[Channel.SMS],
                                  texts={Channel.SMS: LONG_SMS}, created_by="alice", now=NOW,
                                  max_parts=10)
    assert long.audience_size == meta.count < costly.engine.approval_threshold
    assert long.pdus == meta.count * 10
    assert long.state is CampaignState.PENDING_APPROVAL
    # the SMS fallback of a Zalo wave is counted as if every Zalo recipient got it
    zalo = await campaigns.create(title="Zalo", channels=[Channel.ZALO],
                                  texts={Channel.ZALO: LONG_SMS}, created_by="alice", now=NOW,
                                  sms_fallback=True, max_parts=10)
    reach = routing.reach(meta, Selector(), Channel.ZALO)
    assert zalo.pdus == reach * 10 and zalo.state is CampaignState.PENDING_APPROVAL


@pytest.mark.parametrize("outlet", sorted(OUTLETS))
def test_an_outlet_counts_the_people_of_its_districts_for_approval(
        meta: AudienceMeta, outlet: Channel) -> None:
    """A post on the province's pages or an area broadcast reaches everyone there: one person
    alone may not publish it to more than the threshold, however few its targets."""
    price = approval.cost(meta, selector=Selector(), channels=[outlet],
                          texts={outlet: SMS_TEXT}, strip=False, sms_fallback=False)
    assert price.recipients == meta.count
    assert approval.over(price, EngineSettings(approval_threshold=meta.count - 1))


async def test_an_audience_grown_between_creation_and_start_needs_approval(
        store: Store, province: Province, numbering: Numbering, meta: AudienceMeta,
        tmp_path: Path) -> None:
    """Approved at creation for its 300 recipients; at its start the audience in force has
    600: it waits for another user's approval, with no wave made."""
    campaigns = Campaigns(store, Settings(engine=EngineSettings(approval_threshold=400)),
                          province)
    campaign = await _create(campaigns, channels=[Channel.SMS])
    assert campaign.state is CampaignState.APPROVED and campaign.audience_size == 300
    grown = tmp_path / "grown.csv"
    audiencegen.generate(grown, 600, seed=4, numbering=numbering, province=province)
    bigger = await imported(store, grown, numbering, province)
    assert bigger.count > 400

    held = await campaigns.start(campaign.id, NOW)
    assert held.state is CampaignState.PENDING_APPROVAL
    assert held.audience_size == bigger.count
    assert "approval_threshold 400" in held.state_reason
    assert await campaigns.waves(campaign.id) == []
    with pytest.raises(StateError):
        await campaigns.start(campaign.id, NOW)

    approved = await campaigns.approve(campaign.id, "bob")
    started = await campaigns.start(approved.id, NOW)
    assert started.state is CampaignState.RUNNING
    assert [w.total for w in await campaigns.waves(campaign.id)] == [bigger.count]


# -- invisible and control characters ---------------------------------------------------------


@pytest.mark.parametrize(("field", "text", "said"), [
    ("title", "Khẩn\x1b[2J", "U+001B at character 5 is a control character"),
    ("title", "Khẩn\x00", "U+0000 at character 5 is a control character"),
    ("title", "Khẩn\ncấp", "U+000A at character 5 is a control character"),
    ("title", "\u202eKhẩn", "U+202E RIGHT-TO-LEFT OVERRIDE at character 1 is a bidirectional"),
    ("title", "Khẩn\u2066x\u2069", "U+2066 LEFT-TO-RIGHT ISOLATE at character 5"),
    ("title", "Khẩn\x85", "U+0085 at character 5 is a control character"),
    ("texts.sms", "Deo khau\u200b trang", "U+200B ZERO WIDTH SPACE at character 9 is a "
     "zero-width character (unseen, yet it makes an SMS longer: UCS-2, more parts)"),
    ("texts.sms", "\ufeffDeo khau trang", "U+FEFF ZERO WIDTH NO-BREAK SPACE at character 1"),
    ("texts.zalo", "Đeo khẩu trang\u200d", "U+200D ZERO WIDTH JOINER at character 15"),
    ("texts.zalo", "Đeo \u202ekhẩu trang", "U+202E RIGHT-TO-LEFT OVERRIDE at character 5"),
    ("texts.sms", "Deo khau trang\x1b", "U+001B at character 15 is a control character"),
    ("subject", "Khẩn\r\nBcc: x", "U+000D at character 5"),
])
async def test_invisible_and_control_characters_are_refused(
        campaigns: Campaigns, meta: AudienceMeta, field: str, text: str, said: str) -> None:
    values = {"title": "Khẩn", "subject": "", "texts.sms": SMS_TEXT, "texts.zalo": ZALO_TEXT}
    values[field] = text
    with pytest.raises(InputError) as info:
        await campaigns.create(
            title=values["title"], channels=[Channel.SMS, Channel.ZALO, Channel.EMAIL],
            texts={Channel.SMS: values["texts.sms"], Channel.ZALO: values["texts.zalo"],
                   Channel.EMAIL: ZALO_TEXT}, subject=values["subject"], created_by="alice",
            now=NOW)
    message = str(info.value)
    assert info.value.field == field and message.startswith(f"{field}: ") and said in message
    assert "\n" not in message and text not in message


async def test_line_breaks_and_tabs_stay_allowed_in_texts(campaigns: Campaigns,
                                                          meta: AudienceMeta) -> None:
    campaign = await campaigns.create(title="Khẩn", channels=[Channel.SMS],
                                      texts={Channel.SMS: "Deo khau trang.\r\nRua tay.\tGoi 115"},
                                      created_by="alice", now=NOW)
    assert campaign.state is CampaignState.APPROVED


async def test_a_reason_with_an_escape_is_refused(campaigns: Campaigns,
                                                  meta: AudienceMeta) -> None:
    campaign = await _create(campaigns)
    with pytest.raises(InputError, match=r"^reason: U\+001B"):
        await campaigns.cancel(campaign.id, user="bob", reason="sai\x1b[8m")


async def test_a_stored_campaign_over_the_parts_cap_is_never_started(
        campaigns: Campaigns, store: Store, meta: AudienceMeta) -> None:
    """Written before the cap, or straight into the store: 20 parts, more than the hard cap
    of 10 whatever its own max_parts says."""
    huge = Campaign(id="c-huge", title="Dài", channels=[Channel.SMS],
                    texts={Channel.SMS: "Deo khau trang, rua tay. " * 120}, created_at=NOW,
                    created_by="alice", state=CampaignState.APPROVED, approved_by="bob",
                    max_parts=254)
    assert await store.campaigns.create(huge)
    stopped = await campaigns.start(huge.id, NOW)
    assert stopped.state is CampaignState.CANCELLED
    assert stopped.state_reason == ("not started: texts.sms: 20 parts (GSM-7, 3000 characters) "
                                    "is more than max_parts 10")
    assert await campaigns.waves(huge.id) == []
