"""Audience files: CSV with a header, streamed row by row, validated and normalised.

Columns (header names, any order, any case; other columns are ignored and reported):

``msisdn``   the mobile number, any common Vietnamese form (required)
``zalo``     reachable on Zalo: ``1``/``yes``/``true`` (by phone), ``0``/``no``/``false``/empty
             (not on Zalo), or a numeric Zalo user id (10 to 20 digits)
``district`` the district-level unit: id or name (empty allowed for visitors)
``kind``     ``resident`` | ``visitor`` | ``official`` (empty: resident)
``email``    an e-mail address, for officials (optional)

:func:`scan` yields every row once: a :class:`Recipient` for a valid row, a :class:`Reject`
(line number, reason, original fields) for a row that is invalid or repeats an earlier number.
:func:`check` counts them; the import of the engine stores the recipients.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec

from dispatcher.errors import AudienceError, NumberError
from dispatcher.model import Kind
from dispatcher.msisdn import Numbering
from dispatcher.province import Province

COLUMNS = ("msisdn", "zalo", "district", "kind", "email")
PROGRESS_EVERY = 16384  # rows between progress callbacks

_YES = frozenset({"1", "yes", "y", "true", "x", "có", "co"})
_NO = frozenset({"", "0", "no", "n", "false", "không", "khong"})
_KINDS = {k.value: k for k in Kind}
_EMAIL = re.compile(r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


class Recipient(msgspec.Struct, frozen=True, array_like=True):
    """One valid, normalised audience row."""

    msisdn: str
    carrier: str
    district: str  # district id, "" when unknown (visitors)
    kind: Kind
    zalo: bool  # reachable on Zalo
    zalo_uid: str = ""  # Zalo OA user id when the file gives one
    email: str = ""


class Reject(msgspec.Struct, frozen=True):
    line: int
    reason: str
    fields: list[str]
    duplicate: bool = False


class CheckReport(msgspec.Struct):
    """What ``loa audience check`` prints; rows = valid + duplicates + rejected."""

    rows: int = 0
    valid: int = 0
    duplicates: int = 0
    rejected: int = 0
    by_carrier: dict[str, int] = {}
    by_district: dict[str, int] = {}
    by_kind: dict[str, int] = {}
    zalo: int = 0
    email: int = 0
    ignored_columns: list[str] = []


class RowError(Exception):
    """A single row is invalid; ``reason`` says why (internal to the scan)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Validator:
    """Turns the fields of one row into a :class:`Recipient`, or raises :class:`RowError`."""

    def __init__(self, numbering: Numbering, province: Province) -> None:
        self.numbering = numbering
        self.province = province

    def recipient(self, msisdn: str, zalo: str, district: str, kind: str, email: str) -> Recipient:
        try:
            number, carrier = self.numbering.normalize(msisdn)
        except NumberError as exc:
            raise RowError(f"msisdn: {exc.reason}") from None
        kind_value = _KINDS.get(kind.strip().lower() or "resident")
        if kind_value is None:
            raise RowError(f"kind: {kind!r} is not one of resident, visitor, official")
        district_id = ""
        if district.strip():
            found = self.province.district_id(district.strip())
            if found is None:
                raise RowError(f"district: {district!r} is not a district of {self.province.name}")
            district_id = found
        elif kind_value is not Kind.VISITOR:
            raise RowError("district: empty (only visitors may have no district)")
        on_zalo, uid = _zalo(zalo)
        email = email.strip()
        if email and not _EMAIL.match(email):
            raise RowError(f"email: {email!r} is not an e-mail address")
        return Recipient(number, carrier, district_id, kind_value, on_zalo, uid, email)


def _zalo(value: str) -> tuple[bool, str]:
    text = value.strip().lower()
    if text in _NO:
        return False, ""
    if text in _YES:
        return True, ""
    if text.isascii() and text.isdigit() and 10 <= len(text) <= 20:
        return True, text
    raise RowError(f"zalo: {value!r} is not yes/no or a Zalo user id")


def _names(fields: list[str]) -> list[str]:
    return [f.strip().lower() for f in fields]


def ignored_columns(fields: list[str]) -> list[str]:
    """The header fields Loa does not use."""
    return [f for f, n in zip(fields, _names(fields), strict=True) if n not in COLUMNS]


def _header(path: Path, fields: list[str]) -> list[int]:
    names = _names(fields)
    if "msisdn" not in names:
        raise AudienceError(
            f"{path}: the header has no msisdn column (found: {', '.join(fields) or 'nothing'}); "
            f"the first line must name the columns: {', '.join(COLUMNS)}"
        )
    for name in set(names):
        if name and names.count(name) > 1:
            raise AudienceError(f"{path}: the header names the column {name!r} twice")
    return [names.index(c) if c in names else -1 for c in COLUMNS]


