"""Which published CAP messages may be removed (``[cap] retention_days``), as a pure rule.

A message is removed once all of these hold:

- it was sent more than ``retention_days`` ago;
- nobody is shown it: it is not among the newest ``feed_entries`` of the feed, nor among the
  newest messages the public notice looks at (:data:`dispatcher.domain.notice.MESSAGES`);
- it is no longer in force (:func:`in_force`): a Cancel, a message whose every ``expires`` has
  passed, or one without ``expires`` that a later message of its thread superseded;
- nothing will reference it: it is not the last message of a thread that may get another (the
  level's, a plan row's, the thread of a campaign not yet final: their next Update or Cancel
  names it), not the message of a wave or campaign not yet final (its Cancel would name it), and
  not the Cancel of a message that is kept (the notice would take the withdrawn message for one
  in force again).

Messages are judged oldest first, so a Cancel is judged after the message it withdraws. Pure: no
I/O.
"""

from __future__ import annotations

import datetime as dt

import msgspec

from dispatcher.domain.cap import CapAlert, MsgType


class Kept(msgspec.Struct, frozen=True):
    """What a pass keeps, read from the store and the settings when it begins."""

    cutoff: dt.datetime  # messages sent before it are old enough to go
    now: dt.datetime
    shown: frozenset[str]  # identifiers on the feed and the notice
    last: frozenset[str]  # identifiers: the last message of each thread
    closed: frozenset[str]  # threads that get no other message (those of final campaigns)
    live: frozenset[str]  # identifiers of the messages of waves and campaigns not yet final


def in_force(alert: CapAlert, now: dt.datetime, *, last: bool) -> bool:
    """Not a Cancel, and an ``expires`` still ahead, or none and ``last`` (nothing superseded
    it)."""
    if alert.msg_type is MsgType.CANCEL:
        return False
    expiries = [info.expires for info in alert.infos]
    if any(when is not None and when > now for when in expiries):
        return True
    return last and (not expiries or None in expiries)


def cancelled(alert: CapAlert) -> list[str]:
    """The identifiers a Cancel withdraws (its references: ``sender,identifier,sent``)."""
    if alert.msg_type is not MsgType.CANCEL:
        return []
    return [ref.split(",")[1] for ref in alert.references if ref.count(",") == 2]


def removable(alerts: list[CapAlert], kept: Kept, keeping: set[str]) -> list[CapAlert]:
    """The messages of ``alerts`` (oldest first) that may go; ``keeping``, the identifiers kept
    so far in this pass (older messages), grows with those of ``alerts`` that stay."""
    gone = []
    for alert in alerts:
        ident = alert.identifier
        last = ident in kept.last
        stays = (alert.sent >= kept.cutoff or ident in kept.shown or ident in kept.live
                 or (last and alert.thread not in kept.closed)
                 or in_force(alert, kept.now, last=last)
                 or any(earlier in keeping for earlier in cancelled(alert)))
        if stays:
            keeping.add(ident)
        else:
            gone.append(alert)
    return gone
