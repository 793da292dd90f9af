"""Which CAP message each public event makes (:mod:`dispatcher.domain.cap`), as pure functions.

- A level change: the level's alert. The first is an ``Alert``; each later change an ``Update``
  referencing the one before (thread ``level``); level 0 (no case) a ``Cancel`` of the last,
  after which the next level starts a new ``Alert``.
- An urgent campaign, when its waves go out: an ``Alert`` (thread ``campaign.<id>``); its
  ``Cancel`` when the campaign is cancelled.
- A wave of a plan row marked ``public``: an ``Alert``, then each next wave of the row an
  ``Update`` of the one before (thread ``plan.L<level>.<channel>``); a ``Cancel`` when the wave
  is cancelled.

Identifiers are made from the event (``<prefix>.level.L3-20260301T010000000000Z``,
``<prefix>.campaign.<id>``, ``<prefix>.wave.<wave id>``, a cancel's ``....cancel``), so the
same event always makes the same identifier.
"""

from __future__ import annotations

import datetime as dt

import msgspec

from dispatcher.domain.cap import (
    PROVINCE_AREA,
    CapAlert,
    CapArea,
    CapInfo,
    CapSettings,
    MsgType,
    Urgency,
    headline_of,
    identifier,
    rating,
)
from dispatcher.domain.model import Campaign, LevelState, Wave
from dispatcher.domain.plan import Plan

LEVEL_THREAD = "level"
NO_CASE_EVENT = "không còn ca mắc"
CANCELLED_NOTE = "Thông báo trước đã được thu hồi."


class Context(msgspec.Struct, frozen=True):
    """What every message needs: the ``[cap]`` table, the province and the hotline in force."""

    settings: CapSettings
    province: str  # its name: "Quảng Ninh"
    districts: dict[str, str]  # id -> name
    hotline: str = ""

    def areas(self, districts: list[str]) -> list[CapArea]:
        """One area per district named, or the whole province when none is."""
        shapes = self.settings.areas
        if not districts:
            whole = shapes.get(PROVINCE_AREA)
            return [CapArea(f"Tỉnh {self.province}", whole.polygons if whole else [],
                            whole.geocodes if whole else {})]
        found = []
        for district in districts:
            shape = shapes.get(district)
            found.append(CapArea(f"{self.districts.get(district, district)}, tỉnh "
                                 f"{self.province}", shape.polygons if shape else [],
                                 shape.geocodes if shape else {}))
        return found

    def info(self, **fields: object) -> CapInfo:
        """An info block with the deployment's sender name, instruction, web and contact."""
        common: dict[str, object] = {
            "sender_name": self.settings.sender_name,
            "instruction": self.settings.instruction_for(self.hotline),
            "web": self.settings.web_url(), "contact": self.settings.contact_for(self.hotline)}
        return CapInfo(**{**common, **fields})  # type: ignore[arg-type]

    def expires(self, now: dt.datetime) -> dt.datetime | None:
        hours = self.settings.expires_hours
        return now + dt.timedelta(hours=hours) if hours else None

    def alert(self, ident: str, *, now: dt.datetime, msg_type: MsgType, thread: str,
              origin: str, event_at: dt.datetime, infos: list[CapInfo],
              earlier: CapAlert | None, level: int | None, note: str = "") -> CapAlert:
        return CapAlert(identifier=ident, sender=self.settings.sender, sent=now,
                        status=self.settings.status, msg_type=msg_type, thread=thread,
                        origin=origin, event_at=event_at,
                        references=[earlier.reference] if earlier is not None else [],
                        infos=infos, level=level, note=note)


def _next(head: CapAlert | None) -> tuple[MsgType, CapAlert | None]:
    """An Alert when the thread has nothing in force, else an Update of its last message."""
    if head is None or head.msg_type is MsgType.CANCEL:
        return MsgType.ALERT, None
    return MsgType.UPDATE, head


def level_id(ctx: Context, state: LevelState) -> str:
    stamp = state.at.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return identifier(ctx.settings.identifier_prefix, "level", f"L{state.level}-{stamp}")


