"""The checklist's marks and the reminders sent, kept by date (:class:`ChecklistStore`).

A day's marks are one hash (item -> mark) and its reminders another (unit -> what became of the
reminder); both expire :data:`~dispatcher.domain.checklist.KEEP_DAYS` days after the day. A
mark is written only if its item has none that day (HSETNX), so two units marking the same item
at once leave one mark, and the other is told whose.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec

from dispatcher.domain.checklist import KEEP_DAYS, Done
from dispatcher.domain.reminder import Reminded
from dispatcher.store import keys

_enc = msgspec.msgpack.Encoder()
_done = msgspec.msgpack.Decoder(Done)
_reminded = msgspec.msgpack.Decoder(Reminded)


def _ttl(day: dt.date) -> int:
    """Seconds from now until ``KEEP_DAYS`` after the day (at least a day)."""
    until = dt.datetime.combine(day + dt.timedelta(days=KEEP_DAYS + 1), dt.time(),
                                tzinfo=dt.UTC)
    return max(86_400, int((until - dt.datetime.now(dt.UTC)).total_seconds()))


class MemoryChecklist:
    def __init__(self) -> None:
        self._marks: dict[dt.date, dict[str, Done]] = {}
        self._reminded: dict[dt.date, dict[str, Reminded]] = {}

    async def mark(self, done: Done) -> Done | None:
        day = self._marks.setdefault(done.date, {})
        if done.item in day:
            return day[done.item]
        day[done.item] = done
        return None

    async def unmark(self, day: dt.date, item: str) -> Done | None:
        return self._marks.get(day, {}).pop(item, None)

    async def marks(self, day: dt.date) -> list[Done]:
        return sorted(self._marks.get(day, {}).values(), key=lambda d: d.at)

    async def reminded(self, day: dt.date) -> dict[str, Reminded]:
        return dict(self._reminded.get(day, {}))

    async def record_reminder(self, day: dt.date, reminded: Reminded) -> None:
        self._reminded.setdefault(day, {})[reminded.unit] = reminded


class RedisChecklist:
    def __init__(self, client: Any) -> None:
        self._r = client

    async def mark(self, done: Done) -> Done | None:
        key = keys.checklist_marks(done.date.isoformat())
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.hsetnx(key, done.item, _enc.encode(done)).hget(key, done.item)
            pipe.expire(key, _ttl(done.date))
            written, there, _ = await pipe.execute()
        return None if written else _done.decode(there)

    async def unmark(self, day: dt.date, item: str) -> Done | None:
        key = keys.checklist_marks(day.isoformat())
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.hget(key, item).hdel(key, item)
            there, _ = await pipe.execute()
        return _done.decode(there) if there else None

    async def marks(self, day: dt.date) -> list[Done]:
        found = await self._r.hvals(keys.checklist_marks(day.isoformat()))
        return sorted((_done.decode(x) for x in found), key=lambda d: d.at)

    async def reminded(self, day: dt.date) -> dict[str, Reminded]:
        found = await self._r.hvals(keys.checklist_reminded(day.isoformat()))
        return {r.unit: r for r in (_reminded.decode(x) for x in found)}

    async def record_reminder(self, day: dt.date, reminded: Reminded) -> None:
        key = keys.checklist_reminded(day.isoformat())
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.hset(key, reminded.unit, _enc.encode(reminded)).expire(key, _ttl(day))
            await pipe.execute()
