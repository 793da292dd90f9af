"""The checklist's store: the contract both stores pass (memory, Redis, Redis Cluster)."""

from __future__ import annotations

import asyncio
import datetime as dt

import redis

from dispatcher.domain.checklist import KEEP_DAYS, Done
from dispatcher.domain.reminder import Reminded
from dispatcher.store import RedisStore, Store, keys

DAY = dt.date(2021, 7, 26)
T0 = dt.datetime(2021, 7, 26, 2, 0, tzinfo=dt.UTC)


def done(item: str, minute: int = 0, by: str = "olga", day: dt.date = DAY) -> Done:
    return Done(item=item, date=day, at=T0 + dt.timedelta(minutes=minute), by=by,
                unit="Sở Y tế", note=f"Đã làm {item}\nghi chú hai dòng")


async def test_marks_are_kept_by_day_oldest_first(store: Store) -> None:
    assert await store.checklist.marks(DAY) == []
    assert await store.checklist.mark(done("L2-hotline", 5)) is None
    assert await store.checklist.mark(done("L2-press-release", 1)) is None
    assert await store.checklist.mark(done("L2-hotline", 0, day=DAY + dt.timedelta(1))) is None
    assert [m.item for m in await store.checklist.marks(DAY)] == ["L2-press-release",
                                                                  "L2-hotline"]
    marks = await store.checklist.marks(DAY + dt.timedelta(1))
    assert marks == [done("L2-hotline", 0, day=DAY + dt.timedelta(1))]
    assert marks[0].note == "Đã làm L2-hotline\nghi chú hai dòng"


async def test_an_item_is_marked_once_a_day_the_second_is_told_whose(store: Store) -> None:
    first, second = done("L2-press-release", 1, "olga"), done("L2-press-release", 2, "an")
    assert await store.checklist.mark(first) is None
    assert await store.checklist.mark(second) == first
    assert await store.checklist.marks(DAY) == [first]


async def test_two_marks_at_once_leave_one(store: Store) -> None:
    answers = await asyncio.gather(*(store.checklist.mark(done("L4-hotline", n, f"u{n}"))
                                     for n in range(8)))
    kept = await store.checklist.marks(DAY)
    assert len(kept) == 1 and answers.count(None) == 1
    assert all(a == kept[0] for a in answers if a is not None)


async def test_undo_removes_the_mark_once(store: Store) -> None:
    mark = done("L2-hotline")
    await store.checklist.mark(mark)
    assert await store.checklist.unmark(DAY, "L2-hotline") == mark
    assert await store.checklist.unmark(DAY, "L2-hotline") is None
    assert await store.checklist.marks(DAY) == []
    assert await store.checklist.mark(done("L2-hotline", 3, "an")) is None  # marked again


async def test_reminders_are_kept_by_day_and_unit(store: Store) -> None:
    assert await store.checklist.reminded(DAY) == {}
    sent = Reminded(unit="Sở Y tế", at=T0)
    refused = Reminded(unit="UBND các xã, phường, thị trấn", at=T0, sent=False,
                       reason="SMTP 550: no such mailbox")
    await store.checklist.record_reminder(DAY, sent)
    await store.checklist.record_reminder(DAY, refused)
    assert await store.checklist.reminded(DAY) == {sent.unit: sent, refused.unit: refused}
    assert await store.checklist.reminded(DAY + dt.timedelta(1)) == {}


async def test_a_day_s_keys_expire_after_the_days_kept(redis_url: str) -> None:
    store = RedisStore(redis_url)
    try:
        today = dt.datetime.now(dt.UTC).date()
        await store.checklist.mark(done("L1-hotline", day=today))
        await store.checklist.record_reminder(today, Reminded(unit="Sở Y tế", at=T0))
    finally:
        await store.aclose()
    client = redis.Redis.from_url(redis_url)
    try:
        for key in (keys.checklist_marks(today.isoformat()),
                    keys.checklist_reminded(today.isoformat())):
            ttl = client.ttl(key)
            assert KEEP_DAYS * 86_400 <= ttl <= (KEEP_DAYS + 2) * 86_400, (key, ttl)
    finally:
        client.close()
