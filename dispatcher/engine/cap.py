"""Publishing the public alerts as CAP 1.2 messages (:mod:`dispatcher.domain.capalerts`).

A publisher pass, run by every process that runs the reconciler (once a second, next to it),
looks at what the store says happened and publishes the messages still missing, each once
(:meth:`dispatcher.store.base.CapStore.publish` keeps one message per identifier, and the
identifier is made from the event): the level changes since the last level message (the level
in force when publishing began), the urgent campaigns whose waves went out, the waves of the plan
rows marked ``public`` that went out, and the Cancel of a campaign or a wave that was cancelled
after its message was published. Nothing is lost to a crash or a restart: the next pass, in this
process or another, finds what is missing and publishes it.

A message goes out when its event's waves do (their fan-out began: not while paused or waiting
for the sending hours). While the emergency stop is on, no Alert or Update is published (they
wait for the lift, in order); Cancels still are.
"""

from __future__ import annotations

import datetime as dt
import logging

from dispatcher.domain import capalerts, plantemplate
from dispatcher.domain.cap import CapAlert, CapSettings, MsgType, Published, check_areas
from dispatcher.domain.capalerts import Context
from dispatcher.domain.model import (
    Campaign,
    CampaignState,
    Channel,
    Kind,
    Priority,
    Wave,
    WaveState,
)
from dispatcher.domain.plan import Plan, Rule
from dispatcher.domain.province import Province
from dispatcher.engine import metrics, textedits
from dispatcher.engine.campaigns import wave_id as campaign_wave_id
from dispatcher.engine.reconciler import plan_campaign_id
from dispatcher.engine.stop import is_stopped
from dispatcher.store.base import Store

log = logging.getLogger(__name__)

PUBLISH_SECONDS = 1.0
LEVEL_SCAN = 20  # level history entries read per pass (changes between two passes: a few)
#: A wave went out: its fan-out began.
WENT_OUT = frozenset({WaveState.FANNING_OUT, WaveState.SENDING, WaveState.COMPLETED})
#: The channel whose text an urgent campaign's message carries: the first it has.
PUBLIC_TEXT = (Channel.ZALO, Channel.APP, Channel.PORTAL, Channel.FACEBOOK, Channel.SMS,
               Channel.LOUDSPEAKER, Channel.EMAIL)


def public_campaign(campaign: Campaign) -> bool:
    """An urgent campaign of the department to the province's audience (not to an uploaded
    list, not to officials alone, not by e-mail alone) is a public alert."""
    kinds = campaign.selector.kinds
    return (campaign.priority is Priority.URGENT and campaign.level is None
            and not campaign.audience_list
            and not (kinds and all(kind is Kind.OFFICIAL for kind in kinds))
            and any(channel is not Channel.EMAIL for channel in campaign.channels))


