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


class Chunker:
    """Recipients into chunks of one (district, kind) with dense ids, written to ``version``
    ``FLUSH_CHUNKS`` at a time: :meth:`add` each one (True: :meth:`flush` now), then
    :meth:`finish` for the groups of the version's meta."""

    def __init__(self, store: Store, version: str, chunk_size: int) -> None:
        self.store = store
        self.version = version
        self.chunk_size = chunk_size
        self.groups: dict[tuple[str, Kind], _Group] = {}
        self.ready: list[AudienceChunk] = []
        self.written = 0  # chunks stored
        self.next_id = 0  # recipients given an id

    def _cut(self, group: _Group) -> None:
        group.chunks.append(self.written + len(self.ready))
        group.first_ids.append(self.next_id)
        self.ready.append(AudienceChunk(self.next_id, group.pending))
        self.next_id += len(group.pending)
        group.pending = []

    def add(self, item: Recipient) -> bool:
        group = self.groups.get((item.district, item.kind))
        if group is None:
            group = self.groups[(item.district, item.kind)] = _Group()
        group.pending.append(item)
        group.count += 1
        group.zalo += item.zalo
        group.email += bool(item.email)
        if len(group.pending) >= self.chunk_size:
            self._cut(group)
            return len(self.ready) >= FLUSH_CHUNKS
        return False

    async def flush(self) -> None:
        await self.store.audiences.put_chunks(self.version, self.written, self.ready)
        self.written += len(self.ready)
        self.ready = []

    async def finish(self) -> list[AudienceGroup]:
        """Store what is left; the groups, in order."""
        for group in self.groups.values():
            if group.pending:
                self._cut(group)
        await self.flush()
        return [AudienceGroup(district=d, kind=k, chunks=g.chunks, count=g.count, zalo=g.zalo,
                              email=g.email, first_ids=g.first_ids)
                for (d, k), g in sorted(self.groups.items())]


async def import_audience(path: Path, store: Store, validator: Validator, *, chunk_size: int,
                          progress: Callable[[int], None] | None = None) -> ImportResult:
    """Check and store the audience at ``path``, then make it the current version."""
    version = file_version(path)
    current = await store.audiences.meta()
    if current is not None and current.version == version:
        return ImportResult(version, current.count, sum(len(g.chunks) for g in current.groups),
                            True, CheckReport(rows=current.count, valid=current.count))
    chunker = Chunker(store, version, chunk_size)
    add = chunker.add
    report = CheckReport()
    for item in scan(path, validator, progress=progress):
        if type(item) is not Recipient:
            assert isinstance(item, Reject)
            if item.duplicate:
                report.duplicates += 1
            else:
                report.rejected += 1
            continue
        if add(item):
            await chunker.flush()
    if not chunker.groups:  # not one valid recipient
        raise AudienceError(
            f"{path}: no valid recipient ({report.rejected:,} rows rejected, "
            f"{report.duplicates:,} duplicates; `loa audience check {path} --rejects OUT.csv` "
            f"says why): the current audience is kept")
    groups = await chunker.finish()
    next_id, written = chunker.next_id, chunker.written
    meta = AudienceMeta(
        version=version,
        created_at=dt.datetime.now(dt.UTC),
        count=next_id,
        source=path.name,
        groups=groups,
    )
    await store.audiences.activate(meta)
    report.valid = next_id
    report.rows = report.valid + report.duplicates + report.rejected
    return ImportResult(version, next_id, written, False, report)
