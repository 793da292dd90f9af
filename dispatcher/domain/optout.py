"""A citizen's opt-out, as the intake of incoming messages hands it on (sans I/O).

An :class:`OptOut` says that ``number`` asked, on ``channel``, to receive no more: a reply
whose words are an opt-out keyword (``reason`` is ``keyword:`` and the keyword), or a Zalo
unfollow (``reason`` is ``unfollow``). The intake hands each batch's opt-outs to one callback,
:data:`OnOptOuts`: the process records them and puts the numbers on their channel's suppression
list (:mod:`dispatcher.domain.suppression`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable

import msgspec

from dispatcher.domain.model import Channel


class OptOut(msgspec.Struct, frozen=True):
    """``number`` (the sender's number as the carrier gave it for SMS, the Zalo user id for
    Zalo) asked on ``channel`` at ``at`` (UTC) for no more messages, for ``reason``."""

    channel: Channel
    number: str
    reason: str
    at: dt.datetime


#: Called once per batch of incoming items with the batch's opt-outs (never with none).
OnOptOuts = Callable[[list[OptOut]], Awaitable[None]]
