"""The published public alerts (CAP messages), in memory and in Redis (:class:`CapStore`).

A message is kept once per identifier: :meth:`publish` writes it only when no message has its
identifier (HSETNX), and in the same step gives it the next number of the feed and makes it the
last message of its thread, so two processes publishing the same event at once publish it once,
and a restart publishes nothing twice. In Redis that step is one script on keys of one hash tag
(``{cap}``); messages are kept for good (a few a day).
"""

from __future__ import annotations

from typing import Any

import msgspec

from dispatcher.domain.cap import CapAlert, Published
from dispatcher.store import keys

_enc = msgspec.msgpack.Encoder()
_alert = msgspec.msgpack.Decoder(CapAlert)


class MemoryCap:
    def __init__(self) -> None:
        self._messages: dict[str, Published] = {}
        self._order: list[str] = []  # identifiers, in the order published
        self._threads: dict[str, str] = {}

    async def publish(self, alert: CapAlert) -> Published | None:
        if alert.identifier in self._messages:
            return None
        published = Published(len(self._order) + 1, alert)
        self._messages[alert.identifier] = published
        self._order.append(alert.identifier)
        self._threads[alert.thread] = alert.identifier
        return published

    async def get(self, identifier: str) -> Published | None:
        return self._messages.get(identifier)

    async def head(self, thread: str) -> Published | None:
        found = self._threads.get(thread)
        return self._messages.get(found) if found else None

    async def latest(self, limit: int = 30) -> list[Published]:
        return [self._messages[i] for i in self._order[::-1][:limit]]

    async def after(self, seq: int, limit: int = 100) -> list[Published]:
        return [self._messages[i] for i in self._order[max(seq, 0):max(seq, 0) + limit]]


_PUBLISH = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return 0
end
local seq = redis.call('INCR', KEYS[3])
redis.call('ZADD', KEYS[2], seq, ARGV[1])
redis.call('HSET', KEYS[4], ARGV[3], ARGV[1])
return seq
"""


class RedisCap:
    def __init__(self, client: Any) -> None:
        self._r = client
        self._publish = client.register_script(_PUBLISH)

    async def publish(self, alert: CapAlert) -> Published | None:
        seq = await self._publish(
            keys=[keys.CAP_MESSAGES, keys.CAP_ORDER, keys.CAP_SEQ, keys.CAP_THREADS],
            args=[alert.identifier, _enc.encode(alert), alert.thread])
        return Published(int(seq), alert) if seq else None

    async def _with_seq(self, identifiers: list[bytes], seqs: list[float]) -> list[Published]:
        if not identifiers:
            return []
        raw = await self._r.hmget(keys.CAP_MESSAGES, identifiers)
        return [Published(int(seq), _alert.decode(packed))
                for packed, seq in zip(raw, seqs, strict=True) if packed]

    async def get(self, identifier: str) -> Published | None:
        async with self._r.pipeline(transaction=False) as pipe:
            pipe.hget(keys.CAP_MESSAGES, identifier).zscore(keys.CAP_ORDER, identifier)
            packed, seq = await pipe.execute()
        return Published(int(seq), _alert.decode(packed)) if packed and seq else None

    async def head(self, thread: str) -> Published | None:
        found = await self._r.hget(keys.CAP_THREADS, thread)
        return await self.get(found.decode()) if found else None

    async def latest(self, limit: int = 30) -> list[Published]:
        pairs = await self._r.zrevrange(keys.CAP_ORDER, 0, limit - 1, withscores=True)
        return await self._with_seq([i for i, _ in pairs], [s for _, s in pairs])

    async def after(self, seq: int, limit: int = 100) -> list[Published]:
        pairs = await self._r.zrangebyscore(keys.CAP_ORDER, f"({seq}", "+inf", start=0,
                                            num=limit, withscores=True)
        return await self._with_seq([i for i, _ in pairs], [s for _, s in pairs])
