"""The "did this citizen get it?" lookup at the province's size: ``python -m bench.recipientbench``.

A private redis-server holds a generated audience (1,000,000 by default) imported as ``loa
audience import`` does (with its number index), and ``--days`` days of the level-4 plan's waves
(every slot of every channel, and each Zalo wave's SMS fallback companion), made in the store
directly: each wave's sent bitmap and delivered bitmap set for every recipient (the most the
lookup reads), ``--dead`` dead letters per wave on a route, and some of them for the numbers
looked up. ``--history-days`` more days of the plan's waves, made before the window, are records
only (the lookup never reads their bitmaps): the history a deployment keeps. Then ``--lookups``
random numbers are looked up (dispatcher.engine.recipients.look_up) one after the other: the
time of each, the memory of the number index (MEMORY USAGE of its keys) and of the waves' sorted
set by time.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import msgspec

from bench import audiencegen, localredis
from dispatcher.domain.audience import Recipient, Validator
from dispatcher.domain.model import Channel, Wave, WaveState
from dispatcher.domain.msisdn import load_numbering
from dispatcher.domain.plan import load_plan
from dispatcher.domain.province import load_province
from dispatcher.engine.fallback import fallback_wave_id
from dispatcher.engine.importer import import_audience
from dispatcher.engine.recipients import look_up
from dispatcher.store import RedisStore, deadletters, keys
from dispatcher.store.base import DeadLetter


class Result(msgspec.Struct):
    recipients: int
    days: int
    waves: int  # plan waves, without their SMS companions
    companions: int
    history_days: int
    history_waves: int  # made before the window, with their companions
    lookups: int
    waves_per_answer: float  # waves a lookup answered about, on average
    p50_ms: float
    p95_ms: float
    max_ms: float
    index_bytes: int
    index_bytes_per_recipient: float
    import_s: float
    time_index_bytes: int = 0  # the waves' sorted set by time (MEMORY USAGE), every wave
    time_index_bytes_per_wave: float = 0.0


def plan_waves(version: str, days: int, now: dt.datetime) -> list[Wave]:
    """Every level-4 slot of the last ``days`` days, each a completed plan wave."""
    plan = load_plan()
    level = plan.level(4)
    waves = []
    for day in range(days):
        date = (now - dt.timedelta(days=day)).astimezone(plan.tz).date()
        for channel, rule in level.rules.items():
            for _, at in rule.cadence.slots:
                slot = dt.datetime.combine(date, at, plan.tz)
                if slot > now:
                    continue
                waves.append(Wave(
                    id=f"plan-4-{channel}-{slot:%Y%m%d%H%M}", campaign_id="plan-4",
                    channel=channel, text=rule.row.template, created_at=slot,
                    audience_version=version, level=4, slot_at=slot,
                    fallback_text=level.rules[Channel.SMS].row.template
                    if rule.row.sms_fallback else ""))
    return waves


async def fill(store: RedisStore, waves: list[Wave], count: int, dead_per_wave: int,
               looked: list[int], rng: random.Random) -> int:
    """The waves, their bitmaps and dead letters; returns the companions made."""
    full = b"\xff" * (count // 8 + 1)
    companions = 0
    for w in waves:
        await store.waves.create(w, WaveState.COMPLETED)
        made = [w.id]
        if w.fallback_text:
            companion = msgspec.structs.replace(w, id=fallback_wave_id(w.id),
                                                channel=Channel.SMS, text=w.fallback_text)
            await store.waves.create(companion, WaveState.COMPLETED)
            made.append(companion.id)
            companions += 1
        ids = rng.sample(range(count), dead_per_wave) + rng.sample(looked, len(looked) // 4)
        dead = [DeadLetter(w.id, w.channel, i, f"8491{i:07d}", 1, "invalid destination")
                for i in ids]
        async with store.client.pipeline(transaction=False) as pipe:
            for wave in made:
                pipe.set(keys.sent(wave), full).set(keys.delivered(wave), full)
            deadletters.index_routes(pipe, "sms.viettel", dead)
            deadletters.index(pipe, "sms.viettel", dead)
            await pipe.execute()
    return companions


async def history(store: RedisStore, waves: list[Wave]) -> int:
    """The waves' records (and their companions'), nothing else; returns how many were made."""
    made = 0
    for w in waves:
        made += await store.waves.create(w, WaveState.COMPLETED)
        if w.fallback_text:
            made += await store.waves.create(msgspec.structs.replace(
                w, id=fallback_wave_id(w.id), channel=Channel.SMS, text=w.fallback_text),
                WaveState.COMPLETED)
    return made


async def index_bytes(store: RedisStore, version: str) -> int:
    total = 0
    async for key in store.client.scan_iter(match=keys.audience_numbers(version, 0)[:-1] + "*",
                                            count=1000):
        total += await store.client.memory_usage(key, samples=0) or 0
    return int(total)


async def measure(url: str, path: Path, count: int, days: int, lookups: int,
                  dead_per_wave: int, seed: int, history_days: int = 0) -> Result:
    numbering, province = load_numbering(), load_province()
    store = RedisStore(url)
    try:
        started = time.perf_counter()
        await import_audience(path, store, Validator(numbering, province), chunk_size=1024)
        import_s = time.perf_counter() - started
        meta = await store.audiences.meta()
        assert meta is not None
        rng = random.Random(seed)
        rows: dict[int, Recipient] = {}
        numbers = rng.sample([n for g in meta.groups for n in g.chunks],
                             min(lookups, sum(len(g.chunks) for g in meta.groups)))
        for chunk in await store.audiences.chunks(meta.version, numbers):
            i = rng.randrange(len(chunk.recipients))
            rows[chunk.first_id + i] = chunk.recipients[i]
        now = dt.datetime.now(dt.UTC)
        waves = plan_waves(meta.version, days, now)
        companions = await fill(store, waves, meta.count, dead_per_wave, list(rows), rng)
        before = now - dt.timedelta(days=days, seconds=1)
        older = await history(store, plan_waves(meta.version, history_days, before))
        times, answered = [], 0
        chosen = [rows[i] for i in rng.choices(list(rows), k=lookups)]
        for r in chosen:
            t = time.perf_counter()
            view = await look_up(store, r.msisdn, days=days, now=now)
            times.append((time.perf_counter() - t) * 1000)
            assert view is not None and view.row.district == r.district
            answered += len(view.waves)
        size = await index_bytes(store, meta.version)
        by_time = int(await store.client.memory_usage(keys.WAVE_TIMES, samples=0) or 0)
        indexed = await store.client.zcard(keys.WAVE_TIMES)
    finally:
        await store.aclose()
    times.sort()
    return Result(meta.count, days, len(waves), companions, history_days, older, lookups,
                  answered / lookups,
                  round(statistics.median(times), 2),
                  round(times[int(0.95 * (len(times) - 1))], 2), round(times[-1], 2), size,
                  round(size / meta.count, 1), round(import_s, 1), by_time,
                  round(by_time / max(indexed, 1), 1))


def run(count: int, days: int, lookups: int, dead_per_wave: int = 1000,
        seed: int = 19, history_days: int = 0) -> Result:
    with tempfile.TemporaryDirectory(prefix="loa-recipientbench-") as tmp, \
            localredis.running(Path(tmp)) as server:
        path = Path(tmp) / "audience.csv"
        audiencegen.generate(path, count, seed=seed, numbering=load_numbering(),
                             province=load_province())
        return asyncio.run(measure(server.url, path, count, days, lookups,
                                   min(dead_per_wave, count // 2), seed, history_days))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.recipientbench",
                                     description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--recipients", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--lookups", type=int, default=200)
    parser.add_argument("--dead", type=int, default=1000, help="dead letters per wave")
    parser.add_argument("--history-days", type=int, default=0,
                        help="days of waves made before the window (records only)")
    args = parser.parse_args(argv)
    result = run(args.recipients, args.days, args.lookups, args.dead,
                 history_days=args.history_days)
    sys.stdout.write(msgspec.json.encode(result).decode() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
