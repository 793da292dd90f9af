"""The suppression lists as the engine and the operators change them.

Numbers join a channel's list three ways: :func:`on_opt_outs` (incoming replies and Zalo
events, a batch at a time), :func:`refused` (dead letters the channel refused for good, added by
the worker once the batch is recorded) and :func:`add` (an operator, with a reason); an operator
removes them with :func:`remove`. Reading is :meth:`SuppressionStore.page` and
:meth:`SuppressionStore.lookup`.
"""

from __future__ import annotations

import time

from dispatcher.domain.errors import NotFound
from dispatcher.domain.model import Channel
from dispatcher.domain.optout import OptOut
from dispatcher.domain.suppression import DEAD_LETTER, OPERATOR, Suppression, from_opt_out
from dispatcher.store.base import DeadLetter, Store


def refused(letters: list[DeadLetter]) -> list[Suppression]:
    """The entries of dead letters whose address the channel refused for good."""
    now = time.time()
    return [Suppression(d.channel, d.addr, d.reason, now, source=DEAD_LETTER, wave=d.wave)
            for d in letters if d.unreachable]


async def on_opt_outs(store: Store, opt_outs: list[OptOut]) -> int:
    """Put a batch of opt-outs on their channels' lists (one transaction per channel); returns
    how many numbers were not on them yet."""
    if not opt_outs:
        return 0
    return await store.suppressions.add([from_opt_out(o) for o in opt_outs])


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
