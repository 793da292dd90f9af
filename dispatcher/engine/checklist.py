"""The checklist on the store: a day's checklist, and marking an item done or undoing it.

The level of a day is the level in force at its end (for today and later days: the level now),
read from the level's history. An item can be marked done for today or a past day (up to
:data:`~dispatcher.domain.checklist.KEEP_DAYS` back) when it is on that day's checklist; never for
a day to come.
"""

from __future__ import annotations

import datetime as dt

from dispatcher.domain import checklist
from dispatcher.domain.checklist import KEEP_DAYS, Checklist, Done
from dispatcher.domain.errors import InputError, NotFound, StateError
from dispatcher.domain.plan import Plan
from dispatcher.store.base import Store

#: Level changes read back to find the level of a past day (the level's history is longer).
HISTORY_READ = 1000


async def level_on(store: Store, plan: Plan, day: dt.date, now: dt.datetime) -> int:
    """The level of ``day``'s checklist: the level now for today and later, else the level in
    force at the end of ``day`` (0 when none was set by then)."""
    if day >= today(plan, now):
        current = await store.level.get()
        return current.level if current is not None else 0
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=plan.tz)
    for state in await store.level.history(HISTORY_READ):  # newest first
        if state.at < end:
            return state.level
    return 0


def today(plan: Plan, now: dt.datetime) -> dt.date:
    return now.astimezone(plan.tz).date()


async def day_checklist(store: Store, plan: Plan, day: dt.date, now: dt.datetime) -> Checklist:
    level = await level_on(store, plan, day, now)
    return checklist.build(plan, level, day, await store.checklist.marks(day))


def _check_day(plan: Plan, day: dt.date, now: dt.datetime) -> None:
    current = today(plan, now)
    if day > current:
        raise InputError(f"{day.isoformat()} is a day to come: an item is marked done on the day "
                         "or after it", field="date")
    if day < current - dt.timedelta(days=KEEP_DAYS):
        raise InputError(f"{day.isoformat()} is more than {KEEP_DAYS} days ago: its checklist is "
                         "no longer kept", field="date")


async def mark_done(store: Store, plan: Plan, item: str, *, day: dt.date, by: str, unit: str,
                    note: str, now: dt.datetime) -> Done:
    """Mark ``item`` done on ``day`` for ``unit`` (its lead when empty), with ``note``. Refused
    when the item is not on the day's checklist (the level changed), or is marked already."""
    level, activity = checklist.find(plan, item)
    done = Done(item=item, date=day, at=now, by=by, unit=checklist.unit(activity, item, unit),
                note=checklist.note(note))
    _check_day(plan, day, now)
    in_force = await level_on(store, plan, day, now)
    if in_force != level.level:
        why = f"level {in_force} is in force" if in_force else "no level is in force"
        raise StateError(f"{item} is not on the checklist of {day.isoformat()}: {why}")
    there = await store.checklist.mark(done)
    if there is not None:
        raise StateError(f"{item} is already marked done on {day.isoformat()} by {there.by} "
                         f"({there.unit}) at {there.at.astimezone(plan.tz):%H:%M}: undo it first")
    return done


async def undo(store: Store, plan: Plan, item: str, *, day: dt.date, now: dt.datetime) -> Done:
    """Remove ``item``'s mark of ``day`` (of whichever level); :class:`NotFound` if none."""
    checklist.find(plan, item)
    _check_day(plan, day, now)
    removed = await store.checklist.unmark(day, item)
    if removed is None:
        raise NotFound(f"{item} is not marked done on {day.isoformat()}")
    return removed
