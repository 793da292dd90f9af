"""The store on Redis: shared by every process of a deployment.

Work for each route is a Redis Stream with one consumer group; an entry holds a whole batch
(hundreds of messages), so every step of the hot path is one command per batch: one script call
per fan-out step and route, one ``GETRANGE`` to drop messages already sent, one transaction to
finish an entry (sent bits, counters, retries, dead letters, acknowledgement). Values are
msgpack-encoded msgspec Structs. Key names live in :mod:`dispatcher.store.keys`.

On Redis Cluster (a ``redis+cluster://host:port`` URL) every script and transaction touches the
keys of one hash slot only. Finishing an entry then takes a few commands, in an order that keeps
the guarantees when a worker dies between them (:meth:`RedisQueue.complete`).
"""

from __future__ import annotations

import datetime as dt
import struct
import time
import zlib
from collections.abc import Iterable
from typing import Any

import msgspec
from redis.asyncio.cluster import ClusterPipeline, RedisCluster
from redis.exceptions import ResponseError

from dispatcher.domain.errors import StoreUnavailable
from dispatcher.domain.model import (
    Batch,
    Campaign,
    Channel,
    LevelState,
    Opening,
    PendingLevel,
    StopState,
    Wave,
    WaveState,
)
from dispatcher.store import deadletters, keys, packing, receiptindex
from dispatcher.store.base import (
    UNFANNED,
    AudienceChunk,
    AudienceMeta,
    Completion,
    DeadLetter,
    DeadLetterPage,
    Delivery,
    Entry,
    Requeued,
    RetryItem,
)
from dispatcher.store.broadcasts import RedisBroadcasts
from dispatcher.store.cap import RedisCap
from dispatcher.store.checklist import RedisChecklist
from dispatcher.store.incoming import RedisIncoming
from dispatcher.store.memory import regroup
from dispatcher.store.outage import REDIS_UNAVAILABLE, Client, ClusterClientPipeline, unavailable
from dispatcher.store.recipients import NUMBER_BUCKETS, RedisRecipients, write_numbers
from dispatcher.store.seen import RedisSeen
from dispatcher.store.situation import RedisSituation
from dispatcher.store.suppressions import RedisSuppressions
from dispatcher.store.textedits import RedisPlanTexts
from dispatcher.store.wavetimes import WaveRecords
from dispatcher.store.wifi import RedisWifi

_enc = msgspec.msgpack.Encoder()
_batch = msgspec.msgpack.Decoder(Batch)
_retries = msgspec.msgpack.Decoder(list[RetryItem])
_dead = msgspec.msgpack.Decoder(list[DeadLetter])
_level = msgspec.msgpack.Decoder(LevelState)
_pending = msgspec.msgpack.Decoder(PendingLevel)
_stop = msgspec.msgpack.Decoder(StopState)
_opening = msgspec.msgpack.Decoder(Opening)
_meta = msgspec.msgpack.Decoder(AudienceMeta)
_chunk = msgspec.msgpack.Decoder(AudienceChunk)
_campaign = msgspec.msgpack.Decoder(Campaign)
_wave = msgspec.msgpack.Decoder(Wave)

# KEYS: stream, cursor, the wave's counters (its progress; on a cluster, the route's counters of
# the wave, keys.route_progress). ARGV: wave, step, messages, suppressed, batch... Appends the
# batches, moves the cursor and counts the step's messages ("fanned") and the recipients it left
# out as suppressed, only if the step is new: a resumed fan-out counts each step once.
_ENQUEUE = """
local last = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '-1')
if last >= tonumber(ARGV[2]) then return 0 end
for i = 5, #ARGV do redis.call('XADD', KEYS[1], '*', 'b', ARGV[i]) end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HINCRBY', KEYS[3], 'fanned', ARGV[3])
if tonumber(ARGV[4]) > 0 then redis.call('HINCRBY', KEYS[3], 'suppressed', ARGV[4]) end
return 1
"""

# KEYS: progress. ARGV: unfanned, cancelled, n. The messages a cancelled wave never enqueued,
# counted cancelled once.
_COUNT_UNFANNED = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[3]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[1], ARGV[2], ARGV[3])
return 1
"""

# KEYS: retry zset, stream. ARGV: now, limit. Moves due retries back as one stream entry whose
# field 'r' is a msgpack array of the (msgpack-encoded) items: a header, then the items as
# stored. No unpack(): Lua cannot unpack more than ~8000 values. The due items are the lowest
# ranks of the zset, so they are removed by rank.
_MOVE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local n = #due
if n == 0 then return 0 end
local header
if n < 16 then
  header = string.char(0x90 + n)
elseif n < 65536 then
  header = string.char(0xdc, math.floor(n / 256), n % 256)
else
  header = string.char(0xdd, math.floor(n / 16777216) % 256, math.floor(n / 65536) % 256,
                       math.floor(n / 256) % 256, n % 256)
end
redis.call('XADD', KEYS[2], '*', 'r', header .. table.concat(due))
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, n - 1)
return n
"""

# KEYS: bitmap, the wave's counters. ARGV: recipient ids, packed as big-endian 32-bit integers.
# One argument for a whole batch: the client packs one string instead of three arguments per
# message. The wave's ``sent`` counter grows by the bits this call set, so it counts each
# recipient once whoever sets the bit first (a worker's stream of marks, or the batch's
# completion) and however often it is set again. Returns how many were set.
_SET_BITS = """
local ids = ARGV[1]
local n = 0
for i = 1, #ids, 4 do
  local a, b, c, d = string.byte(ids, i, i + 3)
  if redis.call('SETBIT', KEYS[1], ((a * 256 + b) * 256 + c) * 256 + d, 1) == 0 then
    n = n + 1
  end
end
if n > 0 then redis.call('HINCRBY', KEYS[2], 'sent', n) end
return n
"""
# KEYS: bitmap. ARGV: ids packed as big-endian uint32. Sets their bits (the delivered marks:
# one argument for a pass's ids instead of four per id).
_SET_ONES = """
local ids = ARGV[1]
for i = 1, #ids, 4 do
  local a, b, c, d = string.byte(ids, i, i + 3)
  redis.call('SETBIT', KEYS[1], ((a * 256 + b) * 256 + c) * 256 + d, 1)
end
return 0
"""
_GET_BITS = """
local ids = ARGV[1]
local out = {}
for i = 1, #ids, 4 do
  local a, b, c, d = string.byte(ids, i, i + 3)
  out[#out + 1] = redis.call('GETBIT', KEYS[1], ((a * 256 + b) * 256 + c) * 256 + d)
end
return table.concat(out)
"""
RANGE_READ_LIMIT = 65536  # bytes of bitmap read whole when a batch's ids lie within them

