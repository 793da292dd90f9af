"""Where each public Wi-Fi controller stands in the feed of public messages, in memory and in
Redis (:class:`WifiCursors`).

A controller's cursor is the number (:attr:`dispatcher.domain.cap.Published.seq`) of the last
message it took. It only moves forward: :meth:`advance` keeps the larger of the cursor and the
number given, in one step (a script in Redis), so two pushers that both saw a controller take a
message, or a late one that finishes after another moved on, never move it back.
"""

from __future__ import annotations

from typing import Any

from dispatcher.store import keys


class MemoryWifi:
    def __init__(self) -> None:
        self._cursors: dict[str, int] = {}

    async def cursors(self) -> dict[str, int]:
        return dict(self._cursors)

    async def advance(self, controller: str, seq: int) -> int:
        found = max(self._cursors.get(controller, 0), seq)
        self._cursors[controller] = found
        return found


_ADVANCE = """
local found = redis.call('HGET', KEYS[1], ARGV[1])
local seq = tonumber(ARGV[2])
if not found or seq > tonumber(found) then
  redis.call('HSET', KEYS[1], ARGV[1], seq)
  return seq
end
return tonumber(found)
"""


class RedisWifi:
    def __init__(self, client: Any) -> None:
        self._r = client
        self._advance = client.register_script(_ADVANCE)

    async def cursors(self) -> dict[str, int]:
        found = await self._r.hgetall(keys.WIFI_CURSORS)
        return {k.decode(): int(v) for k, v in found.items()}

    async def advance(self, controller: str, seq: int) -> int:
        return int(await self._advance(keys=[keys.WIFI_CURSORS], args=[controller, seq]))
