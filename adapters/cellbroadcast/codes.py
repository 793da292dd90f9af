"""What a cell broadcast centre's answers mean, each with what Loa does about it.

A CBC that takes CAP over HTTP(S) answers with HTTP status codes; there is no registry of
application codes as Zalo's or Facebook's, so the table is by status (docs/channels.md, "Cell
broadcast", says where this is generic and what to check with each carrier). The outcomes of a
submitted alert:

* ``accepted`` (200, 201, 202): the CBC took it: sent (its reference, when the answer gives
  one, is the remote id);
* ``duplicate`` (409): the CBC has an alert with this identifier already: this wave's, taken
  by an earlier try whose answer was lost: sent, never broadcast twice;
* ``rejected`` (400, 413, 415, 422): the CBC refuses the CAP document itself: failed with its
  reason, and an ALERT (the alert or the carrier's options are wrong: no retry can cure it);
* ``credentials`` (401, 403): the credentials expired or are refused: the carrier stops (its
  alerts stay queued, nothing is lost), an ALERT, ``loa_cell_broadcast_carrier_stopped`` is 1,
  and one alert is tried every ``alert_probe_seconds`` until the CBC accepts again;
* ``endpoint`` (404, 405): the URL is not the CBC's: the carrier stops as for credentials;
* ``throttle`` (429): the carrier backs off for its ``Retry-After`` (or ``throttle_pause``,
  doubling), the alert requeued without using an attempt;
* ``retry`` (408, 500, 502, 503, 504; no answer in time; a broken connection): tried again.

Anything else is retried; ``unknown_code_limit`` in a row stop the carrier with an alert.

A Cancel's answer is read the same way, except 404 (and 410): the CBC does not know the alert
(nothing to withdraw: it never had it, or it is over), recorded as ``absent``.

The state a CBC says a broadcast is in (its status answer's ``state``, or ``status``) maps to
Loa's words (:class:`dispatcher.domain.broadcast.State`) by :data:`STATES`; a word not in the
table is ``unknown``.
"""

from __future__ import annotations

import enum

from dispatcher.domain.broadcast import State


class Outcome(enum.Enum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"
    CREDENTIALS = "credentials"
    ENDPOINT = "endpoint"
    THROTTLE = "throttle"
    RETRY = "retry"
    ABSENT = "absent"  # a Cancel's or a status read's 404: the CBC does not know the alert


#: HTTP status -> (what it means, what Loa does).
CODES: dict[int, tuple[str, Outcome]] = {
    200: ("accepted", Outcome.ACCEPTED),
    201: ("accepted (created)", Outcome.ACCEPTED),
    202: ("accepted (to be broadcast)", Outcome.ACCEPTED),
    400: ("the CAP document is refused", Outcome.REJECTED),
    401: ("credentials refused or expired", Outcome.CREDENTIALS),
    403: ("not allowed to submit alerts", Outcome.CREDENTIALS),
    404: ("no such endpoint", Outcome.ENDPOINT),
    405: ("the endpoint does not take alerts", Outcome.ENDPOINT),
    408: ("request timeout", Outcome.RETRY),
    409: ("an alert with this identifier exists already", Outcome.DUPLICATE),
    413: ("the CAP document is too large", Outcome.REJECTED),
    415: ("the CBC does not take this content type", Outcome.REJECTED),
    422: ("the CAP document is refused", Outcome.REJECTED),
    429: ("too many requests", Outcome.THROTTLE),
    500: ("the CBC failed", Outcome.RETRY),
    502: ("bad gateway", Outcome.RETRY),
    503: ("the CBC is unavailable", Outcome.RETRY),
    504: ("gateway timeout", Outcome.RETRY),
}
#: What a Cancel's (or a status read's) answer means where it differs from a submission's.
CANCEL_CODES: dict[int, tuple[str, Outcome]] = {
    404: ("the CBC does not know the alert", Outcome.ABSENT),
    410: ("the alert is over", Outcome.ABSENT),
}


def lookup(status: int, *, cancel: bool = False) -> tuple[str, Outcome] | None:
    """What an answer's HTTP ``status`` means and calls for; None for one not in the table."""
    if cancel and status in CANCEL_CODES:
        return CANCEL_CODES[status]
    return CODES.get(status)


#: A CBC's words for a broadcast's state -> Loa's (lower-cased, "-" and " " as "_").
STATES: dict[str, State] = {
    "accepted": State.ACCEPTED, "received": State.ACCEPTED, "queued": State.ACCEPTED,
    "pending": State.ACCEPTED, "scheduled": State.ACCEPTED,
    "broadcasting": State.BROADCASTING, "active": State.BROADCASTING,
    "ongoing": State.BROADCASTING, "in_progress": State.BROADCASTING,
    "sent": State.BROADCASTING,
    "completed": State.COMPLETED, "complete": State.COMPLETED, "finished": State.COMPLETED,
    "done": State.COMPLETED,
    "expired": State.EXPIRED,
    "cancelled": State.CANCELLED, "canceled": State.CANCELLED, "withdrawn": State.CANCELLED,
    "stopped": State.CANCELLED, "killed": State.CANCELLED,
    "failed": State.FAILED, "rejected": State.FAILED, "error": State.FAILED,
}


def state_of(word: str) -> State:
    """Loa's word for a CBC's state word (``unknown`` for one not in the table)."""
    return STATES.get(word.strip().lower().replace("-", "_").replace(" ", "_"), State.UNKNOWN)
