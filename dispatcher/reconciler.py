"""The level-triggered reconciler: the current level is the desired state.

A tick compares the plan's due slots for the current level with the waves that exist and
creates the missing ones. Wave ids are the slot ids, and the store creates a wave only once, so
two reconcilers at the same time, or one restarted in the middle of a tick, never create a wave
twice. Slots missed by more than the catch-up window (Loa was down) are skipped and counted once,
never sent late as a burst. When the level changes, waves of the old level that have not started
are cancelled, and the new level's plan starts at its next slot.
"""

from __future__ import annotations

import datetime as dt
import logging

import msgspec

from dispatcher import routing
from dispatcher.model import (
    Campaign,
    CampaignState,
    Channel,
    LevelState,
    Selector,
    Wave,
    WaveState,
)
from dispatcher.plan import Plan, Rule, Slot, due_slots, next_slot
from dispatcher.store.base import AudienceMeta, Store

log = logging.getLogger(__name__)

MISSED_LOOKBACK = dt.timedelta(days=7)  # how far back a first tick looks for missed slots
PLAN_USER = "plan"
NOT_STARTED = frozenset({WaveState.CREATED})


class TickReport(msgspec.Struct):
    level: int = 0
    created: list[str] = []
    skipped: list[str] = []
    cancelled: list[str] = []
    reason: str = ""  # why nothing could be done (no level, no audience)


def plan_campaign_id(level: int, channel: Channel) -> str:
    return f"plan-L{level}-{channel}"


class Reconciler:
    def __init__(self, store: Store, plan: Plan) -> None:
        self.store = store
        self.plan = plan
        self._last_tick: dt.datetime | None = None

    async def tick(self, now: dt.datetime) -> TickReport:
        report = TickReport()
        level = await self.store.level.get()
        report.cancelled = await self._cancel_other_levels(level)
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
                                    slot.id)
                        report.skipped.append(slot.id)
        self._last_tick = now
        return report

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
                          *, start_now: bool = False) -> bool:
        row = rule.row
        campaign_id = plan_campaign_id(slot.level, rule.channel)
        selector = Selector(kinds=list(row.kinds))
        await self.store.campaigns.create(Campaign(
            id=campaign_id, title=f"{self.plan.level(slot.level).name}: {row.activity}",
            channels=[rule.channel], texts={rule.channel: row.template}, created_at=now,
            created_by=PLAN_USER, state=CampaignState.RUNNING, owner=row.lead,
            coordinating=row.coordinating, selector=selector, subject=row.subject,
            strip_diacritics=row.strip_diacritics, approved_by=PLAN_USER, level=slot.level,
            audience_size=meta.count))
        sms = self.plan.level(slot.level).rules.get(Channel.SMS)
        fallback = row.sms_fallback and rule.channel is Channel.ZALO and sms is not None
        wave = Wave(id=slot.id, campaign_id=campaign_id, channel=rule.channel,
                    text=row.template, created_at=now, audience_version=meta.version,
                    selector=selector, subject=row.subject,
                    strip_diacritics=row.strip_diacritics, level=slot.level, slot_at=slot.at,
                    total=routing.reach(meta, selector, rule.channel), start_now=start_now,
                    fallback_text=sms.row.template if fallback and sms else "",
                    fallback_strip=bool(fallback and sms and sms.row.strip_diacritics))
        created = await self.store.waves.create(wave, WaveState.CREATED)
        if created:
            log.info("wave %s created: %d recipients", wave.id, wave.total)
        return created

    async def _cancel_other_levels(self, level: LevelState | None) -> list[str]:
        current = level.level if level else 0
        states = await self.store.waves.states()
        cancelled = []
        for wave_id, state in states.items():
            if state is not WaveState.CREATED:
                continue
            wave = await self.store.waves.get(wave_id)
            if wave is not None and wave.level is not None and wave.level != current and (
                    await self.store.waves.transition(wave_id, NOT_STARTED,
                                                      WaveState.CANCELLED)):
                cancelled.append(wave_id)
        return cancelled
