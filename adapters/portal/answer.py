"""A portal's answer, read the same way for both profiles: what was published, or why not.

:class:`Published` is a post the portal holds (made now, or found made by an earlier try);
:class:`Refused` is raised for every other answer, with its outcome by the table of
:mod:`adapters.portal.codes`, a reason fit for a dead letter or a log line (one line, at most
:data:`REASON_CHARS` characters, no markup), whether the site looked down (5xx, no answer) and
its ``Retry-After`` in seconds.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import re
from collections.abc import Mapping

import msgspec

from adapters.http.client import TransportFailure
from adapters.portal.codes import CODES, Outcome, outcome

REASON_CHARS = 200
_TAGS = re.compile(r"<[^>]*>")
_SPACES = re.compile(r"\s+")


class Published(msgspec.Struct, frozen=True):
    """A post the portal holds: its id there (may be empty), its address, and whether it was
    found made already rather than made now."""

    id: str
    link: str = ""
    found: bool = False


class Refused(Exception):
    """Anything but a post taken: the outcome and its reason."""

    def __init__(self, outcome: Outcome, reason: str, *, down: bool = False,
                 connect: bool = False, lost: bool = False,
                 retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason
        self.down = down  # the site is away: 5xx, no answer
        self.connect = connect  # the request never left: no connection
        self.lost = lost  # it left and no answer came: it may have been published
        self.retry_after = retry_after  # seconds, from the answer's Retry-After


class WpError(msgspec.Struct):
    """WordPress's error answer; other portals' bodies may fit it (or not)."""

    code: str = ""
    message: str = ""


_error = msgspec.json.Decoder(WpError)


def short(text: str) -> str:
    """``text`` on one line, without markup, at most :data:`REASON_CHARS` characters."""
    text = _SPACES.sub(" ", _TAGS.sub("", text[: REASON_CHARS * 4])).strip()
    return text if len(text) <= REASON_CHARS else text[: REASON_CHARS - 1] + "…"


def retry_after(value: str, now: float) -> float | None:
    """Seconds from ``now`` of a ``Retry-After`` value (delta seconds or an HTTP date)."""
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return float(value[:9])
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, when.timestamp() - now)


def refusal(site: str, status: int, body: bytes, headers: Mapping[str, str],
            now: float) -> Refused:
    """The :class:`Refused` of an answer that is not a post taken."""
    error = WpError()
    if body.lstrip().startswith(b"{"):
        try:
            error = _error.decode(body)
        except msgspec.MsgspecError:  # not WordPress's shape: the status decides
            error = WpError()
    out = outcome(status, error.code)
    reason = f"portal {site} answered HTTP {status}"
    if error.code:
        said = short(error.message) or (CODES[error.code].message if error.code in CODES
                                        else "")
        reason += f" {short(error.code)}" + (f": {said}" if said else "")
    elif body and out is not Outcome.SENT:
        said = short(body.decode("utf-8", "replace"))
        if said:
            reason += f": {said}"
    return Refused(out, reason, down=status >= 500,
                   retry_after=retry_after(headers.get("retry-after", ""), now))


def unanswered(site: str, exc: TransportFailure) -> Refused:
    """The :class:`Refused` of a request that got no answer."""
    if exc.kind == "connect":
        return Refused(Outcome.RETRY, f"portal {site}: {exc.reason}", down=True, connect=True)
    return Refused(Outcome.RETRY, f"portal {site}: {exc.reason} (it may have been published)",
                   down=True, lost=True)
