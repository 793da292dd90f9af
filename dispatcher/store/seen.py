"""Ids already handled, shared by every process on the store: the delivery webhooks' dedup.

Zalo posts an event again when it got no 200 in time, possibly to another process behind the
same address; :meth:`first` answers, for a batch of ids in one command, which are new, and
remembers them. An id is remembered for at least ``hours`` hours and at most one hour more: ids
go into a set per hour (since the epoch), the current hour's set is checked with the ones before
it, and each set expires after ``hours + 1`` hours. On Redis the sets share the hash tag
``{seen:<name>}``, so the one script works on Redis Cluster.
"""

from __future__ import annotations

from typing import Any, Protocol

from dispatcher import keys

HOUR = 3600

# KEYS: the current hour's set, then the earlier ones; ARGV: ttl in seconds, then the ids.
# Answers 1 for each id not in any set (and adds it to the current one), 0 for the others.
_FIRST = """
local ttl = tonumber(ARGV[1])
local out = {}
for i = 2, #ARGV do
  local id = ARGV[i]
  local new = 1
  for k = 2, #KEYS do
    if redis.call('SISMEMBER', KEYS[k], id) == 1 then new = 0 break end
  end
  if new == 1 then new = redis.call('SADD', KEYS[1], id) end
  out[i - 1] = new
end
redis.call('EXPIRE', KEYS[1], ttl)
return out
"""


class SeenIds(Protocol):
    async def first(self, ids: list[str], now: float) -> list[bool]:
        """For each id, whether it is new (not seen within the window); all are remembered.
        An id twice in ``ids`` is new at most once."""

    async def forget(self, ids: list[str], now: float) -> None:
        """Forget ``ids`` (they were not processed after all: the next post is new)."""


class RedisSeen:
    def __init__(self, client: Any, name: str, hours: int = 1) -> None:
        self._client = client
        self._script = client.register_script(_FIRST)
        self.name = name
        self.hours = hours

    def _keys(self, now: float) -> list[str]:
        hour = int(now // HOUR)
        return [keys.seen(self.name, hour - back) for back in range(self.hours + 1)]

    async def first(self, ids: list[str], now: float) -> list[bool]:
        if not ids:
            return []
        answer = await self._script(keys=self._keys(now),
                                    args=[(self.hours + 1) * HOUR, *ids])
        return [bool(flag) for flag in answer]

    async def forget(self, ids: list[str], now: float) -> None:
        if ids:
            await self._client.srem(self._keys(now)[0], *ids)


class MemorySeen:
    """The same in this process's memory (one process: the in-memory store)."""

    def __init__(self, hours: int = 1) -> None:
        self.hours = hours
        self._sets: dict[int, set[str]] = {}

    def _window(self, now: float) -> list[set[str]]:
        hour = int(now // HOUR)
        for old in [h for h in self._sets if h < hour - self.hours]:
            del self._sets[old]
        return [self._sets.setdefault(hour - back, set()) for back in range(self.hours + 1)]

    async def first(self, ids: list[str], now: float) -> list[bool]:
        window = self._window(now)
        out: list[bool] = []
        for id_ in ids:
            new = not any(id_ in s for s in window)
            if new:
                window[0].add(id_)
            out.append(new)
        return out

    async def forget(self, ids: list[str], now: float) -> None:
        self._window(now)[0].difference_update(ids)
