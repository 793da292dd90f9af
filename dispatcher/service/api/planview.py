"""The plan as ``GET /v1/plan`` and ``loa plan show --json`` show it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

from dispatcher.domain import plantemplate, smstext, template
from dispatcher.domain.activity import cadence_of
from dispatcher.domain.model import Channel
from dispatcher.domain.outlet import Target
from dispatcher.domain.plan import Level, Plan, Rule, next_slot, slot_texts
from dispatcher.domain.province import Province
from dispatcher.domain.situation import Situation
from dispatcher.domain.smstext import Encoding
from dispatcher.engine.textedits import Refused
from dispatcher.service.api.schemas import (
    DistrictInfo,
    PlanActivity,
    PlanChannel,
    PlanLevel,
    PlanSlot,
    PlanView,
    RefusedText,
)


def plan_view(plan: Plan, province: Province, now: dt.datetime,
              levels: Iterable[Level] | None = None,
              situation: Situation | None = None,
              versions: Mapping[tuple[int, Channel], str] | None = None,
              refused: Mapping[tuple[int, Channel], Refused] | None = None,
              targets: Mapping[Channel, list[Target]] | None = None) -> PlanView:
    """Every level of ``plan`` (or only ``levels``) with each channel's next send after ``now``;
    with ``situation``, each ``text`` rendered from it, as a wave made now would send it;
    ``versions``: the approved text in force of a level's channel (``plan`` has it), by id;
    ``refused``: the approved versions ``plan`` does not accept (the file's text goes);
    ``targets``: the outlet channels' configured targets (an outlet row without: none)."""
    given = plantemplate.values(situation, plan) if situation is not None else None
    longest = template.longest({d.id: d.name for d in province.districts.values()})[1]
    return PlanView(
        name=plan.name, source=plan.source, timezone=plan.tz.key,
        sending_hours=list(plan.hours_text),
        catch_up_minutes=int(plan.catch_up.total_seconds() // 60),
        opening_damping_hours=int(plan.opening_damping.total_seconds() // 3600),
        province=province.name,
        districts=[DistrictInfo(d.id, d.name) for d in province.districts.values()],
        levels=[_level(plan, level, now, given, versions or {}, refused or {}, longest,
                       targets or {})
                for level in (levels or plan.levels.values())],
        hotline=plan.hotline, sms_diacritics=plan.sms_diacritics,
        sms_max_parts=plan.sms_max_parts)


def _level(plan: Plan, level: Level, now: dt.datetime, given: template.Values | None,
           versions: Mapping[tuple[int, Channel], str],
           refused: Mapping[tuple[int, Channel], Refused], longest: str,
           targets: Mapping[Channel, list[Target]]) -> PlanLevel:
    return PlanLevel(
        level=level.level, name=level.name, trigger=level.trigger, min_cases=level.min_cases,
        max_cases=level.max_cases,
        channels={channel: _channel(plan, level.level, rule, now, given,
                                    versions.get((level.level, channel)),
                                    refused.get((level.level, channel)), longest,
                                    targets.get(channel, []) if channel.outlet else None)
                  for channel, rule in level.rules.items()},
        activities=[PlanActivity(a.field, a.what, a.quantity, a.lead, list(a.coordinating),
                                 id=a.id, cadence=cadence_of(a).text(),
                                 carried=a.id in level.carried, channel=a.channel,
                                 on_checklist=a.channel is None or a.channel not in level.rules)
                    for a in level.activities],
        sms_diacritics=level.sms_diacritics)


def _channel(plan: Plan, level: int, rule: Rule, now: dt.datetime,
             given: template.Values | None, version: str | None,
             refused: Refused | None, longest: str,
             targets: list[Target] | None) -> PlanChannel:
    row = rule.row
    upcoming = next_slot(plan, level, rule.channel, now)
    encoding: Encoding | None = None
    parts: int | None = None
    text = row.template
    district = template.names_district(row.written or row.template)
    if given is not None:
        shown = template.in_district(given, longest) if district else given
        text = plantemplate.render_row(row, rule.channel is Channel.SMS, shown, plan).text
    if rule.channel is Channel.SMS:
        seg = smstext.segment(text, strip=row.strip_diacritics)
        encoding, parts, text = seg.encoding, len(seg.parts), seg.text
    return PlanChannel(
        activity=row.activity, quantity=row.quantity, lead=row.lead,
        coordinating=list(row.coordinating), kinds=list(row.kinds),
        sends_per_week=round(rule.cadence.sends_per_week, 3),
        period_days=rule.cadence.period_days, slots=slot_texts(rule),
        times=[PlanSlot(day, f"{time:%H:%M}") for day, time in rule.cadence.slots],
        next=upcoming.at if upcoming else None, template=row.template, text=text,
        subject=row.subject, strip_diacritics=row.strip_diacritics,
        sends_range=list(row.sends_range) if row.sends_range is not None else None,
        encoding=encoding, parts=parts, origin="approved" if version else "file",
        version=version,
        refused=RefusedText(refused.version, refused.reason) if refused is not None else None,
        district=longest if district and given is not None else None, targets=targets,
        public=row.public)
