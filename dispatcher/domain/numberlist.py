"""Lists of numbers: a campaign's audience uploaded for one alert (the people who were at a place
at a time), validated with the rules of an audience file (:mod:`dispatcher.domain.audience`).

A list is either an audience CSV (``text/csv``) whose only required column is ``msisdn``: the
other columns keep their meaning, and ``district`` may be empty for everyone (the people on a
list are reached wherever they live), or a JSON array (``application/json``) of numbers, each a
string or an integer (``["0912 345 678", 84987654321]``). Rejects carry the CSV file's physical
line, or the 1-based position of the item in the JSON array.

The caps (:data:`MAX_BYTES`, :data:`MAX_ROWS`) are above the whole province (1.3 million people)
with room for the columns an export carries; beyond them an upload is refused as a whole
(:class:`TooLarge`), never cut.

A stored list is kept ``[lists] retention_days`` after its upload (:class:`ListSettings`), then
removed by the engine once no campaign in progress names it (:mod:`dispatcher.engine.retention`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from dispatcher.domain.audience import (
    Recipient,
    Reject,
    RowError,
    SeenNumbers,
    Validator,
    _shown,
    scan,
)
from dispatcher.domain.errors import AudienceError, InputError, TooLarge
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.province import Province

MAX_BYTES = 256 * 1024 * 1024  # 256 MiB of CSV or JSON
MAX_ROWS = 2_000_000  # rows (CSV data lines, JSON items), valid or not
SHOWN_REJECTS = 1000  # rejected rows listed in the report (all are counted)
CSV, JSON = "csv", "json"
FORMATS = (CSV, JSON)
DEFAULT_RETENTION_DAYS = 30.0


class ListSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``[lists]`` of the deployment settings."""

    # a list no campaign in progress names is removed this long after its upload; 0: never
    retention_days: float = DEFAULT_RETENTION_DAYS


def validator(numbering: Numbering, province: Province) -> Validator:
    """The rules of a list: an audience row's, the district optional for everyone."""
    return Validator(numbering, province, district_required=False)


def format_of(content_type: str) -> str:
    """``csv`` or ``json`` from a Content-Type (parameters ignored); InputError otherwise."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media in ("text/csv", "application/csv", "text/plain"):
        return CSV
    if media == "application/json" or media.endswith("+json"):
        return JSON
    raise InputError(f"{media or 'none'} is not text/csv or application/json",
                     field="content-type")


def too_many(rows: int) -> TooLarge:
    return TooLarge(f"more than {MAX_ROWS:,} rows (found {rows:,} before stopping): split the "
                    f"list", field="body")


def scan_json(path: Path, validator: Validator) -> Iterator[Recipient | Reject]:
    """The items of the JSON array in ``path``, as :func:`audience.scan` yields rows: a
    :class:`Recipient` per valid first number, else a :class:`Reject` whose line is the item's
    1-based position."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise AudienceError(f"{path.name}: cannot read: {exc.strerror}") from None
    try:
        items = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise AudienceError(f"not JSON ({exc}): give an array of numbers", field="body") from None
    del raw
    if not isinstance(items, list):
        raise AudienceError(f"a JSON {type(items).__name__}, not an array of numbers",
                            field="body")
    if len(items) > MAX_ROWS:
        raise too_many(len(items))
    numbering = validator.numbering
    national = len(numbering.country_code)
    seen = SeenNumbers(numbering.national_digits)
    try:
        for position, value in enumerate(items, 1):
            item = _recipient(validator, value)
            if isinstance(item, str):
                yield Reject(position, item, [_text(value)])
            elif not seen.first(int(item.msisdn[national:])):
                yield Reject(position, f"msisdn: {item.msisdn} appears earlier in the list",
                             [_text(value)], duplicate=True)
            else:
                yield item
    finally:
        seen.close()


def _text(value: Any) -> str:
    return value if isinstance(value, str) else msgspec.json.encode(value).decode()


def _recipient(validator: Validator, value: Any) -> Recipient | str:
    """The recipient of one JSON item, or why it is rejected."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return (f"msisdn: {_shown(_text(value))} is not a number (give a string or an "
                f"integer)")
    try:
        return validator.recipient(str(value), "", "", "", "")
    except RowError as exc:
        return exc.reason


def scan_list(path: Path, fmt: str, validator: Validator, *,
              header: list[str] | None = None) -> Iterator[Recipient | Reject]:
    """Every row of the list at ``path`` in the format ``fmt`` (``csv``: an audience file,
    whose header fields are appended to ``header``)."""
    if fmt == JSON:
        return scan_json(path, validator)
    return scan(path, validator, header=header)
