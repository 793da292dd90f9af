"""The store in one process's memory: the embedded default for ``loa demo`` and single-process
runs. It keeps the same contract as the Redis store (same tests), but nothing survives the
process and no other process can see it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import heapq
import itertools
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from dispatcher.domain.model import (
    WAVE_FINAL,
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
from dispatcher.store import deadletters
from dispatcher.store.base import (
    FANNED,
    SUPPRESSED,
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
from dispatcher.store.broadcasts import MemoryBroadcasts
from dispatcher.store.cap import MemoryCap
from dispatcher.store.checklist import MemoryChecklist
from dispatcher.store.incoming import MemoryIncoming
from dispatcher.store.recipients import MemoryRecipients
from dispatcher.store.seen import MemorySeen
from dispatcher.store.situation import MemorySituation
from dispatcher.store.suppressions import MemorySuppressions
from dispatcher.store.textedits import MemoryPlanTexts
from dispatcher.store.wavetimes import newest_first
from dispatcher.store.wifi import MemoryWifi


class MemoryLevel:
    def __init__(self) -> None:
        self._history: list[LevelState] = []
        self._pending: PendingLevel | None = None

    async def get(self) -> LevelState | None:
        return self._history[-1] if self._history else None

    async def set(self, state: LevelState) -> None:
        self._history.append(state)

    async def history(self, limit: int = 100) -> list[LevelState]:
        return self._history[::-1][:limit]

    async def pending(self) -> PendingLevel | None:
        return self._pending  # its expiry is checked against the caller's clock

    async def propose(self, pending: PendingLevel, ttl_seconds: float) -> None:
        self._pending = pending

    async def take_pending(self, pending: PendingLevel) -> bool:
        if self._pending != pending:
            return False
        self._pending = None
        return True


class MemoryStop:
    def __init__(self) -> None:
        self._history: list[StopState] = []
        self._changed = asyncio.Condition()

    async def get(self) -> StopState | None:
        return self._history[-1] if self._history else None

    async def set(self, state: StopState) -> None:
        self._history.append(state)
        async with self._changed:
            self._changed.notify_all()

    async def watch(self, mark: str, seconds: float) -> tuple[str, StopState | None]:
        seen = int(mark) if mark else len(self._history)
        if mark and len(self._history) <= seen:
            async with self._changed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._changed.wait_for(lambda: len(self._history) > seen), seconds)
        if len(self._history) > seen:
            return str(len(self._history)), self._history[-1]
        return str(seen), None

    async def history(self, limit: int = 100) -> list[StopState]:
        return self._history[::-1][:limit]


class MemoryOpenings:
    def __init__(self) -> None:
        self._openings: dict[tuple[int, Channel], Opening] = {}

    async def get(self, level: int, channel: Channel) -> Opening | None:
        return self._openings.get((level, channel))

    async def replace(self, opening: Opening, revision: int) -> bool:
        current = self._openings.get((opening.level, opening.channel))
        if (current.revision if current else 0) != revision:
            return False
        self._openings[opening.level, opening.channel] = opening
        return True

    async def all(self) -> list[Opening]:
        return sorted(self._openings.values(), key=lambda o: (o.level, o.channel))


class MemoryLedger:
    def __init__(self) -> None:
        self._ledgers: dict[str, dict[int, list[tuple[int, int]]]] = {}

    async def claim(self, ledger: str, ids: list[int], *, now: int, window: int, tag: int,
                    slots: int = 1, ttl: float) -> list[bool]:
        book = self._ledgers.setdefault(ledger, {})
        out = []
        for i in ids:
            held = book.setdefault(i, [(0, 0)] * slots)
            pick = next((s for s, (at, who) in enumerate(held) if who == tag and at > 0), None)
            if pick is None:
                pick = next((s for s, (at, _) in enumerate(held)
                             if at == 0 or now - at >= window), None)
            if pick is not None:
                held[pick] = (now, tag)
            out.append(pick is not None)
        return out

    async def release(self, ledger: str, ids: list[int], *, tag: int, slots: int = 1) -> None:
        book = self._ledgers.get(ledger, {})
        for i in ids:
            held = book.get(i, [])
            for s, (_, who) in enumerate(held):
                if who == tag:
                    held[s] = (0, 0)


class MemoryAudiences:
    def __init__(self) -> None:
        self._metas: dict[str, AudienceMeta] = {}
        self._chunks: dict[str, dict[int, AudienceChunk]] = {}
        self._current: str | None = None
        self._kept: dict[str, float] = {}  # version -> created_at (epoch seconds)
        self.numbers: MemoryRecipients | None = None  # the store's, indexed with the chunks

    async def put_chunks(self, version: str, first: int, chunks: list[AudienceChunk]) -> None:
        stored = self._chunks.setdefault(version, {})
        stored.update(enumerate(chunks, first))
        if self.numbers is not None:
            self.numbers.index(version, chunks)

    async def activate(self, meta: AudienceMeta) -> None:
        self._metas[meta.version] = meta
        self._current = meta.version

    async def keep(self, meta: AudienceMeta) -> None:
        self._metas[meta.version] = meta
        self._kept[meta.version] = meta.created_at.timestamp()

    async def kept(self, limit: int = 100) -> list[AudienceMeta]:
        newest = sorted(self._kept, key=lambda v: (self._kept[v], v), reverse=True)
        return [self._metas[v] for v in newest[:limit]]

    async def kept_before(self, before: dt.datetime) -> list[str]:
        cutoff = before.timestamp()
        return sorted((v for v, at in self._kept.items() if at < cutoff),
                      key=lambda v: (self._kept[v], v))

    async def forget(self, versions: list[str]) -> list[AudienceMeta]:
        gone = []
        for version in versions:
            if self._kept.pop(version, None) is not None:
                gone.append(self._metas.pop(version))
        return gone

    async def discard(self, version: str) -> None:
        self._chunks.pop(version, None)
        if self.numbers is not None:
            self.numbers.numbers.pop(version, None)

    async def put(self, meta: AudienceMeta, chunks: Iterable[AudienceChunk]) -> None:
        await self.put_chunks(meta.version, 0, list(chunks))
        await self.activate(meta)

    async def meta(self, version: str | None = None) -> AudienceMeta | None:
        version = version or self._current
        return self._metas.get(version) if version else None

    async def chunks(self, version: str, numbers: list[int]) -> list[AudienceChunk]:
        stored = self._chunks.get(version, {})
        return [stored[n] for n in numbers if n in stored]


class MemoryCampaigns:
    def __init__(self) -> None:
        self._campaigns: dict[str, Campaign] = {}

    async def create(self, campaign: Campaign) -> bool:
        if campaign.id in self._campaigns:
            return False
        self._campaigns[campaign.id] = campaign
        return True

    async def get(self, campaign_id: str) -> Campaign | None:
        return self._campaigns.get(campaign_id)

    async def replace(self, campaign: Campaign, revision: int) -> bool:
        current = self._campaigns.get(campaign.id)
        if current is None or current.revision != revision:
            return False
        self._campaigns[campaign.id] = campaign
        return True

    async def all(self) -> list[Campaign]:
        return sorted(self._campaigns.values(), key=lambda c: c.created_at)

    async def many(self, campaign_ids: list[str]) -> dict[str, Campaign]:
        return {c: self._campaigns[c] for c in campaign_ids if c in self._campaigns}


class MemoryWaves:
    def __init__(self) -> None:
        self._waves: dict[str, Wave] = {}
        self._states: dict[str, WaveState] = {}
        self._skipped: set[str] = set()
        self._unstarted: set[str] = set()  # paused before their fan-out began
        self.counters: dict[str, dict[str, int]] = {}

    async def create(self, wave: Wave, state: WaveState) -> bool:
        if wave.id in self._waves:
            return False
        self._waves[wave.id] = wave
        self._states[wave.id] = state
        return True

    async def get(self, wave_id: str) -> Wave | None:
        return self._waves.get(wave_id)

    async def all(self) -> list[Wave]:
        return sorted(self._waves.values(), key=lambda w: w.created_at)

    async def since(self, at: dt.datetime) -> list[Wave]:
        return newest_first(w for w in self._waves.values() if w.created_at >= at)

    async def set_state(self, wave_id: str, state: WaveState) -> None:
        self._states[wave_id] = state

    async def transition(self, wave_id: str, allowed: frozenset[WaveState],
                         state: WaveState) -> bool:
        if self._states.get(wave_id) not in allowed:
            return False
        self._states[wave_id] = state
        return True

    async def pause(self, wave_id: str) -> bool:
        state = self._states.get(wave_id)
        if state is None or state in WAVE_FINAL:
            return False
        if state is WaveState.CREATED:
            self._unstarted.add(wave_id)
        self._states[wave_id] = WaveState.PAUSED
        return True

    async def resume(self, wave_id: str) -> bool:
        if self._states.get(wave_id) is not WaveState.PAUSED:
            return False
        unstarted = wave_id in self._unstarted
        self._unstarted.discard(wave_id)
        self._states[wave_id] = WaveState.CREATED if unstarted else WaveState.FANNING_OUT
        return True

    async def states(self, wave_ids: list[str] | None = None) -> dict[str, WaveState]:
        if wave_ids is None:
            return dict(self._states)
        return {w: self._states[w] for w in wave_ids if w in self._states}

    async def progress(self, wave_id: str) -> dict[str, int]:
        return dict(self.counters.get(wave_id, {}))

    async def count_unfanned(self, wave_id: str, n: int) -> bool:
        counters = self.counters.setdefault(wave_id, {})
        if UNFANNED in counters:
            return False
        counters[UNFANNED] = n
        counters["cancelled"] = counters.get("cancelled", 0) + n
        return True

    async def mark_skipped(self, slot_id: str) -> bool:
        if slot_id in self._skipped:
            return False
        self._skipped.add(slot_id)
        return True


@dataclass
class _Route:
    entries: dict[Entry, list[Batch]] = field(default_factory=dict)
    new: deque[Entry] = field(default_factory=deque)  # routine entries not read yet
    urgent: deque[Entry] = field(default_factory=deque)  # urgent ones, read first
    pending: dict[Entry, tuple[str, float]] = field(default_factory=dict)  # -> (owner, t)
    cursor: dict[str, int] = field(default_factory=dict)
    retries: list[tuple[float, int, RetryItem]] = field(default_factory=list)  # heap
    dead: list[DeadLetter] = field(default_factory=list)  # the log, as written
    dead_count: int = 0  # not replayed
    # wave -> recipient id -> its dead letter not replayed (the last)
    dead_by_wave: dict[str, dict[int, DeadLetter]] = field(default_factory=dict)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    enqueued: dict[Entry, float] = field(default_factory=dict)  # entry -> epoch seconds


class MemoryQueue:
    def __init__(self, waves: MemoryWaves) -> None:
        self._routes: dict[str, _Route] = {}
        self._sent: dict[str, set[int]] = {}
        self._waves = waves
        self._seq = itertools.count(1)
        self.remote: dict[str, tuple[str, int, int]] = {}

    def _route(self, route: str) -> _Route:
        found = self._routes.get(route)
        if found is None:
            found = self._routes[route] = _Route()
        return found

    def _append(self, r: _Route, batches: list[Batch], urgent: bool) -> None:
        entry = Entry(f"{next(self._seq)}-0", urgent)
        r.entries[entry] = batches
        r.enqueued[entry] = time.time()
        (r.urgent if urgent else r.new).append(entry)
        r.arrived.set()

    async def enqueue(self, route: str, wave: str, step: int, batches: list[Batch], *,
                      urgent: bool = False, suppressed: int = 0) -> bool:
        r = self._route(route)
        if r.cursor.get(wave, -1) >= step:
            return False
        for batch in batches:
            self._append(r, [batch], urgent)
        r.cursor[wave] = step
        counters = self._waves.counters.setdefault(wave, {})
        counters[FANNED] = counters.get(FANNED, 0) + sum(len(b.ids) for b in batches)
        if suppressed:
            counters[SUPPRESSED] = counters.get(SUPPRESSED, 0) + suppressed
        return True

    async def cursor(self, route: str, wave: str) -> int:
        return self._route(route).cursor.get(wave, -1)

    async def ahead(self, route: str) -> int:
        return len(self._route(route).new)

    async def read(self, route: str, consumer: str, count: int, block_ms: int, *,
                   urgent_only: bool = False) -> list[Delivery]:
        r = self._route(route)
        if not urgent_only and not r.new and not r.urgent and block_ms > 0:
            r.arrived.clear()
            try:
                await asyncio.wait_for(r.arrived.wait(), block_ms / 1000)
            except TimeoutError:
                return []
        found: list[Delivery] = []
        now = time.monotonic()
        for lane in (r.urgent,) if urgent_only else (r.urgent, r.new):
            taken = 0
            while lane and taken < count:
                entry = lane.popleft()
                r.pending[entry] = (consumer, now)
                found.append(Delivery(entry, r.entries[entry]))
                taken += 1
        return found

    async def reclaim(self, route: str, consumer: str, min_idle_ms: int,
                      count: int) -> list[Delivery]:
        r = self._route(route)
        now = time.monotonic()
        found: list[Delivery] = []
        for entry, (_, touched) in sorted(r.pending.items(), key=lambda p: not p[0].urgent):
            if len(found) >= count:
                break
            if (now - touched) * 1000 >= min_idle_ms:
                r.pending[entry] = (consumer, now)
                found.append(Delivery(entry, r.entries[entry]))
        return found

    async def touch(self, route: str, consumer: str, entries: list[Entry]) -> list[Entry]:
        r = self._route(route)
        now = time.monotonic()
        kept = []
        for entry in entries:
            held = r.pending.get(entry)
            if held is not None and held[0] == consumer:
                r.pending[entry] = (consumer, now)
                kept.append(entry)
        return kept

    async def owner(self, route: str, entry: Entry) -> str | None:
        held = self._route(route).pending.get(entry)
        return held[0] if held else None

    async def sent_mask(self, wave: str, ids: list[int]) -> list[bool]:
        bits = self._sent.get(wave)
        if not bits:
            return [False] * len(ids)
        return [i in bits for i in ids]

    async def mark_sent(self, sent: dict[str, list[int]]) -> None:
        for wave, ids in sent.items():
            self._set_sent(wave, ids)

    def _set_sent(self, wave: str, ids: list[int]) -> None:
        """Set sent bits; the wave's ``sent`` counter grows by those not set before."""
        bits = self._sent.setdefault(wave, set())
        before = len(bits)
        bits.update(ids)
        if len(bits) > before:
            counters = self._waves.counters.setdefault(wave, {})
            counters["sent"] = counters.get("sent", 0) + len(bits) - before

    async def complete(self, route: str, entry: Entry, completion: Completion) -> None:
        r = self._route(route)
        for wave, ids in completion.sent.items():
            self._set_sent(wave, ids)
        for wave, counts in completion.counts.items():
            counters = self._waves.counters.setdefault(wave, {})
            for name, n in counts.items():
                counters[name] = counters.get(name, 0) + n
        for due, item in completion.retries:
            heapq.heappush(r.retries, (due, next(self._seq), item))
        for other, items in completion.reroute.items():
            target = self._route(other)
            for due, item in items:
                heapq.heappush(target.retries, (due, next(self._seq), item))
        r.dead.extend(completion.dead)
        r.dead_count += len(completion.dead)
        for letter in completion.dead:
            r.dead_by_wave.setdefault(letter.wave, {})[letter.id] = letter
        self.remote.update(completion.remote)
        r.pending.pop(entry, None)
        r.entries.pop(entry, None)
        r.enqueued.pop(entry, None)

    async def move_due(self, route: str, now: float, limit: int) -> int:
        r = self._route(route)
        items: list[RetryItem] = []
        while r.retries and r.retries[0][0] <= now and len(items) < limit:
            items.append(heapq.heappop(r.retries)[2])
        for urgent in (True, False):
            lane = [i for i in items if i.urgent is urgent]
            if lane:
                self._append(r, regroup(lane), urgent)
        return len(items)

    async def oldest(self, route: str) -> float | None:
        r = self._route(route)
        return r.enqueued.get(next(iter(r.entries)), None) if r.entries else None

    async def depth(self, route: str) -> tuple[int, int, int]:
        r = self._route(route)
        return len(r.entries), len(r.retries), r.dead_count

    async def dead_letters(self, route: str, limit: int = 1000) -> list[DeadLetter]:
        return self._route(route).dead[:limit]

    async def route_dead_letters(self, route: str, cursor: str = "",
                                 limit: int = 100) -> DeadLetterPage:
        _, start = deadletters.parse_route_cursor(cursor)  # the entry is the log's index
        log = self._route(route).dead
        found = [(route, d) for d in log[start:start + limit]]
        more = start + limit < len(log)
        return DeadLetterPage(found, f"0-0/{start + limit}" if more else "")

    async def dead_routes(self, wave: str) -> list[str]:
        return sorted(name for name, r in self._routes.items() if wave in r.dead_by_wave)

    async def wave_dead_count(self, wave: str) -> int:
        return sum(len(r.dead_by_wave.get(wave, {})) for r in self._routes.values())

    def _dead_above(self, route: str, wave: str, after: int, limit: int) -> list[DeadLetter]:
        letters = self._route(route).dead_by_wave.get(wave, {})
        return [letters[i] for i in sorted(i for i in letters if i > after)[:limit]]

    async def wave_dead_letters(self, wave: str, cursor: str = "",
                                limit: int = 100) -> DeadLetterPage:
        start, after = deadletters.parse_wave_cursor(cursor)
        found: list[tuple[str, DeadLetter]] = []
        for route in await self.dead_routes(wave):
            if route >= start:
                since = after if route == start else -1
                found += [(route, d) for d in self._dead_above(route, wave, since,
                                                               limit + 1 - len(found))]
            if len(found) > limit:
                break
        return deadletters.page_of(found, limit)

    async def requeue_dead(self, route: str, wave: str, *, after: int, limit: int, due: float,
                           urgent: bool, also: str = "") -> Requeued:
        read = self._dead_above(route, wave, after, limit)
        if not read:
            return Requeued(0, 0, -1)
        covered = await self.sent_mask(also, [d.id for d in read]) if also else [False] * len(read)
        letters = [d for d, done in zip(read, covered, strict=True) if not done]
        mask = await self.sent_mask(wave, [d.id for d in letters])
        r = self._route(route)
        held = r.dead_by_wave[wave]
        counters = self._waves.counters.setdefault(wave, {})
        requeued = skipped = 0
        for letter, done in zip(letters, mask, strict=True):
            if held.get(letter.id) != letter:  # taken meanwhile
                continue
            del held[letter.id]
            counter = "expired" if letter.expired else "failed"
            counters[counter] = counters.get(counter, 0) - 1
            if done:
                skipped += 1
                continue
            item = RetryItem(wave, letter.channel, letter.id, letter.addr, 0, urgent=urgent,
                             district=letter.district)
            heapq.heappush(r.retries, (due, next(self._seq), item))
            requeued += 1
        for name, n in (("retrying", requeued), ("replayed", requeued), ("skipped", skipped)):
            if n:
                counters[name] = counters.get(name, 0) + n
        r.dead_count -= requeued + skipped
        return Requeued(requeued, skipped, read[-1].id, len(read) - len(letters))


