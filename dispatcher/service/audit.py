"""The audit log: one JSON line per state-changing action (who, role, action, target, when),
hash-chained and written before the change takes effect.

An action is recorded twice: its *intent* (``outcome`` ``pending``) before anything changes,
then its *outcome* (``ok``, or the error class and its message), which names the intent's line
(``intent``). :func:`audited` does both around the work; when the intent cannot be written the
work is not done at all (:class:`~dispatcher.domain.errors.AuditUnavailable`). A one-off fact (a
failed sign-in) is a single record (:meth:`AuditLog.write`).

Each line carries its number (``seq``, from 1) and the SHA-256 of the previous line's bytes
(``prev``; :data:`GENESIS` for the first): changing, removing or moving a line breaks the chain
at the next one, which :func:`verify` finds. Several processes may append to one file: each
append takes an exclusive ``flock`` on the file around reading the last line and writing the
new one, then ``fsync``\\ s. The file is created with mode 0600; an existing file readable by
others is set to 0600.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import fcntl
import hashlib
import inspect
import logging
import os
import stat
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from dispatcher.domain.errors import AuditUnavailable, LoaError, StoreUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

GENESIS = "0" * 64  # the ``prev`` of a log's first line
PENDING = "pending"  # the outcome of an intent record
TAIL_BLOCK = 8192


class AuditRecord(msgspec.Struct, frozen=True):
    at: dt.datetime
    who: str
    role: str
    action: str  # e.g. level.set, campaign.create, campaign.approve, signin.failed
    target: str  # e.g. the campaign id, "level"
    outcome: str = "ok"  # "pending" (an intent), "ok" or "<ErrorClass>: message"
    detail: dict[str, Any] = {}
    seq: int = 0  # the line number, from 1
    prev: str = ""  # SHA-256 (hex) of the previous line's bytes, GENESIS for the first
    intent: int = 0  # an outcome record: the seq of its intent record


class Verified(msgspec.Struct, frozen=True):
    """What :func:`verify` found: ``count`` records; ``broken`` the first line that does not
    follow (0: none) and why; ``head`` the hash of the last good line (keep it elsewhere: a
    later verify against it shows the end was not cut)."""

    count: int
    head: str
    broken: int = 0
    reason: str = ""


def line_hash(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


class AuditLog:
    """Appends :class:`AuditRecord` lines to ``path`` (JSON lines, UTF-8), chained and locked."""

    def __init__(self, path: Path | str, *,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:
        self.path = Path(path)
        self.clock = clock
        self._encoder = msgspec.json.Encoder()
        self._decoder = msgspec.json.Decoder(AuditRecord)
        self._lock = threading.Lock()

    def write(self, *, who: str, role: str, action: str, target: str, outcome: str = "ok",
              detail: dict[str, Any] | None = None, intent: int = 0) -> AuditRecord:
        """Append one record; :class:`AuditUnavailable` when it cannot be written."""
        try:
            with self._lock:
                return self._append(who, role, action, target, outcome, detail or {}, intent)
        except OSError as exc:
            log.error("audit log %s cannot be written: %s", self.path, exc)
            raise AuditUnavailable(
                f"the audit log cannot be written ({exc.strerror or exc}): nothing was "
                "changed") from None

    def begin(self, *, who: str, role: str, action: str, target: str,
              detail: dict[str, Any] | None = None) -> AuditRecord:
        """The intent record of an action, written before it takes effect."""
        return self.write(who=who, role=role, action=action, target=target, outcome=PENDING,
                          detail=detail)

    def finish(self, intent: AuditRecord, outcome: str = "ok",
               detail: dict[str, Any] | None = None) -> AuditRecord:
        """The outcome record of the action ``intent`` announced: its detail is the intent's
        with ``detail`` added (a record that reads on its own)."""
        return self.write(who=intent.who, role=intent.role, action=intent.action,
                          target=intent.target, outcome=outcome,
                          detail={**intent.detail, **(detail or {})}, intent=intent.seq)

    def _append(self, who: str, role: str, action: str, target: str, outcome: str,
                detail: dict[str, Any], intent: int) -> AuditRecord:
        if self.path.parent != Path():
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            mode = stat.S_IMODE(os.fstat(fd).st_mode)
            if mode & 0o077:
                log.warning("audit log %s was mode %o: set to 0600", self.path, mode)
                os.fchmod(fd, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            last = _last_line(fd)
            if last is None:
                seq, prev = 1, GENESIS
            else:
                try:
                    seq, prev = self._decoder.decode(last).seq + 1, line_hash(last)
                except msgspec.DecodeError:
                    raise OSError(0, "its last line is not a record (run loa audit verify)"
                                  ) from None
            record = AuditRecord(at=self.clock(), who=who, role=role, action=action,
                                 target=target, outcome=outcome, detail=detail, seq=seq,
                                 prev=prev, intent=intent)
            os.write(fd, self._encoder.encode(record) + b"\n")
            os.fsync(fd)
            return record
        finally:
            os.close(fd)  # and the lock with it

    def close(self) -> None:
        """Nothing stays open between records (each append opens the file: rotation is a
        rename); kept for the callers that close the log on shutdown."""


def _last_line(fd: int) -> bytes | None:
    """The last line of the file open at ``fd`` (without its newline), None if it is empty;
    OSError when the file does not end with a newline (a torn write)."""
    end = os.lseek(fd, 0, os.SEEK_END)
    if end == 0:
        return None
    data = b""
    pos = end
    while True:
        start = max(pos - TAIL_BLOCK, 0)
        data = os.pread(fd, pos - start, start) + data
        pos = start
        if not data.endswith(b"\n"):
            raise OSError(0, "it ends in a partial line (run loa audit verify)")
        cut = data.rfind(b"\n", 0, len(data) - 1)
        if cut >= 0 or pos == 0:
            return data[cut + 1:-1]


async def audited(audit: AuditLog, *, who: str, role: str, action: str, target: str,
                  work: Awaitable[T], detail: dict[str, Any] | None = None,
                  after: Callable[[T], dict[str, Any] | None] | None = None) -> T:
    """Record the intent, await ``work``, record its outcome (``after(result)`` its detail).

    A failure that is not a :class:`LoaError` is recorded by its class only. If the intent
    cannot be written, ``work`` is never run and :class:`AuditUnavailable` is
    raised. If the outcome cannot be written the change stands (the intent says it was asked
    for) and the failure is logged.
    """
    try:
        intent = await asyncio.to_thread(audit.begin, who=who, role=role, action=action,
                                         target=target, detail=detail)
    except AuditUnavailable:
        if inspect.iscoroutine(work):
            work.close()
        raise
    try:
        result = await work
    except Exception as exc:
        # Loa's own refusal with its message; the store failing, the class only (its message
        # may hold a URL)
        ours = isinstance(exc, LoaError) and not isinstance(exc, StoreUnavailable)
        outcome = f": {exc}" if ours else " (internal error)"
        await _finish(audit, intent, f"{type(exc).__name__}{outcome}", None)
        raise
    await _finish(audit, intent, "ok", after(result) if after is not None else None)
    return result


async def _finish(audit: AuditLog, intent: AuditRecord, outcome: str,
                  detail: dict[str, Any] | None) -> None:
    try:
        await asyncio.to_thread(audit.finish, intent, outcome, detail)
    except AuditUnavailable:
        log.error("audit: the outcome of line %d (%s %s) is not recorded", intent.seq,
                  intent.action, intent.target)


def read_audit(path: Path | str) -> list[AuditRecord]:
    """Every record of the log at ``path`` (for tests and tools)."""
    decoder = msgspec.json.Decoder(AuditRecord)
    return [decoder.decode(line) for line in Path(path).read_bytes().splitlines() if line]


def read_tail(path: Path | str, limit: int) -> list[AuditRecord]:
    """The newest ``limit`` records of the log at ``path``, newest first (none if no file)."""
    decoder = msgspec.json.Decoder(AuditRecord)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return []
    try:
        pos = os.lseek(fd, 0, os.SEEK_END)
        data = b""
        while pos > 0 and data.count(b"\n") <= limit:
            start = max(pos - TAIL_BLOCK, 0)
            data = os.pread(fd, pos - start, start) + data
            pos = start
    finally:
        os.close(fd)
    lines = [line for line in data.split(b"\n") if line]
    if pos > 0:
        lines = lines[1:]  # the first may be cut
    records = []
    for line in reversed(lines):
        try:
            records.append(decoder.decode(line))
        except msgspec.DecodeError:
            log.warning("audit log %s: a line is not a record (run loa audit verify)", path)
        if len(records) == limit:
            break
    return records


def verify(path: Path | str) -> Verified:
    """Walk the log at ``path`` and check every line follows the one before it."""
    decoder = msgspec.json.Decoder(AuditRecord)
    prev, count = GENESIS, 0
    with Path(path).open("rb") as f:
        for number, raw in enumerate(f, start=1):
            if not raw.endswith(b"\n"):
                return Verified(count, prev, number, "a partial line (no newline at its end)")
            line = raw[:-1]
            try:
                record = decoder.decode(line)
            except msgspec.DecodeError as exc:
                return Verified(count, prev, number, f"not a record ({exc})")
            if record.prev != prev:
                what = ("the first line does not start the chain" if number == 1 else
                        f"its prev is not the hash of line {number - 1}: line {number - 1} "
                        "was changed, or lines were removed or moved here")
                return Verified(count, prev, number, what)
            if record.seq != number:
                return Verified(count, prev, number,
                                f"it says it is line {record.seq}: lines were removed or moved")
            prev, count = line_hash(line), count + 1
    return Verified(count, prev)
