"""The communication plan: levels, their thresholds, and each channel's cadence and template.

This module is pure: :func:`load_plan` is the only function that reads a file; everything else
computes on the loaded :class:`Plan`. The reconciler asks :func:`due_slots` which sends of a
channel fall in a time range; each :class:`Slot` has a deterministic id (level, channel, local
time), so creating the same wave twice can be recognised and refused. The texts (the hotline,
SMS diacritics and parts) are checked and resolved by :mod:`dispatcher.domain.plantext`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from dispatcher.domain import activity, plantext
from dispatcher.domain.activity import Activity
from dispatcher.domain.config import convert, default_path, read_toml
from dispatcher.domain.errors import ConfigError, InputError
from dispatcher.domain.model import DEFAULT_MAX_PARTS, Channel, Kind, OverQuota

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: A level opens on a channel at most once per this many hours (the level flapping sends one).
DEFAULT_DAMPING_HOURS = 6
MAX_DAMPING_HOURS = 168

Fail = Callable[[str, str], ConfigError]  # (key, message) -> error naming the key
FailAt = Callable[[str], ConfigError]  # message -> error at a key already chosen


class ChannelPlan(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One row of the plan that Loa sends: what, how often, who leads, and the message.

    Once the plan is loaded, ``template`` and ``subject`` have the hotline filled in and, for
    SMS, ``strip_diacritics`` holds the plan's (or the level's) ``sms_diacritics``; a plan file
    that writes ``strip_diacritics`` in a row is refused."""

    activity: str
    quantity: str  # the source document's wording, e.g. "02 lần/tuần"
    lead: str
    template: str
    kinds: list[Kind]
    coordinating: list[str] = []
    period_days: int | None = None
    slots: list[str] | None = None
    follows: Channel | None = None  # take period_days and slots from this channel of the level
    sends_range: list[int] | None = None  # [min, max] sends per period the source allows
    subject: str = ""
    strip_diacritics: bool = False  # resolved from sms_diacritics; not a key of the file
    sms_fallback: bool = False  # Zalo only: recipients not on Zalo get the level's SMS text
    # Zalo only: the typed ZNS template ([zalo.templates.<name>]) and its parameters' values,
    # which may write {hotline} (filled in when the plan loads) and {date} (when a wave is made)
    zns_template: str = ""
    zns_params: dict[str, str] = {}
    # Zalo only: recipients beyond the OA's daily quota go by SMS at once ("sms", with
    # sms_fallback) or wait for the reset ("wait"); unset: "sms" at an urgent level (the highest
    # by default), else "wait". Resolved when the plan is loaded.
    over_quota: OverQuota | None = None
    # a public notice: each wave of the row is also published as a CAP message (the feed
    # /public/cap/feed.xml and the public page /public/notice); the row reaches residents or
    # visitors
    public: bool = False
    # the template and subject as written, with their fields (set when the plan is loaded; not
    # keys of the file): what a wave renders with the situation record in force
    written: str = ""
    written_subject: str = ""


