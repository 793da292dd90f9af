"""Dead letters you can list and replay: pages with cursors, and the Redis side of a replay.

Every dead letter goes to two places as its entry is acknowledged (:meth:`RedisQueue.complete`,
one transaction): the route's log (a stream, kept as it was written, :func:`keys.dead`) and the
wave's letters on that route not replayed yet, by recipient id (:func:`keys.dead_ids`, a sorted
set, and :func:`keys.dead_letters`, a hash; one letter per recipient: the last). Both are in the
route's hash slot, so on Redis Cluster too they are written with the acknowledgement and a
replay moves letters onto the route's retry schedule in one script. The wave keeps the list of
its routes holding letters (:func:`keys.dead_routes`).

A page costs one command per route it reads (a script: the ids above the cursor, then their
letters); a replay one read and one script per page of letters, whatever their number.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec

from dispatcher.domain.errors import InputError
from dispatcher.store import keys
from dispatcher.store.base import DeadLetter, DeadLetterPage, Requeued, RetryItem

_enc = msgspec.msgpack.Encoder()
_dead = msgspec.msgpack.Decoder(DeadLetter)
_dead_list = msgspec.msgpack.Decoder(list[DeadLetter])

# KEYS: ids, letters. ARGV: after (exclusive), limit. The letters of the lowest ids above after.
_PAGE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf', 'LIMIT', 0, ARGV[2])
if #ids == 0 then return {} end
return redis.call('HMGET', KEYS[2], unpack(ids))
"""

# KEYS: ids, letters, retry schedule, the wave's counters, the route's dead count.
# ARGV: due, then per letter: id, the letter as read, its retry item ('' = already sent: dropped),
# its counter (failed or expired). A letter is taken only if it is still the one read: of two
# replays at once, one takes it. Returns {requeued, skipped}.
_REQUEUE = """
local requeued, skipped, failed, expired = 0, 0, 0, 0
for i = 2, #ARGV, 4 do
  local id = ARGV[i]
  if redis.call('HGET', KEYS[2], id) == ARGV[i + 1] then
    redis.call('HDEL', KEYS[2], id)
    redis.call('ZREM', KEYS[1], id)
    if ARGV[i + 3] == 'expired' then expired = expired + 1 else failed = failed + 1 end
    if ARGV[i + 2] == '' then
      skipped = skipped + 1
    else
      redis.call('ZADD', KEYS[3], ARGV[1], ARGV[i + 2])
      requeued = requeued + 1
    end
  end
end
if failed > 0 then redis.call('HINCRBY', KEYS[4], 'failed', -failed) end
if expired > 0 then redis.call('HINCRBY', KEYS[4], 'expired', -expired) end
if requeued > 0 then
  redis.call('HINCRBY', KEYS[4], 'retrying', requeued)
  redis.call('HINCRBY', KEYS[4], 'replayed', requeued)
end
if skipped > 0 then redis.call('HINCRBY', KEYS[4], 'skipped', skipped) end
if requeued + skipped > 0 then redis.call('DECRBY', KEYS[5], requeued + skipped) end
return {requeued, skipped}
"""

_ENTRY = re.compile(r"^\d{1,20}-\d{1,20}$")


# -- cursors --------------------------------------------------------------------------------------


def wave_cursor(route: str, recipient: int) -> str:
    return f"{route}:{recipient}"


def parse_wave_cursor(cursor: str) -> tuple[str, int]:
    """(route, recipient id) of a wave page's cursor; ("", -1) for the first page."""
    if not cursor:
        return "", -1
    route, sep, recipient = cursor.rpartition(":")
    if not sep or not route or not recipient.isdigit() or len(recipient) > 12:
        raise InputError(f"{cursor!r} is not a cursor a page of dead letters gave",
                         field="cursor")
    return route, int(recipient)


def parse_route_cursor(cursor: str) -> tuple[str, int]:
    """(entry id, letter within it) of a route page's cursor; ("", 0) for the first page."""
    if not cursor:
        return "", 0
    entry, sep, offset = cursor.partition("/")
    if not sep or not _ENTRY.match(entry) or not offset.isdigit() or len(offset) > 9:
        raise InputError(f"{cursor!r} is not a cursor a page of dead letters gave",
                         field="cursor")
    return entry, int(offset)


def page_of(found: list[tuple[str, DeadLetter]], limit: int) -> DeadLetterPage:
    """The first ``limit`` of ``found`` (read by route then id, up to ``limit + 1`` of them)
    and the cursor after the last when there are more."""
    if len(found) <= limit:
        return DeadLetterPage(found)
    found = found[:limit]
    route, letter = found[-1]
    return DeadLetterPage(found, wave_cursor(route, letter.id))


# -- Redis ----------------------------------------------------------------------------------------


def index(pipe: Any, route: str, dead: list[DeadLetter]) -> None:
    """Queue on ``pipe`` (the route's transaction) the letters of ``dead`` as their waves'
    letters not replayed, one per recipient (the last)."""
    by_wave: dict[str, list[DeadLetter]] = {}
    for letter in dead:
        by_wave.setdefault(letter.wave, []).append(letter)
    for wave, letters in by_wave.items():
        pipe.zadd(keys.dead_ids(route, wave), {str(d.id): d.id for d in letters})
        pipe.hset(keys.dead_letters(route, wave),
                  mapping={str(d.id): _enc.encode(d) for d in letters})


