"""The emergency stop: one switch that halts every send of every worker until it is lifted.

While the stop is on, every worker (each watches it and is told of a set or lift within a round
trip to the store; it also reads it with the wave states every ``state_refresh_seconds``) takes
no batch, starts no fan-out or campaign, moves no retry, and
halts the batches in its hands before their next message: what the channels have not taken is
put back, not sent and not lost. The messages that still leave are those already on the wire
(an SMPP window per bind, the HTTP requests in flight). The stop survives restarts (it is kept
in the store) and stays until an operator lifts it; campaigns then go on where they were, so a
false alarm is also cancelled (its campaign, or by setting another level) before the lift.
"""

from __future__ import annotations

import datetime as dt
import re

from dispatcher.domain.errors import InputError
from dispatcher.domain.model import StopState
from dispatcher.store.base import Store

REASON_MAX = 1000


def _reason(reason: str, *, required: bool) -> str:
    reason = reason.strip()
    if required and not re.search(r"[^\s\x1c-\x1f\x85]", reason):  # as the API's schema
        raise InputError("say why everything is stopped (it is kept in the history)",
                         field="reason")
    if len(reason) > REASON_MAX:
        raise InputError(f"at most {REASON_MAX} characters", field="reason")
    return reason


async def stop_all(store: Store, *, now: dt.datetime, user: str, reason: str) -> StopState:
    """Turn the emergency stop on (again: a second stop is recorded with its own reason)."""
    state = StopState(active=True, at=now, by=user, reason=_reason(reason, required=True))
    await store.stop.set(state)
    return state


async def lift(store: Store, *, now: dt.datetime, user: str, reason: str = "") -> StopState:
    """Turn the emergency stop off: sending goes on where it was."""
    state = StopState(active=False, at=now, by=user, reason=_reason(reason, required=False))
    await store.stop.set(state)
    return state


async def is_stopped(store: Store) -> bool:
    current = await store.stop.get()
    return current is not None and current.active
