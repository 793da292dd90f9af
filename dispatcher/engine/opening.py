"""A level's opening message: when a level comes into force, each of its channels says so at once.

The level's regular slots may be days away (level 1's SMS is weekly), so on the first reconcile
tick after the level changes (up or down) every channel of the new level gets an *opening wave*:
its plan text, to its audience, inside the sending hours, or at once and in the urgent lane
where the plan marks the level ``urgent``. The regular cadence then continues from the slots.

Each time a level comes into force (its ``since``) is decided once per channel, and the decision
is kept in the store by compare-and-set, so two reconcilers, or one restarted in the middle,
agree on it and create the one wave (its id is made from ``since``). Three outcomes:

- **sent**: the opening wave ``L<n>-<channel>-opening-<since>`` is created;
- **damped**: the same level opened on this channel less than ``opening_damping_hours`` before
  this ``since`` (the level flapping 3→4→3→4 within minutes says "level 4" once); measured
  between the times the level came into force, never from the clock, so a late tick cannot
  change the outcome;
- **missed**: the level came into force longer ago than the plan's catch-up window (Loa was
  down, or first saw a level set long before): it is recorded, never sent late.
"""

from __future__ import annotations

import datetime as dt
import logging

import msgspec

from dispatcher.domain.model import Channel, LevelState, Opening, OpeningOutcome, WaveState
from dispatcher.domain.plan import Plan, Slot
from dispatcher.store.base import OpeningStore, Store

log = logging.getLogger(__name__)


def opening_wave_id(level: int, channel: Channel, since: dt.datetime, plan: Plan) -> str:
    """Stable across restarts and processes: made from the time the level came into force."""
    return f"L{level}-{channel}-opening-{since.astimezone(plan.tz):%Y%m%dT%H%M%S}"


def opening_slot(opening: Opening) -> Slot:
    """The opening as a slot of its channel, at the time its level came into force."""
    return Slot(at=opening.since, level=opening.level, channel=opening.channel, id=opening.wave)


async def decide(store: OpeningStore, plan: Plan, level: LevelState, channel: Channel,
                 now: dt.datetime) -> Opening:
    """The opening of ``channel`` for the level in force: decided now, or as decided before."""
    since = level.since or level.at
    while True:
        current = await store.get(level.level, channel)
        if current is not None and current.since >= since:
            return current  # decided before, by this reconciler or another
        opening = _decision(plan, level.level, channel, since, now, current)
        if await store.replace(opening, current.revision if current else 0):
            log.info("level %d on %s: opening %s%s", level.level, channel, opening.outcome,
                     f" ({opening.wave})" if opening.wave else "",
                     extra={"channel": channel, "wave": opening.wave or None})
            return opening


def _decision(plan: Plan, level: int, channel: Channel, since: dt.datetime, now: dt.datetime,
              current: Opening | None) -> Opening:
    last_sent = current.last_sent if current else None
    last_wave = current.last_wave if current else ""
    urgent = plan.level(level).urgent
    if now - since > plan.catch_up:
        outcome = OpeningOutcome.MISSED
    elif last_sent is not None and since - last_sent < plan.opening_damping:
        outcome = OpeningOutcome.DAMPED
    else:
        outcome = OpeningOutcome.SENT
    wave = opening_wave_id(level, channel, since, plan) if outcome is OpeningOutcome.SENT else ""
    opening = Opening(level=level, channel=channel, since=since, outcome=outcome,
                      decided_at=now, wave=wave, urgent=urgent, last_sent=last_sent,
                      last_wave=last_wave, revision=current.revision + 1 if current else 1)
    if wave:
        opening = msgspec.structs.replace(opening, last_sent=since, last_wave=wave)
    return opening


class OpeningStatus(msgspec.Struct, frozen=True):
    """An opening as operators see it: the decision, and its wave's state and count so far."""

    level: int
    channel: Channel
    outcome: OpeningOutcome
    since: dt.datetime
    decided_at: dt.datetime
    urgent: bool = False
    wave: str = ""
    state: WaveState | None = None  # of the wave; None: there is no wave (damped, missed)
    sent: int = 0
    total: int = 0
    last_sent: dt.datetime | None = None  # when this level last opened on this channel


async def statuses(store: Store, level: LevelState | None) -> list[OpeningStatus]:
    """The openings of the level in force, one per channel decided so far."""
    if level is None or level.level == 0:
        return []
    since = level.since or level.at
    found = []
    order = list(Channel)
    for record in sorted(await store.openings.all(), key=lambda o: order.index(o.channel)):
        if record.level != level.level or record.since != since:
            continue
        state, sent, total = None, 0, 0
        wave = await store.waves.get(record.wave) if record.wave else None
        if wave is not None:
            state = (await store.waves.states([wave.id])).get(wave.id)
            sent, total = (await store.waves.progress(wave.id)).get("sent", 0), wave.total
        found.append(OpeningStatus(
            level=record.level, channel=record.channel, outcome=record.outcome,
            since=record.since, decided_at=record.decided_at, urgent=record.urgent,
            wave=record.wave, state=state, sent=sent, total=total, last_sent=record.last_sent))
    return found
