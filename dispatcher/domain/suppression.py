"""The suppression list: per channel, the numbers Loa sends nothing routine to.

A number joins a channel's list by an opt-out (a keyword reply, a Zalo unfollow:
:class:`~dispatcher.domain.optout.OptOut`), by a dead letter the channel refused for good (an
invalid or unknown number, a user who refused the OA: ``DeadLetter.unreachable``, set by the
adapters from their status tables), or by an operator; an operator may remove it. Each entry
keeps its reason, when and by whom.

Every wave skips the suppressed recipients of its channel at fan-out (counted ``suppressed`` on
the wave) but a campaign marked ``public_safety``, which reaches them all.

The "number" is the recipient's address on the channel as the fan-out computes it: the msisdn
(84...) for SMS and app, the msisdn or the Zalo user id for Zalo (both are looked at), the
e-mail address (lower case) for e-mail.
"""

from __future__ import annotations

import re

import msgspec

from dispatcher.domain.errors import InputError, NumberError
from dispatcher.domain.model import Channel
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.optout import OptOut

#: where an entry comes from
OPERATOR, OPT_OUT, DEAD_LETTER = "operator", "opt_out", "dead_letter"
SOURCES = (OPERATOR, OPT_OUT, DEAD_LETTER)
REASON_MAX = 500
_ZALO_UID = re.compile(r"^[0-9]{6,25}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{1,63}$")


class Suppression(msgspec.Struct, frozen=True):
    """One number on one channel's list."""

    channel: Channel
    number: str
    reason: str
    at: float  # epoch seconds
    source: str = OPERATOR  # OPERATOR, OPT_OUT or DEAD_LETTER
    by: str = ""  # the operator (an operator's entry)
    wave: str = ""  # the wave whose dead letter put it there


def from_opt_out(o: OptOut, number: str) -> Suppression:
    """The entry of an opt-out whose sender is ``number`` as the list keeps it."""
    return Suppression(o.channel, number, o.reason, o.at.timestamp(), source=OPT_OUT)


def opt_out_number(o: OptOut, numbering: Numbering) -> str | None:
    """The opt-out's sender as the list keeps it: a number as the fan-out addresses it (a
    carrier may give ``0912...`` or ``+84912...``), a Zalo user id as Zalo gave it; None for a
    sender that is neither (an alphanumeric sender, a short code)."""
    try:
        return normalise(o.channel, o.number, numbering)
    except InputError:
        return None


def normalise(channel: Channel, raw: str, numbering: Numbering, *,
              field: str = "number") -> str:
    """``raw`` as the list keeps it on ``channel``; :class:`InputError` naming ``field``."""
    text = raw.strip()
    if not text:
        raise InputError("give the number", field=field)
    if channel is Channel.EMAIL:
        if not _EMAIL.match(text):
            raise InputError(f"{raw!r} is not an e-mail address", field=field)
        return text.lower()
    try:
        return numbering.normalize(text)[0]
    except NumberError as exc:
        if channel is Channel.ZALO and _ZALO_UID.match(text):
            return text  # a Zalo user id
        raise InputError(f"{raw!r}: {exc.reason}", field=field) from None


def check_reason(reason: str, field: str = "reason") -> str:
    reason = reason.strip()
    if not reason:
        raise InputError("say why (a reason is kept with the entry)", field=field)
    if len(reason) > REASON_MAX or any(c in reason for c in "\r\n"):
        raise InputError(f"one line of at most {REASON_MAX} characters", field=field)
    return reason