def level_alert(ctx: Context, plan: Plan, state: LevelState, head: CapAlert | None,
                now: dt.datetime, text: str) -> CapAlert | None:
    """The message of the level change ``state`` after the thread's last message ``head``
    (None: nothing to say: level 0 with no level alert in force). ``text``: the level's public
    message (its public row's text as sent now; the level's trigger when it has none)."""
    ident = level_id(ctx, state)
    event = ctx.settings.event
    if state.level == 0:
        if head is None or head.msg_type is MsgType.CANCEL:
            return None
        info = ctx.info(event=f"{event} — {NO_CASE_EVENT}", **_rated(0),
                        headline=f"{ctx.province}: không còn ca mắc, hết cảnh báo cấp độ dịch",
                        description=(f"Tỉnh {ctx.province} không còn ca mắc (cấp độ 0). "
                                     "Cảnh báo cấp độ dịch trước đây hết hiệu lực."),
                        effective=state.at, areas=ctx.areas([]))
        return ctx.alert(ident, now=now, msg_type=MsgType.CANCEL, thread=LEVEL_THREAD,
                         origin="level", event_at=state.at, infos=[info], earlier=head,
                         level=0)
    msg_type, earlier = _next(head)
    level = plan.level(state.level)
    info = ctx.info(event=f"{event} — {level.name}", **_rated(state.level),
                    headline=f"{ctx.province}: {level.name} — {level.trigger}",
                    description=text or f"{level.trigger}.", effective=state.at,
                    areas=ctx.areas([]))
    return ctx.alert(ident, now=now, msg_type=msg_type, thread=LEVEL_THREAD, origin="level",
                     event_at=state.at, infos=[info], earlier=earlier, level=state.level)


def _rated(level: int, *, urgent: bool = False) -> dict[str, object]:
    r = rating(level, urgent=urgent)
    return {"urgency": r.urgency, "severity": r.severity, "certainty": r.certainty}


def campaign_alert(ctx: Context, campaign: Campaign, text: str, level: int | None,
                   now: dt.datetime) -> CapAlert:
    """The Alert of an urgent campaign whose waves go out; ``text``: what it sends (its
    richest text for the public), ``level``: the level in force (rated as level 1 when none)."""
    info = ctx.info(event=f"{ctx.settings.event} — thông báo khẩn",
                    **_rated(level or 1, urgent=True), headline=campaign.title,
                    description=text, expires=ctx.expires(now),
                    areas=ctx.areas(campaign.selector.districts))
    return ctx.alert(campaign_id(ctx.settings, campaign.id), now=now, msg_type=MsgType.ALERT,
                     thread=campaign_thread(campaign.id), origin="campaign", event_at=now,
                     infos=[info], earlier=None, level=level)


def campaign_id(settings: CapSettings, campaign: str) -> str:
    return identifier(settings.identifier_prefix, "campaign", campaign)


def campaign_thread(campaign: str) -> str:
    """The thread of a campaign's Alert and its Cancel: it gets no message once the campaign
    is final (completed, cancelled, failed)."""
    return f"campaign.{campaign}"


def wave_id(settings: CapSettings, wave: str) -> str:
    return identifier(settings.identifier_prefix, "wave", wave)


def wave_thread(wave: Wave) -> str:
    return f"plan.L{wave.level}.{wave.channel}"


def wave_alert(ctx: Context, plan: Plan, wave: Wave, head: CapAlert | None,
               now: dt.datetime) -> CapAlert:
    """The message of a plan wave of a public row, after the row's last message ``head``; a
    wave with a text per district has one info per district."""
    assert wave.level is not None
    level = plan.level(wave.level)
    msg_type, earlier = _next(head)
    base = {"event": f"{ctx.settings.event} — {level.name}", **_rated(wave.level),
            "expires": ctx.expires(now)}
    if wave.district_texts:
        chosen = wave.selector.districts or list(ctx.districts)
        infos = [ctx.info(**base, headline=headline_of(wave.text_for(d)),
                          description=wave.text_for(d), areas=ctx.areas([d])) for d in chosen]
    else:
        infos = [ctx.info(**base, headline=headline_of(wave.text), description=wave.text,
                          areas=ctx.areas(wave.selector.districts))]
    return ctx.alert(wave_id(ctx.settings, wave.id), now=now, msg_type=msg_type,
                     thread=wave_thread(wave), origin="wave", event_at=wave.created_at,
                     infos=infos, earlier=earlier, level=wave.level)


def cancel(ctx: Context, earlier: CapAlert, now: dt.datetime) -> CapAlert:
    """The Cancel of ``earlier`` (a campaign's or a wave's): its info, past and withdrawn."""
    infos = [msgspec.structs.replace(info, urgency=Urgency.PAST, expires=None,
                                     headline=f"Đã thu hồi: {info.headline}"[:160])
             for info in earlier.infos[:1]]
    return ctx.alert(f"{earlier.identifier}.cancel", now=now, msg_type=MsgType.CANCEL,
                     thread=earlier.thread, origin=earlier.origin, event_at=now, infos=infos,
                     earlier=earlier, level=earlier.level, note=CANCELLED_NOTE)
