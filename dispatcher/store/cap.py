"""The published public alerts (CAP messages), in memory and in Redis (:class:`CapStore`).

A message is kept once per identifier: :meth:`publish` writes it only when no message has its
identifier (HSETNX), and in the same step gives it the next number of the feed and makes it the
last message of its thread, so two processes publishing the same event at once publish it once,
and a restart publishes nothing twice. In Redis that step is one script on keys of one hash tag
(``{cap}``). Messages are kept until the engine removes those its retention rule lets go
(:mod:`dispatcher.domain.capretention`), many in one script (:meth:`RedisCap.prune`); the
numbers of the others never change.
"""

from __future__ import annotations

import itertools
from typing import Any

import msgspec

from dispatcher.domain.cap import CapAlert, Published
from dispatcher.store import keys

_enc = msgspec.msgpack.Encoder()
_alert = msgspec.msgpack.Decoder(CapAlert)


class MemoryCap:
    def __init__(self) -> None:
        self._messages: dict[str, Published] = {}
        self._order: dict[int, str] = {}  # number -> identifier, in the order published
        self._seq = 0
        self._threads: dict[str, str] = {}

    async def publish(self, alert: CapAlert) -> Published | None:
        if alert.identifier in self._messages:
            return None
        self._seq += 1
        published = Published(self._seq, alert)
        self._messages[alert.identifier] = published
        self._order[self._seq] = alert.identifier
        self._threads[alert.thread] = alert.identifier
        return published

    async def get(self, identifier: str) -> Published | None:
        return self._messages.get(identifier)

    async def head(self, thread: str) -> Published | None:
        found = self._threads.get(thread)
        return self._messages.get(found) if found else None

    async def heads(self) -> dict[str, str]:
        return dict(self._threads)

    async def latest(self, limit: int = 30) -> list[Published]:
        return [self._messages[i] for i in itertools.islice(reversed(self._order.values()),
                                                             limit)]

    async def after(self, seq: int, limit: int = 100) -> list[Published]:
        return list(itertools.islice((self._messages[i] for n, i in self._order.items()
                                      if n > seq), limit))

    async def prune(self, alerts: list[CapAlert]) -> int:
        removed = 0
        for alert in alerts:
            found = self._messages.pop(alert.identifier, None)
            if found is None:
                continue
            removed += 1
            del self._order[found.seq]
            if self._threads.get(alert.thread) == alert.identifier:
                del self._threads[alert.thread]
        return removed


_PUBLISH = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return 0
end
local seq = redis.call('INCR', KEYS[3])
redis.call('ZADD', KEYS[2], seq, ARGV[1])
redis.call('HSET', KEYS[4], ARGV[3], ARGV[1])
return seq
"""


#: Remove messages. KEYS: messages, order, threads. ARGV: pairs of (identifier, thread); a
#: thread whose last message goes loses its head. Answers how many messages were there.
_PRUNE = """
local removed = 0
for i = 1, #ARGV, 2 do
  local id = ARGV[i]
  removed = removed + redis.call('HDEL', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
  if redis.call('HGET', KEYS[3], ARGV[i + 1]) == id then
    redis.call('HDEL', KEYS[3], ARGV[i + 1])
  end
end
return removed
"""


class RedisCap:
    def __init__(self, client: Any) -> None:
        self._r = client
        self._publish = client.register_script(_PUBLISH)
        self._prune = client.register_script(_PRUNE)

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

    async def heads(self) -> dict[str, str]:
        found = await self._r.hgetall(keys.CAP_THREADS)
        return {thread.decode(): ident.decode() for thread, ident in found.items()}

    async def prune(self, alerts: list[CapAlert]) -> int:
        if not alerts:
            return 0
        args = [part for alert in alerts for part in (alert.identifier, alert.thread)]
        return int(await self._prune(
            keys=[keys.CAP_MESSAGES, keys.CAP_ORDER, keys.CAP_THREADS], args=args))

    async def latest(self, limit: int = 30) -> list[Published]:
        pairs = await self._r.zrevrange(keys.CAP_ORDER, 0, limit - 1, withscores=True)
        return await self._with_seq([i for i, _ in pairs], [s for _, s in pairs])

    async def after(self, seq: int, limit: int = 100) -> list[Published]:
        pairs = await self._r.zrangebyscore(keys.CAP_ORDER, f"({seq}", "+inf", start=0,
                                            num=limit, withscores=True)
        return await self._with_seq([i for i, _ in pairs], [s for _, s in pairs])