def regroup(items: list[RetryItem]) -> list[Batch]:
    """Retried messages as batches, one per (wave, channel, district)."""
    grouped: dict[tuple[str, str, str], list[RetryItem]] = {}
    for item in items:
        grouped.setdefault((item.wave, item.channel, item.district), []).append(item)
    return [
        Batch(wave=group[0].wave, channel=group[0].channel, ids=[i.id for i in group],
              addrs=[i.addr for i in group], attempts=[i.attempt for i in group], retried=True,
              district=group[0].district)
        for group in grouped.values()
    ]


class MemoryReceipts:
    def __init__(self, queue: MemoryQueue, waves: MemoryWaves,
                 recipients: MemoryRecipients) -> None:
        self._queue = queue
        self._waves = waves
        self._recipients = recipients

    async def match(self, remote_ids: list[str], *, recent: bool = False,
                    ) -> dict[str, tuple[str, int, int]]:
        known = self._queue.remote
        return {r: known[r] for r in remote_ids if r in known}

    async def count(self, counts: dict[str, dict[str, int]],
                    delivered: dict[str, list[int]] | None = None) -> None:
        for wave, ids in (delivered or {}).items():
            self._recipients.delivered.setdefault(wave, set()).update(ids)
        for wave, fields in counts.items():
            counters = self._waves.counters.setdefault(wave, {})
            for name, n in fields.items():
                counters[name] = counters.get(name, 0) + n


