"""Campaigns the department writes: validation, approval, and the state machine.

draft → pending_approval → approved → running ⇄ paused → completed | cancelled | failed.
A campaign that costs more than a threshold (recipients, or SMS parts: see
:mod:`dispatcher.engine.approval`) waits in pending_approval until a different user approves it; the
engine starts only approved campaigns, and checks again at the start, with its own thresholds
and the audience then: one approved at creation for being small goes back to pending_approval
when it costs more now, and one above a threshold approved by its creator (written into the
store around the API) is marked failed with the reason. Starting creates one
wave per channel (``<campaign>-<channel>``; on an outlet channel, published to the targets
configured then that serve its districts: a campaign naming an outlet with none is refused at
creation); pausing, resuming and cancelling change the waves'
states, which every worker reads within ``state_refresh_seconds``. Every change is a
compare-and-set on the campaign's revision, so two operators acting at once cannot both win.

An urgent campaign to the province's audience (not to a list, not to officials alone) created
while the level in force calls for it also goes by cell broadcast, with its SMS text (else its
first text): ``EngineConfig.urgent_outlets``, ``[cell_broadcast] urgent_level`` (4), when a
carrier is configured. It is one of the campaign's channels from its creation, shown to whoever
approves it.

The plan's own campaigns (one per level and channel, ``plan-L<level>-<channel>``) are paused,
resumed and cancelled the same way, with a reason: pausing holds the current wave and the next
slots' until it is resumed; cancelling stops the current wave for good, and the campaign runs
again at its next slot (to stop a level's sends for good, set another level). Leaving a level
cancels its campaigns and their live waves.
"""

from __future__ import annotations

import datetime as dt
import secrets

import msgspec

from dispatcher.domain import repeats, smstext, textcheck
from dispatcher.domain.errors import InputError, NotFound, PermissionDenied, StateError, TextError
from dispatcher.domain.model import (
    DEFAULT_MAX_PARTS,
    MAX_PARTS_LIMIT,
    VN,
    WAVE_LIVE,
    Campaign,
    CampaignState,
    Channel,
    Kind,
    OverQuota,
    Priority,
    Selector,
    Wave,
    WaveState,
    ZnsMessage,
)
from dispatcher.domain.province import Province
from dispatcher.domain.situation import Situation
from dispatcher.domain.zns import for_wave
from dispatcher.engine import approval, campaigntext, numberlists, routing
from dispatcher.engine.fallback import is_fallback_wave
from dispatcher.engine.settings import EngineConfig
from dispatcher.store.base import AudienceMeta, Store

