"""An opt-out: a citizen who asked for no more messages on a channel (a keyword reply such as
"TU CHOI", a Zalo unfollow). Incoming messages make them; the suppression list takes them
(:mod:`dispatcher.domain.suppression`)."""

from __future__ import annotations

import msgspec

from dispatcher.domain.model import Channel


class OptOut(msgspec.Struct, frozen=True):
    channel: Channel
    number: str  # the normalised msisdn, or the Zalo user id
    reason: str  # e.g. 'keyword "TU CHOI"', "zalo unfollow"
    at: float  # epoch seconds