class MemoryLeases:
    def __init__(self) -> None:
        self._held: dict[str, tuple[str, float]] = {}

    async def acquire(self, name: str, owner: str, ttl: float) -> bool:
        now = time.monotonic()
        held = self._held.get(name)
        if held is not None and held[0] != owner and held[1] > now:
            return False
        self._held[name] = (owner, now + ttl)
        return True

    async def release(self, name: str, owner: str) -> None:
        held = self._held.get(name)
        if held is not None and held[0] == owner:
            del self._held[name]


class MemoryStore:
    """Everything the engine keeps, in this process."""

    def __init__(self) -> None:
        self.level = MemoryLevel()
        self.stop = MemoryStop()
        self.situation = MemorySituation()
        self.incoming = MemoryIncoming()
        self.plan_texts = MemoryPlanTexts()
        self.checklist = MemoryChecklist()
        self.openings = MemoryOpenings()
        self.ledger = MemoryLedger()
        self.audiences = MemoryAudiences()
        self.campaigns = MemoryCampaigns()
        self.waves = MemoryWaves()
        self.queue = MemoryQueue(self.waves)
        self.leases = MemoryLeases()
        self.recipients = MemoryRecipients(self.queue, self.waves)
        self.audiences.numbers = self.recipients
        self.receipts = MemoryReceipts(self.queue, self.waves, self.recipients)
        self.webhook_seen = MemorySeen()
        self.suppressions = MemorySuppressions()
        self.cap = MemoryCap()
        self.wifi = MemoryWifi()
        self.broadcasts = MemoryBroadcasts()

    async def aclose(self) -> None:
        return None
