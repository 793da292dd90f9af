"""The waves by the time they were made, on Redis: :meth:`WaveStore.since` reads a range of them.

A wave is written once (``HSETNX`` of its record in :data:`keys.WAVES`), with its state and,
in the same script, its id in the sorted set :data:`keys.WAVE_TIMES` scored by its creation
(epoch seconds; every key of the ``{waves}`` slot, so the script runs on a cluster too). The
waves of a window are then one ``ZREVRANGEBYSCORE`` and the records not yet decoded in this
process one ``HMGET``: the cost is the waves in the window, not those made before it.

Waves made before the sorted set existed are not in it: each read counts both (``ZCARD``,
``HLEN``, in the pipeline of the range read) and, when the set holds fewer, adds every wave of
the hash to it (``ZADD`` of the same scores: idempotent, whoever does it and however often)
before reading the range again.

Records never change once written, so the decoded ones are kept in a bounded cache
(:class:`WaveRecords`, least recently used first out); a wave not found is never cached.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import msgspec

from dispatcher.domain.model import Wave, WaveState
from dispatcher.store import keys

#: Decoded wave records kept per process (a wave record is a few hundred bytes decoded: about
#: 2 MB at most; the level-4 plan makes about 20 waves a day).
CACHE_SIZE = 4096

_enc = msgspec.msgpack.Encoder()
_wave = msgspec.msgpack.Decoder(Wave)

# KEYS: records, states, by-time. ARGV: id, record, state, created (epoch seconds). Creates a
# wave once: its record, its state and its place in time.
_CREATE_WAVE = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
return 1
"""


class WaveRecords:
    """Wave records by id, read through a bounded cache of decoded ones."""

    def __init__(self, client: Any, size: int = CACHE_SIZE) -> None:
        self._r = client
        self._size = size
        self._cache: OrderedDict[str, Wave] = OrderedDict()
        self._create = client.register_script(_CREATE_WAVE)

    async def create(self, wave: Wave, state: WaveState) -> bool:
        done = await self._create(
            keys=[keys.WAVES, keys.WAVE_STATES, keys.WAVE_TIMES],
            args=[wave.id, _enc.encode(wave), state.value, repr(wave.created_at.timestamp())])
        return bool(done)

    async def many(self, wave_ids: list[str]) -> dict[str, Wave]:
        """The waves of ``wave_ids`` that exist (one ``HMGET`` of those not cached, none when
        all are)."""
        found: dict[str, Wave] = {}
        missing: list[str] = []
        for wave_id in wave_ids:
            cached = self._cache.get(wave_id)
            if cached is None:
                missing.append(wave_id)
            else:
                self._cache.move_to_end(wave_id)
                found[wave_id] = cached
        if missing:
            for wave_id, raw in zip(missing, await self._r.hmget(keys.WAVES, missing),
                                    strict=True):
                if raw:
                    found[wave_id] = self._keep(_wave.decode(raw))
        return found

    def _keep(self, wave: Wave) -> Wave:
        self._cache[wave.id] = wave
        self._cache.move_to_end(wave.id)
        while len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return wave

    async def since(self, at: dt.datetime) -> list[Wave]:
        """The waves made at or after ``at``, newest first (:meth:`WaveStore.since`)."""
        low = repr(at.timestamp())
        async with self._r.pipeline(transaction=False) as pipe:
            pipe.zcard(keys.WAVE_TIMES).hlen(keys.WAVES)
            pipe.zrevrangebyscore(keys.WAVE_TIMES, "+inf", low)
            indexed, made, ids = await pipe.execute()
        if indexed < made:
            await self._index_all()
            ids = await self._r.zrevrangebyscore(keys.WAVE_TIMES, "+inf", low)
        found = await self.many([i.decode() for i in ids])
        return newest_first(w for w in found.values() if w.created_at >= at)

    async def _index_all(self) -> None:
        """Put every wave of the records in the sorted set (made before it existed)."""
        times = {wave_id: _wave.decode(raw).created_at.timestamp()
                 for wave_id, raw in (await self._r.hgetall(keys.WAVES)).items()}
        if times:
            await self._r.zadd(keys.WAVE_TIMES, times)


def newest_first(waves: Iterable[Wave]) -> list[Wave]:
    """``waves`` newest first; waves made at the same time by id, descending."""
    return sorted(waves, key=lambda w: (w.created_at, w.id), reverse=True)
