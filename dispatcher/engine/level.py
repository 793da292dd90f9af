"""Setting the epidemic level: by confirmed cases (the plan's thresholds) or directly.

A change that raises the level starts the new level's plan waves, so it takes two people: one
proposes it (:func:`propose_level`, with a reason) and it waits, the level in force unchanged,
until a second user with the approver role confirms it (:func:`confirm_level`, with a reason of
their own) before it expires. Lowering the level (and the emergency stop) stays one person's
action; so does every change where the deployment allows single-person changes.
"""

from __future__ import annotations

import datetime as dt
import secrets

from dispatcher.domain.errors import InputError, PermissionDenied, StateError
from dispatcher.domain.model import LevelState, PendingLevel
from dispatcher.domain.plan import Plan
from dispatcher.store.base import Store

REASON_MAX = 1000


def target_level(plan: Plan, *, cases: int | None, level: int | None) -> int:
    """The level ``cases`` confirmed cases mean, or ``level`` checked against the plan."""
    if (cases is None) == (level is None):
        raise InputError("give either the number of cases or the level")
    if cases is not None:
        return plan.level_for_cases(cases)
    assert level is not None
    if level != 0:
        plan.level(level)  # raises for a level the plan does not have
    return level


async def set_level(store: Store, plan: Plan, *, now: dt.datetime, cases: int | None = None,
                    level: int | None = None, reason: str = "", user: str = "",
                    confirmed_by: str = "", confirm_reason: str = "") -> LevelState:
    """Record the level (from ``cases`` or given as ``level``); history keeps every call.

    ``since`` is kept when the level stays the same, so a new case count at the same level does
    not restart that level's plan.
    """
    new = target_level(plan, cases=cases, level=level)
    previous = await store.level.get()
    since = previous.since or previous.at if previous and previous.level == new else now
    state = LevelState(level=new, at=now, since=since, cases=cases, reason=reason, set_by=user,
                       confirmed_by=confirmed_by, confirm_reason=confirm_reason)
    await store.level.set(state)
    return state


def _reason(reason: str, field: str = "reason") -> str:
    if not reason.strip():
        raise InputError("say why the level changes (it is kept with the level and in the audit "
                         "log)", field=field)
    if len(reason) > REASON_MAX:
        raise InputError(f"at most {REASON_MAX} characters", field=field)
    return reason.strip()


async def propose_level(store: Store, plan: Plan, *, now: dt.datetime, user: str, reason: str,
                        cases: int | None = None, level: int | None = None,
                        confirm_seconds: float, single_person: bool = False,
                        ) -> LevelState | PendingLevel:
    """Set the level at once when it does not rise (or ``single_person``): the new state; else
    the change waiting for its confirmation (:func:`confirm_level`) within ``confirm_seconds``,
    the level in force unchanged."""
    reason = _reason(reason)
    new = target_level(plan, cases=cases, level=level)
    previous = await store.level.get()
    current = previous.level if previous is not None else 0
    if single_person or new <= current:
        return await set_level(store, plan, now=now, cases=cases, level=level, reason=reason,
                               user=user)
    pending = PendingLevel(id=f"lvl-{now:%Y%m%d%H%M%S}-{secrets.token_hex(3)}", level=new,
                           current=current, at=now,
                           expires_at=now + dt.timedelta(seconds=confirm_seconds),
                           proposed_by=user, reason=reason, cases=cases)
    await store.level.propose(pending, confirm_seconds)
    return pending


async def pending_level(store: Store, now: dt.datetime) -> PendingLevel | None:
    """The level change waiting for its confirmation, unless it has expired."""
    pending = await store.level.pending()
    return pending if pending is not None and pending.expires_at > now else None


async def confirm_level(store: Store, plan: Plan, *, now: dt.datetime, user: str, reason: str,
                        pending_id: str = "") -> LevelState:
    """Make the waiting change (``pending_id`` when given) take effect, confirmed by ``user``,
    who is not its proposer; the new state."""
    reason = _reason(reason)
    pending = await store.level.pending()
    if pending is None:
        raise StateError("no level change waits for a confirmation")
    if pending_id and pending.id != pending_id:
        raise StateError(f"the level change waiting is {pending.id}, not {pending_id}")
    if pending.expires_at <= now:
        await store.level.take_pending(pending)
        raise StateError(f"the level change {pending.id} expired at {pending.expires_at:%H:%M:%S}"
                         " without a confirmation: propose it again")
    if user == pending.proposed_by:
        raise PermissionDenied("a level change must be confirmed by another user than the one "
                               "who proposed it")
    if not await store.level.take_pending(pending):
        raise StateError(f"the level change {pending.id} was confirmed or replaced meanwhile")
    return await set_level(store, plan, now=now, cases=pending.cases,
                           level=None if pending.cases is not None else pending.level,
                           reason=pending.reason, user=pending.proposed_by, confirmed_by=user,
                           confirm_reason=reason)
