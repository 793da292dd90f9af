"""The suppression lists as the engine and the operators change them.

Numbers join a channel's list three ways: :func:`on_opt_outs` (incoming replies and Zalo
events, a batch at a time), :func:`refused` (dead letters the channel refused for good, added by
the worker once the batch is recorded) and :func:`add` (an operator, with a reason); an operator
removes them with :func:`remove`. Reading is :meth:`SuppressionStore.page` and
:meth:`SuppressionStore.lookup`.
"""

from __future__ import annotations

import logging
import time

from dispatcher.domain.errors import NotFound
from dispatcher.domain.model import Channel
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.optout import OnOptOuts, OptOut
from dispatcher.domain.suppression import (
    DEAD_LETTER,
    OPERATOR,
    Suppression,
    from_opt_out,
    opt_out_number,
)
from dispatcher.store.base import DeadLetter, Store

log = logging.getLogger(__name__)


def refused(letters: list[DeadLetter]) -> list[Suppression]:
    """The entries of dead letters whose address the channel refused for good."""
    now = time.time()
    return [Suppression(d.channel, d.addr, d.reason, now, source=DEAD_LETTER, wave=d.wave)
            for d in letters if d.unreachable]


async def on_opt_outs(store: Store, numbering: Numbering, opt_outs: list[OptOut]) -> int:
    """Put a batch of opt-outs on their channels' lists (one transaction per channel); returns
    how many numbers were not on them yet. A sender that is no number (an alphanumeric sender,
    a short code) is logged and left out: nothing is ever sent to it."""
    entries = []
    for o in opt_outs:
        number = opt_out_number(o, numbering)
        if number is None:
            log.warning("opt-out from %r on %s is not a number: not on the suppression list",
                        o.number, o.channel)
        else:
            entries.append(from_opt_out(o, number))
    if not entries:
        return 0
    return await store.suppressions.add(entries)


def opt_out_handler(store: Store, numbering: Numbering) -> OnOptOuts:
    """The ``on_opt_outs`` of a process's intake of incoming messages: each batch's numbers put
    on their channels' suppression lists, then the opt-outs recorded as they came (both
    idempotent: a batch handed again after a failure changes nothing twice but the record)."""

    async def handle(opt_outs: list[OptOut]) -> None:
        await on_opt_outs(store, numbering, opt_outs)
        await store.incoming.record_opt_outs(opt_outs)

    return handle


async def add(store: Store, channel: Channel, number: str, reason: str, by: str,
              now: float | None = None) -> Suppression:
    """An operator's entry (``number`` and ``reason`` already checked: see
    :func:`dispatcher.domain.suppression.normalise`)."""
    entry = Suppression(channel, number, reason, time.time() if now is None else now,
                        source=OPERATOR, by=by)
    await store.suppressions.add([entry])
    return entry


async def remove(store: Store, channel: Channel, number: str) -> Suppression:
    """Take ``number`` off the channel's list; :class:`NotFound` if it is not on it."""
    gone = await store.suppressions.remove(channel, number)
    if gone is None:
        raise NotFound(f"{number} is not on the {channel} suppression list")
    return gone
