"""The plan's work for people: a row of the source that units do by hand, and when it is due.

An :class:`Activity` is a row of section V that Loa does not send (press releases, press
conferences, the grassroots radio, village reporters, the hotline, press monitoring ...). Its
``cadence`` says on which days it is due, so that the checklist of a day
(:mod:`dispatcher.domain.checklist`) lists what each unit has to do that day:

``"daily"``
    every day ("01 bản/ngày", "02 lần/ngày", "Hằng ngày", "Thường xuyên trong ngày").
``"N/week"`` (1 to 6)
    on N days of each week (Monday to Sunday): the days given in ``days`` (``["mon", "thu"]``),
    else N days spread over the week from Monday, the k-th (k = 0 ... N-1) on weekday
    ``floor(k * 7 / N)``: 1/week Monday; 2/week Monday, Thursday; 3/week Monday, Wednesday,
    Friday; 4/week Monday, Tuesday, Thursday, Saturday; 5/week Monday, Tuesday, Wednesday,
    Friday, Saturday; 6/week Monday to Saturday.
``"every N days"`` (2 to 366)
    on the days whose distance from the plan's ``cycle_anchor`` is a multiple of N, as the
    channels' periods are counted ("02 ngày/lần").
``"as needed"``
    never due by the calendar; done when the situation calls for it ("Khi được phép", "Căn cứ
    tình hình thực tế"). It is on every day's checklist, so that a unit can record it.

An activity with ``channel`` is a row that a channel of Loa sends once the level has that
channel's row (``[levels.channels.facebook]``); until then it is people's work on the checklist.
Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

import msgspec

from dispatcher.domain.errors import ConfigError
from dispatcher.domain.model import Channel

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: What an activity id may hold: it is a part of a checklist item's id, in URLs and log lines.
ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
CADENCES = '"daily", "N/week" (1-6), "every N days" (2-366) or "as needed"'
MAX_EVERY = 366
_WEEKLY = re.compile(r"^(?P<n>[1-9]\d*)\s*/\s*week$")
_EVERY = re.compile(r"^every\s+(?P<n>[1-9]\d*)\s+days$")

Fail = Callable[[str, str], ConfigError]  # (key, message) -> error naming the key


class Activity(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A row of the plan done by people: what, how much, who leads, and when it is due."""

    field: str  # the source's column "Lĩnh vực/loại hình truyền thông": "Báo chí"
    what: str
    quantity: str  # the source's own words: "01-03 bản/ngày", "02 lần/tuần/thôn, tổ dân phố"
    lead: str
    coordinating: list[str] = []
    id: str = ""  # unique in its level: "press-release" (the checklist's item L2-press-release)
    cadence: str = ""  # when it is due (the module's documentation); required
    days: list[str] = []  # with cadence "N/week": which weekdays ("mon" ... "sun"), N of them
    channel: Channel | None = None  # the channel that sends it once the level has its row


class Cadence(msgspec.Struct, frozen=True):
    """When an activity is due: ``weekdays`` (0 = Monday) for "N/week", ``every`` days from
    the anchor for "every N days", every day for "daily", never for "as needed"."""

    kind: str  # "daily", "weekly", "every" or "as needed"
    weekdays: tuple[int, ...] = ()
    every: int = 1

    def due_on(self, day: dt.date, anchor: dt.date) -> bool:
        if self.kind == "daily":
            return True
        if self.kind == "weekly":
            return day.weekday() in self.weekdays
        if self.kind == "every":
            return (day - anchor).days % self.every == 0
        return False

    def next_due(self, day: dt.date, anchor: dt.date) -> dt.date | None:
        """The first day from ``day`` on (``day`` itself included) that it is due; None for
        "as needed"."""
        if self.kind == "as needed":
            return None
        horizon = 7 if self.kind == "weekly" else self.every
        return next((day + dt.timedelta(days=n) for n in range(horizon)
                     if self.due_on(day + dt.timedelta(days=n), anchor)), None)

    def text(self) -> str:
        """As the plan file writes it, with the weekdays of "N/week": "2/week (mon, thu)"."""
        if self.kind == "weekly":
            days = ", ".join(WEEKDAYS[d] for d in self.weekdays)
            return f"{len(self.weekdays)}/week ({days})"
        if self.kind == "every":
            return f"every {self.every} days"
        return self.kind


