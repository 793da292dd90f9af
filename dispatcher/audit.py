"""The audit log: one JSON line per state-changing API call (who, role, action, target, when).

The file is only ever appended to; each record is written with one ``write`` and flushed at
once, so a crash loses no record that was answered. Records carry the outcome: ``ok``, or the
error class and its message for a refused call (a denied approval is worth keeping too).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import msgspec


class AuditRecord(msgspec.Struct, frozen=True):
    at: dt.datetime
    who: str
    role: str
    action: str  # e.g. level.set, campaign.create, campaign.approve
    target: str  # e.g. the campaign id, "level"
    outcome: str = "ok"  # or "<ErrorClass>: message"
    detail: dict[str, Any] = {}


class AuditLog:
    """Appends :class:`AuditRecord` lines to ``path`` (JSON lines, UTF-8)."""

    def __init__(self, path: Path | str, *,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:
        self.path = Path(path)
        self.clock = clock
        self._encoder = msgspec.json.Encoder()
        self._lock = threading.Lock()
        self._file: IO[bytes] | None = None

    def write(self, *, who: str, role: str, action: str, target: str, outcome: str = "ok",
              detail: dict[str, Any] | None = None) -> AuditRecord:
        record = AuditRecord(at=self.clock(), who=who, role=role, action=action, target=target,
                             outcome=outcome, detail=detail or {})
        line = self._encoder.encode(record) + b"\n"
        with self._lock:
            if self._file is None:
                if self.path.parent != Path():
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self.path.open("ab")
            self._file.write(line)
            self._file.flush()
        return record

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def read_audit(path: Path | str) -> list[AuditRecord]:
    """Every record of the log at ``path`` (for tests and tools)."""
    decoder = msgspec.json.Decoder(AuditRecord)
    return [decoder.decode(line) for line in Path(path).read_bytes().splitlines() if line]
