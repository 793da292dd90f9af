"""What Loa reads in a cell broadcast centre's answers (the generic profile, docs/channels.md).

* an acceptance may name the CBC's reference of the alert: a JSON body's ``reference`` (or
  ``id``, ``message_id``), else the ``X-Reference`` header, else the last part of ``Location``;
* a refusal's words: a JSON body's ``error``, ``message``, ``detail`` or ``reason`` (a string,
  or an object with ``message``), else the body's first line of text;
* ``Retry-After`` (429): seconds, or an HTTP date;
* a status read (``GET`` the status URL) answers JSON ``{"state": "<word>", "reference": ...,
  "detail": ...}`` (``status`` instead of ``state`` is read too); the word maps by
  :data:`adapters.cellbroadcast.codes.STATES`.
"""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from typing import Any

import msgspec

from adapters.base import Standing
from adapters.cellbroadcast.codes import state_of

LIMIT = 300  # characters of a CBC's words kept in a reason

_json = msgspec.json.Decoder()


def _object(body: bytes) -> dict[str, Any] | None:
    if not body.lstrip().startswith(b"{"):
        return None
    try:
        found = _json.decode(body)
    except msgspec.DecodeError:
        return None
    return found if isinstance(found, dict) else None


def said(body: bytes) -> str:
    """The CBC's words in an answer ("" when it says nothing readable)."""
    found = _object(body)
    if found is not None:
        for key in ("error", "message", "detail", "reason"):
            value = found.get(key)
            if isinstance(value, dict):
                value = value.get("message") or value.get("detail")
            if isinstance(value, str) and value.strip():
                return " ".join(value.split())[:LIMIT]
        return ""
    text = body.decode("utf-8", "replace").strip()
    if text.startswith("<"):  # XML or HTML: not words for a log line
        return ""
    return " ".join(text.splitlines()[0].split())[:LIMIT] if text else ""


def reference_of(body: bytes, headers: dict[str, str]) -> str:
    """The CBC's reference of the alert it took ("" when it gives none)."""
    found = _object(body)
    if found is not None:
        for key in ("reference", "id", "message_id"):
            value = found.get(key)
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
                return str(value)[:200]
    header = headers.get("x-reference", "").strip()
    if header:
        return header[:200]
    location = headers.get("location", "").strip().rstrip("/")
    return location.rsplit("/", 1)[-1][:200] if location else ""


def retry_after(headers: dict[str, str]) -> float | None:
    """Seconds to wait by ``Retry-After`` (None when absent or unreadable)."""
    value = headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def standing_of(body: bytes) -> Standing | None:
    """A status answer as a :class:`Standing`; None when it is not one."""
    found = _object(body)
    if found is None:
        return None
    word = found.get("state", found.get("status"))
    if not isinstance(word, str):
        return None
    reference = found.get("reference", "")
    detail = found.get("detail", "")
    return Standing(state_of(word), str(reference)[:200] if reference else "",
                    " ".join(str(detail).split())[:LIMIT] if detail else word)
