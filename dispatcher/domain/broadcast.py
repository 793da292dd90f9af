"""Cell broadcasts: what Loa knows of each alert a carrier's broadcast centre took, as pure types.

A wave of the cell broadcast channel is one CAP alert handed to each carrier's cell broadcast
centre (CBC), which broadcasts it, repeated, to every phone in the area's cells until it expires.
The alert's identifier is made from the wave (:func:`identifier`): every carrier gets the same
alert, every try of it the same identifier, so a CBC that already has it answers "duplicate"
instead of broadcasting it twice, and its Cancel (:func:`cancel_identifier`) is one identifier
too, whichever process sends it and however often.

A :class:`Broadcast` is the record of one (wave, carrier) the CBC accepted: its state as the CBC
last said it, and whether Loa cancelled it. A wave's broadcasts go on after the wave completes
(a wave completes when every carrier took its alert): an operator withdraws them with a
:class:`Request`. Pure: no I/O.
"""

from __future__ import annotations

import enum

import msgspec

#: The part of an alert's identifier that names the channel: ``<prefix>.cb.<wave>``.
PART = "cb"


class State(enum.StrEnum):
    """Where a broadcast stands, in Loa's words (each CBC's own words map to these by the table
    of :mod:`adapters.cellbroadcast.codes`)."""

    ACCEPTED = "accepted"  # the CBC took the alert; not yet on the air
    BROADCASTING = "broadcasting"  # on the air, repeated in the area's cells
    COMPLETED = "completed"  # over: its broadcasts are done
    EXPIRED = "expired"  # over: its expiry passed
    CANCELLED = "cancelled"  # withdrawn by a CAP Cancel
    FAILED = "failed"  # the CBC could not broadcast it
    ABSENT = "absent"  # the CBC does not know it (a Cancel found nothing to withdraw)
    UNKNOWN = "unknown"  # the CBC's answer did not say


#: States after which a broadcast reaches no one any more: no Cancel, no status read.
FINAL = frozenset({State.COMPLETED, State.EXPIRED, State.CANCELLED, State.FAILED, State.ABSENT})


class Reason(enum.StrEnum):
    """Why Loa withdrew a broadcast."""

    CANCELLED = "wave_cancelled"  # its wave (its campaign) was cancelled
    STOP = "emergency_stop"  # the emergency stop was raised while it was live
    WITHDRAWN = "withdrawn"  # an operator withdrew the wave's broadcasts (after it completed)


class Request(msgspec.Struct, frozen=True, kw_only=True):
    """An operator's request to withdraw a wave's live broadcasts: when, who, why."""

    at: float
    by: str
    reason: str


class Withdrawal(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A broadcast's Cancel, as the CBC took it: when, why, and what the CBC said (its state
    after: cancelled, or absent when it had nothing to withdraw)."""

    at: float
    reason: Reason
    state: State = State.CANCELLED
    detail: str = ""


class Broadcast(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One carrier's broadcast of one wave (see the module's documentation). Times are epoch
    seconds."""

    wave: str
    carrier: str  # the carrier's id in [cell_broadcast] carriers (the wave's target)
    identifier: str  # the CAP alert's
    seen_at: float  # when Loa recorded that the CBC accepted it
    live_until: float = 0.0  # when it ends by itself (the alert's expiry); 0: not known
    state: State = State.ACCEPTED
    state_at: float = 0.0  # when the CBC last said its state
    reference: str = ""  # the CBC's own reference of it, when it gave one
    detail: str = ""  # the CBC's words with its last answer
    reads: int = 0  # status reads made
    next_read: float = 0.0  # when its state is read next (0: no more reads)
    # a carrier Loa had no acceptance from, cancelled all the same because its wave was
    # cancelled while the carrier's outcome was not known
    unconfirmed: bool = False
    withdrawal: Withdrawal | None = None  # its Cancel, once a CBC took it

    @property
    def cancelled_at(self) -> float:
        return self.withdrawal.at if self.withdrawal is not None else 0.0

    @property
    def key(self) -> str:
        return key(self.wave, self.carrier)

    def over(self, now: float) -> bool:
        """Whether it reaches no one any more: withdrawn, in a final state, or expired."""
        return bool(self.cancelled_at) or self.state in FINAL or (
            bool(self.live_until) and now >= self.live_until)


def key(wave: str, carrier: str) -> str:
    """A broadcast's key in the store: ``<wave> <carrier>`` (neither holds a space)."""
    return f"{wave} {carrier}"


def identifier(prefix: str, wave: str) -> str:
    """The CAP identifier of a wave's alert: ``<prefix>.cb.<wave id>``."""
    return f"{prefix}.{PART}.{wave}"


def cancel_identifier(original: str) -> str:
    """The CAP identifier of the Cancel of ``original``."""
    return f"{original}.cancel"