def spread(n: int) -> tuple[int, ...]:
    """The weekdays of "n/week" without ``days``: the k-th on ``floor(k * 7 / n)``."""
    return tuple(k * 7 // n for k in range(n))


def cadence_of(activity: Activity) -> Cadence:
    """The activity's cadence (the plan was checked when it was loaded)."""
    return parse(activity.cadence, activity.days, _unchecked)


def parse(text: str, days: list[str], fail: Callable[[str, str], Exception]) -> Cadence:
    """``cadence`` and ``days`` as written; ``fail(key, message)`` makes the error of a wrong
    one (key ``cadence`` or ``days``)."""
    words = " ".join(text.lower().split())
    weekly = _WEEKLY.match(words)
    if days and not weekly:
        raise fail("days", 'goes with cadence = "N/week" only')
    if words in ("daily", "as needed"):
        return Cadence(kind=words)
    if weekly:
        n = int(weekly.group("n"))
        if n > 6:
            raise fail("cadence", f"{text!r}: at most 6/week; write \"daily\" for every day")
        return Cadence(kind="weekly", weekdays=_weekdays(days, n, fail) if days else spread(n))
    every = _EVERY.match(words)
    if every:
        n = int(every.group("n"))
        if not 2 <= n <= MAX_EVERY:
            raise fail("cadence", f"{text!r}: N must be 2 to {MAX_EVERY} (\"daily\" for 1)")
        return Cadence(kind="every", every=n)
    if not words:
        raise fail("cadence", f"required: {CADENCES}")
    raise fail("cadence", f"{text!r} is not a cadence: {CADENCES}")


def _weekdays(days: list[str], n: int, fail: Callable[[str, str], Exception]) -> tuple[int, ...]:
    found: list[int] = []
    for day in days:
        if day.lower() not in WEEKDAYS:
            raise fail("days", f"{day!r} is not a weekday (mon, tue, wed, thu, fri, sat, sun)")
        if WEEKDAYS.index(day.lower()) in found:
            raise fail("days", f"{day!r} is listed twice")
        found.append(WEEKDAYS.index(day.lower()))
    if len(found) != n:
        raise fail("days", f"{n}/week needs {n} weekday{'s' if n > 1 else ''}, not {len(found)}")
    return tuple(sorted(found))


def _unchecked(key: str, message: str) -> Exception:
    return ValueError(f"{key}: {message}")


def check(activities: list[Activity], key: str, fail: Fail) -> None:
    """Refuse, naming the key, an activity without an id or a cadence, an id twice in a level,
    a wrong cadence or days, an empty ``what`` or ``lead``."""
    seen: set[str] = set()
    for index, activity in enumerate(activities):
        akey = f"{key}[{index}]"
        if not ID.match(activity.id):
            raise fail(f"{akey}.id", f"{activity.id!r} is not an id: lowercase letters, digits "
                                     "and dashes, at most 40 (\"press-release\")"
                       if activity.id else "required: a short id unique in the level "
                                           "(\"press-release\")")
        if activity.id in seen:
            raise fail(f"{akey}.id", f"{activity.id!r} is the id of another activity of the level")
        seen.add(activity.id)
        for name in ("what", "lead", "quantity"):
            if not getattr(activity, name).strip():
                raise fail(f"{akey}.{name}", "is empty")
        parse(activity.cadence, activity.days, _under(akey, fail))


def _under(key: str, fail: Fail) -> Fail:
    """``fail`` for the keys under ``key``."""

    def under(name: str, message: str) -> ConfigError:
        return fail(f"{key}.{name}", message)

    return under


def carry(own: list[Activity], below: list[Activity], ids: list[str], key: str,
          fail: Fail) -> list[Activity]:
    """The activities of the level below named by ``ids`` (``carry``), in that order; an id
    that the level below lacks, that is listed twice, or that is one of the level's own, is
    refused naming it."""
    found = {a.id: a for a in below}
    mine = {a.id for a in own}
    carried: list[Activity] = []
    for index, name in enumerate(ids):
        ikey = f"{key}[{index}]"
        if name in mine:
            raise fail(ikey, f"{name!r} is an activity of this level: carry only what the "
                             "level below does")
        if name not in found:
            known = ", ".join(sorted(found)) or "none"
            raise fail(ikey, f"{name!r} is not an activity of the level below (it has: {known})")
        if any(a.id == name for a in carried):
            raise fail(ikey, f"{name!r} is listed twice")
        carried.append(found[name])
    return carried
