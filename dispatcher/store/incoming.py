"""Messages and events from citizens, and the opt-outs among them, kept for a bounded time.

In Redis each is a stream (:data:`~dispatcher.store.keys.INCOMING`, ``INCOMING_OPT_OUTS``, one
hash tag): a batch is added in one pipeline, every entry trimmed past ``retention_days`` (by the
entry ids, which are the server's milliseconds) and the stream capped at ``max_items`` (a flood
costs bounded memory). Entries are listed newest first in pages; the cursor is the last id
read. The memory twin keeps the same order, ids, trimming and pages.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from dispatcher.domain.incoming import DEFAULT_RETENTION_DAYS, Incoming, IncomingPage
from dispatcher.domain.model import Channel
from dispatcher.domain.optout import OptOut
from dispatcher.store import keys

DEFAULT_MAX_ITEMS = 1_000_000
READS_PER_PAGE = 5  # stream reads a filtered page may take (it may come back short)

_enc = msgspec.msgpack.Encoder()
_item = msgspec.msgpack.Decoder(Incoming)
_optout = msgspec.msgpack.Decoder(OptOut)


def _ms(id_: str) -> tuple[int, int]:
    ms, _, seq = id_.partition("-")
    return int(ms), int(seq or 0)


class Retention(msgspec.Struct, frozen=True):
    days: float = DEFAULT_RETENTION_DAYS
    max_items: int = DEFAULT_MAX_ITEMS

    def cutoff_ms(self, now: float) -> int:
        return int((now - self.days * 86400) * 1000)


class MemoryIncoming:
    def __init__(self, retention: Retention | None = None) -> None:
        self.retention = retention or Retention()
        self._items: list[tuple[tuple[int, int], Incoming]] = []  # oldest first
        self._opt_outs: list[tuple[tuple[int, int], OptOut]] = []
        self._last = (0, 0)

    def _next_id(self, now: float) -> tuple[int, int]:
        ms = int(now * 1000)
        self._last = (ms, 0) if ms > self._last[0] else (self._last[0], self._last[1] + 1)
        return self._last

    def _trim(self, entries: list[Any], now: float) -> None:
        cutoff = self.retention.cutoff_ms(now)
        drop = 0
        while drop < len(entries) and entries[drop][0][0] < cutoff:
            drop += 1
        del entries[:max(drop, len(entries) - self.retention.max_items)]

    async def add(self, items: list[Incoming], now: float | None = None) -> None:
        now = time.time() if now is None else now
        for item in items:
            self._items.append((self._next_id(time.time()), item))
        self._trim(self._items, now)

    async def record_opt_outs(self, opt_outs: list[OptOut], now: float | None = None) -> None:
        now = time.time() if now is None else now
        for opt_out in opt_outs:
            self._opt_outs.append((self._next_id(time.time()), opt_out))
        self._trim(self._opt_outs, now)

    async def page(self, channel: Channel | None = None, cursor: str = "",
                   limit: int = 50) -> IncomingPage:
        before = _ms(cursor) if cursor else None
        found: list[Incoming] = []
        last = ""
        for id_, item in reversed(self._items):
            if before is not None and id_ >= before:
                continue
            last = f"{id_[0]}-{id_[1]}"
            if channel is None or item.channel == channel:
                found.append(msgspec.structs.replace(item, id=last))
                if len(found) == limit:
                    break
        more = bool(found) and len(found) == limit and any(
            i < _ms(last) for i, _ in self._items)
        return IncomingPage(found, last if more else "")

    async def opt_outs(self, limit: int = 100) -> list[OptOut]:
        return [o for _, o in reversed(self._opt_outs)][:limit]


class RedisIncoming:
    def __init__(self, client: Any, retention: Retention | None = None) -> None:
        self._r = client
        self.retention = retention or Retention()

    async def _append(self, key: str, values: list[bytes], now: float | None) -> None:
        now = time.time() if now is None else now
        cutoff = self.retention.cutoff_ms(now)
        async with self._r.pipeline(transaction=False) as pipe:
            for value in values:
                pipe.xadd(key, {b"m": value})
            pipe.xtrim(key, minid=cutoff, approximate=False)
            pipe.xtrim(key, maxlen=self.retention.max_items, approximate=True)
            await pipe.execute()

    async def add(self, items: list[Incoming], now: float | None = None) -> None:
        if items:
            await self._append(keys.INCOMING, [_enc.encode(i) for i in items], now)

    async def record_opt_outs(self, opt_outs: list[OptOut], now: float | None = None) -> None:
        if opt_outs:
            await self._append(keys.INCOMING_OPT_OUTS, [_enc.encode(o) for o in opt_outs], now)

    async def page(self, channel: Channel | None = None, cursor: str = "",
                   limit: int = 50) -> IncomingPage:
        found: list[Incoming] = []
        top = f"({cursor}" if cursor else "+"
        last = ""
        for _ in range(READS_PER_PAGE):
            want = limit - len(found)
            rows = await self._r.xrevrange(keys.INCOMING, top, "-", count=want)
            for raw_id, fields in rows:
                last = raw_id.decode()
                item = _item.decode(fields[b"m"])
                if channel is None or item.channel == channel:
                    found.append(msgspec.structs.replace(item, id=last))
            if len(rows) < want or len(found) == limit:
                more = len(rows) == want
                break
            top = f"({last}"
        else:
            more = True
        if more and last:
            more = bool(await self._r.xrevrange(keys.INCOMING, f"({last}", "-", count=1))
        return IncomingPage(found, last if more else "")

    async def opt_outs(self, limit: int = 100) -> list[OptOut]:
        rows = await self._r.xrevrange(keys.INCOMING_OPT_OUTS, "+", "-", count=limit)
        return [_optout.decode(fields[b"m"]) for _, fields in rows]
