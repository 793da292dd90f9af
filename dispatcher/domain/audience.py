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
import mmap
import re
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec

from dispatcher.domain.errors import AudienceError, NumberError
from dispatcher.domain.model import Kind
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.province import Province

COLUMNS = ("msisdn", "zalo", "district", "kind", "email")
PROGRESS_EVERY = 16384  # rows between progress callbacks
SNIFF_BYTES = 65536  # the start of a file looked at for what it is (text, UTF-16, an archive)
MAP_DIGITS = 10  # national numbers up to this long are remembered in a bitmap (SeenNumbers)
SHOWN = 60  # characters of a bad value quoted in a reason

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

    def __init__(self, numbering: Numbering, province: Province, *,
                 district_required: bool = True) -> None:
        self.numbering = numbering
        self.province = province
        # a list of numbers (dispatcher.domain.numberlist) may leave every row's district empty
        self.district_required = district_required

    def recipient(self, msisdn: str, zalo: str, district: str, kind: str, email: str) -> Recipient:
        try:
            number, carrier = self.numbering.normalize(msisdn)
        except NumberError as exc:
            raise RowError(f"msisdn: {exc.reason}") from None
        kind_value = _KINDS.get(kind.strip().lower() or "resident")
        if kind_value is None:
            raise RowError(f"kind: {_shown(kind)} is not one of resident, visitor, official")
        district_id = ""
        if district.strip():
            found = self.province.district_id(district.strip())
            if found is None:
                raise RowError(f"district: {_shown(district)} is not a district of "
                               f"{self.province.name}")
            district_id = found
        elif kind_value is not Kind.VISITOR and self.district_required:
            raise RowError("district: empty (only visitors may have no district)")
        on_zalo, uid = _zalo(zalo)
        email = email.strip()
        if email and not _EMAIL.match(email):
            raise RowError(f"email: {_shown(email)} is not an e-mail address")
        return Recipient(number, carrier, district_id, kind_value, on_zalo, uid, email)


def _zalo(value: str) -> tuple[bool, str]:
    text = value.strip().lower()
    if text in _NO:
        return False, ""
    if text in _YES:
        return True, ""
    if text.isascii() and text.isdigit() and 10 <= len(text) <= 20:
        return True, text
    raise RowError(f"zalo: {_shown(value)} is not yes/no or a Zalo user id")


def _shown(value: str, limit: int = SHOWN) -> str:
    """``value`` quoted for a message: control characters escaped, cut after ``limit``."""
    text = repr(value[:limit])
    return text if len(value) <= limit else f"{text}... ({len(value):,} characters)"


def _printable(text: str, limit: int = 200) -> str:
    """``text`` for a one-line message: control characters escaped, cut after ``limit``."""
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[:limit])
    return shown if len(text) <= limit else f"{shown}... ({len(text):,} characters)"


