"""The versions of the plan's texts and the one in force per level and channel, in memory and
in Redis (:class:`~dispatcher.store.base.PlanTextStore`).

Every version is kept. A decision (approval or rejection) replaces a proposed version only
while it is still proposed, and an approval makes it the text in force of its level and
channel in the same step (one script in Redis: all keys share the ``{plantexts}`` tag).
"""

from __future__ import annotations

from typing import Any

import msgspec

from dispatcher.domain.model import Channel
from dispatcher.domain.textedits import TextState, TextVersion, force_key
from dispatcher.store import keys

_enc = msgspec.msgpack.Encoder()
_version = msgspec.msgpack.Decoder(TextVersion)

# KEYS: versions, states, in force. ARGV: id, packed version, new state, force key.
_DECIDE = """
if redis.call('HGET', KEYS[2], ARGV[1]) ~= 'proposed' then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
if ARGV[3] == 'approved' then redis.call('HSET', KEYS[3], ARGV[4], ARGV[1]) end
return 1
"""


def _newest_first(found: list[TextVersion], level: int | None,
                  channel: Channel | None) -> list[TextVersion]:
    chosen = [v for v in found if (level is None or v.level == level)
              and (channel is None or v.channel == channel)]
    return sorted(chosen, key=lambda v: (v.proposed_at, v.id), reverse=True)


class MemoryPlanTexts:
    def __init__(self) -> None:
        self._versions: dict[str, TextVersion] = {}
        self._force: dict[str, str] = {}

    async def add(self, version: TextVersion) -> None:
        self._versions[version.id] = version

    async def get(self, version_id: str) -> TextVersion | None:
        return self._versions.get(version_id)

    async def versions(self, level: int | None = None,
                   channel: Channel | None = None) -> list[TextVersion]:
        return _newest_first(list(self._versions.values()), level, channel)

    async def decide(self, version: TextVersion) -> bool:
        current = self._versions.get(version.id)
        if current is None or current.state is not TextState.PROPOSED:
            return False
        self._versions[version.id] = version
        if version.state is TextState.APPROVED:
            self._force[force_key(version.level, version.channel)] = version.id
        return True

    async def in_force(self) -> list[TextVersion]:
        return [self._versions[i] for i in self._force.values()]


class RedisPlanTexts:
    def __init__(self, client: Any) -> None:
        self._r = client
        self._decide = client.register_script(_DECIDE)

    async def add(self, version: TextVersion) -> None:
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.hset(keys.PLAN_TEXTS, version.id, _enc.encode(version))
            pipe.hset(keys.PLAN_TEXT_STATES, version.id, version.state.value)
            await pipe.execute()

    async def get(self, version_id: str) -> TextVersion | None:
        raw = await self._r.hget(keys.PLAN_TEXTS, version_id)
        return _version.decode(raw) if raw else None

    async def versions(self, level: int | None = None,
                   channel: Channel | None = None) -> list[TextVersion]:
        raw = await self._r.hvals(keys.PLAN_TEXTS)
        return _newest_first([_version.decode(x) for x in raw], level, channel)

    async def decide(self, version: TextVersion) -> bool:
        done = await self._decide(
            keys=[keys.PLAN_TEXTS, keys.PLAN_TEXT_STATES, keys.PLAN_TEXTS_IN_FORCE],
            args=[version.id, _enc.encode(version), version.state.value,
                  force_key(version.level, version.channel)])
        return bool(done)

    async def in_force(self) -> list[TextVersion]:
        ids = list((await self._r.hgetall(keys.PLAN_TEXTS_IN_FORCE)).values())
        if not ids:
            return []
        raw = await self._r.hmget(keys.PLAN_TEXTS, ids)
        return [_version.decode(x) for x in raw if x]
