"""The level-triggered reconciler: the current level is the desired state.

A tick first makes sure each channel of the current level has said that the level is in force
(its opening wave, :mod:`dispatcher.engine.opening`), then compares the plan's due slots for the
current level with the waves that exist and creates the missing ones. Wave ids are the slot
ids, and the store creates a wave only once, so two reconcilers at the same time, or one
restarted in the middle of a tick, never create a wave twice. Slots missed by more than the
catch-up window (Loa was down) are skipped and counted once, never sent late as a burst. When
the level changes, the old level's live waves (waiting, fanning out, sending or paused) and its
campaigns are cancelled, and the new level's plan starts.

A plan campaign paused by an operator gets its next slots' waves paused too, until it is
resumed; one whose current wave was cancelled runs again at its next slot.

A wave is made with the text in force of its level and channel: the approved version
(:mod:`dispatcher.engine.textedits`) over the plan file's. A wave of an outlet channel is made
with the channel's targets configured then (``Wave.targets``: every one, as a plan row reaches
the whole province); repeats are not checked on outlets (their ids are places, not people).
"""

from __future__ import annotations

import datetime as dt
import logging

import msgspec

from dispatcher.domain import plantemplate, repeats, template
from dispatcher.domain.model import (
    WAVE_LIVE,
    Campaign,
    CampaignState,
    Channel,
    LevelState,
    OpeningOutcome,
    Priority,
    Selector,
    Wave,
    WaveState,
    ZnsMessage,
)
from dispatcher.domain.plan import Plan, Rule, Slot, due_slots, next_slot
from dispatcher.domain.province import Province, load_province
from dispatcher.domain.zns import for_wave
from dispatcher.engine import metrics, opening, routing, textedits
from dispatcher.engine.opening import opening_wave_id
from dispatcher.engine.settings import EngineConfig
from dispatcher.store.base import AudienceMeta, Store

log = logging.getLogger(__name__)

MISSED_LOOKBACK = dt.timedelta(days=7)  # how far back a first tick looks for missed slots
PLAN_USER = "plan"
REOPEN = frozenset({CampaignState.CANCELLED, CampaignState.COMPLETED})
HELD = frozenset({CampaignState.RUNNING, CampaignState.PAUSED})


class TickReport(msgspec.Struct):
    level: int = 0
    created: list[str] = []
    opened: list[str] = []  # opening waves created (dispatcher.engine.opening)
    skipped: list[str] = []
    cancelled: list[str] = []
    reason: str = ""  # why nothing could be done (no level, no audience)


def plan_campaign_id(level: int, channel: Channel) -> str:
    return f"plan-L{level}-{channel}"