# KEYS: records, side hash. ARGV: id, record, side value. Creates a record once (a campaign and
# its revision, an opening and its revision; a wave: dispatcher.store.wavetimes).
_CREATE = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return 1
"""

# KEYS: stream. ARGV: group, consumer, entry ids... Heartbeat: reset the idle time of the entries
# the consumer still holds, and only those.
_TOUCH = """
local kept = {}
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if p[1] and p[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    kept[#kept + 1] = ARGV[i]
  end
end
return kept
"""

# KEYS: states. ARGV: id, new state, allowed states... Compare-and-set of a wave's state.
_TRANSITION = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current then return 0 end
for i = 3, #ARGV do
  if current == ARGV[i] then
    redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
    return 1
  end
end
return 0
"""

# KEYS: states, paused-unstarted. ARGV: id, paused, created, completed, cancelled. A live wave
# is paused; one not fanned out yet is remembered as such.
_PAUSE = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current or current == ARGV[4] or current == ARGV[5] then return 0 end
if current == ARGV[3] then redis.call('SADD', KEYS[2], ARGV[1]) end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""

# KEYS: states, paused-unstarted. ARGV: id, paused, created, fanning_out. A paused wave goes
# back to created when it was paused before its fan-out began, else to fanning_out.
_RESUME = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
local state = ARGV[4]
if redis.call('SREM', KEYS[2], ARGV[1]) == 1 then state = ARGV[3] end
redis.call('HSET', KEYS[1], ARGV[1], state)
return 1
"""

# KEYS: records, revisions. ARGV: id, record, expected revision, new revision. Compare-and-set
# of a campaign (or an opening) by its revision.
_REPLACE_CAMPAIGN = """
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[3] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
return 1
"""

# KEYS: ledger. ARGV: now, window, tag, slots, ttl seconds, ids... Per id, ``slots`` pairs of
# big-endian u32 (time, tag) at byte 8 * (id * slots + slot): take the slot the tag holds, else
# a free one (time 0, or window or more before now). Returns one "1" (claimed) or "0" per id.
# Ids close together (a batch: neighbours in the audience) are read with one GETRANGE and
# written with one SETRANGE; scattered ones (a batch of retries) with BITFIELD, 200 at a time.
_CLAIM = """
local now, window, tag = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local slots = tonumber(ARGV[4])
local width = slots * 8
local ids = {}
local lo, hi = math.huge, -1
for i = 6, #ARGV do
  local id = tonumber(ARGV[i])
  ids[#ids + 1] = id
  if id < lo then lo = id end
  if id > hi then hi = id end
end
local function pick(times, tags)
  for s = 1, slots do
    if tags[s] == tag and times[s] > 0 then return s end
  end
  for s = 1, slots do
    if times[s] == 0 or now - times[s] >= window then return s end
  end
  return nil
end
local out = {}
if hi - lo + 1 <= 4 * #ids + 64 then
  local size = (hi - lo + 1) * width
  local raw = redis.call('GETRANGE', KEYS[1], lo * width, (hi + 1) * width - 1)
  if #raw < size then raw = raw .. string.rep('\0', size - #raw) end
  local changed, order = {}, {}
  local mine = struct.pack('>I4>I4', now, tag)
  local unpack4 = struct.unpack
  for n, id in ipairs(ids) do
    local at = (id - lo) * width
    local s
    if slots == 1 then
      local t, g = unpack4('>I4>I4', raw, at + 1)
      if (g == tag and t > 0) or t == 0 or now - t >= window then s = 1 end
    else
      local times, tags = {}, {}
      for k = 1, slots do
        times[k], tags[k] = unpack4('>I4>I4', raw, at + (k - 1) * 8 + 1)
      end
      s = pick(times, tags)
    end
    if s then
      out[n] = '1'
      local offset = at + (s - 1) * 8
      if not changed[offset] then order[#order + 1] = offset end
      changed[offset] = mine
    else
      out[n] = '0'
    end
  end
  if #order > 0 then
    table.sort(order)
    local parts, from = {}, 1
    for _, offset in ipairs(order) do
      parts[#parts + 1] = string.sub(raw, from, offset)
      parts[#parts + 1] = changed[offset]
      from = offset + 9
    end
    local last = order[#order] + 8
    redis.call('SETRANGE', KEYS[1], lo * width + order[1],
               string.sub(table.concat(parts), order[1] + 1, last))
  end
else
  local step = math.max(1, math.floor(200 / slots))
  for first = 1, #ids, step do
    local last = math.min(first + step - 1, #ids)
    local get = {}
    for i = first, last do
      local base = ids[i] * slots * 2
      for s = 0, 2 * slots - 1 do
        get[#get + 1] = 'GET'; get[#get + 1] = 'u32'; get[#get + 1] = '#' .. (base + s)
      end
    end
    local got = redis.call('BITFIELD', KEYS[1], unpack(get))
    local set = {}
    for i = first, last do
      local k = (i - first) * slots * 2
      local times, tags = {}, {}
      for s = 1, slots do times[s], tags[s] = got[k + 2 * s - 1], got[k + 2 * s] end
      local s = pick(times, tags)
      if s then
        out[i] = '1'
        local base = ids[i] * slots * 2 + 2 * (s - 1)
        set[#set + 1] = 'SET'; set[#set + 1] = 'u32'; set[#set + 1] = '#' .. base
        set[#set + 1] = now
        set[#set + 1] = 'SET'; set[#set + 1] = 'u32'; set[#set + 1] = '#' .. (base + 1)
        set[#set + 1] = tag
      else
        out[i] = '0'
      end
    end
    if #set > 0 then redis.call('BITFIELD', KEYS[1], unpack(set)) end
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[5])
return table.concat(out)
"""

# KEYS: lease. ARGV: owner, ttl ms.
_ACQUIRE = """
local held = redis.call('GET', KEYS[1])
if held and held ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""

CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}


def _pack_ids(ids: list[int]) -> bytes:
    return struct.pack(f">{len(ids)}I", *ids)


def _stream(route: str, urgent: bool) -> str:
    return keys.urgent_stream(route) if urgent else keys.stream(route)


def _retry_set(route: str, urgent: bool) -> str:
    return keys.urgent_retries(route) if urgent else keys.retries(route)


def _zadd_by_lane(pipe: Any, route: str, items: Iterable[tuple[float, RetryItem]]) -> None:
    """Queue on ``pipe`` the ZADDs of ``items`` to the retry schedules of their lanes."""
    lanes: dict[bool, dict[bytes, float]] = {}
    for due, item in items:
        lanes.setdefault(item.urgent, {})[_enc.encode(item)] = due
    for urgent, mapping in lanes.items():
        pipe.zadd(_retry_set(route, urgent), mapping)


def _deliveries(entries: list[Any], urgent: bool) -> list[Delivery]:
    found = []
    for entry_id, fields in entries:
        if not fields:
            continue  # deleted while pending
        entry = Entry(entry_id.decode(), urgent)
        # redis-py hands the fields over as a dict
        if b"b" in fields:
            found.append(Delivery(entry, [_batch.decode(fields[b"b"])]))
        else:
            found.append(Delivery(entry, regroup(_retries.decode(fields[b"r"]))))
    return found


#: Delete KEYS[1] if it holds ARGV[1]: compare-and-delete.
_TAKE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""


class RedisLevel:
    def __init__(self, client: Any) -> None:
        self._r = client
        self._take = client.register_script(_TAKE)

    async def get(self) -> LevelState | None:
        raw = await self._r.get(keys.LEVEL)
        return _level.decode(raw) if raw else None

    async def set(self, state: LevelState) -> None:
        packed = _enc.encode(state)
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.set(keys.LEVEL, packed).lpush(keys.LEVEL_HISTORY, packed)
            await pipe.execute()

    async def history(self, limit: int = 100) -> list[LevelState]:
        return [_level.decode(x) for x in await self._r.lrange(keys.LEVEL_HISTORY, 0, limit - 1)]

    async def pending(self) -> PendingLevel | None:
        raw = await self._r.get(keys.LEVEL_PENDING)
        return _pending.decode(raw) if raw else None

    async def propose(self, pending: PendingLevel, ttl_seconds: float) -> None:
        await self._r.set(keys.LEVEL_PENDING, _enc.encode(pending),
                          px=max(1, int(ttl_seconds * 1000)))

    async def take_pending(self, pending: PendingLevel) -> bool:
        return bool(await self._take(keys=[keys.LEVEL_PENDING], args=[_enc.encode(pending)]))


STOP_EVENTS_KEPT = 100  # sets and lifts kept on the stream the workers watch


class RedisStop:
    def __init__(self, client: Any) -> None:
        self._r = client

    async def get(self) -> StopState | None:
        raw = await self._r.get(keys.STOP)
        return _stop.decode(raw) if raw else None

    async def set(self, state: StopState) -> None:
        packed = _enc.encode(state)
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.set(keys.STOP, packed).lpush(keys.STOP_HISTORY, packed)
            pipe.xadd(keys.STOP_EVENTS, {b"s": packed}, maxlen=STOP_EVENTS_KEPT,
                      approximate=True)
            await pipe.execute()

    async def watch(self, mark: str, seconds: float) -> tuple[str, StopState | None]:
        if not mark:
            newest = await self._r.xrevrange(keys.STOP_EVENTS, count=1)
            return (newest[0][0].decode() if newest else "0-0"), None
        answer = await self._r.xread({keys.STOP_EVENTS: mark}, count=STOP_EVENTS_KEPT,
                                     block=max(1, int(seconds * 1000)))
        if not answer:
            return mark, None
        newest_id, fields = answer[0][1][-1]
        return newest_id.decode(), _stop.decode(fields[b"s"])

    async def history(self, limit: int = 100) -> list[StopState]:
        return [_stop.decode(x) for x in await self._r.lrange(keys.STOP_HISTORY, 0, limit - 1)]


class RedisOpenings:
    def __init__(self, client: Any) -> None:
        self._r = client
        self._create = client.register_script(_CREATE)
        self._replace = client.register_script(_REPLACE_CAMPAIGN)

    async def get(self, level: int, channel: Channel) -> Opening | None:
        raw = await self._r.hget(keys.OPENINGS, f"{level}:{channel}")
        return _opening.decode(raw) if raw else None

    async def replace(self, opening: Opening, revision: int) -> bool:
        field = f"{opening.level}:{opening.channel}"
        scripts = [keys.OPENINGS, keys.OPENING_REVISIONS]
        if revision == 0:
            done = await self._create(keys=scripts,
                                      args=[field, _enc.encode(opening), opening.revision])
        else:
            done = await self._replace(keys=scripts, args=[field, _enc.encode(opening), revision,
                                                          opening.revision])
        return bool(done)

    async def all(self) -> list[Opening]:
        found = [_opening.decode(x) for x in await self._r.hvals(keys.OPENINGS)]
        return sorted(found, key=lambda o: (o.level, o.channel))


# KEYS: ledger. ARGV: tag, slots, id... Each slot the tag holds is zeroed.
_UNCLAIM = """
local tag, slots = tonumber(ARGV[1]), tonumber(ARGV[2])
local width = slots * 8
for i = 3, #ARGV do
  local at = tonumber(ARGV[i]) * width
  local raw = redis.call('GETRANGE', KEYS[1], at, at + width - 1)
  for s = 1, math.floor(#raw / 8) do
    local t, g = struct.unpack('>I4>I4', raw, (s - 1) * 8 + 1)
    if g == tag and t > 0 then
      redis.call('SETRANGE', KEYS[1], at + (s - 1) * 8, string.rep('\0', 8))
    end
  end
end
return 0
"""


class RedisLedger:
    def __init__(self, client: Any) -> None:
        self._claim = client.register_script(_CLAIM)
        self._unclaim = client.register_script(_UNCLAIM)

    async def claim(self, ledger: str, ids: list[int], *, now: int, window: int, tag: int,
                    slots: int = 1, ttl: float) -> list[bool]:
        if not ids:
            return []
        found = await self._claim(keys=[keys.ledger(ledger)],
                                  args=[now, window, tag, slots, max(1, int(ttl)), *ids])
        return [c == 49 for c in found]  # b"1"

    async def release(self, ledger: str, ids: list[int], *, tag: int, slots: int = 1) -> None:
        if ids:
            await self._unclaim(keys=[keys.ledger(ledger)], args=[tag, slots, *ids])


class RedisAudiences:
    CHUNKS_PER_ROUND_TRIP = 64
    KEYS_PER_ROUND_TRIP = 1024  # deleted by discard()

    def __init__(self, client: Any) -> None:
        self._r = client

    async def put_chunks(self, version: str, first: int, chunks: list[AudienceChunk]) -> None:
        key = keys.audience_chunks(version)
        for start in range(0, len(chunks), self.CHUNKS_PER_ROUND_TRIP):
            part = chunks[start:start + self.CHUNKS_PER_ROUND_TRIP]
            mapping = {first + start + i: _enc.encode(c) for i, c in enumerate(part)}
            async with self._r.pipeline(transaction=False) as pipe:
                pipe.hset(key, mapping=mapping)
                write_numbers(pipe, version, part)  # number -> recipient id
                await pipe.execute()

    async def activate(self, meta: AudienceMeta) -> None:
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.set(keys.audience_meta(meta.version), _enc.encode(meta))
            pipe.set(keys.AUDIENCE_CURRENT, meta.version)
            await pipe.execute()

    async def keep(self, meta: AudienceMeta) -> None:
        async with self._r.pipeline(transaction=True) as pipe:  # one slot: {audience}
            pipe.set(keys.audience_meta(meta.version), _enc.encode(meta))
            pipe.zadd(keys.AUDIENCE_LISTS, {meta.version: meta.created_at.timestamp()})
            await pipe.execute()

    async def kept(self, limit: int = 100) -> list[AudienceMeta]:
        versions = await self._r.zrevrange(keys.AUDIENCE_LISTS, 0, limit - 1)
        if not versions:
            return []
        raw = await self._r.mget([keys.audience_meta(v.decode()) for v in versions])
        return [_meta.decode(x) for x in raw if x is not None]

    async def kept_before(self, before: dt.datetime) -> list[str]:
        found = await self._r.zrangebyscore(keys.AUDIENCE_LISTS, "-inf",
                                            f"({before.timestamp()}")
        return [v.decode() for v in found]

    async def forget(self, versions: list[str]) -> list[AudienceMeta]:
        if not versions:
            return []
        metas = [keys.audience_meta(v) for v in versions]
        async with self._r.pipeline(transaction=True) as pipe:  # one slot: {audience}
            for key in metas:  # GETs: a cluster's pipeline refuses MGET
                pipe.get(key)
            pipe.delete(*metas).zrem(keys.AUDIENCE_LISTS, *versions)
            raw = await pipe.execute()
        return [_meta.decode(x) for x in raw[:len(metas)] if x is not None]

    async def discard(self, version: str) -> None:
        # a version's keys are in as many slots as it has buckets: single-key UNLINKs (freed
        # in the background), pipelined by the hundreds (on a cluster, one batch per node)
        names = [keys.audience_chunks(version),
                 *(keys.audience_numbers(version, b) for b in range(NUMBER_BUCKETS))]
        for start in range(0, len(names), self.KEYS_PER_ROUND_TRIP):
            async with self._r.pipeline(transaction=False) as pipe:
                for name in names[start:start + self.KEYS_PER_ROUND_TRIP]:
                    # (a cluster pipeline's unlink() is a coroutine that splits keys by slot)
                    pipe.execute_command("UNLINK", name)
                await pipe.execute()

    async def put(self, meta: AudienceMeta, chunks: Iterable[AudienceChunk]) -> None:
        await self.put_chunks(meta.version, 0, list(chunks))
        await self.activate(meta)

    async def meta(self, version: str | None = None) -> AudienceMeta | None:
        if version is None:
            current = await self._r.get(keys.AUDIENCE_CURRENT)
            if current is None:
                return None
            version = current.decode()
        raw = await self._r.get(keys.audience_meta(version))
        return _meta.decode(raw) if raw else None

    async def chunks(self, version: str, numbers: list[int]) -> list[AudienceChunk]:
        if not numbers:
            return []
        raw = await self._r.hmget(keys.audience_chunks(version), numbers)
        return [_chunk.decode(x) for x in raw if x is not None]


class RedisCampaigns:
    def __init__(self, client: Any) -> None:
        self._r = client
        self._create = client.register_script(_CREATE)
        self._replace = client.register_script(_REPLACE_CAMPAIGN)

    async def create(self, campaign: Campaign) -> bool:
        done = await self._create(keys=[keys.CAMPAIGNS, keys.CAMPAIGN_REVISIONS],
                                  args=[campaign.id, _enc.encode(campaign), campaign.revision])
        return bool(done)

    async def get(self, campaign_id: str) -> Campaign | None:
        raw = await self._r.hget(keys.CAMPAIGNS, campaign_id)
        return _campaign.decode(raw) if raw else None

    async def replace(self, campaign: Campaign, revision: int) -> bool:
        done = await self._replace(keys=[keys.CAMPAIGNS, keys.CAMPAIGN_REVISIONS],
                                   args=[campaign.id, _enc.encode(campaign), revision,
                                         campaign.revision])
        return bool(done)

    async def all(self) -> list[Campaign]:
        raw = await self._r.hvals(keys.CAMPAIGNS)
        return sorted((_campaign.decode(x) for x in raw), key=lambda c: c.created_at)

    async def many(self, campaign_ids: list[str]) -> dict[str, Campaign]:
        if not campaign_ids:
            return {}
        raw = await self._r.hmget(keys.CAMPAIGNS, campaign_ids)
        return {c: _campaign.decode(x) for c, x in zip(campaign_ids, raw, strict=True) if x}


class RedisWaves:
    def __init__(self, client: Any) -> None:
        self._r = client
        self._cluster = isinstance(client, RedisCluster)
        self._records = WaveRecords(client)
        self._transition = client.register_script(_TRANSITION)
        self._pause = client.register_script(_PAUSE)
        self._resume = client.register_script(_RESUME)
        self._count_unfanned = client.register_script(_COUNT_UNFANNED)

    async def create(self, wave: Wave, state: WaveState) -> bool:
        return await self._records.create(wave, state)

    async def get(self, wave_id: str) -> Wave | None:
        raw = await self._r.hget(keys.WAVES, wave_id)
        return _wave.decode(raw) if raw else None

    async def all(self) -> list[Wave]:
        raw = await self._r.hvals(keys.WAVES)
        return sorted((_wave.decode(x) for x in raw), key=lambda w: w.created_at)

    async def since(self, at: dt.datetime) -> list[Wave]:
        return await self._records.since(at)

    async def set_state(self, wave_id: str, state: WaveState) -> None:
        await self._r.hset(keys.WAVE_STATES, wave_id, state.value)

    async def transition(self, wave_id: str, allowed: frozenset[WaveState],
                         state: WaveState) -> bool:
        done = await self._transition(keys=[keys.WAVE_STATES],
                                      args=[wave_id, state.value, *(s.value for s in allowed)])
        return bool(done)

    async def pause(self, wave_id: str) -> bool:
        keys_ = [keys.WAVE_STATES, keys.WAVES_PAUSED_UNSTARTED]
        return bool(await self._pause(keys=keys_, args=[
            wave_id, WaveState.PAUSED.value, WaveState.CREATED.value,
            WaveState.COMPLETED.value, WaveState.CANCELLED.value]))

    async def resume(self, wave_id: str) -> bool:
        keys_ = [keys.WAVE_STATES, keys.WAVES_PAUSED_UNSTARTED]
        return bool(await self._resume(keys=keys_, args=[
            wave_id, WaveState.PAUSED.value, WaveState.CREATED.value,
            WaveState.FANNING_OUT.value]))

    async def states(self, wave_ids: list[str] | None = None) -> dict[str, WaveState]:
        if wave_ids is None:
            raw = await self._r.hgetall(keys.WAVE_STATES)
            return {k.decode(): WaveState(v.decode()) for k, v in raw.items()}
        if not wave_ids:
            return {}
        values = await self._r.hmget(keys.WAVE_STATES, wave_ids)
        return {w: WaveState(v.decode()) for w, v in zip(wave_ids, values, strict=True) if v}

    async def progress(self, wave_id: str) -> dict[str, int]:
        if not self._cluster:
            raw = await self._r.hgetall(keys.progress(wave_id))
            return {k.decode(): int(v) for k, v in raw.items()}
        # On a cluster, finished entries count on their route (see RedisQueue.complete).
        async with self._r.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.progress(wave_id)).smembers(keys.wave_routes(wave_id))
            own, routes = await pipe.execute()
        parts = [own]
        if routes:
            async with self._r.pipeline(transaction=False) as pipe:
                for route in sorted(routes):
                    pipe.hgetall(keys.route_progress(route.decode(), wave_id))
                parts += await pipe.execute()
        total: dict[str, int] = {}
        for part in parts:
            for k, v in part.items():
                total[k.decode()] = total.get(k.decode(), 0) + int(v)
        return total

    async def count_unfanned(self, wave_id: str, n: int) -> bool:
        return bool(await self._count_unfanned(keys=[keys.progress(wave_id)],
                                               args=[UNFANNED, "cancelled", n]))

    async def mark_skipped(self, slot_id: str) -> bool:
        return bool(await self._r.sadd(keys.SKIPPED_SLOTS, slot_id))


def _schedule(pipe: Any, route: str, completion: Completion) -> None:
    """Queue on ``pipe`` the retries and dead letters of a finished entry of ``route`` (keys of
    the route's slot only: the waves' lists of routes holding dead letters are written by the
    caller, :func:`deadletters.index_routes`)."""
    if completion.retries:
        _zadd_by_lane(pipe, route, completion.retries)
    if completion.dead:
        pipe.xadd(keys.dead(route), {"d": _enc.encode(completion.dead)})
        pipe.incrby(keys.dead_count(route), len(completion.dead))
        deadletters.index(pipe, route, completion.dead)


class RedisQueue:
    def __init__(self, client: Any) -> None:
        self._r = client
        self._cluster = isinstance(client, RedisCluster)
        self._enqueue = client.register_script(_ENQUEUE)
        self._move_due = client.register_script(_MOVE_DUE)
        self._set_bits = client.register_script(_SET_BITS)
        self._touch = client.register_script(_TOUCH)
        self._get_bits = client.register_script(_GET_BITS)
        self._groups: set[str] = set()
        self._dead = deadletters.RedisDeadLetters(client, self._cluster)

    async def _group(self, route: str) -> str:
        """The route's routine stream; both lanes' consumer groups exist once this returns."""
        stream = keys.stream(route)
        if route not in self._groups:
            for key in (stream, keys.urgent_stream(route)):
                try:
                    await self._r.xgroup_create(key, keys.GROUP, id="0", mkstream=True)
                except ResponseError as exc:
                    if "BUSYGROUP" not in str(exc):
                        raise
            self._groups.add(route)
        return stream

    async def enqueue(self, route: str, wave: str, step: int, batches: list[Batch], *,
                      urgent: bool = False, suppressed: int = 0) -> bool:
        await self._group(route)
        payloads = [_enc.encode(b) for b in batches]
        if self._cluster:  # the counts are kept with the route, in the step's own write
            counters = keys.route_progress(route, wave)
            await self._r.sadd(keys.wave_routes(wave), route)  # so that progress() sums them
        else:
            counters = keys.progress(wave)
        done = await self._enqueue(keys=[_stream(route, urgent), keys.cursor(route), counters],
                                   args=[wave, step, sum(len(b.ids) for b in batches),
                                         suppressed, *payloads])
        return bool(done)

    async def cursor(self, route: str, wave: str) -> int:
        raw = await self._r.hget(keys.cursor(route), wave)
        return int(raw) if raw is not None else -1

    async def ahead(self, route: str) -> int:
        stream = await self._group(route)
        async with self._r.pipeline(transaction=False) as pipe:
            pipe.xlen(stream).xpending(stream, keys.GROUP)
            length, pending = await pipe.execute()
        # acknowledged entries are deleted: what is left is pending or not read yet
        return max(0, int(length) - int(pending["pending"]))

    async def read(self, route: str, consumer: str, count: int, block_ms: int, *,
                   urgent_only: bool = False) -> list[Delivery]:
        stream = await self._group(route)
        urgent = keys.urgent_stream(route)
        streams = [urgent] if urgent_only else [urgent, stream]
        block = 0 if urgent_only else block_ms
        if self._cluster:
            # Sent to the streams' node directly: left to find its keys, the cluster client
            # asks a node with COMMAND GETKEYS (XREADGROUP's keys "move"), over one connection
            # shared by every caller, which breaks with many consumers reading at once.
            args: list[Any] = ["COUNT", count, "BLOCK", block] if block else ["COUNT", count]
            answer = await self._r.execute_command(
                "XREADGROUP", "GROUP", keys.GROUP, consumer, *args, "STREAMS", *streams,
                *[">"] * len(streams), target_nodes=self._r.get_node_from_key(stream))
        else:
            answer = await self._r.xreadgroup(keys.GROUP, consumer, dict.fromkeys(streams, ">"),
                                              count=count, block=block or None)
        if not answer:
            return []
        urgent_name = urgent.encode()
        found: list[Delivery] = []
        for name, entries in sorted(answer, key=lambda a: a[0] != urgent_name):
            found += _deliveries(entries, name == urgent_name)
        return found

    async def reclaim(self, route: str, consumer: str, min_idle_ms: int,
                      count: int) -> list[Delivery]:
        await self._group(route)
        found: list[Delivery] = []
        for urgent in (True, False):
            if len(found) >= count:
                break
            answer = await self._r.xautoclaim(_stream(route, urgent), keys.GROUP, consumer,
                                              min_idle_ms, start_id="0-0",
                                              count=count - len(found))
            found += _deliveries(answer[1], urgent)
        return found

    async def touch(self, route: str, consumer: str, entries: list[Entry]) -> list[Entry]:
        kept: list[Entry] = []
        for urgent in (True, False):
            ids = [e.id for e in entries if e.urgent is urgent]
            if ids:
                touched = await self._touch(keys=[_stream(route, urgent)],
                                            args=[keys.GROUP, consumer, *ids])
                kept += [Entry(e.decode(), urgent) for e in touched]
        return kept

    async def owner(self, route: str, entry: Entry) -> str | None:
        found = await self._r.xpending_range(_stream(route, entry.urgent), keys.GROUP,
                                             min=entry.id, max=entry.id, count=1)
        return found[0]["consumer"].decode() if found else None

    async def sent_mask(self, wave: str, ids: list[int]) -> list[bool]:
        if not ids:
            return []
        low, high = min(ids) >> 3, max(ids) >> 3
        if high - low < RANGE_READ_LIMIT:
            # A batch's ids are near each other (they come from neighbouring chunks): read the
            # bytes that hold them in one GETRANGE and test the bits here.
            data = await self._r.getrange(keys.sent(wave), low, high)
            if not data.strip(b"\0"):
                return [False] * len(ids)
            size = len(data)
            return [(i >> 3) - low < size and bool(data[(i >> 3) - low] & (0x80 >> (i & 7)))
                    for i in ids]
        bits = await self._get_bits(keys=[keys.sent(wave)], args=[_pack_ids(ids)])
        return [b == 49 for b in bits]  # b"1"

    async def _mark(self, wave: str, ids: list[int], client: Any = None) -> Any:
        """Set the sent bits of ``ids`` and count those not set before (``_SET_BITS``)."""
        return await self._set_bits(keys=[keys.sent(wave), keys.progress(wave)],
                                    args=[_pack_ids(ids)], client=client)

    async def mark_sent(self, sent: dict[str, list[int]]) -> None:
        waves = [(wave, ids) for wave, ids in sent.items() if ids]
        if self._cluster:  # each wave's bitmap has its slot
            for wave, ids in waves:
                await self._mark(wave, ids)
            return
        async with self._r.pipeline(transaction=False) as pipe:
            for wave, ids in waves:
                await self._mark(wave, ids, pipe)
            await pipe.execute()

    async def complete(self, route: str, entry: Entry, completion: Completion) -> None:
        if self._cluster:
            await self._complete_by_slot(route, entry, completion)
            return
        stream = _stream(route, entry.urgent)
        async with self._r.pipeline(transaction=True) as pipe:
            for wave, ids in completion.sent.items():
                if ids:
                    await self._mark(wave, ids, pipe)
            for wave, counts in completion.counts.items():
                for name, n in counts.items():
                    pipe.hincrby(keys.progress(wave), name, n)
            _schedule(pipe, route, completion)
            deadletters.index_routes(pipe, route, completion.dead)
            for other, items in completion.reroute.items():
                if items:
                    _zadd_by_lane(pipe, other, items)
            if completion.remote:
                receiptindex.write(pipe, completion.remote)
            pipe.xack(stream, keys.GROUP, entry.id)
            pipe.xdel(stream, entry.id)
            await pipe.execute()

    async def _complete_by_slot(self, route: str, entry: Entry, completion: Completion) -> None:
        """:meth:`complete` on Redis Cluster, one slot at a time; the acknowledgement last.

        1. Each wave's sent bits and its ``sent`` counter (the wave's slot), and the route's
           name in the wave's list of counting routes.
        2. Channel message ids (the hour's hash) and messages for other routes (their retry
           schedules), with a nonce made of the entry, wave and recipient: writing them again
           for the same entry replaces them instead of adding a second copy.
        3. One transaction in the route's slot: retries, dead letters, the waves' other counters
           (kept with the route: :func:`keys.route_progress`), acknowledgement.

        A worker that dies before step 3 leaves the entry pending: another reclaims it, skips
        the messages whose bits step 1 set (already counted as sent; counted as skipped too)
        and sends the others again; retries, dead letters and the other counters are written
        once, by whoever acknowledges. Nothing is lost and no message is sent twice by it.
        """
        for wave, ids in completion.sent.items():
            if ids:
                await self._mark(wave, ids)
        counted = [w for w, counts in completion.counts.items() if any(counts.values())]
        if counted or completion.remote or any(completion.reroute.values()) or completion.dead:
            async with self._r.pipeline(transaction=False) as pipe:
                for wave in counted:
                    pipe.sadd(keys.wave_routes(wave), route)
                deadletters.index_routes(pipe, route, completion.dead)
                if completion.remote:
                    receiptindex.write(pipe, completion.remote)
                for other, items in completion.reroute.items():
                    if items:
                        _zadd_by_lane(pipe, other, [(due, _replayable(route, entry, i))
                                                    for due, i in items])
                await pipe.execute()
        stream = _stream(route, entry.urgent)
        async with self._r.pipeline(transaction=True) as pipe:
            _schedule(pipe, route, completion)
            for wave in counted:
                for name, n in completion.counts[wave].items():
                    if n:
                        pipe.hincrby(keys.route_progress(route, wave), name, n)
            pipe.xack(stream, keys.GROUP, entry.id)
            pipe.xdel(stream, entry.id)
            await pipe.execute()

    async def move_due(self, route: str, now: float, limit: int) -> int:
        await self._group(route)
        moved = 0
        for urgent in (True, False):
            moved += int(await self._move_due(keys=[_retry_set(route, urgent),
                                                    _stream(route, urgent)],
                                              args=[now, limit - moved]))
            if moved >= limit:
                break
        return moved

    async def oldest(self, route: str) -> float | None:
        # Acknowledged entries are deleted, so the first one left is the oldest waiting; its id
        # is the time Redis appended it, in milliseconds.
        async with self._r.pipeline(transaction=False) as pipe:
            pipe.xrange(keys.stream(route), count=1).xrange(keys.urgent_stream(route), count=1)
            firsts = await pipe.execute()
        times = [int(f[0][0].split(b"-")[0]) / 1000 for f in firsts if f]
        return min(times) if times else None

    async def depth(self, route: str) -> tuple[int, int, int]:
        async with self._r.pipeline(transaction=False) as pipe:
            pipe.xlen(keys.stream(route)).xlen(keys.urgent_stream(route))
            pipe.zcard(keys.retries(route)).zcard(keys.urgent_retries(route))
            pipe.get(keys.dead_count(route))
            queued, urgent, retrying, urgent_retrying, dead = await pipe.execute()
        return int(queued) + int(urgent), int(retrying) + int(urgent_retrying), int(dead or 0)

    async def dead_letters(self, route: str, limit: int = 1000) -> list[DeadLetter]:
        found: list[DeadLetter] = []
        for _, fields in await self._r.xrange(keys.dead(route)):
            found += _dead.decode(fields[b"d"])
            if len(found) >= limit:
                break
        return found[:limit]

    async def route_dead_letters(self, route: str, cursor: str = "",
                                 limit: int = 100) -> DeadLetterPage:
        return await self._dead.route_page(route, cursor, limit)

    async def wave_dead_letters(self, wave: str, cursor: str = "",
                                limit: int = 100) -> DeadLetterPage:
        return await self._dead.wave_page(wave, cursor, limit)

    async def wave_dead_count(self, wave: str) -> int:
        return await self._dead.count(wave)

    async def dead_routes(self, wave: str) -> list[str]:
        return await self._dead.routes(wave)

    async def requeue_dead(self, route: str, wave: str, *, after: int, limit: int, due: float,
                           urgent: bool, also: str = "") -> Requeued:
        return await self._dead.requeue(route, wave, after=after, limit=limit, due=due,
                                        urgent=urgent, also=also, sent_mask=self.sent_mask)


def _replayable(route: str, entry: Entry, item: RetryItem) -> RetryItem:
    """``item`` with a nonce that the same message of the same entry gets every time."""
    seed = f"{route}\0{entry.urgent}\0{entry.id}\0{item.wave}\0{item.id}".encode()
    return msgspec.structs.replace(item, nonce=zlib.crc32(seed))


class RedisReceipts:
    def __init__(self, client: Any) -> None:
        self._r = client
        self._cluster = isinstance(client, RedisCluster)
        self._set_ones = client.register_script(_SET_ONES)

    async def match(self, remote_ids: list[str], *, recent: bool = False,
                    ) -> dict[str, tuple[str, int, int]]:
        return await receiptindex.match(self._r, remote_ids, recent=recent)

    async def count(self, counts: dict[str, dict[str, int]],
                    delivered: dict[str, list[int]] | None = None) -> None:
        marks = [(wave, _pack_ids(ids)) for wave, ids in (delivered or {}).items() if ids]
        if self._cluster:  # each wave's bitmap has its slot
            for wave, packed in marks:
                await self._set_ones(keys=[keys.delivered(wave)], args=[packed])
        async with self._r.pipeline(transaction=False) as pipe:
            for wave, fields in counts.items():
                for name, n in fields.items():
                    pipe.hincrby(keys.progress(wave), name, n)
            if not self._cluster:  # one script call per wave and pass
                for wave, packed in marks:
                    await self._set_ones(keys=[keys.delivered(wave)], args=[packed],
                                         client=pipe)
            await pipe.execute()


class RedisLeases:
    def __init__(self, client: Any) -> None:
        self._acquire = client.register_script(_ACQUIRE)
        self._release = client.register_script(_RELEASE)

    async def acquire(self, name: str, owner: str, ttl: float) -> bool:
        return bool(await self._acquire(keys=[keys.lease(name)], args=[owner, int(ttl * 1000)]))

    async def release(self, name: str, owner: str) -> None:
        await self._release(keys=[keys.lease(name)], args=[owner])


class Cluster(RedisCluster):
    """redis-py's cluster client, made safe for many coroutines sharing it.

    redis-py 8.1 picks a command's node before it learns the cluster's layout: a command sent
    while the client is not (or no longer) initialized has no default node, is treated as
    keyless and goes to a random primary, which answers MOVED. Every ``reinitialize_steps``
    MOVED answers the client closes itself (:meth:`RedisCluster.aclose`): every connection of
    every node, including those other coroutines are using, such as a blocking XREADGROUP
    (``Connection closed by server``, ``'NoneType' object has no attribute 'writelines'``,
    ``unable to perform operation on <TCPTransport closed=True>``); the closed client has no
    default node again, so the next commands of a busy worker are misrouted in turn.

    Here a command waits for the layout first (``initialize`` returns at once when it is
    known), and :func:`connect` sets ``reinitialize_steps=0``: a MOVED answer (a slot that
    really moved) updates that slot only, without closing anyone's connection.

    Its errors of a cluster that went away are :class:`~dispatcher.domain.errors.StoreUnavailable`
    (:mod:`dispatcher.store.outage`).
    """

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        try:
            await self.initialize()
            return await super().execute_command(*args, **kwargs)
        except StoreUnavailable:  # translated by a call within this one
            raise
        except REDIS_UNAVAILABLE as exc:
            raise unavailable(exc) from exc

    def pipeline(self, transaction: Any = None, shard_hint: Any = None) -> ClusterPipeline:
        if shard_hint:
            return super().pipeline(transaction, shard_hint)  # which refuses it on a cluster
        # abstract only in redis-py's annotations, as its own ClusterPipeline
        return ClusterClientPipeline(self, transaction)  # type: ignore[abstract]


#: Connection options unless the URL sets them (``?socket_timeout=2``): a Redis that stops
#: answering without closing its connections (a frozen process, a network cut that drops
#: packets) is an outage after ``socket_timeout`` seconds, not a call that waits for ever; an
#: unreachable one after ``socket_connect_timeout``; a connection idle longer than
#: ``health_check_interval`` is checked before it is used again.
TIMEOUTS: dict[str, Any] = {"socket_timeout": 10.0, "socket_connect_timeout": 5.0,
                            "health_check_interval": 30.0}


def connect(url: str) -> Any:
    """A client for ``url``: a Redis Cluster for ``redis+cluster://host:port`` (the node is a
    seed: the client learns the others from it), one server for ``redis://``, ``rediss://``,
    ``unix://``. Options in the URL's query override :data:`TIMEOUTS`."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme.lower() in CLUSTER_SCHEMES:
        return packing.install(Cluster.from_url(
            f"{CLUSTER_SCHEMES[scheme.lower()]}://{rest}", decode_responses=False,
            reinitialize_steps=0, **TIMEOUTS))
    return packing.install(Client.from_url(url, decode_responses=False, **TIMEOUTS))


class RedisStore:
    """Everything the engine keeps, in Redis (or Redis Cluster) at ``url``."""

    def __init__(self, url: str) -> None:
        self.url = url
        # redis-py's async annotations (results typed as "Awaitable[T] | T") do not type-check
        # usefully; the store's own signatures are the typed surface.
        self.client: Any = connect(url)
        self.level = RedisLevel(self.client)
        self.stop = RedisStop(self.client)
        self.situation = RedisSituation(self.client)
        self.incoming = RedisIncoming(self.client)
        self.plan_texts = RedisPlanTexts(self.client)
        self.checklist = RedisChecklist(self.client)
        self.openings = RedisOpenings(self.client)
        self.ledger = RedisLedger(self.client)
        self.audiences = RedisAudiences(self.client)
        self.campaigns = RedisCampaigns(self.client)
        self.waves = RedisWaves(self.client)
        self.queue = RedisQueue(self.client)
        self.leases = RedisLeases(self.client)
        self.receipts = RedisReceipts(self.client)
        self.recipients = RedisRecipients(self.client, isinstance(self.client, RedisCluster))
        self.webhook_seen = RedisSeen(self.client, "webhook")
        self.suppressions = RedisSuppressions(self.client)
        self.cap = RedisCap(self.client)
        self.wifi = RedisWifi(self.client)
        self.broadcasts = RedisBroadcasts(self.client)

    async def ping(self) -> float:
        started = time.perf_counter()
        await self.client.ping()
        return time.perf_counter() - started

    async def aclose(self) -> None:
        await self.client.aclose()
