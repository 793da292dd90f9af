"""What the carriers' broadcast centres took, in memory and in Redis (:class:`BroadcastStore`).

A broadcast (:class:`dispatcher.domain.broadcast.Broadcast`) is kept once per (wave, carrier):
:meth:`add` writes only those not there (HSETNX), so two processes recording the same acceptance
record it once. Its state is written over by :meth:`put` (the one process that reads the states
at a time, under a lease); its Cancel is kept apart by :meth:`withdrawn`, once (HSETNX again):
the first Cancel a CBC took is the one recorded, and no later write of the state takes it away.
An operator's request to withdraw a wave's broadcasts is kept once per wave (:meth:`request`).
In Redis the keys share the hash tag ``{cb}``; records are kept for good (a few a day).
"""

from __future__ import annotations

from typing import Any

import msgspec

from dispatcher.domain.broadcast import Broadcast, Request, Withdrawal, key
from dispatcher.store import keys

_enc = msgspec.msgpack.Encoder()
_broadcast = msgspec.msgpack.Decoder(Broadcast)
_withdrawal = msgspec.msgpack.Decoder(Withdrawal)
_request = msgspec.msgpack.Decoder(Request)


def _stored(broadcast: Broadcast) -> Broadcast:
    """The record as kept: its Cancel is kept apart."""
    return msgspec.structs.replace(broadcast, withdrawal=None) if broadcast.withdrawal else (
        broadcast)


def _joined(broadcast: Broadcast, withdrawal: Withdrawal | None) -> Broadcast:
    return msgspec.structs.replace(broadcast, withdrawal=withdrawal) if withdrawal else broadcast


class MemoryBroadcasts:
    def __init__(self) -> None:
        self._records: dict[str, Broadcast] = {}
        self._withdrawals: dict[str, Withdrawal] = {}
        self._requests: dict[str, Request] = {}

    async def request(self, wave: str, request: Request) -> bool:
        if wave in self._requests:
            return False
        self._requests[wave] = request
        return True

    async def requests(self) -> dict[str, Request]:
        return dict(self._requests)

    async def add(self, broadcasts: list[Broadcast]) -> int:
        added = 0
        for broadcast in broadcasts:
            if broadcast.key not in self._records:
                self._records[broadcast.key] = _stored(broadcast)
                added += 1
        return added

    async def put(self, broadcast: Broadcast) -> None:
        self._records[broadcast.key] = _stored(broadcast)

    async def withdrawn(self, wave: str, carrier: str, withdrawal: Withdrawal) -> bool:
        found = key(wave, carrier)
        if found in self._withdrawals:
            return False
        self._withdrawals[found] = withdrawal
        return True

    async def get(self, pairs: list[tuple[str, str]]) -> list[Broadcast | None]:
        found: list[Broadcast | None] = []
        for wave, carrier in pairs:
            record = self._records.get(key(wave, carrier))
            found.append(None if record is None else _joined(
                record, self._withdrawals.get(record.key)))
        return found

    async def latest(self, limit: int = 100, wave: str = "") -> list[Broadcast]:
        chosen = [r for r in self._records.values() if not wave or r.wave == wave]
        chosen.sort(key=lambda r: (-r.seen_at, r.wave, r.carrier))
        return [_joined(r, self._withdrawals.get(r.key)) for r in chosen[:limit]]


class RedisBroadcasts:
    def __init__(self, client: Any) -> None:
        self._r = client
        self._add = client.register_script(_ADD)

    async def request(self, wave: str, request: Request) -> bool:
        return bool(await self._r.hsetnx(keys.CB_REQUESTS, wave, _enc.encode(request)))

    async def requests(self) -> dict[str, Request]:
        found = await self._r.hgetall(keys.CB_REQUESTS)
        return {wave.decode(): _request.decode(packed) for wave, packed in found.items()}

    async def add(self, broadcasts: list[Broadcast]) -> int:
        if not broadcasts:
            return 0
        args: list[Any] = []
        for broadcast in broadcasts:
            args += [broadcast.key, _enc.encode(_stored(broadcast)), broadcast.seen_at]
        return int(await self._add(keys=[keys.CB_RECORDS, keys.CB_ORDER], args=args))

    async def put(self, broadcast: Broadcast) -> None:
        await self._r.hset(keys.CB_RECORDS, broadcast.key, _enc.encode(_stored(broadcast)))

    async def withdrawn(self, wave: str, carrier: str, withdrawal: Withdrawal) -> bool:
        return bool(await self._r.hsetnx(keys.CB_WITHDRAWALS, key(wave, carrier),
                                         _enc.encode(withdrawal)))

    async def get(self, pairs: list[tuple[str, str]]) -> list[Broadcast | None]:
        if not pairs:
            return []
        names = [key(wave, carrier) for wave, carrier in pairs]
        async with self._r.pipeline(transaction=False) as pipe:
            pipe.hmget(keys.CB_RECORDS, names).hmget(keys.CB_WITHDRAWALS, names)
            records, withdrawals = await pipe.execute()
        return [None if packed is None else _joined(
            _broadcast.decode(packed), _withdrawal.decode(w) if w else None)
            for packed, w in zip(records, withdrawals, strict=True)]

    async def latest(self, limit: int = 100, wave: str = "") -> list[Broadcast]:
        if wave:  # a wave's few carriers, among the newest (a wave is found while it is recent)
            names = await self._r.zrevrange(keys.CB_ORDER, 0, -1)
            names = [n for n in names if n.decode().split(" ", 1)[0] == wave][:limit]
        else:
            names = await self._r.zrevrange(keys.CB_ORDER, 0, limit - 1)
        pairs = [tuple(n.decode().split(" ", 1)) for n in names]
        found = await self.get([(w, c) for w, c in pairs])
        return [b for b in found if b is not None]


# KEYS: records, order; ARGV: (key, packed, seen_at) ...: the records not there yet
_ADD = """
local added = 0
for i = 1, #ARGV, 3 do
  if redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1]) == 1 then
    redis.call('ZADD', KEYS[2], ARGV[i + 2], ARGV[i])
    added = added + 1
  end
end
return added
"""