class Reconciler:
    def __init__(self, store: Store, plan: Plan, province: Province | None = None, *,
                 settings: EngineConfig | None = None) -> None:
        """``settings``: where the outlet channels' targets are read (none without it)."""
        self.store = store
        self.plan = plan
        self.settings = settings
        self._province = province  # read from config/province.toml when None and needed
        self._last_tick: dt.datetime | None = None
        self._wave_levels: dict[str, int | None] = {}  # waves never change: read each once
        self._opened: set[tuple[int, Channel, dt.datetime]] = set()  # openings decided here
        self._started = False

    async def tick(self, now: dt.datetime) -> TickReport:
        report = TickReport()
        if not self._started:  # the plan as loaded: which approved texts it refuses
            await self._announce_refused()
            self._started = True
        level = await self.store.level.get()
        report.cancelled = await self._leave_other_levels(level)
        if level is None or level.level == 0:
            report.reason = "no level is set" if level is None else "level 0: nothing to send"
            return report
        report.level = level.level
        meta = await self.store.audiences.meta()
        if meta is None:
            report.reason = "no audience is imported"
            return report
        since = level.since or level.at
        window_start = max(since, now - self.plan.catch_up)
        look_from = max(since, self._last_tick or now - MISSED_LOOKBACK)
        for rule in self.plan.level(level.level).rules.values():
            if await self._open(level, rule, meta, now):
                report.opened.append(opening_wave_id(level.level, rule.channel, since, self.plan))
            for slot in due_slots(self.plan, level.level, rule.channel, window_start,
                                  now + dt.timedelta(seconds=1)):
                if await self.create_wave(rule, slot, meta, now):
                    report.created.append(slot.id)
            if look_from < window_start:
                for slot in due_slots(self.plan, level.level, rule.channel, look_from,
                                      window_start):
                    if await self.store.waves.get(slot.id) is None and (
                            await self.store.waves.mark_skipped(slot.id)):
                        log.warning("slot %s missed by more than the catch-up window: skipped",
                                    slot.id, extra={"wave": slot.id, "channel": rule.channel})
                        report.skipped.append(slot.id)
        self._last_tick = now
        return report

    async def _open(self, level: LevelState, rule: Rule, meta: AudienceMeta,
                    now: dt.datetime) -> bool:
        """Decide the level's opening on the rule's channel (once) and create its wave."""
        since = level.since or level.at
        done = (level.level, rule.channel, since)
        if done in self._opened:
            return False
        decided = await opening.decide(self.store.openings, self.plan, level, rule.channel, now)
        created = False
        if decided.since == since and decided.outcome is OpeningOutcome.SENT:
            created = await self.create_wave(rule, opening.opening_slot(decided), meta, now,
                                             urgent=decided.urgent)
        self._opened.add(done)
        return created

    async def trigger_now(self, now: dt.datetime) -> list[str]:
        """Create the next wave of every channel of the current level now, as if its slot were
        due (``loa demo``); ids are the slots', so this too creates each wave once."""
        level = await self.store.level.get()
        meta = await self.store.audiences.meta()
        if level is None or level.level == 0 or meta is None:
            return []
        ids = []
        for rule in self.plan.level(level.level).rules.values():
            slot = next_slot(self.plan, level.level, rule.channel, now)
            if slot is not None:
                await self.create_wave(rule, slot, meta, now, start_now=True)
                ids.append(slot.id)
        return ids

    async def create_wave(self, rule: Rule, slot: Slot, meta: AudienceMeta, now: dt.datetime,
                          *, start_now: bool = False, urgent: bool = False) -> bool:
        """The slot's wave, once; ``urgent``: in the urgent lane, outside the sending hours
        too (the opening of an urgent level)."""
        campaign_id = plan_campaign_id(slot.level, rule.channel)
        if await self.store.waves.get(slot.id) is not None:
            return False  # created before (by this process or another)
        # the texts in force: an approved version's over the plan file's
        found = await textedits.checked(self.store, self.plan)
        approved = found.rules
        rule = approved.get((slot.level, rule.channel), (rule, ""))[0]
        row = rule.row
        selector = Selector(kinds=list(row.kinds))
        sms = self.plan.level(slot.level).rules.get(Channel.SMS)
        if sms is not None:
            sms = approved.get((slot.level, Channel.SMS), (sms, ""))[0]
        fallback = row.sms_fallback and rule.channel is Channel.ZALO and sms is not None
        self._refused(slot, found.refused, [rule.channel, *([Channel.SMS] if fallback else [])])
        text, subject, fallback_text, districts = await self._render(
            slot, rule, sms if fallback else None)
        campaign = await self._plan_campaign(Campaign(
            id=campaign_id, title=f"{self.plan.level(slot.level).name}: {row.activity}",
            channels=[rule.channel], texts={rule.channel: row.template}, created_at=now,
            created_by=PLAN_USER, state=CampaignState.RUNNING, owner=row.lead,
            coordinating=row.coordinating, selector=selector, subject=row.subject,
            strip_diacritics=row.strip_diacritics, approved_by=PLAN_USER, level=slot.level,
            audience_size=meta.count, max_parts=self.plan.sms_max_parts))
        outlet = rule.channel.outlet
        targets = routing.targets(rule.channel, selector, self.settings) \
            if outlet and self.settings is not None else []
        wave = Wave(id=slot.id, campaign_id=campaign_id, channel=rule.channel,
                    text=text, created_at=now, audience_version=meta.version,
                    selector=selector, subject=subject,
                    strip_diacritics=row.strip_diacritics, level=slot.level, slot_at=slot.at,
                    total=len(targets) if outlet else routing.reach(meta, selector,
                                                                    rule.channel),
                    start_now=start_now, targets=targets,
                    priority=Priority.URGENT if urgent else Priority.NORMAL,
                    fallback_text=fallback_text,
                    fallback_strip=bool(fallback and sms and sms.row.strip_diacritics),
                    repeat_scope="" if outlet else repeats.PLAN_SCOPE,
                    repeat_window=0 if outlet else repeats.plan_window(self.plan, slot.level,
                                                                       rule.channel),
                    fallback_repeat_window=repeats.plan_window(self.plan, slot.level,
                                                               Channel.SMS) if fallback else 0,
                    zns=for_wave(ZnsMessage(template=row.zns_template, params=row.zns_params),
                                 slot.at.astimezone(self.plan.tz).date())
                    if row.zns_template and rule.channel is Channel.ZALO else None,
                    over_quota=row.over_quota, district_texts=districts[0],
                    fallback_district_texts=districts[1])
        held = campaign.state is CampaignState.PAUSED
        created = await self.store.waves.create(
            wave, WaveState.PAUSED if held else WaveState.CREATED)
        if created:
            log.info("wave %s created%s: %d %s", wave.id,
                     " paused (its campaign is paused)" if held else "", wave.total,
                     "targets" if outlet else "recipients",
                     extra={"wave": wave.id, "campaign": wave.campaign_id,
                            "channel": wave.channel})
            if outlet and not targets:
                log.warning("wave %s: %s has no target configured: nothing is published",
                            wave.id, rule.channel, extra={"wave": wave.id,
                                                          "channel": wave.channel})
            current = await self.store.campaigns.get(campaign_id)
            if not held and current is not None and current.state is CampaignState.PAUSED:
                # paused while the wave was being made: it waits with its campaign
                await self.store.waves.transition(wave.id, frozenset({WaveState.CREATED}),
                                                  WaveState.PAUSED)
        return created

    async def _announce_refused(self) -> None:
        """Say once, at the first tick, each approved text in force the plan (as this process
        loaded it) refuses: until the file accepts it again, the file's text is sent."""
        for (level, channel), why in sorted((await textedits.checked(
                self.store, self.plan)).refused.items()):
            log.warning("the approved %s text %s of level %d no longer fits the plan as loaded "
                        "(%s): its waves send the plan file's text", channel, why.version, level,
                        why.reason, extra={"channel": channel})

    def _refused(self, slot: Slot, refused: dict[tuple[int, Channel], textedits.Refused],
                 channels: list[Channel]) -> None:
        """Log and count the approved texts of the wave's ``channels`` the plan refuses: the
        wave goes with the plan file's."""
        for channel in channels:
            why = refused.get((slot.level, channel))
            if why is None:
                continue
            metrics.WAVE_TEXTS_DEGRADED.labels(channel.value, "approved_refused").inc()
            log.error("wave %s: the approved %s text %s of level %d no longer fits the plan "
                      "(%s): the plan file's text is sent", slot.id, channel, why.version,
                      slot.level, why.reason, extra={"wave": slot.id, "channel": channel})

    def _districts(self) -> dict[str, str]:
        """The province's districts: id -> name (what ``{district}`` renders as)."""
        if self._province is None:
            self._province = load_province()
        return {d.id: d.name for d in self._province.districts.values()}

    async def _render(self, slot: Slot, rule: Rule, sms: Rule | None,
                      ) -> tuple[str, str, str, tuple[dict[str, str], dict[str, str]]]:
        """The wave's text, subject and SMS fallback text (``sms``: the level's SMS row, when
        the wave has one), rendered once from the situation record in force
        (:mod:`dispatcher.domain.plantemplate`), and the text and the fallback's per district
        when they name ``{district}`` (else empty). A field the record does not give, or an
        SMS still over the cap with fewer areas, is logged and counted, and sent as rendered:
        a plan wave is never held back for its figures."""
        written = [rule.row.written, rule.row.written_subject, sms.row.written if sms else ""]
        if not any(template.names(text) for text in written):
            return rule.row.template, rule.row.subject, sms.row.template if sms else "", ({}, {})
        current = await self.store.situation.get()
        given = plantemplate.values(current.situation if current else None, self.plan)
        done = plantemplate.render_row(rule.row, rule.channel is Channel.SMS, given, self.plan)
        texts = [(rule.channel, done)]
        if sms is not None:
            texts.append((Channel.SMS, plantemplate.render_row(sms.row, True, given, self.plan)))
        per: list[dict[str, str]] = [{}, {}]
        rows = [(rule.row, rule.channel is Channel.SMS)] + ([(sms.row, True)] if sms else [])
        for at, (row, is_sms) in enumerate(rows):
            if template.names_district(row.written or row.template):
                rendered = plantemplate.per_district(row, is_sms, given, self.plan,
                                                     self._districts())
                per[at] = {d: r.text for d, r in rendered.items()}
                over = next((r for r in rendered.values() if r.over), None)
                if over is not None:  # a district's rendering over the cap is logged too
                    texts.append((Channel.SMS if at else rule.channel,
                                  msgspec.structs.replace(over, missing=[])))
        for channel, found in texts:
            extra = {"wave": slot.id, "channel": channel}
            if found.missing:
                metrics.WAVE_TEXTS_DEGRADED.labels(channel.value, "missing_field").inc()
                log.error("wave %s: the %s text names %s, which the situation record does not "
                          "give (%s): sent as %r", slot.id, channel,
                          ", ".join(f"{{{n}}}" for n in found.missing),
                          "none is set" if current is None else "set it with the free field",
                          template.MISSING, extra=extra)
            if found.over:
                metrics.WAVE_TEXTS_DEGRADED.labels(channel.value, "over_parts").inc()
                log.error("wave %s: the %s text rendered is %s: sent as rendered", slot.id,
                          channel, found.over, extra=extra)
        return (done.text, done.subject, texts[1][1].text if sms is not None else "",
                (per[0], per[1]))

    async def _plan_campaign(self, campaign: Campaign) -> Campaign:
        """The plan campaign, created the first time; one whose last wave was cancelled (or
        whose level was left) runs again."""
        if await self.store.campaigns.create(campaign):
            return campaign
        while True:
            current = await self.store.campaigns.get(campaign.id)
            if current is None or current.state not in REOPEN:
                return current or campaign
            reopened = msgspec.structs.replace(
                current, state=CampaignState.RUNNING, revision=current.revision + 1,
                state_reason="next slot of the plan", state_by=PLAN_USER)
            if await self.store.campaigns.replace(reopened, current.revision):
                return reopened

    async def _leave_other_levels(self, level: LevelState | None) -> list[str]:
        """Cancel the live waves and the campaigns of every level but the current one."""
        current = level.level if level else 0
        cancelled = []
        for wave_id, state in (await self.store.waves.states()).items():
            if state not in WAVE_LIVE:
                self._wave_levels.pop(wave_id, None)
                continue
            if wave_id not in self._wave_levels:
                wave = await self.store.waves.get(wave_id)
                self._wave_levels[wave_id] = wave.level if wave is not None else None
            wave_level = self._wave_levels[wave_id]
            if wave_level is not None and wave_level != current and (
                    await self.store.waves.transition(wave_id, WAVE_LIVE,
                                                      WaveState.CANCELLED)):
                log.info("wave %s cancelled: level %d is no longer in force", wave_id,
                         wave_level, extra={"wave": wave_id})
                cancelled.append(wave_id)
        for campaign in await self.store.campaigns.all():
            if campaign.level is not None and campaign.level != current and (
                    campaign.state in HELD):
                left = msgspec.structs.replace(
                    campaign, state=CampaignState.CANCELLED, revision=campaign.revision + 1,
                    state_reason=f"level {campaign.level} is no longer in force",
                    state_by=PLAN_USER)
                await self.store.campaigns.replace(left, campaign.revision)  # lost: next tick
        return cancelled
