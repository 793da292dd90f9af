"""Importing an audience file into the store: dense ids, chunks grouped by district and kind.

Each valid, unique recipient gets a dense integer id (0, 1, 2, ...), which is its bit in the sent
bitmap of every wave. Recipients are stored in chunks of one (district, kind) each, so a
campaign's selector picks whole chunks without reading the others. The version is the digest of
the file: importing the same file again is a no-op, a changed file becomes a new version, and
waves keep the version they started with.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from pathlib import Path

import msgspec

from dispatcher.domain.audience import CheckReport, Recipient, Reject, Validator, scan
from dispatcher.domain.errors import AudienceError
from dispatcher.domain.model import Kind
from dispatcher.store.base import AudienceChunk, AudienceGroup, AudienceMeta, Store

FLUSH_CHUNKS = 64  # chunks written per round trip


class ImportResult(msgspec.Struct):
    version: str
    recipients: int
    chunks: int
    already_current: bool
    report: CheckReport


def file_version(path: Path) -> str:
    """A short digest of the file's bytes: the audience version it becomes."""
    digest = hashlib.blake2b(digest_size=8)
    try:
        with path.open("rb") as f:
            while block := f.read(1 << 20):
                digest.update(block)
    except OSError as exc:
        raise AudienceError(f"{path}: cannot read: {exc.strerror}") from None
    return digest.hexdigest()


class _Group:
    __slots__ = ("chunks", "count", "email", "first_ids", "pending", "zalo")

    def __init__(self) -> None:
        self.pending: list[Recipient] = []
        self.chunks: list[int] = []
        self.first_ids: list[int] = []
        self.count = 0
        self.zalo = 0
        self.email = 0


async def import_audience(path: Path, store: Store, validator: Validator, *, chunk_size: int,
                          progress: Callable[[int], None] | None = None) -> ImportResult:
    """Check and store the audience at ``path``, then make it the current version."""
    version = file_version(path)
    current = await store.audiences.meta()
    if current is not None and current.version == version:
        return ImportResult(version, current.count, sum(len(g.chunks) for g in current.groups),
                            True, CheckReport(rows=current.count, valid=current.count))
    groups: dict[tuple[str, Kind], _Group] = {}
    ready: list[AudienceChunk] = []
    written = 0
    next_id = 0
    report = CheckReport()

    def cut(group: _Group) -> None:
        nonlocal next_id
        group.chunks.append(written + len(ready))
        group.first_ids.append(next_id)
        ready.append(AudienceChunk(next_id, group.pending))
        next_id += len(group.pending)
        group.pending = []

    for item in scan(path, validator, progress=progress):
        if type(item) is not Recipient:
            assert isinstance(item, Reject)
            if item.duplicate:
                report.duplicates += 1
            else:
                report.rejected += 1
            continue
        group = groups.get((item.district, item.kind))
        if group is None:
            group = groups[(item.district, item.kind)] = _Group()
        group.pending.append(item)
        group.count += 1
        group.zalo += item.zalo
        group.email += bool(item.email)
        if len(group.pending) >= chunk_size:
            cut(group)
            if len(ready) >= FLUSH_CHUNKS:
                await store.audiences.put_chunks(version, written, ready)
                written += len(ready)
                ready = []
    if not groups:  # not one valid recipient
        raise AudienceError(
            f"{path}: no valid recipient ({report.rejected:,} rows rejected, "
            f"{report.duplicates:,} duplicates; `loa audience check {path} --rejects OUT.csv` "
            f"says why): the current audience is kept")
    for group in groups.values():
        if group.pending:
            cut(group)
    await store.audiences.put_chunks(version, written, ready)
    written += len(ready)
    meta = AudienceMeta(
        version=version,
        created_at=dt.datetime.now(dt.UTC),
        count=next_id,
        source=path.name,
        groups=[AudienceGroup(district=d, kind=k, chunks=g.chunks, count=g.count, zalo=g.zalo,
                              email=g.email, first_ids=g.first_ids)
                for (d, k), g in sorted(groups.items())],
    )
    await store.audiences.activate(meta)
    report.valid = next_id
    report.rows = report.valid + report.duplicates + report.rejected
    return ImportResult(version, next_id, written, False, report)
