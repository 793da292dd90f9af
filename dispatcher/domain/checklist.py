"""The checklist of a day: the plan's work for people at the level in force, and what is done.

Each activity of the level (:mod:`dispatcher.domain.activity`) that no channel of the level
sends is an item of the checklist, with the id ``L<level>-<activity id>`` (``L2-press-release``).
On a day (in the plan's time zone) an item is *due* when its cadence says so; "as needed" items
are listed every day and never due. A unit marks an item done for a day with a note (a
:class:`Done`: who, which unit, when, the note), once: marking it again needs the mark undone
first. Marks are kept by date for :data:`KEEP_DAYS` days. Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
import re

import msgspec

from dispatcher.domain import textcheck
from dispatcher.domain.activity import Activity, cadence_of
from dispatcher.domain.errors import InputError, NotFound
from dispatcher.domain.model import Channel
from dispatcher.domain.plan import Level, Plan

#: Marks are kept this many days after their date (a year's report, and some).
KEEP_DAYS = 400
NOTE_MAX = 1000
UNIT_MAX = 200
_ITEM = re.compile(r"^L(?P<level>[1-9]\d{0,2})-(?P<activity>[a-z0-9][a-z0-9-]{0,39})$")


class Done(msgspec.Struct, frozen=True):
    """An item marked done for a day: by whom (the user), for which unit, when, and the note."""

    item: str  # "L2-press-release"
    date: dt.date  # the day (local) it was done for
    at: dt.datetime  # when it was marked
    by: str
    unit: str
    note: str


class Item(msgspec.Struct, frozen=True):
    """An activity of the plan on a day's checklist."""

    id: str  # "L2-press-release"
    level: int
    activity: str  # the activity's id in the plan: "press-release"
    field: str
    what: str
    quantity: str  # the source's words: "01-03 bản/ngày"
    cadence: str  # "daily", "2/week (mon, thu)", "every 2 days", "as needed"
    lead: str
    coordinating: list[str]
    due: bool  # due on the day by its cadence
    next_due: dt.date | None  # the first day from the day on that it is due (None: as needed)
    carried: bool = False  # carried on from the level below (not in the source's table)
    channel: Channel | None = None  # the channel that sends it once the level has its row
    in_force: bool = True  # of the day's level (False: of another level, marked that day)
    done: Done | None = None


class Checklist(msgspec.Struct, frozen=True):
    """A day's checklist: the items of the level in force that day (the level at the end of a
    past day, the level now for today and later days), and the marks of that day."""

    date: dt.date
    level: int
    level_name: str
    timezone: str
    items: list[Item]
    due: int  # items due on the day
    done: int  # of those, marked done

    def unit_items(self, unit: str) -> list[Item]:
        """The items due on the day, not yet done, that ``unit`` leads."""
        return [i for i in self.items if i.in_force and i.due and i.done is None
                and i.lead == unit]


def item_id(level: int, activity: str) -> str:
    return f"L{level}-{activity}"


def on_checklist(level: Level) -> list[Activity]:
    """The level's activities that people do: those that no channel row of the level sends."""
    return [a for a in level.activities if a.channel is None or a.channel not in level.rules]


def build(plan: Plan, level: int, day: dt.date, marks: list[Done]) -> Checklist:
    """The checklist of ``day`` at ``level`` (0: nothing to do) with the day's ``marks``; a
    mark of an item of another level (the level changed that day) is listed after them."""
    marked = {m.item: m for m in marks}
    items: list[Item] = []
    name = ""
    if level in plan.levels:
        entry = plan.levels[level]
        name = entry.name
        items = [_item(plan, entry, a, day, marked.pop(item_id(level, a.id), None), True)
                 for a in on_checklist(entry)]
    for mark in sorted(marked.values(), key=lambda m: m.at):
        found = _find(plan, mark.item)
        if found is not None:
            items.append(_item(plan, found[0], found[1], day, mark, False))
    due = [i for i in items if i.in_force and i.due]
    return Checklist(date=day, level=level, level_name=name, timezone=plan.tz.key, items=items,
                     due=len(due), done=sum(1 for i in due if i.done is not None))


def _item(plan: Plan, level: Level, activity: Activity, day: dt.date, done: Done | None,
          in_force: bool) -> Item:
    cadence = cadence_of(activity)
    return Item(id=item_id(level.level, activity.id), level=level.level, activity=activity.id,
                field=activity.field, what=activity.what, quantity=activity.quantity,
                cadence=cadence.text(), lead=activity.lead,
                coordinating=list(activity.coordinating),
                due=in_force and cadence.due_on(day, plan.anchor),
                next_due=cadence.next_due(day, plan.anchor),
                carried=activity.id in level.carried, channel=activity.channel,
                in_force=in_force, done=done)


def _find(plan: Plan, item: str) -> tuple[Level, Activity] | None:
    found = _ITEM.match(item)
    if found is None:
        return None
    level = plan.levels.get(int(found.group("level")))
    if level is None:
        return None
    name = found.group("activity")
    activity = next((a for a in on_checklist(level) if a.id == name), None)
    return (level, activity) if activity is not None else None


def find(plan: Plan, item: str) -> tuple[Level, Activity]:
    """The level and activity of a checklist item's id; :class:`NotFound` when there is none
    (or a channel of its level sends it)."""
    if _ITEM.match(item) is None:
        raise InputError(f"{item!r} is not an item id: L<level>-<activity>, e.g. "
                         "L2-press-release", field="item")
    found = _find(plan, item)
    if found is None:
        raise NotFound(f"no checklist item {item} in the plan")
    return found


def note(text: str) -> str:
    """The note of a mark: required, at most :data:`NOTE_MAX` characters, no control or
    invisible character (line breaks are kept)."""
    text = text.strip()
    if not text:
        raise InputError("required: what was done (\"Thông cáo số 12 gửi 14 cơ quan báo chí\")",
                         field="note")
    if len(text) > NOTE_MAX:
        raise InputError(f"at most {NOTE_MAX} characters, not {len(text)}", field="note")
    textcheck.check(text, "note")
    return text


def unit(activity: Activity, item: str, given: str) -> str:
    """The unit a mark is for: ``given`` (the lead or a coordinating unit of the activity), or
    the lead when none is given."""
    given = " ".join(given.split())
    if not given:
        return activity.lead
    textcheck.check(given, "unit", lines=False)
    units = [activity.lead, *activity.coordinating]
    if given not in units:
        raise InputError(f"{given!r} is neither the lead nor a coordinating unit of {item} "
                         f"({'; '.join(units)})", field="unit")
    return given
