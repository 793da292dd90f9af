"""The situation record and its history, in memory and in Redis (:class:`SituationStore`).

Each set makes the record current and puts it at the head of its history, which keeps the last
:data:`~dispatcher.domain.situation.HISTORY_KEPT` versions; in Redis both happen in one
transaction, so the current record is always the newest version of the history.
"""

from __future__ import annotations

from typing import Any

import msgspec

from dispatcher.domain.situation import HISTORY_KEPT, SituationVersion
from dispatcher.store import keys

_enc = msgspec.msgpack.Encoder()
_version = msgspec.msgpack.Decoder(SituationVersion)


class MemorySituation:
    def __init__(self) -> None:
        self._history: list[SituationVersion] = []  # newest last

    async def get(self) -> SituationVersion | None:
        return self._history[-1] if self._history else None

    async def set(self, version: SituationVersion) -> None:
        self._history.append(version)
        del self._history[:-HISTORY_KEPT]

    async def history(self, limit: int = 100) -> list[SituationVersion]:
        return self._history[::-1][:limit]


class RedisSituation:
    def __init__(self, client: Any) -> None:
        self._r = client

    async def get(self) -> SituationVersion | None:
        raw = await self._r.get(keys.SITUATION)
        return _version.decode(raw) if raw else None

    async def set(self, version: SituationVersion) -> None:
        packed = _enc.encode(version)
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.set(keys.SITUATION, packed).lpush(keys.SITUATION_HISTORY, packed)
            pipe.ltrim(keys.SITUATION_HISTORY, 0, HISTORY_KEPT - 1)
            await pipe.execute()

    async def history(self, limit: int = 100) -> list[SituationVersion]:
        raw = await self._r.lrange(keys.SITUATION_HISTORY, 0, min(limit, HISTORY_KEPT) - 1)
        return [_version.decode(x) for x in raw]
