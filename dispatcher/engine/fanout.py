"""Fan-out: a wave's audience, read chunk by chunk, appended to route streams as batches.

The audience chunks a wave's selector matches are taken in a fixed order and cut into steps of
``chunks_per_step`` chunks. Each step's batches go to each route together with the route's
cursor (one script call per route, the routes of a step at once), so a fan-out that crashes and
is resumed by any process starts again at the last step it began and never enqueues a step
twice on any route. The next step begins only when every route has taken this one.

Recipients on the channel's suppression list are left out (every wave but a public-safety
campaign's): the list is asked about a whole step in one command (:meth:`SuppressionStore.mask`),
they are counted ``suppressed`` on the wave, in the script that enqueues the step on their
route (so once, whatever a crash makes fan-out begin again), and in
``loa_suppressed_total{channel}``. On Zalo a
recipient is suppressed by its address (the user id or the phone) or by its phone.

Urgent waves go to each route's urgent lane, which workers read first. Routine fan-out keeps a
bounded lead over the senders: a step waits while a route holds ``ahead_batches`` routine
batches that no worker has read yet, so a routine wave is queued as it is sent, not all at once.

A wave of an outlet channel (Facebook pages, portals, loudspeaker systems) does not read the
audience: its recipients are the targets it was made with (``Wave.targets``), its recipient ids
their indexes in that list and its addresses their ids, in one step on the channel's one route,
cut per district when its text names ``{district}`` (each target gets its district's words). The
same script, cursor, sent bits, retries and dead letters as every channel then make each target
get the wave once; no suppression list concerns a target.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from dispatcher.domain.errors import NotFound
from dispatcher.domain.model import Batch, Channel, Priority, Wave
from dispatcher.engine import metrics, routing
from dispatcher.engine.settings import EngineConfig
from dispatcher.store.base import Store

AHEAD_WAIT = 0.05  # seconds between two looks at a full route


async def fan_out(store: Store, wave: Wave, settings: EngineConfig, carriers: list[str], *,
                  proceed: Callable[[], Awaitable[bool]]) -> int:
    """Enqueue every message of ``wave``; returns the messages enqueued by this call.

    ``proceed`` is awaited before each step: it renews the caller's lease and waits while the
    wave is paused; when it answers False (cancelled, lease lost) fan-out stops where it is.
    """
    if wave.channel.outlet:
        return await _publish(store, wave, settings, proceed)
    meta = await store.audiences.meta(wave.audience_version)
    if meta is None:
        raise NotFound(f"audience version {wave.audience_version} of wave {wave.id} is gone")
    per_district = wave.per_district  # its text names {district}: batches of one district
    # per district, the chunks are taken district by district: a step then holds one district
    # or two, and its batches stay full (taken in number order, a step's 16 chunks hold as
    # many districts, each cut into a short batch)
    numbers = [n for _, n in sorted((g.district if per_district else "", n)
                                    for g in meta.groups
                                    if wave.selector.matches(g.district, g.kind)
                                    for n in g.chunks)]
    per_step = settings.engine.chunks_per_step
    steps = [numbers[i:i + per_step] for i in range(0, len(numbers), per_step)]
    channel = wave.channel
    all_routes = routing.routes(channel, carriers, settings)
    cursors = {r: await store.queue.cursor(r, wave.id) for r in all_routes}
    # Steps run in order, so every step before the highest cursor is complete on every route.
    first = max(cursors.values(), default=-1)
    size = settings.engine.batch_size
    urgent = wave.priority is Priority.URGENT
    zalo = channel is Channel.ZALO
    address, route_of = routing.address, routing.route
    enqueued = 0
    for step in range(max(first, 0), len(steps)):
        if not await proceed():
            break
        # route -> district ("" unless per district) -> (ids, addresses)
        by_route: dict[str, dict[str, tuple[list[int], list[str]]]] = {}
        phones: dict[int, str] = {}  # Zalo: recipient id -> phone, when its address is not
        for chunk in await store.audiences.chunks(wave.audience_version, steps[step]):
            # a chunk is one (district, kind) (dispatcher.engine.importer)
            district = chunk.recipients[0].district if per_district and chunk.recipients else ""
            for offset, r in enumerate(chunk.recipients):
                addr = address(channel, r)
                if addr is None:
                    continue
                name = route_of(channel, r, settings)
                cut = by_route.get(name)
                if cut is None:
                    cut = by_route[name] = {}
                pair = cut.get(district)
                if pair is None:
                    pair = cut[district] = ([], [])
                pair[0].append(chunk.first_id + offset)
                pair[1].append(addr)
                if zalo and addr != r.msisdn:
                    phones[chunk.first_id + offset] = r.msisdn
        todo = [(name, cut) for name, cut in by_route.items() if cursors.get(name, -1) < step]
        if not urgent and not await _room(store, [name for name, _ in todo], settings,
                                          proceed):
            break
        left_out: dict[str, int] = {}
        if not wave.public_safety and todo:
            todo, left_out = await _unsuppressed(store, wave, todo, phones)
        done = await asyncio.gather(*(
            store.queue.enqueue(name, wave.id, step, [
                Batch(wave.id, channel, ids[i:i + size], addrs[i:i + size], district=district)
                for district, (ids, addrs) in sorted(cut.items())
                for i in range(0, len(ids), size)], urgent=urgent,
                suppressed=left_out.get(name, 0))
            for name, cut in todo))
        for (name, cut), added in zip(todo, done, strict=True):
            if added:
                enqueued += sum(len(ids) for ids, _ in cut.values())
                if left_out.get(name):
                    metrics.SUPPRESSED.labels(channel.value).inc(left_out[name])
            cursors[name] = step
    return enqueued


async def _publish(store: Store, wave: Wave, settings: EngineConfig,
                   proceed: Callable[[], Awaitable[bool]]) -> int:
    """An outlet wave's one step: its targets, on the channel's route."""
    route = wave.channel.value
    if not wave.targets or await store.queue.cursor(route, wave.id) >= 0:
        return 0  # nothing to publish to, or enqueued before (by this process or another)
    if not await proceed():
        return 0
    urgent = wave.priority is Priority.URGENT
    if not urgent and not await _room(store, [route], settings, proceed):
        return 0
    cut: dict[str, tuple[list[int], list[str]]] = {}
    for index, target in enumerate(wave.targets):
        ids, addrs = cut.setdefault(target.district if wave.per_district else "", ([], []))
        ids.append(index)
        addrs.append(target.id)
    size = settings.engine.batch_size
    batches = [Batch(wave.id, wave.channel, ids[i:i + size], addrs[i:i + size],
                     district=district)
               for district, (ids, addrs) in sorted(cut.items())
               for i in range(0, len(ids), size)]
    added = await store.queue.enqueue(route, wave.id, 0, batches, urgent=urgent)
    return len(wave.targets) if added else 0


#: route -> its part of a step: district ("" unless per district) -> (recipient ids, addresses)
Todo = list[tuple[str, dict[str, tuple[list[int], list[str]]]]]


async def _unsuppressed(store: Store, wave: Wave, todo: Todo,
                        phones: dict[int, str]) -> tuple[Todo, dict[str, int]]:
    """``todo`` less the recipients on the channel's suppression list, and how many those
    were on each route: one command for the whole step."""
    asked = [a for _, cut in todo for _, addrs in cut.values() for a in addrs]
    asked += list(phones.values())
    on_list = await store.suppressions.mask(wave.channel, asked)
    if not any(on_list):
        return todo, {}
    listed = {a for a, on in zip(asked, on_list, strict=True) if on}
    kept: Todo = []
    suppressed: dict[str, int] = {}
    for name, cut in todo:
        left: dict[str, tuple[list[int], list[str]]] = {}
        for district, (ids, addrs) in cut.items():
            if listed.isdisjoint(addrs) and (not phones or listed.isdisjoint(
                    phones[i] for i in ids if i in phones)):
                left[district] = (ids, addrs)  # nothing of these is listed: as they were
                continue
            pairs = [(i, a) for i, a in zip(ids, addrs, strict=True)
                     if a not in listed and phones.get(i) not in listed]
            suppressed[name] = suppressed.get(name, 0) + len(ids) - len(pairs)
            left[district] = ([i for i, _ in pairs], [a for _, a in pairs])
        kept.append((name, left))
    return kept, suppressed


async def _room(store: Store, routes: list[str], settings: EngineConfig,
                proceed: Callable[[], Awaitable[bool]]) -> bool:
    """Wait until each of ``routes`` holds fewer than ``ahead_batches`` routine batches that no
    worker has read; False if ``proceed`` says to stop meanwhile."""
    limit = settings.engine.ahead_batches
    for route in routes:
        while await store.queue.ahead(route) >= limit:
            await asyncio.sleep(AHEAD_WAIT)
            if not await proceed():
                return False
    return True