class CapPublisher:
    def __init__(self, store: Store, plan: Plan, province: Province, settings: CapSettings,
                 ) -> None:
        check_areas(settings, set(province.districts))
        self.store = store
        self.plan = plan
        self.settings = settings
        self.province = province.name
        self.districts = {d.id: d.name for d in province.districts.values()}
        self._final: set[str] = set()  # campaigns and waves with nothing more to publish
        self._waves: dict[str, Wave | None] = {}  # wave id -> the wave if of a public row

    async def tick(self, now: dt.datetime) -> list[Published]:
        """Publish what is missing; the messages this pass published."""
        if not self.settings.enabled:
            return []
        stopped = await is_stopped(self.store)
        current = await self.store.situation.get()
        ctx = Context(self.settings, self.province, self.districts,
                      current.situation.hotline if current else self.plan.hotline)
        done = await self._levels(ctx, now, stopped)
        done += await self._campaigns(ctx, now, stopped)
        done += await self._plan_waves(ctx, now, stopped)
        return done

    async def _publish(self, alert: CapAlert, done: list[Published]) -> Published | None:
        """Publish ``alert``; the message of its identifier (another process's, when it was
        there already)."""
        published = await self.store.cap.publish(alert)
        if published is None:
            return await self.store.cap.get(alert.identifier)
        metrics.CAP_PUBLISHED.labels(alert.origin, alert.msg_type.value).inc()
        log.info("CAP %s %s published (%s)", alert.msg_type, alert.identifier, alert.thread,
                 extra={"cap": alert.identifier})
        done.append(published)
        return published

    # -- the level ------------------------------------------------------------------------------

    async def _levels(self, ctx: Context, now: dt.datetime, stopped: bool) -> list[Published]:
        done: list[Published] = []
        history = await self.store.level.history(LEVEL_SCAN)
        changes = [s for s in reversed(history) if (s.since or s.at) == s.at]
        head = await self.store.cap.head(capalerts.LEVEL_THREAD)
        if head is None:
            changes = changes[-1:]  # the level in force when publishing began
        else:
            changes = [s for s in changes if s.at > head.alert.event_at]
        for state in changes:
            text = await self._level_text(state.level)
            alert = capalerts.level_alert(ctx, self.plan, state, head.alert if head else None,
                                          now, text)
            if alert is None:
                continue
            if stopped and alert.msg_type is not MsgType.CANCEL:
                break  # waits for the lift, and so do the changes after it
            head = await self._publish(alert, done) or head
        return done

    async def _level_text(self, level: int) -> str:
        """The level's public message: its public row's text (the approved version in force
        over the plan file's), rendered with the situation record in force."""
        found = self.plan.levels.get(level)
        if found is None:
            return ""
        rules = [r for r in found.rules.values() if r.row.public]
        if not rules:
            return ""
        rule: Rule = rules[0]
        approved = (await textedits.checked(self.store, self.plan)).rules
        rule = approved.get((level, rule.channel), (rule, ""))[0]
        record = await self.store.situation.get()
        given = plantemplate.values(record.situation if record else None, self.plan)
        return plantemplate.render_row(rule.row, rule.channel is Channel.SMS, given,
                                       self.plan).text

    # -- urgent campaigns -----------------------------------------------------------------------

    async def _campaigns(self, ctx: Context, now: dt.datetime,
                         stopped: bool) -> list[Published]:
        done: list[Published] = []
        for campaign in await self.store.campaigns.all():
            if campaign.id in self._final or not public_campaign(campaign):
                continue
            ident = capalerts.campaign_id(ctx.settings, campaign.id)
            existing = await self.store.cap.get(ident)
            if campaign.state is CampaignState.CANCELLED:
                if existing is not None and await self.store.cap.get(f"{ident}.cancel") is None:
                    await self._publish(capalerts.cancel(ctx, existing.alert, now), done)
                self._final.add(campaign.id)
                continue
            if existing is not None or campaign.state is CampaignState.FAILED:
                if campaign.state in (CampaignState.COMPLETED, CampaignState.FAILED):
                    self._final.add(campaign.id)
                continue
            if stopped or campaign.state not in (CampaignState.RUNNING, CampaignState.COMPLETED):
                continue
            waves = [w for w in [await self.store.waves.get(campaign_wave_id(campaign.id, c))
                                 for c in PUBLIC_TEXT if c in campaign.channels] if w]
            states = await self.store.waves.states([w.id for w in waves])
            if not any(states.get(w.id) in WENT_OUT for w in waves):
                continue
            if self._expired(waves[0].created_at, now):
                self._final.add(campaign.id)
                continue
            level = await self.store.level.get()
            await self._publish(capalerts.campaign_alert(
                ctx, campaign, waves[0].text, level.level if level else None, now), done)
        return done

    def _expired(self, made: dt.datetime, now: dt.datetime) -> bool:
        """A notice made so long ago that its message would be expired already (publishing
        began after it), or older than ``retention_days`` (its message may have been removed:
        dispatcher.engine.retention): never published."""
        hours, days = self.settings.expires_hours, self.settings.retention_days
        return (bool(hours) and made + dt.timedelta(hours=hours) <= now) or (
            bool(days) and made + dt.timedelta(days=days) <= now)

    # -- the plan's public rows -----------------------------------------------------------------

    async def _public_wave(self, wave_id: str) -> Wave | None:
        if wave_id not in self._waves:
            wave = await self.store.waves.get(wave_id)
            public = wave is not None and wave.level is not None and (
                wave.campaign_id == plan_campaign_id(wave.level, wave.channel))
            if public:
                assert wave is not None and wave.level is not None
                level = self.plan.levels.get(wave.level)
                rule = level.rules.get(wave.channel) if level else None
                public = rule is not None and rule.row.public
            self._waves[wave_id] = wave if public else None
        return self._waves[wave_id]

    async def _plan_waves(self, ctx: Context, now: dt.datetime,
                          stopped: bool) -> list[Published]:
        done: list[Published] = []
        found: list[tuple[Wave, WaveState]] = []
        for wave_id, state in (await self.store.waves.states()).items():
            if wave_id in self._final:
                continue
            wave = await self._public_wave(wave_id)
            if wave is None:
                self._final.add(wave_id)
            else:
                found.append((wave, state))
        found.sort(key=lambda pair: (pair[0].created_at, pair[0].id))
        for wave, state in found:
            ident = capalerts.wave_id(ctx.settings, wave.id)
            existing = await self.store.cap.get(ident)
            if state is WaveState.CANCELLED:
                if existing is not None and await self.store.cap.get(f"{ident}.cancel") is None:
                    await self._publish(capalerts.cancel(ctx, existing.alert, now), done)
                self._final.add(wave.id)
            elif existing is not None:
                if state is WaveState.COMPLETED:
                    self._final.add(wave.id)
            elif self._expired(wave.created_at, now):
                self._final.add(wave.id)
            elif state in WENT_OUT and not stopped:
                head = await self.store.cap.head(capalerts.wave_thread(wave))
                await self._publish(capalerts.wave_alert(
                    ctx, self.plan, wave, head.alert if head else None, now), done)
        return done
