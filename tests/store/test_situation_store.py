"""The situation record's store: the contract both stores pass (memory, Redis, Redis Cluster)."""

from __future__ import annotations

import datetime as dt

import pytest

from dispatcher.domain import situation
from dispatcher.domain.situation import Situation, SituationVersion
from dispatcher.store import Store

T0 = dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.UTC)


def version(n: int, by: str = "op") -> SituationVersion:
    record = Situation(cases_today=n, cases_total=100 + n, date=dt.date(2026, 12, 7),
                       hotline="1900 9095", areas=["Hạ Long", "Cẩm Phả"],
                       fields={"advice": f"Khuyến cáo số {n}"})
    return SituationVersion(record, T0 + dt.timedelta(minutes=n), by)


async def test_situation_is_none_at_first(store: Store) -> None:
    assert await store.situation.get() is None
    assert await store.situation.history() == []


async def test_situation_set_get_and_history_newest_first(store: Store) -> None:
    versions = [version(1, "an"), version(2, "binh"), version(3, "an")]
    for v in versions:
        await store.situation.set(v)
    assert await store.situation.get() == versions[-1]
    assert await store.situation.history() == versions[::-1]
    assert await store.situation.history(limit=1) == [versions[-1]]
    current = await store.situation.get()
    assert current is not None
    assert current.situation.fields == {"advice": "Khuyến cáo số 3"}
    assert current.situation.date == dt.date(2026, 12, 7)


async def test_situation_history_keeps_the_last_versions(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("dispatcher.store.situation.HISTORY_KEPT", 5)
    for n in range(12):
        await store.situation.set(version(n))
    history = await store.situation.history(limit=100)
    assert [v.situation.cases_today for v in history] == [11, 10, 9, 8, 7]
    current = await store.situation.get()
    assert current is not None and current.situation.cases_today == 11
    assert situation.HISTORY_KEPT == 365