class Channels(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    sms: ChannelPlan | None = None
    zalo: ChannelPlan | None = None
    email: ChannelPlan | None = None
    app: ChannelPlan | None = None
    facebook: ChannelPlan | None = None
    portal: ChannelPlan | None = None
    loudspeaker: ChannelPlan | None = None
    cell_broadcast: ChannelPlan | None = None


class LevelFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    level: int
    name: str
    trigger: str
    min_cases: int
    channels: Channels
    max_cases: int | None = None
    activities: list[Activity] = []
    # ids of the level below's activities that go on at this level (the source's table of the
    # level does not repeat them): they follow the level's own, in this order
    carry: list[str] = []
    sms_diacritics: str | None = None  # "strip" or "keep": this level's SMS, over the plan's
    urgent: bool | None = None  # its opening ignores the sending hours (unset: the highest level)


class PlanFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The plan file as written (config/plan.toml)."""

    name: str
    timezone: str
    sending_hours: list[str]
    catch_up_minutes: int
    cycle_anchor: dt.date
    levels: list[LevelFile]
    source: str = ""
    hotline: str = ""  # the number citizens call; templates write {hotline}
    # free fields of the situation record the texts may name ({cases} and the others of every
    # record need no listing): dispatcher.domain.template
    situation_fields: list[str] = []
    sms_diacritics: str = plantext.DEFAULT_DIACRITICS  # "strip" or "keep"
    sms_max_parts: int = DEFAULT_MAX_PARTS  # every SMS of the plan fits this many parts
    opening_damping_hours: int = DEFAULT_DAMPING_HOURS  # a level opens a channel once per N hours


class Cadence(msgspec.Struct, frozen=True):
    """When a channel sends: ``slots`` are (day of period, local time) pairs."""

    period_days: int
    slots: tuple[tuple[int, dt.time], ...]

    @property
    def sends_per_week(self) -> float:
        return len(self.slots) * 7 / self.period_days


class Rule(msgspec.Struct, frozen=True):
    """A channel of a level, resolved: its row of the plan and its cadence."""

    channel: Channel
    row: ChannelPlan
    cadence: Cadence


class Level(msgspec.Struct, frozen=True):
    level: int
    name: str
    trigger: str
    min_cases: int
    max_cases: int | None
    rules: dict[Channel, Rule]
    activities: list[Activity]  # its own, then those carried on from the level below
    sms_diacritics: plantext.Diacritics = plantext.DEFAULT_DIACRITICS  # in force at this level
    urgent: bool = False  # its opening messages ignore the sending hours and go first
    carried: tuple[str, ...] = ()  # the ids of ``activities`` carried on from the level below


class Slot(msgspec.Struct, frozen=True, order=True):
    """One due send of a channel; ``id`` is stable across restarts and processes."""

    at: dt.datetime
    level: int
    channel: Channel
    id: str


class Plan(msgspec.Struct, frozen=True):
    name: str
    source: str
    tz: ZoneInfo
    sending_hours: tuple[dt.time, dt.time]
    catch_up: dt.timedelta
    anchor: dt.date
    levels: dict[int, Level]
    hotline: str = ""
    sms_diacritics: plantext.Diacritics = plantext.DEFAULT_DIACRITICS
    sms_max_parts: int = DEFAULT_MAX_PARTS
    opening_damping: dt.timedelta = dt.timedelta(hours=DEFAULT_DAMPING_HOURS)
    situation_fields: tuple[str, ...] = ()  # free fields of the record the texts may name

    def level(self, level: int) -> Level:
        try:
            return self.levels[level]
        except KeyError:
            known = ", ".join(str(n) for n in sorted(self.levels))
            raise InputError(f"level {level} is not in the plan (levels: 0, {known})") from None

    def level_for_cases(self, cases: int) -> int:
        return level_for_cases(self, cases)

    @property
    def hours_text(self) -> tuple[str, str]:
        """The sending hours as the plan file writes them ("24:00" for the end of the day)."""
        return _time_text(self.sending_hours[0]), _time_text(self.sending_hours[1])

    def in_sending_hours(self, when: dt.datetime) -> bool:
        local = _aware(when, "when").astimezone(self.tz).time()
        start, end = self.sending_hours
        return start <= local < end

    def sending_start(self, when: dt.datetime) -> dt.datetime:
        """``when`` if it is inside the sending hours, else the moment they next begin."""
        if self.in_sending_hours(when):
            return when
        local = when.astimezone(self.tz)
        start = dt.datetime.combine(local.date(), self.sending_hours[0], tzinfo=self.tz)
        return start if start > local else start + dt.timedelta(days=1)


def level_for_cases(plan: Plan, cases: int) -> int:
    """The level the plan sets for ``cases`` confirmed cases in the province (0: no case)."""
    if cases < 0:
        raise InputError(f"the number of cases cannot be negative (got {cases})")
    for level in plan.levels.values():
        if level.min_cases <= cases and (level.max_cases is None or cases <= level.max_cases):
            return level.level
    return 0


def due_slots(
    plan: Plan, level: int, channel: Channel, start: dt.datetime, end: dt.datetime
) -> list[Slot]:
    """The sends of ``channel`` at ``level`` whose time falls in ``[start, end)``, in order."""
    rule = plan.level(level).rules.get(channel)
    if rule is None:
        return []
    start, end = _aware(start, "start"), _aware(end, "end")
    cadence = rule.cadence
    first = start.astimezone(plan.tz).date() - dt.timedelta(days=cadence.period_days)
    last = end.astimezone(plan.tz).date()
    found: list[Slot] = []
    day = first
    while day <= last:
        offset = (day - plan.anchor).days % cadence.period_days
        for slot_day, slot_time in cadence.slots:
            if slot_day != offset:
                continue
            at = dt.datetime.combine(day, slot_time, tzinfo=plan.tz)
            if start <= at < end:
                found.append(_slot(level, channel, at))
        day += dt.timedelta(days=1)
    found.sort()
    return found


def next_slot(plan: Plan, level: int, channel: Channel, after: dt.datetime) -> Slot | None:
    """The first send of ``channel`` at ``level`` at or after ``after``."""
    rule = plan.level(level).rules.get(channel)
    if rule is None:
        return None
    horizon = after + dt.timedelta(days=rule.cadence.period_days + 1)
    slots = due_slots(plan, level, channel, after, horizon)
    return slots[0] if slots else None


def slot_texts(rule: Rule) -> list[str]:
    """The slots of a rule as the plan file writes them (``mon 08:00``, ``+1 09:00``,
    ``every 3 days at 08:00``)."""
    period = rule.cadence.period_days
    texts = []
    for day, time in rule.cadence.slots:
        if period == 7:
            texts.append(f"{WEEKDAYS[day]} {time:%H:%M}")
        elif day:
            texts.append(f"+{day} {time:%H:%M}")
        else:
            texts.append(f"{time:%H:%M}")
    if period not in (1, 7):
        texts = [f"every {period} days at {t}" for t in texts]
    return texts


def _slot(level: int, channel: Channel, at: dt.datetime) -> Slot:
    return Slot(at=at, level=level, channel=channel, id=f"L{level}-{channel}-{at:%Y%m%dT%H%M}")


def _aware(value: dt.datetime, name: str) -> dt.datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")
    return value


# -- loading and validation ------------------------------------------------------------------


def load_plan(path: Path | None = None) -> Plan:
    """Load and validate a plan file (default: the shipped ``config/plan.toml``)."""
    path = path or default_path("plan.toml")
    return plan_from_dict(read_toml(path), source=str(path))


def plan_from_dict(data: dict[str, Any], *, source: str = "<plan>") -> Plan:
    """Validate an already-parsed plan (tests, the API)."""
    plantext.refuse_removed_keys(data, source)
    return build_plan(convert(data, PlanFile, source=source), source=source)


def build_plan(raw: PlanFile, *, source: str) -> Plan:
    def fail(key: str, message: str) -> ConfigError:
        return ConfigError(message, source=source, key=key)

    try:
        tz = ZoneInfo(raw.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise fail("timezone", f"unknown time zone {raw.timezone!r}") from None
    if len(raw.sending_hours) != 2:
        raise fail("sending_hours", "expected [start, end], e.g. [\"07:00\", \"21:00\"]")
    hours = (
        _parse_time(raw.sending_hours[0], partial(fail, "sending_hours[0]")),
        _parse_time(raw.sending_hours[1], partial(fail, "sending_hours[1]"), end=True),
    )
    if hours[0] >= hours[1]:
        raise fail("sending_hours", "start must be before end")
    if raw.catch_up_minutes < 0:
        raise fail("catch_up_minutes", "must be 0 or more")
    if not 0 <= raw.opening_damping_hours <= MAX_DAMPING_HOURS:
        raise fail("opening_damping_hours", f"must be 0 to {MAX_DAMPING_HOURS}")
    if not raw.levels:
        raise fail("levels", "the plan has no level")
    rows = [getattr(level.channels, c.value) for level in raw.levels for c in Channel]
    written = [text for row in rows if row is not None
               for text in (row.template, row.subject, *row.zns_params.values())]
    policy = plantext.plan_policy(raw.hotline, raw.sms_diacritics, raw.sms_max_parts, written,
                                  fail, raw.situation_fields)

    levels: dict[int, Level] = {}
    previous: LevelFile | None = None
    for index, entry in enumerate(raw.levels):
        key = f"levels[{index}]"
        _check_threshold(entry, previous, index == len(raw.levels) - 1, key, fail)
        texts = policy.for_level(entry.sms_diacritics, f"{key}.sms_diacritics", fail)
        urgent = index == len(raw.levels) - 1 if entry.urgent is None else entry.urgent
        rules = _resolve_rules(entry, raw, hours, texts, f"{key}.channels", fail)
        rules = _over_quota(rules, urgent, f"{key}.channels", fail)
        activity.check(entry.activities, f"{key}.activities", fail)
        below = levels[previous.level].activities if previous is not None else []
        carried = activity.carry(entry.activities, below, entry.carry, f"{key}.carry", fail)
        levels[entry.level] = Level(
            level=entry.level,
            name=entry.name,
            trigger=entry.trigger,
            min_cases=entry.min_cases,
            max_cases=entry.max_cases,
            rules=rules,
            activities=[*entry.activities, *carried],
            sms_diacritics=texts.diacritics,
            urgent=urgent,
            carried=tuple(a.id for a in carried),
        )
        previous = entry
    return Plan(
        name=raw.name,
        source=raw.source,
        tz=tz,
        sending_hours=hours,
        catch_up=dt.timedelta(minutes=raw.catch_up_minutes),
        anchor=raw.cycle_anchor,
        levels=levels,
        hotline=policy.hotline,
        sms_diacritics=policy.diacritics,
        sms_max_parts=policy.max_parts,
        situation_fields=policy.fields,
        opening_damping=dt.timedelta(hours=raw.opening_damping_hours),
    )


def _over_quota(rules: dict[Channel, Rule], urgent: bool, key: str,
                fail: Fail) -> dict[Channel, Rule]:
    """Each Zalo row's ``over_quota`` resolved (by the level's urgency when unset); the key
    is refused on any other channel."""
    for channel, rule in rules.items():
        row = rule.row
        if channel is not Channel.ZALO:
            if row.over_quota is not None:
                raise fail(f"{key}.{channel}.over_quota", "is for the zalo channel only")
            continue
        policy = row.over_quota or (OverQuota.SMS if urgent else OverQuota.WAIT)
        rules[channel] = msgspec.structs.replace(
            rule, row=msgspec.structs.replace(row, over_quota=policy))
    return rules


def _check_threshold(entry: LevelFile, previous: LevelFile | None, last: bool, key: str,
                     fail: Fail) -> None:
    expected_level = 1 if previous is None else previous.level + 1
    if entry.level != expected_level:
        raise fail(f"{key}.level", f"expected level {expected_level}, got {entry.level}")
    expected_min = 1 if previous is None else (previous.max_cases or 0) + 1
    if entry.min_cases != expected_min:
        raise fail(f"{key}.min_cases",
                   f"expected {expected_min} (levels must cover every case count without gaps)")
    if last and entry.max_cases is not None:
        raise fail(f"{key}.max_cases", "the highest level has no upper bound; remove max_cases")
    if not last and entry.max_cases is None:
        raise fail(f"{key}.max_cases", "required for every level but the highest")
    if entry.max_cases is not None and entry.max_cases < entry.min_cases:
        raise fail(f"{key}.max_cases", f"must be at least min_cases ({entry.min_cases})")


def _resolve_rules(entry: LevelFile, raw: PlanFile, hours: tuple[dt.time, dt.time],
                   texts: plantext.Policy, key: str, fail: Fail) -> dict[Channel, Rule]:
    rows = {c: getattr(entry.channels, c.value) for c in Channel}
    rules: dict[Channel, Rule] = {}
    for channel, row in rows.items():
        if row is None:
            continue
        ckey = f"{key}.{channel}"
        cadence_row = row
        if row.follows is not None:
            if row.period_days is not None or row.slots is not None:
                raise fail(ckey, "give either follows or period_days and slots, not both")
            target = rows.get(row.follows)
            if row.follows == channel or target is None:
                raise fail(f"{ckey}.follows", f"no {row.follows} channel in this level to follow")
            if target.follows is not None:
                raise fail(f"{ckey}.follows", f"{row.follows} itself follows another channel")
            cadence_row = target
        cadence = _cadence(cadence_row, raw, hours, ckey, fail)
        if row.sends_range is not None:
            _check_range(row.sends_range, len(cadence.slots), f"{ckey}.sends_range", fail)
        rules[channel] = Rule(channel=channel, row=_resolve_row(channel, row, texts, ckey, fail),
                              cadence=cadence)
    return rules


def _cadence(row: ChannelPlan, raw: PlanFile, hours: tuple[dt.time, dt.time], key: str,
             fail: Fail) -> Cadence:
    if row.period_days is None or row.slots is None:
        raise fail(key, "needs period_days and slots (or follows = \"<channel>\")")
    period = row.period_days
    if not 1 <= period <= 366:
        raise fail(f"{key}.period_days", "must be between 1 and 366")
    if not row.slots:
        raise fail(f"{key}.slots", "needs at least one slot")
    parsed: list[tuple[int, dt.time]] = []
    for i, text in enumerate(row.slots):
        skey = f"{key}.slots[{i}]"
        day, time = _parse_slot(text, period, raw.cycle_anchor, partial(fail, skey))
        if not hours[0] <= time < hours[1]:
            raise fail(skey, f"{text!r} is outside the sending hours "
                             f"{_time_text(hours[0])}-{_time_text(hours[1])}")
        if (day, time) in parsed:
            raise fail(skey, f"{text!r} is listed twice")
        parsed.append((day, time))
    return Cadence(period_days=period, slots=tuple(sorted(parsed)))


def _parse_slot(text: str, period: int, anchor: dt.date, fail: FailAt) -> tuple[int, dt.time]:
    parts = text.split()
    if len(parts) == 1:
        return 0, _parse_time(parts[0], fail)
    if len(parts) != 2:
        raise fail(f"{text!r} is not a slot (\"HH:MM\", \"+D HH:MM\" or \"mon HH:MM\")")
    day_text, time_text = parts
    if day_text.lower() in WEEKDAYS:
        if period != 7:
            raise fail(f"{text!r}: weekday slots need period_days = 7")
        if anchor.weekday() != 0:
            raise fail(f"{text!r}: weekday slots need a cycle_anchor that is a Monday")
        day = WEEKDAYS.index(day_text.lower())
    elif day_text.startswith("+") and day_text[1:].isdigit():
        day = int(day_text[1:])
        if day >= period:
            raise fail(f"{text!r}: day {day} is outside a period of {period} days")
    else:
        raise fail(f"{text!r}: day must be +D or a weekday (mon..sun)")
    return day, _parse_time(time_text, fail)


def _parse_time(text: str, fail: FailAt, *, end: bool = False) -> dt.time:
    """HH:MM; with ``end``, "24:00" too: the end of the day (``dt.time.max``)."""
    hh, sep, mm = text.partition(":")
    if sep and hh.isdigit() and mm.isdigit() and len(mm) == 2 and len(hh) <= 2:
        hour, minute = int(hh), int(mm)
        if hour < 24 and minute < 60:
            return dt.time(hour, minute)
        if end and (hour, minute) == (24, 0):
            return dt.time.max
    until = ", or 24:00 for the end of the day" if end else ""
    raise fail(f"{text!r} is not a time (HH:MM, 24-hour{until})")


def _time_text(time: dt.time) -> str:
    return "24:00" if time == dt.time.max else f"{time:%H:%M}"


def _check_range(bounds: list[int], count: int, key: str, fail: Fail) -> None:
    if len(bounds) != 2 or not 1 <= bounds[0] <= bounds[1]:
        raise fail(key, "expected [min, max] with 1 <= min <= max")
    if not bounds[0] <= count <= bounds[1]:
        raise fail(key, f"the source allows {bounds[0]}-{bounds[1]} sends a period; "
                        f"slots give {count}")


def _resolve_row(channel: Channel, row: ChannelPlan, texts: plantext.Policy, key: str,
                 fail: Fail) -> ChannelPlan:
    """The row with the hotline filled in and, for SMS, the diacritics policy of its level."""
    if not row.template.strip():
        raise fail(f"{key}.template", "is empty")
    if not row.kinds:
        raise fail(f"{key}.kinds", "needs at least one kind of recipient")
    if row.public and all(kind is Kind.OFFICIAL for kind in row.kinds):
        raise fail(f"{key}.public", "a public notice reaches residents or visitors: this row "
                                    "reaches officials only")
    sms = channel is Channel.SMS
    template, subject = texts.resolve(row.template, row.subject, sms=sms, key=key, fail=fail)
    if (row.zns_template or row.zns_params) and channel is not Channel.ZALO:
        raise fail(f"{key}.zns_template", "only a zalo row sends by a ZNS template")
    if row.zns_params and not row.zns_template:
        raise fail(f"{key}.zns_template", "zns_params need the template they fill")
    params = {name: value.replace(plantext.FIELD, texts.hotline)
              for name, value in row.zns_params.items()}
    return msgspec.structs.replace(row, template=template, subject=subject,
                                   strip_diacritics=sms and texts.strip, zns_params=params,
                                   written=row.template, written_subject=row.subject)
