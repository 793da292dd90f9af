"""Ids already handled, shared by every process on the store: the delivery webhooks' dedup.

Zalo posts an event again when it got no 200 in time, possibly to another process behind the
same address; :meth:`first` answers, for a batch of ids in one command, which are new, and
remembers them. An id is remembered for at least ``hours`` hours and at most one hour more: ids
go into a hash per hour (since the epoch), the current hour's hash is checked with the ones
before it, and each hash expires after ``hours + 1`` hours. On Redis the hashes share the hash
tag ``{seen:<name>}``, so the one script works on Redis Cluster.

Each id is taken with a token (the caller's name for this attempt): an id already taken with
the same token is new again. A call whose answer was lost (a timeout while the script still ran)
can so be made again with the same tokens and answer the same, instead of finding its own ids
taken and passing nothing on; an id taken under another token (a real repeat) stays old.
"""

from __future__ import annotations

import itertools
import secrets
from typing import Any, Protocol

from dispatcher.store import keys

HOUR = 3600

# KEYS: the current hour's hash, then the earlier ones; ARGV: ttl in seconds, then id, token
# pairs. Answers 1 for each id not in any hash, or in one with the same token (and takes it in
# the current one), 0 for the others and for an id given again in the same call.
_FIRST = """
local ttl = tonumber(ARGV[1])
local out = {}
local taken = {}
for i = 2, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local new = 1
  if taken[id] then
    new = 0
  else
    for k = 1, #KEYS do
      local holder = redis.call('HGET', KEYS[k], id)
      if holder and holder ~= token then new = 0 break end
    end
  end
  if new == 1 then
    redis.call('HSET', KEYS[1], id, token)
    taken[id] = true
  end
  out[#out + 1] = new
end
redis.call('EXPIRE', KEYS[1], ttl)
return out
"""

_PROCESS = secrets.token_hex(4)
_COUNTER = itertools.count(1)


def new_token() -> str:
    """A token no other call (in this process or another) uses."""
    return f"{_PROCESS}{next(_COUNTER):x}"


class SeenIds(Protocol):
    hours: int

    async def first(self, ids: list[str], now: float,
                    tokens: list[str] | None = None) -> list[bool]:
        """For each id, whether it is new (not seen within the window, or taken with the same
        token); all are remembered. An id twice in ``ids`` is new at most once. Without
        ``tokens``, the call's ids share one fresh token."""

    async def forget(self, ids: list[str], now: float) -> None:
        """Forget ``ids`` (they were not processed after all: the next post is new)."""

    def keep(self, hours: int) -> None:
        """Remember ids for at least ``hours`` hours from now on (never fewer than before)."""


class RedisSeen:
    def __init__(self, client: Any, name: str, hours: int = 1) -> None:
        self._client = client
        self._script = client.register_script(_FIRST)
        self.name = name
        self.hours = hours

    def keep(self, hours: int) -> None:
        self.hours = max(self.hours, hours)

    def _keys(self, now: float) -> list[str]:
        hour = int(now // HOUR)
        return [keys.seen(self.name, hour - back) for back in range(self.hours + 1)]

    async def first(self, ids: list[str], now: float,
                    tokens: list[str] | None = None) -> list[bool]:
        if not ids:
            return []
        marks = tokens if tokens is not None else [new_token()] * len(ids)
        args: list[str | int] = [(self.hours + 1) * HOUR]
        for id_, token in zip(ids, marks, strict=True):
            args += (id_, token)
        answer = await self._script(keys=self._keys(now), args=args)
        return [bool(flag) for flag in answer]

    async def forget(self, ids: list[str], now: float) -> None:
        if ids:
            await self._client.hdel(self._keys(now)[0], *ids)


class MemorySeen:
    """The same in this process's memory (one process: the in-memory store)."""

    def __init__(self, hours: int = 1) -> None:
        self.hours = hours
        self._maps: dict[int, dict[str, str]] = {}

    def keep(self, hours: int) -> None:
        self.hours = max(self.hours, hours)

    def _window(self, now: float) -> list[dict[str, str]]:
        hour = int(now // HOUR)
        for old in [h for h in self._maps if h < hour - self.hours]:
            del self._maps[old]
        return [self._maps.setdefault(hour - back, {}) for back in range(self.hours + 1)]

    async def first(self, ids: list[str], now: float,
                    tokens: list[str] | None = None) -> list[bool]:
        window = self._window(now)
        marks = tokens if tokens is not None else [new_token()] * len(ids)
        out: list[bool] = []
        taken: set[str] = set()
        for id_, token in zip(ids, marks, strict=True):
            new = id_ not in taken and all(m.get(id_, token) == token for m in window)
            if new:
                window[0][id_] = token
                taken.add(id_)
            out.append(new)
        return out

    async def forget(self, ids: list[str], now: float) -> None:
        current = self._window(now)[0]
        for id_ in ids:
            current.pop(id_, None)