class _CsvFile:
    """The rows of a CSV file after its header, with physical line numbers and progress."""

    def __init__(self, path: Path, progress: Callable[[int], None] | None) -> None:
        self.path = path
        self.progress = progress
        try:
            self.raw = path.open("rb")
        except OSError as exc:
            raise AudienceError(f"{path}: cannot open: {exc.strerror}") from None
        self.text = io.TextIOWrapper(self.raw, encoding="utf-8-sig", errors="replace",
                                     newline="")
        self.reader = csv.reader(self.text)
        first = self._next()
        if first is None:
            self.close()
            raise AudienceError(f"{path}: the file is empty (expected a header line)")
        self.header = first

    def _next(self) -> list[str] | None:
        try:
            return next(self.reader, None)
        except csv.Error as exc:
            raise AudienceError(f"{self.path}: line {self.reader.line_num}: {exc}") from None

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        count = 0
        start = self.reader.line_num + 1  # the line the next row starts on (it may span more)
        while (row := self._next()) is not None:
            count += 1
            if self.progress is not None and count % PROGRESS_EVERY == 0:
                self.progress(self.raw.tell())
            if row and row != [""]:  # blank lines are skipped
                yield start, row
            start = self.reader.line_num + 1
        if self.progress is not None:
            self.progress(self.raw.tell())

    def close(self) -> None:
        self.text.close()


def scan(
    path: Path,
    validator: Validator,
    *,
    progress: Callable[[int], None] | None = None,
    header: list[str] | None = None,
) -> Iterator[Recipient | Reject]:
    """Stream the audience file at ``path``: one item per data row, in file order.

    ``progress`` is called now and then with the number of bytes read so far; the file's header
    fields are appended to ``header`` before the first item is yielded.
    """
    source = _CsvFile(path, progress)
    try:
        i_msisdn, i_zalo, i_district, i_kind, i_email = _header(path, source.header)
        if header is not None:
            header.extend(source.header)
        width = len(source.header)
        seen: set[int] = set()
        recipient = validator.recipient
        for line, row in source:
            if len(row) != width:
                yield Reject(line, f"expected {width} fields, found {len(row)}", row)
                continue
            try:
                item = recipient(
                    row[i_msisdn],
                    row[i_zalo] if i_zalo >= 0 else "",
                    row[i_district] if i_district >= 0 else "",
                    row[i_kind] if i_kind >= 0 else "",
                    row[i_email] if i_email >= 0 else "",
                )
            except RowError as exc:
                reason = exc.reason
                if any("\ufffd" in field for field in row):
                    reason = "not UTF-8 text (save the file as UTF-8)"
                yield Reject(line, reason, row)
                continue
            key = int(item.msisdn)
            if key in seen:
                yield Reject(line, f"msisdn: {item.msisdn} appears earlier in the file", row,
                             duplicate=True)
                continue
            seen.add(key)
            yield item
    finally:
        source.close()


def check(
    path: Path,
    validator: Validator,
    *,
    rejects: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> CheckReport:
    """Validate every row of ``path``; write rejected and duplicate rows to ``rejects``."""
    carriers: Counter[str] = Counter()
    districts: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    report = CheckReport()
    header: list[str] = []
    sink = None
    started = False  # the rejects file has its header line
    try:
        if rejects is not None:
            if rejects.exists() and path.exists() and rejects.samefile(path):
                raise AudienceError(f"{rejects}: is the audience file itself; "
                                    f"write the rejects to another file")
            try:
                sink = rejects.open("w", encoding="utf-8", newline="")
            except OSError as exc:
                raise AudienceError(f"{rejects}: cannot write: {exc.strerror}") from None
            writer = csv.writer(sink)
        for item in scan(path, validator, progress=progress, header=header):
            if type(item) is Recipient:
                carriers[item.carrier] += 1
                districts[item.district] += 1
                kinds[item.kind] += 1
                report.zalo += item.zalo
                report.email += bool(item.email)
                continue
            assert isinstance(item, Reject)
            if item.duplicate:
                report.duplicates += 1
            else:
                report.rejected += 1
            if sink is not None:
                if not started:
                    writer.writerow(["line", "reason", *header])
                    started = True
                writer.writerow([item.line, item.reason, *item.fields])
        if sink is not None and not started:
            writer.writerow(["line", "reason", *header])
    finally:
        if sink is not None:
            sink.close()
    report.valid = sum(carriers.values())
    report.rows = report.valid + report.duplicates + report.rejected
    report.by_carrier = dict(carriers.most_common())
    report.by_district = {k or "(none)": v for k, v in districts.most_common()}
    report.by_kind = dict(kinds.most_common())
    report.ignored_columns = ignored_columns(header)
    return report
