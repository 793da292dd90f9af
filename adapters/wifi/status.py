"""A Wi-Fi controller's answers, by table: what each HTTP status means for the notice pushed
(:class:`~dispatcher.domain.wifi.PushOutcome`), and a ``Retry-After`` read as seconds.

    2xx                                  pushed: the controller has it
    401, 403                             refused: Loa's signature or the controller's rules
                                         refuse Loa, not this notice; it waits, tried slowly
    429                                  throttled: tried again after its Retry-After
    408, 425, 5xx                        error: tried again after a backoff
    other 4xx, 1xx, 3xx (no redirects)   rejected: this notice is skipped for the controller
"""

from __future__ import annotations

import datetime as dt
import re
from email.utils import parsedate_to_datetime

from dispatcher.domain.wifi import PushOutcome

#: HTTP status -> outcome where the status class does not say it.
STATUSES: dict[int, PushOutcome] = {
    401: PushOutcome.REFUSED, 403: PushOutcome.REFUSED, 429: PushOutcome.THROTTLED,
    408: PushOutcome.ERROR, 425: PushOutcome.ERROR}
#: status class (first digit) -> outcome
CLASSES: dict[int, PushOutcome] = {
    1: PushOutcome.REJECTED, 2: PushOutcome.PUSHED, 3: PushOutcome.REJECTED,
    4: PushOutcome.REJECTED, 5: PushOutcome.ERROR}

_SECONDS = re.compile(r"[0-9]{1,9}")


def outcome(status: int) -> PushOutcome:
    """What an HTTP status means for the notice pushed."""
    return STATUSES.get(status) or CLASSES.get(status // 100, PushOutcome.ERROR)


def retry_after(value: str, now: dt.datetime) -> float | None:
    """A ``Retry-After`` header as seconds from ``now``: delay-seconds or an HTTP date (a date
    already past is 0); None when there is none or it is neither."""
    value = value.strip()
    if not value:
        return None
    if _SECONDS.fullmatch(value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # HTTP dates are GMT
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - now).total_seconds())