S = CampaignState
ALLOWED: dict[CampaignState, frozenset[CampaignState]] = {
    S.DRAFT: frozenset({S.PENDING_APPROVAL, S.APPROVED, S.CANCELLED}),
    S.PENDING_APPROVAL: frozenset({S.APPROVED, S.CANCELLED}),
    S.APPROVED: frozenset({S.RUNNING, S.CANCELLED, S.PENDING_APPROVAL, S.FAILED}),
    S.RUNNING: frozenset({S.PAUSED, S.COMPLETED, S.CANCELLED, S.FAILED}),
    S.PAUSED: frozenset({S.RUNNING, S.CANCELLED}),
}
FINAL = frozenset({S.COMPLETED, S.CANCELLED, S.FAILED})
WAVE_STATE_FOR = {S.PAUSED: WaveState.PAUSED, S.CANCELLED: WaveState.CANCELLED}
REASON_MAX = 1000
CAMPAIGN_WINDOW = int(repeats.CAMPAIGN_WINDOW.total_seconds() // 60)  # minutes


def new_campaign_id(now: dt.datetime) -> str:
    """A fresh campaign id: the day and 8 random hex digits."""
    return f"c-{now:%Y%m%d}-{secrets.token_hex(4)}"


def wave_id(campaign_id: str, channel: Channel) -> str:
    return f"{campaign_id}-{channel}"


def fallback_text(texts: dict[Channel, str]) -> str:
    """The SMS a Zalo recipient gets when Zalo cannot reach them: the campaign's SMS text, or
    its Zalo text."""
    return texts.get(Channel.SMS) or texts.get(Channel.ZALO, "")


def _check_sms(text: str, strip: bool, max_parts: int, field: str, why: str = "") -> None:
    try:
        seg = smstext.segment(text, strip=strip)
    except TextError as exc:
        raise InputError(f"{why}{exc}", field=field) from None
    if len(seg.parts) > max_parts:
        raise InputError(f"{why}{seg.summary} is more than max_parts {max_parts}", field=field)


def _over_cap(campaign: Campaign) -> str:
    """Why a stored campaign's SMS (or SMS fallback) breaks the cap on parts ("" if it does
    not): one written before the cap, or straight into the store, is not sent."""
    cap = min(campaign.max_parts, MAX_PARTS_LIMIT)
    checks = [(campaign.texts[Channel.SMS], "texts.sms")] if Channel.SMS in campaign.channels \
        else []
    if campaign.sms_fallback and Channel.ZALO in campaign.channels:
        checks.append((fallback_text(campaign.texts), "sms_fallback"))
    for text, field in checks:
        try:
            _check_sms(text, campaign.strip_diacritics, cap, field)
        except InputError as exc:
            return f"not started: {exc}"
    return ""


ENGINE_USER = "engine"  # who refuses a campaign at its start (state_by)


def approval_refusal(campaign: Campaign, why: str) -> str:
    """Why an approved ``campaign`` over a threshold (``why``: what it costs, empty when under
    every threshold) may not start: its approver must be recorded and not be its creator."""
    if not why:
        return ""
    if not campaign.approved_by:
        return f"{why} and no approver recorded"
    if not campaign.created_by or campaign.approved_by == campaign.created_by:
        return f"{why} and approved by its creator, not by a second user"
    return ""


VERB = {S.PENDING_APPROVAL: "sent for approval", S.APPROVED: "approved", S.RUNNING: "started",
        S.PAUSED: "paused", S.COMPLETED: "completed", S.CANCELLED: "cancelled",
        S.FAILED: "marked failed"}


def _refusal(current: Campaign, to: CampaignState) -> str:
    """Why ``current`` cannot move to ``to`` (a 409's text)."""
    text = f"campaign {current.id} is {current.state}: it cannot be {VERB.get(to, to)}"
    if current.level is not None and current.state in (S.CANCELLED, S.COMPLETED):
        text += (f" (the level {current.level} plan starts it again at its next slot while the "
                 "level is in force)")
    return text


class Campaigns:
    def __init__(self, store: Store, settings: EngineConfig, province: Province) -> None:
        self.store = store
        self.settings = settings
        self.province = province

    async def create(self, *, title: str, channels: list[Channel], texts: dict[Channel, str],
                     created_by: str, now: dt.datetime, selector: Selector | None = None,
                     priority: Priority = Priority.NORMAL, owner: str = "",
                     coordinating: list[str] | None = None, subject: str = "",
                     strip_diacritics: bool = False, campaign_id: str | None = None,
                     start_at: dt.datetime | None = None, sms_fallback: bool = False,
                     max_parts: int = DEFAULT_MAX_PARTS,
                     zns: ZnsMessage | None = None,
                     over_quota: OverQuota | None = None,
                     audience_list: str = "",
                     public_safety: bool = False) -> Campaign:
        """Validate and store a new campaign; it is approved at once when small enough. An SMS
        text (or the SMS fallback's) of more than ``max_parts`` parts is refused, and so is a
        typed ZNS message (``zns``) that its template in ``[zalo.templates]`` would refuse.
        ``over_quota`` (Zalo recipients beyond the daily quota: ``sms`` at once or ``wait``;
        None: ``sms`` when urgent) needs ``sms_fallback`` to be ``sms``. ``audience_list``: an
        uploaded list's id (dispatcher.engine.numberlists), the whole list instead of the
        province's audience (no selector then). ``public_safety``: its waves reach the numbers
        on the suppression lists too (every other wave skips them)."""
        selector = selector or Selector()
        if not title.strip():
            raise InputError("must not be empty", field="title")
        textcheck.check_title(title)
        textcheck.check_title(subject, "subject")
        textcheck.check_title(owner, "owner")
        for index, unit in enumerate(coordinating or []):
            textcheck.check_title(unit, f"coordinating[{index}]")
        if not 1 <= max_parts <= MAX_PARTS_LIMIT:
            raise InputError(f"must be 1 to {MAX_PARTS_LIMIT}, not {max_parts}",
                             field="max_parts")
        if start_at is not None and start_at.tzinfo is None:
            raise InputError("give a time zone (e.g. 2026-11-27T09:00+07:00)", field="start_at")
        channels, texts = await self._channels(channels, texts, selector, priority,
                                               audience_list)
        for channel in channels:
            text = texts.get(channel, "")
            if not text.strip():
                raise InputError("no text for this channel", field=f"texts.{channel}")
            textcheck.check(text, f"texts.{channel}")
        written = {c: texts[c] for c in channels}
        record = await campaigntext.current(self.store)
        campaigntext.check(written, subject, record)
        sent, _ = campaigntext.render(Campaign(
            id="", title=title, channels=channels, texts=written, created_at=now, created_by="",
            subject=subject), record)  # what would be sent now: its parts, its cost
        why = "rendered with the situation in force, " if sent.texts != written else ""
        districts = self.districts(selector)
        if Channel.SMS in channels:
            _check_sms(sent.texts[Channel.SMS], strip_diacritics, max_parts, "texts.sms", why)
            self._check_districts(written[Channel.SMS], record, districts, strip_diacritics,
                                  max_parts, "texts.sms", "")
        self.settings.check_zns(zns, channels)
        if sms_fallback and Channel.ZALO in channels:
            _check_sms(fallback_text(sent.texts), strip_diacritics, max_parts,
                       "sms_fallback", f"the text cannot go by SMS: {why}")
            self._check_districts(fallback_text(written), record, districts, strip_diacritics,
                                  max_parts, "sms_fallback", "the text cannot go by SMS: ")
        if over_quota is OverQuota.SMS and not (sms_fallback and Channel.ZALO in channels):
            raise InputError("sms needs a Zalo campaign with sms_fallback", field="over_quota")
        unknown = [d for d in selector.districts if d not in self.province.districts]
        if unknown:
            raise InputError(f"not districts of {self.province.name}: {', '.join(unknown)}",
                             field="selector.districts")
        for channel in channels:
            self._check_targets(channel, selector)
        if audience_list:
            if selector.districts or selector.kinds:
                raise InputError("a campaign to a list reaches the whole list: leave the "
                                 "selector empty", field="selector")
            meta: AudienceMeta | None = await numberlists.list_meta(self.store, audience_list)
        else:
            meta = await self.store.audiences.meta()
        if meta is None:
            raise StateError("no audience is imported: run `loa audience import` first")
        price = approval.cost(meta, selector=selector, channels=channels, texts=sent.texts,
                              strip=strip_diacritics, sms_fallback=sms_fallback)
        needs_approval = bool(approval.over(price, self.settings.engine))
        campaign = Campaign(
            id=campaign_id or new_campaign_id(now), title=title.strip(),
            channels=channels, texts={c: texts[c] for c in channels}, created_at=now,
            created_by=created_by, state=S.PENDING_APPROVAL if needs_approval else S.APPROVED,
            owner=owner, coordinating=coordinating or [], selector=selector, priority=priority,
            subject=subject, strip_diacritics=strip_diacritics, audience_size=price.recipients,
            start_at=start_at, sms_fallback=sms_fallback, max_parts=max_parts, zns=zns,
            pdus=price.pdus, over_quota=over_quota, audience_list=audience_list,
            public_safety=public_safety)
        if not await self.store.campaigns.create(campaign):
            raise StateError(f"campaign {campaign.id} exists already")
        return campaign

    async def _channels(self, channels: list[Channel], texts: dict[Channel, str],
                        selector: Selector, priority: Priority, audience_list: str,
                        ) -> tuple[list[Channel], dict[Channel, str]]:
        """A campaign's channels (refused when none) and texts; an urgent one's with the
        outlets the level in force adds (cell broadcast at level 4), with its SMS text (else
        the first text of its own)."""
        if not channels:
            raise InputError(f"give at least one of {', '.join(Channel)}", field="channels")
        officials = bool(selector.kinds) and all(k is Kind.OFFICIAL for k in selector.kinds)
        if priority is not Priority.URGENT or audience_list or officials:
            return channels, texts
        level = await self.store.level.get()
        added = [c for c in self.settings.urgent_outlets(level.level if level else None)
                 if c not in channels]
        text = next((texts[c] for c in (Channel.SMS, *channels) if texts.get(c, "").strip()),
                    "")
        if not added or not text:
            return channels, texts
        return [*channels, *added], {**texts, **dict.fromkeys(added, text)}

    def _check_targets(self, channel: Channel, selector: Selector) -> None:
        """An outlet channel publishes to a target at least: one configured, serving the
        selector's districts (refused naming the channel)."""
        if not channel.outlet or routing.targets(channel, selector, self.settings):
            return
        if not self.settings.targets(channel):
            raise InputError(f"{channel} has no target configured in this deployment ([{channel}] "
                             "in the settings): nothing would be published", field="channels")
        raise InputError(f"no {channel} target serves {', '.join(selector.districts)} (nor the "
                         "whole province): nothing would be published", field="channels")

    def districts(self, selector: Selector) -> dict[str, str]:
        """The districts ``selector`` reaches: id -> name (what ``{district}`` renders as)."""
        return {d.id: d.name for d in self.province.districts.values()
                if not selector.districts or d.id in selector.districts}

    @staticmethod
    def _check_districts(text: str, record: Situation | None, districts: dict[str, str],
                         strip: bool, max_parts: int, field: str, why: str) -> None:
        """An SMS naming ``{district}`` fits ``max_parts`` in the district with the longest
        name (refused naming it)."""
        longest, name = campaigntext.longest(text, record, districts)
        if longest:
            _check_sms(longest, strip, max_parts, field, f"{why}rendered for {name}, ")

    def _over_cap_in_a_district(self, campaign: Campaign, record: Situation | None) -> str:
        """Why the campaign's SMS (or SMS fallback) naming ``{district}`` breaks the cap in
        the district with the longest name, rendered with ``record`` ("" if it does not)."""
        cap = min(campaign.max_parts, MAX_PARTS_LIMIT)
        checks = [(campaign.texts[Channel.SMS], "texts.sms")] \
            if Channel.SMS in campaign.channels else []
        if campaign.sms_fallback and Channel.ZALO in campaign.channels:
            checks.append((fallback_text(campaign.texts), "sms_fallback"))
        districts = self.districts(campaign.selector)
        for text, field in checks:
            try:
                self._check_districts(text, record, districts, campaign.strip_diacritics, cap,
                                      field, "")
            except InputError as exc:
                return f"not started: {exc}"
        return ""

    async def get(self, campaign_id: str) -> Campaign:
        campaign = await self.store.campaigns.get(campaign_id)
        if campaign is None:
            raise NotFound(f"no campaign {campaign_id}")
        return campaign

    async def _move(self, campaign_id: str, to: CampaignState, **changes: object) -> Campaign:
        while True:
            current = await self.get(campaign_id)
            if to not in ALLOWED.get(current.state, frozenset()):
                raise StateError(_refusal(current, to))
            updated = msgspec.structs.replace(current, state=to, revision=current.revision + 1,
                                              **changes)
            if await self.store.campaigns.replace(updated, current.revision):
                return updated

    async def approve(self, campaign_id: str, user: str) -> Campaign:
        campaign = await self.get(campaign_id)
        if campaign.state is not S.PENDING_APPROVAL:
            raise StateError(f"campaign {campaign_id} is {campaign.state}, not pending approval")
        if user == campaign.created_by:
            raise PermissionDenied("a campaign must be approved by another user than its creator")
        return await self._move(campaign_id, S.APPROVED, approved_by=user)

    async def start(self, campaign_id: str, now: dt.datetime) -> Campaign:
        """Create the campaign's waves and mark it running (the engine calls this). A campaign
        approved at creation for being small that costs more than a threshold with the audience
        in force now goes back to pending_approval instead, and one whose SMS breaks the cap on
        parts is cancelled (returned in that state)."""
        campaign = await self.get(campaign_id)
        if campaign.state is not S.APPROVED:
            raise StateError(f"campaign {campaign_id} is {campaign.state}, not approved")
        meta = await self.store.audiences.meta(campaign.audience_list or None)
        if meta is None:
            if campaign.audience_list:
                return await self._move(campaign_id, S.CANCELLED, state_by="", state_reason=(
                    f"not started: its list {campaign.audience_list} is gone"))
            raise StateError("no audience is imported")
        # the texts rendered once, from the situation record in force: the waves keep them
        record = await campaigntext.current(self.store)
        sent, refused = campaigntext.render(campaign, record)
        refused = f"not started: {refused}" if refused else ""
        if campaign.level is None:
            refused = refused or _over_cap(sent) or self._over_cap_in_a_district(campaign,
                                                                                  record)
        if refused:
            return await self._move(campaign_id, S.CANCELLED, state_reason=refused, state_by="")
        if campaign.level is None:
            price = approval.of_campaign(meta, sent)
            why = approval.over(price, self.settings.engine)
            if why and not campaign.approved_by:
                return await self._move(
                    campaign_id, S.PENDING_APPROVAL, audience_size=price.recipients,
                    pdus=price.pdus, state_by="", state_reason=(
                        f"at its start the audience {meta.version} makes it {why}: it needs "
                        "approval by another user"))
            refusal = approval_refusal(campaign, why)
            if refusal:
                await self._move(campaign_id, S.FAILED, state_reason=refusal,
                                 state_by=ENGINE_USER)
                raise PermissionDenied(f"campaign {campaign_id} not started: {refusal}")
        # Running first, then the waves: a cancel that lands in between finds the campaign
        # running and cancels whatever waves exist; the engine fans out only waves of running
        # campaigns, so waves created after such a cancel are never sent.
        campaign = await self._move(campaign_id, S.RUNNING)
        districts = self.districts(campaign.selector)
        fallback = fallback_text(campaign.texts) if campaign.sms_fallback else ""
        fallback_districts = campaigntext.district_texts(fallback, record, districts)
        for channel in campaign.channels:
            # an outlet's targets as configured now (none left: the wave publishes nothing)
            targets = routing.targets(channel, campaign.selector, self.settings)
            await self.store.waves.create(Wave(
                id=wave_id(campaign.id, channel), campaign_id=campaign.id, channel=channel,
                text=sent.texts[channel], created_at=now, audience_version=meta.version,
                selector=campaign.selector, priority=campaign.priority,
                subject=sent.subject, strip_diacritics=campaign.strip_diacritics,
                total=len(targets) if channel.outlet else routing.reach(meta, campaign.selector,
                                                                       channel),
                targets=targets, start_now=campaign.priority is Priority.URGENT,
                fallback_text=fallback_text(sent.texts)
                if campaign.sms_fallback and channel is Channel.ZALO else "",
                fallback_strip=campaign.strip_diacritics,
                repeat_scope="" if channel.outlet else repeats.campaign_scope(campaign.id),
                repeat_window=CAMPAIGN_WINDOW,
                fallback_repeat_window=CAMPAIGN_WINDOW, over_quota=campaign.over_quota,
                public_safety=campaign.public_safety,
                district_texts=campaigntext.district_texts(campaign.texts[channel], record,
                                                           districts),
                fallback_district_texts=fallback_districts if channel is Channel.ZALO else {},
                zns=for_wave(campaign.zns, now.astimezone(VN).date())
                if channel is Channel.ZALO else None), WaveState.CREATED)
        current = await self.get(campaign_id)
        if current.state in WAVE_STATE_FOR:  # paused or cancelled while the waves were made
            await self._set_waves(current)
        return current

    async def _reason(self, campaign_id: str, verb: str, reason: str, *,
                      required: bool = True) -> Campaign:
        """The campaign; a plan campaign's pause or cancel needs a reason."""
        campaign = await self.get(campaign_id)
        if required and campaign.level is not None and not reason.strip():
            raise InputError(f"say why the level {campaign.level} plan's {verb} "
                             "(it is kept with the campaign and in the audit log)",
                             field="reason")
        if len(reason) > REASON_MAX:
            raise InputError(f"at most {REASON_MAX} characters", field="reason")
        textcheck.check(reason, "reason")
        return campaign

    async def pause(self, campaign_id: str, *, user: str = "", reason: str = "") -> Campaign:
        """Hold the campaign's live waves (a plan campaign's next slots too) until resumed."""
        await self._reason(campaign_id, "campaign is paused", reason)
        return await self._set_waves(await self._move(
            campaign_id, S.PAUSED, state_reason=reason.strip(), state_by=user))

    async def resume(self, campaign_id: str, *, user: str = "", reason: str = "") -> Campaign:
        """Go on with a paused campaign; only a paused one can be resumed."""
        current = await self._reason(campaign_id, "campaign is resumed", reason, required=False)
        if current.state is not S.PAUSED:
            raise StateError(f"campaign {campaign_id} is {current.state}: only a paused "
                             "campaign can be resumed")
        campaign = await self._move(campaign_id, S.RUNNING, state_reason=reason.strip(),
                                    state_by=user)
        for wid in [w.id for w in await self.waves(campaign.id, companions=True)]:
            # a wave paused before its start waits for it again; a fan-out resumes at its
            # cursor (a finished one moves straight on); workers unpark
            await self.store.waves.resume(wid)
        return campaign

    async def cancel(self, campaign_id: str, *, user: str = "", reason: str = "") -> Campaign:
        """Stop the campaign's live waves for good (a plan campaign runs again at its next
        slot)."""
        await self._reason(campaign_id, "current wave is cancelled", reason)
        return await self._set_waves(await self._move(
            campaign_id, S.CANCELLED, state_reason=reason.strip(), state_by=user))

    async def _set_waves(self, campaign: Campaign) -> Campaign:
        target = WAVE_STATE_FOR[campaign.state]
        for wid in [w.id for w in await self.waves(campaign.id, companions=True)]:
            # compare-and-set: a wave that has finished, or was cancelled meanwhile, stays so
            if target is WaveState.PAUSED:
                await self.store.waves.pause(wid)
            else:
                await self.store.waves.transition(wid, WAVE_LIVE, target)
        return campaign

    async def waves(self, campaign_id: str, *, companions: bool = False) -> list[Wave]:
        """The campaign's waves, one per channel; with ``companions`` also the SMS fallback
        waves of its Zalo waves (which pausing and cancelling reach too)."""
        return [w for w in await self.store.waves.all() if w.campaign_id == campaign_id
                and (companions or not is_fallback_wave(w.id))]

    async def complete(self, campaign_id: str) -> Campaign:
        """Every wave of the campaign has finished (the engine calls this)."""
        return await self._move(campaign_id, S.COMPLETED)
