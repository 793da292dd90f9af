"""The store's dead letters (memory, Redis, Redis Cluster): the route's log and the wave's
letters in pages with a cursor, and replays that take each letter once."""

from __future__ import annotations

import asyncio
import time

import pytest

from dispatcher.domain.errors import InputError
from dispatcher.domain.model import Channel
from dispatcher.store import Store
from dispatcher.store.base import Completion, DeadLetter
from tests.store.test_store import addr, batch, taken

ROUTES = ("sms.mobifone", "sms.viettel")


def letter(wave: str, i: int, *, expired: bool = False) -> DeadLetter:
    return DeadLetter(wave, Channel.SMS, i, addr(i), 3 if expired else 1,
                      "retries exhausted: throttled" if expired else "invalid number",
                      expired=expired)


async def dead_lettered(store: Store) -> dict[str, list[DeadLetter]]:
    """Route -> the letters written there: wave w1 on both routes (ids 0-9 and 100-104), w2 on
    one, several entries each, one recipient of w1 dead-lettered twice (the last counts)."""
    written: dict[str, list[DeadLetter]] = {}
    for route, ids in zip(ROUTES, (range(10), range(100, 105)), strict=True):
        letters = [letter("w1", i, expired=i % 2 == 0) for i in ids]
        entries = await taken(store, [batch("w1", [0]), batch("w1", [1]), batch("w1", [2])],
                              route=route)
        parts = [letters[:4], [*letters[4:], letter("w2", 7)], [letter("w1", ids[0])]]
        for delivery, dead in zip(entries, parts, strict=True):
            await store.queue.complete(route, delivery.entry, Completion(dead=dead))
        written[route] = [d for part in parts for d in part]
    return written


async def test_a_waves_letters_come_in_pages_one_per_recipient(store: Store) -> None:
    q = store.queue
    written = await dead_lettered(store)
    assert await q.dead_routes("w1") == sorted(ROUTES)
    assert await q.wave_dead_count("w1") == 15 and await q.wave_dead_count("w2") == 2
    pages, cursor = [], ""
    while True:
        page = await q.wave_dead_letters("w1", cursor, 4)
        pages.append(page.letters)
        if not page.cursor:
            break
        cursor = page.cursor
    assert [len(p) for p in pages] == [4, 4, 4, 3]
    found = [(r, d.id) for p in pages for r, d in p]
    assert found == [("sms.mobifone", i) for i in range(10)] + [
        ("sms.viettel", i) for i in range(100, 105)]
    last = {(r, d.id): d for r, d in [(r, d) for r in ROUTES for d in written[r]
                                      if d.wave == "w1"]}
    assert all(d == last[r, d.id] for p in pages for r, d in p)  # the last letter of each
    assert (await q.wave_dead_letters("w1", "", 15)).cursor == ""
    assert (await q.wave_dead_letters("nothing")).letters == []
    for bad in ("x", "sms.viettel:", "sms.viettel:-3", ":5"):
        with pytest.raises(InputError, match="cursor"):
            await q.wave_dead_letters("w1", bad)


async def test_a_routes_log_comes_in_pages_as_written(store: Store) -> None:
    written = await dead_lettered(store)
    route = ROUTES[1]
    found, cursor = [], ""
    while True:
        page = await store.queue.route_dead_letters(route, cursor, 3)
        assert len(page.letters) <= 3
        found += [d for _, d in page.letters]
        if not page.cursor:
            break
        cursor = page.cursor
    assert found == written[route] == await store.queue.dead_letters(route)
    with pytest.raises(InputError, match="cursor"):
        await store.queue.route_dead_letters(route, "1-0")


async def test_a_letter_is_requeued_once_and_leaves_its_counter(store: Store) -> None:
    q = store.queue
    await dead_lettered(store)
    await store.receipts.count({"w1": {"failed": 8, "expired": 8}})  # as the worker counted
    await q.mark_sent({"w1": [3]})
    route = ROUTES[0]
    # two replays at once, then one for what they left: each letter is taken once
    takes = await asyncio.gather(*(q.requeue_dead(route, "w1", after=-1, limit=6, due=0.0,
                                                  urgent=False) for _ in range(2)))
    takes.append(await q.requeue_dead(route, "w1", after=-1, limit=100, due=0.0, urgent=False))
    assert sum(t.requeued for t in takes) == 9 and sum(t.skipped for t in takes) == 1
    none = await q.requeue_dead(route, "w1", after=-1, limit=100, due=0.0, urgent=False)
    assert (none.requeued, none.skipped, none.last) == (0, 0, -1)
    assert await q.wave_dead_count("w1") == 5  # the other route's
    assert await q.depth(route) == (0, 9, 12 - 10)  # w2's and the log's duplicate are left
    counts = await store.waves.progress("w1")
    # ids 0-9 on the first route: even ones expired but 0 (its last letter is a failure)
    assert (counts["expired"], counts["failed"]) == (8 - 4, 8 - 6)
    assert (counts["retrying"], counts["replayed"], counts["skipped"]) == (9, 9, 1)
    moved = await q.move_due(route, time.time(), 100)
    assert moved == 9
    (delivery,) = await q.read(route, "c1", 1, 0)
    (replayed,) = delivery.batches
    assert replayed.retried and sorted(replayed.ids) == [0, 1, 2, 4, 5, 6, 7, 8, 9]
    assert replayed.attempts == [0] * 9  # their attempts start again
