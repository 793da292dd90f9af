"""Who a number is in an audience, and what each wave did for one recipient.

An audience version keeps, beside its chunks, an index from number to recipient id, written with
the chunks: ``NUMBER_BUCKETS`` small hashes (:func:`keys.audience_numbers`), the number modulo the
bucket count choosing the hash and the quotient being the field, so that each hash stays a
compact listpack of integers (about 60 entries each at a million recipients; the cost per
recipient is in docs/scaling.md). A wave's per-recipient facts are its sent bitmap, its delivered
bitmap (set by the receipt matcher, one command per wave and pass) and its dead letters (a Zalo
wave's SMS fallback is the wave ``<wave>.sms``, asked like any other), and the wave's state:
:meth:`RedisRecipients.facts` reads them for many waves in one script, its arguments a few
strings whatever the count of waves (on a cluster, two pipelined round trips).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from dispatcher.domain.model import WaveState
from dispatcher.store import keys
from dispatcher.store.base import AudienceChunk, DeadLetter, WaveFacts

NUMBER_BUCKETS = 16384

_dead = msgspec.msgpack.Decoder(DeadLetter)


def split(msisdn: str) -> tuple[int, int]:
    """(bucket, field) of a normalised number."""
    return divmod(int(msisdn), NUMBER_BUCKETS)[::-1]


def numbers(chunks: Iterable[AudienceChunk]) -> dict[int, dict[int, int]]:
    """bucket -> field -> recipient id, for the recipients of ``chunks``."""
    found: dict[int, dict[int, int]] = {}
    for chunk in chunks:
        for offset, r in enumerate(chunk.recipients):
            bucket, field = split(r.msisdn)
            found.setdefault(bucket, {})[field] = chunk.first_id + offset
    return found


class MemoryRecipients:
    def __init__(self, queue: Any, waves: Any) -> None:
        self._queue = queue  # dispatcher.store.memory.MemoryQueue
        self._waves = waves  # dispatcher.store.memory.MemoryWaves
        self.numbers: dict[str, dict[str, int]] = {}
        self.delivered: dict[str, set[int]] = {}

    def index(self, version: str, chunks: Iterable[AudienceChunk]) -> None:
        stored = self.numbers.setdefault(version, {})
        for chunk in chunks:
            for offset, r in enumerate(chunk.recipients):
                stored[r.msisdn] = chunk.first_id + offset

    async def find(self, version: str, msisdn: str) -> int | None:
        return self.numbers.get(version, {}).get(msisdn)

    async def facts(self, asked: list[tuple[str, int]]) -> list[WaveFacts]:
        states = await self._waves.states(list({wave: None for wave, _ in asked}))
        found = []
        for wave, rid in asked:
            sent = (await self._queue.sent_mask(wave, [rid]))[0]
            dead = None
            for route in await self._queue.dead_routes(wave):
                letters = self._queue._dead_above(route, wave, rid - 1, 1)
                if letters and letters[0].id == rid:
                    dead = letters[0]
            found.append(WaveFacts(sent, rid in self.delivered.get(wave, set()), dead,
                                   states.get(wave)))
        return found


#: Many waves' facts in one call (one Redis server). KEYS: the waves' states
#: (:data:`keys.WAVE_STATES`). ARGV: the keys' prefix, then for each recipient id the id and the
#: names of the waves asked for it, joined by NUL (the waves of a window share a few ids: one
#: per audience version). Answers, the waves taken in that order, three values: the sent and
#: delivered bits of each (:func:`keys.sent`, :func:`keys.delivered`) as two characters "0" or
#: "1"; their states (:data:`keys.WAVE_STATES`) joined by NUL, empty for none; the dead letters
#: found (:func:`keys.dead_routes`, :func:`keys.dead_letters`), as pairs of the wave's place in
#: that order (from 1) and its letter. The per-wave keys are made here from the waves' names,
#: not declared (two arguments per recipient id to send, instead of keys and an id per wave): a
#: single server only; a cluster is asked with pipelines, per slot.
_FACTS = """
local bits, states, letters = {}, {}, {}
local p = ARGV[1]
local n = 0
for i = 2, #ARGV, 2 do
  local id = ARGV[i]
  for wave in string.gmatch(ARGV[i + 1], '[^%z]+') do
    n = n + 1
    local w = p .. '{w:' .. wave .. '}:'
    bits[n] = redis.call('GETBIT', w .. 'sent', id) .. redis.call('GETBIT', w .. 'delivered', id)
    states[n] = redis.call('HGET', KEYS[1], wave) or ''
    for _, route in ipairs(redis.call('SMEMBERS', w .. 'dead-routes')) do
      local found = redis.call('HGET', p .. '{r:' .. route .. '}:dead-letters:' .. wave, id)
      if found then
        letters[#letters + 1] = n
        letters[#letters + 1] = found
      end
    end
  end
end
return {table.concat(bits), table.concat(states, '\\0'), letters}
"""


_STATES = {s.value.encode(): s for s in WaveState}


def _state(raw: bytes | None) -> WaveState | None:
    return _STATES[raw] if raw else None


class RedisRecipients:
    def __init__(self, client: Any, cluster: bool = False) -> None:
        self._r = client
        self._cluster = cluster
        self._facts = client.register_script(_FACTS)

    async def find(self, version: str, msisdn: str) -> int | None:
        bucket, field = split(msisdn)
        raw = await self._r.hget(keys.audience_numbers(version, bucket), field)
        return int(raw) if raw is not None else None

    async def facts(self, asked: list[tuple[str, int]]) -> list[WaveFacts]:
        if not asked:
            return []
        if self._cluster:
            return await self._facts_by_slot(asked)
        by_id: dict[int, list[int]] = {}  # recipient id -> places in ``asked``
        for at, (_, rid) in enumerate(asked):
            by_id.setdefault(rid, []).append(at)
        args: list[str | int] = [f"{keys.PREFIX}:"]
        order: list[int] = []  # the places in ``asked`` in the order the script answers
        for rid, places in by_id.items():
            args += [rid, "\0".join(asked[at][0] for at in places)]
            order += places
        bits, states, letters = await self._facts(keys=[keys.WAVE_STATES], args=args)
        names = states.split(b"\0")
        dead = {int(letters[i]) - 1: _dead.decode(letters[i + 1])
                for i in range(0, len(letters), 2)}
        found: list[WaveFacts] = [WaveFacts()] * len(asked)
        for n, at in enumerate(order):
            found[at] = WaveFacts(bits[2 * n] == 49, bits[2 * n + 1] == 49,  # b"1"
                                  dead.get(n), _state(names[n]))
        return found

    async def _facts_by_slot(self, asked: list[tuple[str, int]]) -> list[WaveFacts]:
        async with self._r.pipeline(transaction=False) as pipe:
            for wave, rid in asked:
                pipe.getbit(keys.sent(wave), rid).getbit(keys.delivered(wave), rid)
                pipe.smembers(keys.dead_routes(wave)).hget(keys.WAVE_STATES, wave)
            raw = await pipe.execute()
        routes = [sorted(r.decode() for r in raw[4 * i + 2]) for i in range(len(asked))]
        letters: list[Any] = []
        if any(routes):
            async with self._r.pipeline(transaction=False) as pipe:
                for (wave, rid), names in zip(asked, routes, strict=True):
                    for route in names:
                        pipe.hget(keys.dead_letters(route, wave), rid)
                letters = await pipe.execute()
        found, at = [], 0
        for i in range(len(asked)):
            dead = None
            for value in letters[at:at + len(routes[i])]:
                if value is not None:
                    dead = _dead.decode(value)
            at += len(routes[i])
            found.append(WaveFacts(bool(raw[4 * i]), bool(raw[4 * i + 1]), dead,
                                   _state(raw[4 * i + 3])))
        return found


def write_numbers(pipe: Any, version: str, chunks: Iterable[AudienceChunk]) -> None:
    """Queue on ``pipe`` the index entries of ``chunks`` (one HSET per bucket)."""
    for bucket, fields in numbers(chunks).items():
        pipe.hset(keys.audience_numbers(version, bucket), mapping=fields)
