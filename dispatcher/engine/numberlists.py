"""A list of numbers stored as an audience version of its own, for a campaign to name.

The list is validated row by row with the audience file's rules
(:mod:`dispatcher.domain.numberlist`) and stored as the province's audience is
(:class:`dispatcher.engine.importer.Chunker`: chunks by district and kind, dense ids, the number
index of the recipient lookup), under the version ``l-<digest of the upload>``, recorded but
never made current: the province's audience stays in force; it is removed ``[lists]
retention_days`` after its upload once no campaign in progress names it
(:mod:`dispatcher.engine.retention`). A campaign with ``audience_list``
reaches every recipient of that version; its price, its approval and its waves are the list's.

The rows are read in a worker thread, :data:`BLOCK` at a time, so that the API answers other
requests while a province-sized list is checked; chunks are written ``FLUSH_CHUNKS`` per round
trip, as ``loa audience import`` writes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import itertools
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import msgspec

from dispatcher.domain.audience import Recipient, Reject, Validator, ignored_columns
from dispatcher.domain.errors import AudienceError, InputError
from dispatcher.domain.numberlist import MAX_ROWS, SHOWN_REJECTS, scan_list, too_many
from dispatcher.engine.importer import Chunker
from dispatcher.store.base import AudienceMeta, Store

BLOCK = 16384  # rows read in the thread per hop
PREFIX = "l-"  # of a list's id (an audience version); the province's versions are bare digests


class ListReject(msgspec.Struct, frozen=True):
    """A row left out: its line (CSV) or position (JSON, from 1), why, and its fields."""

    line: int
    reason: str
    fields: list[str]
    duplicate: bool = False


class ListReport(msgspec.Struct, frozen=True):
    """What an uploaded list became: the check report of ``loa audience check`` (rows = valid +
    duplicates + rejected), the id a campaign names (``audience_list``), and the first
    ``SHOWN_REJECTS`` rejected or duplicate rows."""

    id: str
    name: str
    format: str
    rows: int
    valid: int
    duplicates: int
    rejected: int
    by_carrier: dict[str, int]
    by_district: dict[str, int]
    by_kind: dict[str, int]
    zalo: int
    email: int
    ignored_columns: list[str]
    rejects: list[ListReject]
    rejects_shown: int = SHOWN_REJECTS


def list_id(digest: bytes) -> str:
    """The id of a list from the digest of its bytes."""
    return PREFIX + digest.hex()


def new_digest() -> hashlib.blake2b:
    return hashlib.blake2b(digest_size=8)


def is_list(version: str) -> bool:
    return version.startswith(PREFIX)


async def list_meta(store: Store, value: str, field: str = "audience_list") -> AudienceMeta:
    """The stored list ``value``; InputError naming ``field`` when there is none (never
    uploaded, or removed after ``[lists] retention_days``: dispatcher.engine.retention)."""
    meta = await store.audiences.meta(value) if is_list(value) else None
    if meta is None:
        raise InputError(f"no list {value!r}: upload it first (POST /v1/lists, "
                         f"loa list upload FILE); a list no campaign in progress names is "
                         f"removed [lists] retention_days after its upload", field=field)
    return meta


def _take(items: Iterator[Recipient | Reject], n: int) -> list[Recipient | Reject]:
    return list(itertools.islice(items, n))


async def import_list(path: Path, fmt: str, store: Store, validator: Validator, *,
                      version: str, name: str, chunk_size: int) -> ListReport:
    """Check and store the list at ``path`` (``csv`` or ``json``) as audience version
    ``version`` (not made current). A list without one valid number is refused."""
    header: list[str] = []
    items = scan_list(path, fmt, validator, header=header)
    chunker = Chunker(store, version, chunk_size)
    carriers: Counter[str] = Counter()
    districts: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    rejects: list[ListReject] = []
    rows = duplicates = rejected = zalo = email = 0
    try:
        while block := await asyncio.to_thread(_take, items, BLOCK):
            rows += len(block)
            if rows > MAX_ROWS:
                raise too_many(rows)
            for item in block:
                if type(item) is Recipient:
                    carriers[item.carrier] += 1
                    districts[item.district] += 1
                    kinds[item.kind] += 1
                    zalo += item.zalo
                    email += bool(item.email)
                    if chunker.add(item):
                        await chunker.flush()
                    continue
                assert isinstance(item, Reject)
                if item.duplicate:
                    duplicates += 1
                else:
                    rejected += 1
                if len(rejects) < SHOWN_REJECTS:
                    rejects.append(ListReject(item.line, item.reason, item.fields,
                                              item.duplicate))
    finally:
        # a cancelled upload may leave the thread inside the scan: it ends with the request
        with contextlib.suppress(ValueError):  # "generator already executing"
            items.close()  # type: ignore[attr-defined]
    if not chunker.groups:
        raise AudienceError(f"no valid number ({rejected:,} rows rejected, {duplicates:,} "
                            f"duplicates){_first(rejects)}", field="body")
    groups = await chunker.finish()
    await store.audiences.keep(AudienceMeta(version=version, created_at=dt.datetime.now(dt.UTC),
                                            count=chunker.next_id, groups=groups, source=name))
    return ListReport(
        id=version, name=name, format=fmt, rows=rows, valid=chunker.next_id,
        duplicates=duplicates, rejected=rejected, by_carrier=dict(carriers.most_common()),
        by_district={k or "(none)": v for k, v in districts.most_common()},
        by_kind=dict(kinds.most_common()), zalo=zalo, email=email,
        ignored_columns=ignored_columns(header), rejects=rejects)


def _first(rejects: list[ListReject]) -> str:
    if not rejects:
        return ""
    return f"; line {rejects[0].line}: {rejects[0].reason}"
