"""The suppression lists, in memory and in Redis (:class:`SuppressionStore`).

In Redis each channel's list is a hash, number -> entry (msgpack), and a sorted set of the
numbers (all scores 0) that pages read in order with ``ZRANGEBYLEX``; both under the hash tag
``{supp:<channel>}``, so an add or a remove is one transaction on Redis Cluster too. The fan-out
asks the list about a whole step of recipients with one ``HMGET`` (:meth:`mask`): the reply is
a nil for each number not on it, which is nearly all of them.
"""

from __future__ import annotations

import bisect
from typing import Any

import msgspec

from dispatcher.domain.errors import InputError
from dispatcher.domain.model import PERSONAL, Channel
from dispatcher.domain.suppression import Suppression
from dispatcher.store import keys

_enc = msgspec.msgpack.Encoder()
_entry = msgspec.msgpack.Decoder(Suppression)
CURSOR_MAX = 200

# KEYS: order, entries. ARGV: after (exclusive, '' from the start), limit.
# The entries of the first numbers after ``after``, in order.
_PAGE = """
local start = ARGV[1] == '' and '-' or ('(' .. ARGV[1])
local numbers = redis.call('ZRANGEBYLEX', KEYS[1], start, '+', 'LIMIT', 0, ARGV[2])
if #numbers == 0 then return {} end
return redis.call('HMGET', KEYS[2], unpack(numbers))
"""


def _check_cursor(cursor: str) -> str:
    if len(cursor) > CURSOR_MAX or any(c in cursor for c in "\r\n"):
        raise InputError(f"{cursor[:40]!r} is not a cursor a page of the list gave",
                         field="cursor")
    return cursor


class SuppressionPage(msgspec.Struct, frozen=True):
    entries: list[Suppression]
    cursor: str = ""  # the next page's ("": none)


class MemorySuppressions:
    def __init__(self) -> None:
        self._lists: dict[Channel, dict[str, Suppression]] = {c: {} for c in Channel}
        self._order: dict[Channel, list[str]] = {c: [] for c in Channel}

    async def add(self, entries: list[Suppression]) -> int:
        added = 0
        for e in entries:
            on = self._lists[e.channel]
            if e.number not in on:
                bisect.insort(self._order[e.channel], e.number)
                added += 1
            on[e.number] = e
        return added

    async def remove(self, channel: Channel, number: str) -> Suppression | None:
        gone = self._lists[channel].pop(number, None)
        if gone is not None:
            self._order[channel].remove(number)
        return gone

    async def mask(self, channel: Channel, numbers: list[str]) -> list[bool]:
        on = self._lists[channel]
        return [n in on for n in numbers]

    async def lookup(self, number: str) -> list[Suppression]:
        return [on[number] for on in self._lists.values() if number in on]

    async def count(self, channel: Channel) -> int:
        return len(self._lists[channel])

    async def page(self, channel: Channel, cursor: str = "", limit: int = 100) -> SuppressionPage:
        order = self._order[channel]
        start = bisect.bisect_right(order, _check_cursor(cursor)) if cursor else 0
        numbers = order[start:start + limit]
        more = start + limit < len(order)
        return SuppressionPage([self._lists[channel][n] for n in numbers],
                               numbers[-1] if more and numbers else "")


class RedisSuppressions:
    def __init__(self, client: Any) -> None:
        self._r = client
        self._page = client.register_script(_PAGE)

    async def add(self, entries: list[Suppression]) -> int:
        by_channel: dict[Channel, dict[str, Suppression]] = {}
        for e in entries:
            by_channel.setdefault(e.channel, {})[e.number] = e
        added = 0
        for channel, on in by_channel.items():  # one transaction per channel (one slot)
            async with self._r.pipeline(transaction=True) as pipe:
                pipe.hset(keys.suppressed(channel),
                          mapping={n: _enc.encode(e) for n, e in on.items()})
                pipe.zadd(keys.suppressed_order(channel), dict.fromkeys(on, 0))
                added += int((await pipe.execute())[0])
        return added

    async def remove(self, channel: Channel, number: str) -> Suppression | None:
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.hget(keys.suppressed(channel), number)
            pipe.hdel(keys.suppressed(channel), number)
            pipe.zrem(keys.suppressed_order(channel), number)
            raw, _, _ = await pipe.execute()
        return _entry.decode(raw) if raw else None

    async def mask(self, channel: Channel, numbers: list[str]) -> list[bool]:
        if not numbers:
            return []
        return [x is not None for x in await self._r.hmget(keys.suppressed(channel), numbers)]

    async def lookup(self, number: str) -> list[Suppression]:
        async with self._r.pipeline(transaction=False) as pipe:
            for channel in PERSONAL:
                pipe.hget(keys.suppressed(channel), number)
            return [_entry.decode(raw) for raw in await pipe.execute() if raw]

    async def count(self, channel: Channel) -> int:
        return int(await self._r.hlen(keys.suppressed(channel)))

    async def page(self, channel: Channel, cursor: str = "", limit: int = 100) -> SuppressionPage:
        raw = await self._page(keys=[keys.suppressed_order(channel), keys.suppressed(channel)],
                               args=[_check_cursor(cursor), limit + 1])
        entries = [_entry.decode(x) for x in raw if x is not None]
        if len(entries) <= limit:
            return SuppressionPage(entries)
        return SuppressionPage(entries[:limit], entries[limit - 1].number)
