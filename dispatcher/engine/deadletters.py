"""Dead letters: listed per wave, and replayed onto the same wave.

A replay puts the dead letters of a wave back to be sent on that wave: the same route, channel
and text, on the route's retry schedule (due at once; the urgent lane for an urgent wave), each
on its first attempt again, so a replayed message gets ``max_attempts`` afresh. It keeps every
rule of the wave: the sent bitmap (a recipient whose bit is set is never sent again: dropped at
the replay, counted ``skipped``, and checked again by the worker before it sends), the no-repeat
ledger, the emergency stop and pause (replayed letters wait like any retry). A Zalo wave's letter
whose recipient its SMS fallback reached is left as it is (``covered``): that recipient has the
message, and the letter says Zalo could not deliver it.

Each letter is replayed once: the store takes it in the script that schedules it, so a second
replay finds nothing of the first, and two at once share the letters between them. A letter that
fails again is a new dead letter, which a later replay may take.

The wave's progress stays whole: a replayed letter leaves its counter (``failed`` or
``expired``, so ``dead_letters`` goes down) for ``retrying`` (and ``replayed``), then gets its new
outcome (``sent``, ``failed``, ``expired`` ...) as any retry does.

By the wave's state:

* ``cancelled``: refused (:class:`StateError`, naming the state): a cancelled wave sends nothing
  more, as an operator (or leaving its level) decided; its letters stay listed.
* ``completed``: replayed, and the wave is ``sending`` again until the replayed letters all have
  an outcome, then ``completed`` again (the engine's runner, as for any wave). Its campaign keeps
  its state (``completed``); the wave's progress shows the replay.
* ``created``, ``fanning_out``, ``sending``, ``paused``: replayed; the wave completes only once
  they have an outcome too (a paused wave sends them when it is resumed).
"""

from __future__ import annotations

import time

import msgspec

from dispatcher.domain.errors import NotFound, StateError
from dispatcher.domain.model import Priority, WaveState
from dispatcher.engine.fallback import fallback_wave_id
from dispatcher.store.base import DeadLetterPage, Store

PAGE = 500  # letters taken per store call of a replay
COMPLETED = frozenset({WaveState.COMPLETED})


class Replay(msgspec.Struct, frozen=True):
    """What a replay did: letters put back to be sent, letters dropped because their recipient
    was sent the wave's message meanwhile, and the wave's state after it."""

    wave: str
    requeued: int
    skipped: int
    state: WaveState
    reopened: bool = False  # the wave was completed and is sending again
    # left as they are: their recipient got the wave's SMS fallback (a Zalo wave's)
    covered: int = 0


async def _state(store: Store, wave_id: str) -> WaveState:
    if await store.waves.get(wave_id) is None:
        raise NotFound(f"no wave {wave_id!r}")
    state = (await store.waves.states([wave_id])).get(wave_id)
    if state is None:
        raise NotFound(f"no wave {wave_id!r}")
    return state


async def dead_letters(store: Store, wave_id: str, *, cursor: str = "",
                       limit: int = 100) -> tuple[DeadLetterPage, int]:
    """A page of the wave's dead letters not replayed, and how many there are in all."""
    await _state(store, wave_id)
    page = await store.queue.wave_dead_letters(wave_id, cursor, limit)
    return page, await store.queue.wave_dead_count(wave_id)


async def replay(store: Store, wave_id: str, *, now: float | None = None) -> Replay:
    """Put the dead letters of ``wave_id`` back to be sent on it (module docstring)."""
    state = await _state(store, wave_id)
    if state is WaveState.CANCELLED:
        raise StateError(f"wave {wave_id} is {state}: its dead letters are not replayed (a "
                         "cancelled wave sends nothing more)")
    wave = await store.waves.get(wave_id)
    assert wave is not None  # waves are never deleted
    urgent = wave.priority is Priority.URGENT
    due = time.time() if now is None else now
    # a Zalo recipient its SMS fallback reached has the message: not sent it again on Zalo
    also = fallback_wave_id(wave_id) if wave.fallback_text else ""
    requeued = skipped = covered = 0
    for route in await store.queue.dead_routes(wave_id):
        after = -1
        while True:
            done = await store.queue.requeue_dead(route, wave_id, after=after, limit=PAGE,
                                                  due=due, urgent=urgent, also=also)
            requeued += done.requeued
            skipped += done.skipped
            covered += done.covered
            if done.last < 0:
                break
            after = done.last
    reopened = False
    if requeued:
        # After the letters are scheduled: the runner completes the wave again only once they
        # have an outcome (a completed wave whose letters are on the schedule is still sent).
        reopened = await store.waves.transition(wave_id, COMPLETED, WaveState.SENDING)
    after_state = (await store.waves.states([wave_id])).get(wave_id, state)
    return Replay(wave_id, requeued, skipped, after_state, reopened, covered)
