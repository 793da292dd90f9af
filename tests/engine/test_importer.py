"""Audience import: dense ids, chunks of one (district, kind), versions, on both stores."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from bench import audiencegen
from dispatcher.domain.audience import Validator, check
from dispatcher.domain.errors import AudienceError
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.province import Province
from dispatcher.engine.importer import file_version, import_audience
from dispatcher.store import Store
from dispatcher.store.base import AudienceChunk, AudienceMeta

ROWS = 3000
CHUNK_SIZE = 32  # small, so the import cuts ~150 chunks and flushes more than once (64 a time)


@pytest.fixture
def validator(numbering: Numbering, province: Province) -> Validator:
    return Validator(numbering, province)


def _generate(path: Path, numbering: Numbering, province: Province, *, count: int = ROWS,
              seed: int = 11) -> Path:
    audiencegen.generate(path, count, seed=seed, numbering=numbering, province=province,
                         with_errors=True)
    return path


async def _all_chunks(store: Store, meta: AudienceMeta) -> dict[int, AudienceChunk]:
    numbers = [n for g in meta.groups for n in g.chunks]
    chunks = await store.audiences.chunks(meta.version, numbers)
    assert len(chunks) == len(numbers), "every chunk the meta lists must be readable"
    return dict(zip(numbers, chunks, strict=True))


async def test_import_gives_dense_ids_and_grouped_chunks(
        store: Store, validator: Validator, numbering: Numbering, province: Province,
        tmp_path: Path) -> None:
    path = _generate(tmp_path / "audience.csv", numbering, province)
    expected = check(path, validator)
    assert expected.rejected > 0 and expected.duplicates > 0, "the file must contain bad rows"

    result = await import_audience(path, store, validator, chunk_size=CHUNK_SIZE)

    assert not result.already_current
    assert result.version == file_version(path)
    assert result.recipients == expected.valid
    assert result.report.valid == expected.valid
    assert result.report.rejected == expected.rejected
    assert result.report.duplicates == expected.duplicates
    assert result.report.rows == expected.rows == ROWS

    meta = await store.audiences.meta()
    assert meta is not None
    assert meta.version == result.version
    assert meta.count == expected.valid
    assert meta.source == path.name

    numbers = [n for g in meta.groups for n in g.chunks]
    assert sorted(numbers) == list(range(result.chunks)), "chunk numbers: 0..chunks-1, once each"
    assert result.chunks > 64, "the test must exercise more than one flush"

    chunks = await _all_chunks(store, meta)
    ids: list[int] = []
    msisdns: list[str] = []
    for group in meta.groups:
        members = [r for n in group.chunks for r in chunks[n].recipients]
        assert group.count == len(members)
        assert group.zalo == sum(r.zalo for r in members)
        assert group.email == sum(bool(r.email) for r in members)
        for n in group.chunks:
            chunk = chunks[n]
            assert 0 < len(chunk.recipients) <= CHUNK_SIZE
            assert {(r.district, r.kind) for r in chunk.recipients} == {
                (group.district, group.kind)}
            ids += range(chunk.first_id, chunk.first_id + len(chunk.recipients))
            msisdns += [r.msisdn for r in chunk.recipients]
    assert sorted(ids) == list(range(expected.valid)), "ids are dense: no gap, no repeat"
    assert len(set(msisdns)) == len(msisdns) == expected.valid
    assert len({(g.district, g.kind) for g in meta.groups}) == len(meta.groups)

    # The per-group sums agree with the check's own counts.
    assert sum(g.zalo for g in meta.groups) == expected.zalo
    assert sum(g.email for g in meta.groups) == expected.email
    by_kind = Counter[str]()
    for g in meta.groups:
        by_kind[g.kind] += g.count
    assert dict(by_kind) == expected.by_kind


async def test_reimport_of_the_same_file_changes_nothing(
        store: Store, validator: Validator, numbering: Numbering, province: Province,
        tmp_path: Path) -> None:
    path = _generate(tmp_path / "audience.csv", numbering, province, count=600)
    first = await import_audience(path, store, validator, chunk_size=CHUNK_SIZE)
    meta_before = await store.audiences.meta()
    assert meta_before is not None
    chunks_before = await _all_chunks(store, meta_before)

    again = await import_audience(path, store, validator, chunk_size=CHUNK_SIZE)

    assert again.already_current
    assert again.version == first.version
    assert again.recipients == first.recipients
    assert again.chunks == first.chunks
    meta_after = await store.audiences.meta()
    assert meta_after == meta_before, "the stored meta (with its created_at) is untouched"
    assert await _all_chunks(store, meta_after) == chunks_before


async def test_a_changed_file_is_a_new_version_and_the_old_stays_readable(
        store: Store, validator: Validator, numbering: Numbering, province: Province,
        tmp_path: Path) -> None:
    old_path = _generate(tmp_path / "old.csv", numbering, province, count=500, seed=1)
    new_path = _generate(tmp_path / "new.csv", numbering, province, count=700, seed=2)
    old = await import_audience(old_path, store, validator, chunk_size=CHUNK_SIZE)
    old_meta = await store.audiences.meta()
    assert old_meta is not None
    old_chunks = await _all_chunks(store, old_meta)

    new = await import_audience(new_path, store, validator, chunk_size=CHUNK_SIZE)

    assert not new.already_current
    assert new.version != old.version
    current = await store.audiences.meta()
    assert current is not None and current.version == new.version
    assert current.count == new.recipients != old.recipients
    # The old version (which waves started earlier still read) is intact.
    assert await store.audiences.meta(old.version) == old_meta
    assert await _all_chunks(store, old_meta) == old_chunks
    new_chunks = await _all_chunks(store, current)
    assert {r.msisdn for c in new_chunks.values() for r in c.recipients} != {
        r.msisdn for c in old_chunks.values() for r in c.recipients}


async def test_a_missing_file_raises_audience_error_with_the_path(
        store: Store, validator: Validator, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "audience.csv"
    with pytest.raises(AudienceError) as info:
        await import_audience(missing, store, validator, chunk_size=CHUNK_SIZE)
    assert str(missing) in str(info.value)
    assert await store.audiences.meta() is None


async def test_a_directory_raises_audience_error_with_the_path(
        store: Store, validator: Validator, tmp_path: Path) -> None:
    with pytest.raises(AudienceError) as info:
        await import_audience(tmp_path, store, validator, chunk_size=CHUNK_SIZE)
    assert str(tmp_path) in str(info.value)
    assert await store.audiences.meta() is None


async def test_an_empty_file_raises_audience_error_and_keeps_the_current_version(
        store: Store, validator: Validator, numbering: Numbering, province: Province,
        tmp_path: Path) -> None:
    good = await import_audience(_generate(tmp_path / "a.csv", numbering, province, count=50),
                                 store, validator, chunk_size=CHUNK_SIZE)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(AudienceError) as info:
        await import_audience(empty, store, validator, chunk_size=CHUNK_SIZE)
    assert str(empty) in str(info.value)
    current = await store.audiences.meta()
    assert current is not None and current.version == good.version
