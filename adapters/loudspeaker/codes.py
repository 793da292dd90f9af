"""The answers of a loudspeaker system's HTTP API (the generic profile, docs/channels.md), each
with what Loa does about it. The outcomes:

* ``sent``: the system took the broadcast (201, 200) and answered its id;
* ``taken``: the broadcast id (``<wave>:<system>``) is taken already (409): an earlier try of
  this very bulletin reached the system (its answer was lost), so it counts as sent and nothing
  is uploaded again: a system never gets one wave twice;
* ``retry``: transient (5xx, 408, no answer in time, the connection broken after the upload
  left): tried again, using one of its attempts (the next try meets 409 if the upload had
  arrived);
* ``throttle``: the system is over its rate limit (429): the system waits for its
  ``Retry-After`` (``[loudspeaker] throttle_pause`` without one, at most
  ``throttle_pause_max``); its bulletins are requeued, no attempt used;
* ``token``: the system refuses Loa's token (401 expired or invalid, 403 not allowed): no
  bulletin can go to it until an operator gives it a new token: the system stops (its
  bulletins wait, no attempt used), an ALERT is logged, ``loa_loudspeaker_system_stopped`` is 1,
  and one upload is tried every ``alert_probe_seconds`` until the system accepts again;
* ``fail``: the system refuses this upload for good (400 malformed, 413 too large, 415 an audio
  type it does not play, 422 a zone or time it does not know): a dead letter with its reason.

A status not in the table is retried; ``unknown_status_limit`` of them in a row stop the system
with an alert (reason ``unknown``), so an unknown fault never dead-letters a wave.
"""

from __future__ import annotations

import enum

import msgspec


class Outcome(enum.Enum):
    """What the adapter does with a broadcast after the system's answer."""

    SENT = "sent"
    TAKEN = "taken"
    RETRY = "retry"
    THROTTLE = "throttle"
    TOKEN = "token"
    FAIL = "fail"


class Status(msgspec.Struct, frozen=True):
    """One HTTP status of the profile: what it means there and what Loa does."""

    meaning: str
    outcome: Outcome


_TABLE: list[tuple[int, str, Outcome]] = [
    (200, "taken (an answer given again to a repeated upload)", Outcome.SENT),
    (201, "broadcast created", Outcome.SENT),
    (400, "malformed upload (a missing or invalid field)", Outcome.FAIL),
    (401, "token missing, expired or invalid", Outcome.TOKEN),
    (403, "token not allowed to broadcast (to these zones)", Outcome.TOKEN),
    (408, "the system timed out reading the upload", Outcome.RETRY),
    (409, "broadcast id taken: this bulletin reached the system before", Outcome.TAKEN),
    (413, "audio too large for the system", Outcome.FAIL),
    (415, "audio type the system does not play", Outcome.FAIL),
    (422, "a zone or a time the system does not know, or audio it cannot decode", Outcome.FAIL),
    (429, "too many uploads: back off for Retry-After", Outcome.THROTTLE),
    (500, "the system failed", Outcome.RETRY),
    (502, "bad gateway", Outcome.RETRY),
    (503, "the system is unavailable", Outcome.RETRY),
    (504, "gateway timeout", Outcome.RETRY),
]

#: HTTP status -> what it means and what Loa does.
STATUSES: dict[int, Status] = {code: Status(meaning, out) for code, meaning, out in _TABLE}
#: Any other 5xx: the system's own failure.
SERVER_ERROR = Status("the system failed", Outcome.RETRY)


def lookup(status: int) -> Status | None:
    """What ``status`` means and calls for; None for one Loa does not know."""
    found = STATUSES.get(status)
    if found is None and 500 <= status <= 599:
        return SERVER_ERROR
    return found