def index_routes(pipe: Any, route: str, dead: list[DeadLetter]) -> None:
    """Queue on ``pipe`` the route's name in the list of each wave of ``dead`` (the waves'
    slots: on Redis Cluster, before the route's transaction)."""
    for wave in {d.wave for d in dead}:
        pipe.sadd(keys.dead_routes(wave), route)


def _retry_set(route: str, urgent: bool) -> str:
    return keys.urgent_retries(route) if urgent else keys.retries(route)


SentMask = Callable[[str, list[int]], Awaitable[list[bool]]]
T = TypeVar("T")


async def _uncovered(letters: list[tuple[T, DeadLetter]], also: str,
                     sent_mask: SentMask) -> tuple[list[tuple[T, DeadLetter]], int]:
    """``letters`` less those whose recipient's bit is set on the wave ``also``, and how many
    those were."""
    if not also:
        return letters, 0
    mask = await sent_mask(also, [d.id for _, d in letters])
    kept = [pair for pair, done in zip(letters, mask, strict=True) if not done]
    return kept, len(letters) - len(kept)


class RedisDeadLetters:
    """The reading and replaying of dead letters for :class:`RedisQueue`."""

    def __init__(self, client: Any, cluster: bool) -> None:
        self._r = client
        self._cluster = cluster
        self._page = client.register_script(_PAGE)
        self._requeue = client.register_script(_REQUEUE)

    async def routes(self, wave: str) -> list[str]:
        return sorted(r.decode() for r in await self._r.smembers(keys.dead_routes(wave)))

    async def count(self, wave: str) -> int:
        routes = await self.routes(wave)
        if not routes:
            return 0
        async with self._r.pipeline(transaction=False) as pipe:
            for route in routes:
                pipe.zcard(keys.dead_ids(route, wave))
            return sum(int(n) for n in await pipe.execute())

    async def _letters(self, route: str, wave: str, after: int,
                       limit: int) -> list[tuple[bytes, DeadLetter]]:
        raw = await self._page(keys=[keys.dead_ids(route, wave), keys.dead_letters(route, wave)],
                               args=[after, limit])
        return [(x, _dead.decode(x)) for x in raw if x is not None]

    async def wave_page(self, wave: str, cursor: str, limit: int) -> DeadLetterPage:
        start, after = parse_wave_cursor(cursor)
        found: list[tuple[str, DeadLetter]] = []
        for route in await self.routes(wave):
            if route < start:
                continue
            since = after if route == start else -1
            found += [(route, d) for _, d in await self._letters(
                route, wave, since, limit + 1 - len(found))]
            if len(found) > limit:
                break
        return page_of(found, limit)

    async def route_page(self, route: str, cursor: str, limit: int) -> DeadLetterPage:
        entry, offset = parse_route_cursor(cursor)
        entries = await self._r.xrange(keys.dead(route), min=entry or "-", count=limit + 1)
        found: list[tuple[str, DeadLetter]] = []
        at: list[tuple[str, int]] = []  # (entry, offset) of each letter found
        for n, (entry_id, fields) in enumerate(entries):
            name = entry_id.decode()
            skip = offset if n == 0 and name == entry else 0
            for k, letter in enumerate(_dead_list.decode(fields[b"d"])[skip:], skip):
                found.append((route, letter))
                at.append((name, k))
            if len(found) > limit:
                break
        if len(found) <= limit:
            return DeadLetterPage(found)
        name, k = at[limit]
        return DeadLetterPage(found[:limit], f"{name}/{k}")

    async def requeue(self, route: str, wave: str, *, after: int, limit: int, due: float,
                      urgent: bool, also: str, sent_mask: SentMask) -> Requeued:
        read = await self._letters(route, wave, after, limit)
        if not read:
            return Requeued(0, 0, -1)
        last = read[-1][1].id
        letters, covered = await _uncovered(read, also, sent_mask)
        if not letters:
            return Requeued(0, 0, last, covered)
        mask = await sent_mask(wave, [d.id for _, d in letters])
        args: list[Any] = [due]
        for (packed, d), done in zip(letters, mask, strict=True):
            item = b"" if done else _enc.encode(
                RetryItem(wave, d.channel, d.id, d.addr, 0, urgent=urgent, district=d.district))
            args += [d.id, packed, item, "expired" if d.expired else "failed"]
        if self._cluster:  # the wave's counters are the sum of its routes' (RedisWaves.progress)
            await self._r.sadd(keys.wave_routes(wave), route)
            counters = keys.route_progress(route, wave)
        else:
            counters = keys.progress(wave)
        requeued, skipped = await self._requeue(
            keys=[keys.dead_ids(route, wave), keys.dead_letters(route, wave),
                  _retry_set(route, urgent), counters, keys.dead_count(route)], args=args)
        return Requeued(int(requeued), int(skipped), last, covered)
