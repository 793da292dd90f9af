"""The versions of the plan's texts and the one in force per level and channel, in memory and
in Redis (:class:`~dispatcher.store.base.PlanTextStore`).

Every version is kept. A decision (approval or rejection) replaces a proposed version only
while it is still proposed, and an approval makes it the text in force of its level and
channel in the same step (one script in Redis: all keys share the ``{plantexts}`` tag).

Versions are listed in pages, newest first (by the time proposed, then id), the cursor being
the id of the last version of the page before. In Redis each version's id is in four sorted
sets (:func:`keys.plan_text_order`: all, its level's, its channel's, its row's) scored by the
time it was proposed; a page is one script: the rank of the cursor, the ids after it (those
of the state asked, read from the states' hash) and their versions. Versions kept before the
sorted sets existed are put in them the first time a page finds them missing.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec

from dispatcher.domain.errors import InputError, StoreUnavailable
from dispatcher.domain.model import Channel
from dispatcher.domain.textedits import TextState, TextVersion, force_key
from dispatcher.store import keys
from dispatcher.store.base import TextPage

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


# KEYS: the order listed (all, a level's, a channel's or a row's), the order of all, versions,
# states. ARGV: cursor ('' for the first page), limit, state ('' any). Returns {-1} when some
# version is in no order yet, {-2} for a cursor not in the order listed, else {more, versions}.
_PAGE = """
if redis.call('ZCARD', KEYS[2]) ~= redis.call('HLEN', KEYS[3]) then return {-1} end
local start = 0
if ARGV[1] ~= '' then
  local rank = redis.call('ZREVRANK', KEYS[1], ARGV[1])
  if not rank then return {-2} end
  start = rank + 1
end
local limit = tonumber(ARGV[2])
local step = limit + 1
if ARGV[3] ~= '' then step = 200 end
local ids = {}
while #ids <= limit do
  local chunk = redis.call('ZREVRANGE', KEYS[1], start, start + step - 1)
  for _, id in ipairs(chunk) do
    if #ids <= limit and (ARGV[3] == '' or redis.call('HGET', KEYS[4], id) == ARGV[3]) then
      ids[#ids + 1] = id
    end
  end
  if #chunk < step then break end
  start = start + step
end
local more = 0
if #ids > limit then
  ids[#ids] = nil
  more = 1
end
if #ids == 0 then return {0} end
local found = redis.call('HMGET', KEYS[3], unpack(ids))
table.insert(found, 1, more)
return found
"""

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _score(version: TextVersion) -> int:
    """When ``version`` was proposed, in microseconds (exact in a sorted set's score)."""
    return (version.proposed_at - _EPOCH) // dt.timedelta(microseconds=1)


def _orders(version: TextVersion) -> list[str]:
    level, channel = version.level, str(version.channel)
    return [keys.plan_text_order(), keys.plan_text_order(level),
            keys.plan_text_order(channel=channel), keys.plan_text_order(level, channel)]


def _bad_cursor(cursor: str) -> InputError:
    return InputError(f"{cursor!r} is not a cursor a page of these versions gave",
                      field="cursor")


def _page(ordered: list[TextVersion], state: TextState | None, cursor: str,
          limit: int) -> TextPage:
    """The page of ``ordered`` (newest first) after ``cursor``, of ``state``."""
    start = 0
    if cursor:
        at = next((i for i, v in enumerate(ordered) if v.id == cursor), None)
        if at is None:
            raise _bad_cursor(cursor)
        start = at + 1
    chosen = [v for v in ordered[start:] if state is None or v.state is state]
    if len(chosen) <= limit:
        return TextPage(chosen)
    return TextPage(chosen[:limit], chosen[limit - 1].id)


class MemoryPlanTexts:
    def __init__(self) -> None:
        self._versions: dict[str, TextVersion] = {}
        self._force: dict[str, str] = {}

    async def add(self, version: TextVersion) -> None:
        self._versions[version.id] = version

    async def get(self, version_id: str) -> TextVersion | None:
        return self._versions.get(version_id)

    async def versions(self, level: int | None = None, channel: Channel | None = None,
                       state: TextState | None = None, *, cursor: str = "",
                       limit: int = 100) -> TextPage:
        ordered = sorted((v for v in self._versions.values()
                          if (level is None or v.level == level)
                          and (channel is None or v.channel == channel)),
                         key=lambda v: (_score(v), v.id), reverse=True)
        return _page(ordered, state, cursor, limit)

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
        self._page = client.register_script(_PAGE)

    async def add(self, version: TextVersion) -> None:
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.hset(keys.PLAN_TEXTS, version.id, _enc.encode(version))
            pipe.hset(keys.PLAN_TEXT_STATES, version.id, version.state.value)
            for order in _orders(version):
                pipe.zadd(order, {version.id: _score(version)})
            await pipe.execute()

    async def get(self, version_id: str) -> TextVersion | None:
        raw = await self._r.hget(keys.PLAN_TEXTS, version_id)
        return _version.decode(raw) if raw else None

    async def versions(self, level: int | None = None, channel: Channel | None = None,
                       state: TextState | None = None, *, cursor: str = "",
                       limit: int = 100) -> TextPage:
        order = keys.plan_text_order(level, str(channel) if channel is not None else None)
        args = [cursor, limit, state.value if state is not None else ""]
        for _ in range(2):
            found = await self._page(keys=[order, keys.plan_text_order(), keys.PLAN_TEXTS,
                                           keys.PLAN_TEXT_STATES], args=args)
            if found[0] != -1:
                break
            await self._index()  # versions kept before they were ordered
        if found[0] == -2:
            raise _bad_cursor(cursor)
        if found[0] == -1:  # a version kept meanwhile by a process not ordering them
            raise StoreUnavailable("the plan texts' versions are being ordered: try again")
        page = [_version.decode(x) for x in found[1:] if x]
        return TextPage(page, page[-1].id if found[0] == 1 and page else "")

    async def _index(self) -> None:
        """Put every version in its sorted sets (those kept before they existed)."""
        versions = [_version.decode(x) for x in await self._r.hvals(keys.PLAN_TEXTS)]
        async with self._r.pipeline(transaction=True) as pipe:
            for version in versions:
                for order in _orders(version):
                    pipe.zadd(order, {version.id: _score(version)})
            await pipe.execute()

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