class SeenNumbers:
    """The national numbers a scan has met, to tell duplicates: one bit per possible number in an
    anonymous memory map of ``10**digits`` bits (125 MB of address space for Vietnam's 9 digits).
    The kernel gives memory only to the pages numbers fall in, so the memory of a scan does not
    grow with its rows: at most ``10**digits / 8`` bytes, about 50 MB for the mobile prefixes in
    use, where a set of 10 million numbers would take some 650 MB. Numbering plans of more than
    ``MAP_DIGITS`` digits fall back to a set.
    """

    def __init__(self, digits: int) -> None:
        self._map = mmap.mmap(-1, (10**digits + 7) // 8) if digits <= MAP_DIGITS else None
        self._set: set[int] = set()

    def first(self, number: int) -> bool:
        """Whether ``number`` (national, without the country code) is met for the first time."""
        seen = self._map
        if seen is None:
            if number in self._set:
                return False
            self._set.add(number)
            return True
        byte, bit = number >> 3, 1 << (number & 7)
        value = seen[byte]
        if value & bit:
            return False
        seen[byte] = value | bit
        return True

    def close(self) -> None:
        if self._map is not None:
            self._map.close()


def _names(fields: list[str]) -> list[str]:
    return [f.strip().lower() for f in fields]


def ignored_columns(fields: list[str]) -> list[str]:
    """The header fields Loa does not use."""
    return [f for f, n in zip(fields, _names(fields), strict=True) if n not in COLUMNS]


def _header(path: Path, fields: list[str]) -> list[int]:
    names = _names(fields)
    if "msisdn" not in names:
        separator = next((c for c in ";\t|" if len(fields) == 1 and c in fields[0]), None)
        hint = (f" (the columns look separated by {separator!r}: Loa reads commas)"
                if separator else "")
        raise AudienceError(
            f"{path}: the header has no msisdn column (found: "
            f"{_printable(', '.join(fields)) or 'nothing'}); "
            f"the first line must name the columns: {', '.join(COLUMNS)}{hint}"
        )
    for name in set(names):
        if name and names.count(name) > 1:
            raise AudienceError(f"{path}: the header names the column {_shown(name)} twice")
    return [names.index(c) if c in names else -1 for c in COLUMNS]


#: Bytes that CSV text never holds (C0 controls but tab, line feed and carriage return).
_CONTROL_BYTES = bytes([*range(9), 11, 12, *range(14, 32), 127])
BINARY_CONTROLS = 16  # this many control bytes, and 1% of the start: not a text file

_SIGNATURES = (
    (b"\xff\xfe", "is UTF-16 text (little-endian); save it as CSV UTF-8"),
    (b"\xfe\xff", "is UTF-16 text (big-endian); save it as CSV UTF-8"),
    (b"\x1f\x8b", "is compressed (gzip); decompress it first"),
    (b"PK\x03\x04", "is a ZIP archive (an Excel .xlsx workbook?); save it as CSV UTF-8"),
    (b"\xd0\xcf\x11\xe0", "is an Excel .xls workbook; save it as CSV UTF-8"),
)


def _refuse_non_text(path: Path, head: bytes) -> None:
    """Refuse a file that is not CSV text at all, from its first bytes ``head``, rather than
    reading it as rows of garbage. A stray NUL byte in a text file is the rows' business."""
    for signature, what in _SIGNATURES:
        if head.startswith(signature):
            raise AudienceError(f"{path}: {what}")
    controls = len(head) - len(head.translate(None, _CONTROL_BYTES))
    if controls >= BINARY_CONTROLS and controls * 100 >= len(head):
        if head[1::2].count(0) * 2 >= len(head) // 2:
            raise AudienceError(f"{path}: looks like UTF-16 text (every other byte is 0); "
                                f"save it as CSV UTF-8")
        raise AudienceError(f"{path}: is not text ({controls:,} control bytes such as NUL in "
                            f"the first {len(head):,}: a binary file?); give a CSV file")


class _CsvFile:
    """The rows of a CSV file after its header, with physical line numbers and progress."""

    def __init__(self, path: Path, progress: Callable[[int], None] | None) -> None:
        self.path = path
        self.progress = progress
        try:
            self.raw = io.BufferedReader(io.FileIO(path, "rb"), buffer_size=SNIFF_BYTES)
        except OSError as exc:
            raise AudienceError(f"{path}: cannot open: {exc.strerror}") from None
        try:
            _refuse_non_text(path, self.raw.peek(SNIFF_BYTES)[:SNIFF_BYTES])
        except (AudienceError, OSError) as exc:
            self.raw.close()
            if isinstance(exc, AudienceError):
                raise
            raise AudienceError(f"{path}: cannot read: {exc.strerror}") from None
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
            reason = str(exc)
            if "field limit" in reason:
                reason = (f"a field is longer than {csv.field_size_limit():,} characters "
                          f"(a quote (\") opened and never closed?)")
            raise AudienceError(f"{self.path}: line {self.reader.line_num}: {reason}") from None
        except OSError as exc:
            raise AudienceError(f"{self.path}: cannot read: {exc.strerror}") from None

    def __iter__(self) -> Iterator[tuple[int, int, list[str]]]:
        """``(first line, last line, fields)`` of each row: a row spans several lines when a
        quoted field holds line breaks."""
        count = 0
        start = self.reader.line_num + 1  # the line the next row starts on (it may span more)
        while (row := self._next()) is not None:
            count += 1
            if self.progress is not None and count % PROGRESS_EVERY == 0:
                self.progress(self.raw.tell())
            if row and row != [""]:  # blank lines are skipped
                yield start, self.reader.line_num, row
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
    closers = [source.close]
    try:
        i_msisdn, i_zalo, i_district, i_kind, i_email = _header(path, source.header)
        if header is not None:
            header.extend(source.header)
        width = len(source.header)
        numbering = validator.numbering
        national = len(numbering.country_code)
        seen = SeenNumbers(numbering.national_digits)
        closers.append(seen.close)
        recipient = validator.recipient
        for line, last, row in source:
            if len(row) != width:
                reason = f"expected {width} fields, found {len(row)}"
                if last > line and any("\n" in f or "\r" in f for f in row):
                    reason += (f"; a quoted field runs from line {line} to line {last}: is a "
                               f"closing quote (\") missing?")
                yield Reject(line, reason, row)
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
                elif any("\x00" in field for field in row):
                    reason = f"{reason} (the row holds a NUL byte: a damaged file?)"
                yield Reject(line, reason, row)
                continue
            if not seen.first(int(item.msisdn[national:])):
                yield Reject(line, f"msisdn: {item.msisdn} appears earlier in the file", row,
                             duplicate=True)
                continue
            yield item
    finally:
        for close in closers:
            close()


def check(
    path: Path,
    validator: Validator,
    *,
    rejects: Path | None = None,
    progress: Callable[[int], None] | None = None,
    items: Iterator[Recipient | Reject] | None = None,
) -> CheckReport:
    """Validate every row of ``path``; write rejected and duplicate rows to ``rejects``.
    ``items``: the rows of ``path`` as another reader gives them (a JSON list of numbers:
    dispatcher.domain.numberlist), instead of the CSV scan."""
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
        rows = items if items is not None else scan(path, validator, progress=progress,
                                                     header=header)
        for item in rows:
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
