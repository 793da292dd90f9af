"""Setting the epidemic level: by confirmed cases (the plan's thresholds) or directly."""

from __future__ import annotations

import datetime as dt

from dispatcher.errors import InputError
from dispatcher.model import LevelState
from dispatcher.plan import Plan
from dispatcher.store.base import Store


async def set_level(store: Store, plan: Plan, *, now: dt.datetime, cases: int | None = None,
                    level: int | None = None, reason: str = "", user: str = "") -> LevelState:
    """Record the level (from ``cases`` or given as ``level``); history keeps every call.

    ``since`` is kept when the level stays the same, so a new case count at the same level does
    not restart that level's plan.
    """
    if (cases is None) == (level is None):
        raise InputError("give either the number of cases or the level")
    if cases is not None:
        new = plan.level_for_cases(cases)
    else:
        assert level is not None
        if level != 0:
            plan.level(level)  # raises for a level the plan does not have
        new = level
    previous = await store.level.get()
    since = previous.since or previous.at if previous and previous.level == new else now
    state = LevelState(level=new, at=now, since=since, cases=cases, reason=reason, set_by=user)
    await store.level.set(state)
    return state
