"""The store contract: one suite, run against the memory store and the Redis store.

Every test goes through the interfaces of :mod:`dispatcher.store.base` only; the few facts that
belong to Redis alone (hash tags, the size of a sent bitmap) have their own tests at the end.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import msgspec
import redis

from dispatcher.domain.audience import Recipient
from dispatcher.domain.model import (
    Batch,
    Campaign,
    CampaignState,
    Channel,
    Kind,
    LevelState,
    Selector,
    Wave,
    WaveState,
)
from dispatcher.store import RedisStore, Store, keys
from dispatcher.store.base import (
    FANNED,
    UNFANNED,
    AudienceChunk,
    AudienceGroup,
    AudienceMeta,
    Completion,
    DeadLetter,
    Delivery,
    Entry,
    RetryItem,
)

T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
ROUTE = "sms-viettel"


# -- helpers --------------------------------------------------------------------------------------


def addr(i: int) -> str:
    return f"849{i:08d}"


def batch(wave: str = "w1", ids: list[int] | None = None,
          channel: Channel = Channel.SMS) -> Batch:
    ids = [1, 2, 3] if ids is None else ids
    return Batch(wave=wave, channel=channel, ids=ids, addrs=[addr(i) for i in ids])


def campaign(cid: str = "c1", *, created_at: datetime = T0, revision: int = 0,
             title: str = "Phòng dịch") -> Campaign:
    return Campaign(id=cid, title=title, channels=[Channel.SMS, Channel.ZALO],
                    texts={Channel.SMS: "Đeo khẩu trang", Channel.ZALO: "Đeo khẩu trang."},
                    created_at=created_at, created_by="cdc", owner="so-y-te",
                    selector=Selector(districts=["ha-long"], kinds=[Kind.RESIDENT]),
                    revision=revision)


def wave(wid: str = "w1", *, created_at: datetime = T0) -> Wave:
    return Wave(id=wid, campaign_id="c1", channel=Channel.SMS, text="Đeo khẩu trang",
                created_at=created_at, audience_version="v1", total=1000,
                slot_at=created_at + timedelta(minutes=5))


def level(n: int, minutes: int = 0) -> LevelState:
    return LevelState(level=n, at=T0 + timedelta(minutes=minutes), cases=10 * n,
                      reason=f"level {n}", set_by="cdc")


def recipient(i: int) -> Recipient:
    return Recipient(msisdn=addr(i), carrier="viettel", district="ha-long",
                     kind=Kind.RESIDENT, zalo=i % 2 == 0)


def chunk(first_id: int, n: int = 3) -> AudienceChunk:
    return AudienceChunk(first_id=first_id,
                         recipients=[recipient(first_id + k) for k in range(n)])


def meta(version: str, chunks: int) -> AudienceMeta:
    return AudienceMeta(
        version=version, created_at=datetime.now(UTC), count=3 * chunks, source="test.csv",
        groups=[AudienceGroup(district="ha-long", kind=Kind.RESIDENT,
                              chunks=list(range(chunks)), count=3 * chunks, zalo=chunks,
                              email=0)])


async def read_one(store: Store, route: str = ROUTE, consumer: str = "c1") -> Delivery:
    found = await store.queue.read(route, consumer, 10, 0)
    assert len(found) == 1
    return found[0]


async def taken(store: Store, batches: list[Batch], route: str = ROUTE,
                consumer: str = "c1") -> list[Delivery]:
    """Enqueue ``batches`` as the next step of their wave and read them all as ``consumer``."""
    wave_id = batches[0].wave
    step = await store.queue.cursor(route, wave_id) + 1
    assert await store.queue.enqueue(route, wave_id, step, batches)
    found = await store.queue.read(route, consumer, len(batches), 0)
    assert len(found) == len(batches)
    return found


# -- level ----------------------------------------------------------------------------------------


async def test_level_is_none_at_first(store: Store) -> None:
    assert await store.level.get() is None
    assert await store.level.history() == []


async def test_level_set_get_and_history_newest_first(store: Store) -> None:
    states = [level(1), level(2, 10), level(3, 20)]
    for state in states:
        await store.level.set(state)
    assert await store.level.get() == states[-1]
    assert await store.level.history() == states[::-1]
    assert await store.level.history(limit=2) == [states[2], states[1]]
    assert await store.level.history(limit=1) == [states[2]]


# -- audiences ------------------------------------------------------------------------------------


async def test_audience_meta_is_none_at_first(store: Store) -> None:
    assert await store.audiences.meta() is None
    assert await store.audiences.meta("v1") is None


async def test_audience_put_then_meta_and_chunks_in_asked_order(store: Store) -> None:
    m1 = meta("v1", 3)
    chunks = [chunk(0), chunk(3), chunk(6)]
    await store.audiences.put(m1, iter(chunks))
    assert await store.audiences.meta() == m1
    assert await store.audiences.meta("v1") == m1
    assert await store.audiences.meta("v0") is None
    assert await store.audiences.chunks("v1", [2, 0]) == [chunks[2], chunks[0]]
    assert await store.audiences.chunks("v1", [1]) == [chunks[1]]
    assert await store.audiences.chunks("v1", []) == []


async def test_audience_new_version_becomes_current_old_stays_readable(store: Store) -> None:
    m1, m2 = meta("v1", 3), meta("v2", 2)
    old = [chunk(0), chunk(3), chunk(6)]
    new = [chunk(0, 2), chunk(2, 2)]
    await store.audiences.put(m1, old)
    await store.audiences.put(m2, new)
    assert await store.audiences.meta() == m2
    assert await store.audiences.meta("v2") == m2
    assert await store.audiences.meta("v1") == m1  # a running wave keeps its version
    assert await store.audiences.chunks("v1", [0, 1, 2]) == old
    assert await store.audiences.chunks("v2", [1, 0]) == [new[1], new[0]]


async def test_a_kept_version_is_readable_and_never_current(store: Store) -> None:
    province, listed = meta("v1", 1), meta("l-1", 2)
    await store.audiences.put(province, [chunk(0)])
    await store.audiences.put_chunks("l-1", 0, [chunk(0, 2), chunk(2, 2)])
    await store.audiences.keep(listed)
    assert await store.audiences.meta() == province
    assert await store.audiences.meta("l-1") == listed
    assert await store.audiences.chunks("l-1", [1]) == [chunk(2, 2)]
    number = chunk(2, 2).recipients[1].msisdn
    assert await store.recipients.find("l-1", number) == 3
    assert await store.audiences.kept() == [listed]
    later = msgspec.structs.replace(meta("l-2", 1), created_at=listed.created_at
                                    + timedelta(seconds=1))
    await store.audiences.keep(later)
    assert await store.audiences.kept() == [later, listed]
    assert await store.audiences.kept(limit=1) == [later]


# -- campaigns ------------------------------------------------------------------------------------


async def test_campaign_create_once(store: Store) -> None:
    first = campaign("c1")
    assert await store.campaigns.get("c1") is None
    assert await store.campaigns.create(first)
    assert not await store.campaigns.create(campaign("c1", title="another"))
    assert await store.campaigns.get("c1") == first


async def test_campaign_replace_compares_revision(store: Store) -> None:
    first = campaign("c1")
    await store.campaigns.create(first)
    approved = campaign("c1", revision=1, title="Phòng dịch (duyệt)")
    assert await store.campaigns.replace(approved, 0)
    assert await store.campaigns.get("c1") == approved
    stale = campaign("c1", revision=1, title="stale")
    assert not await store.campaigns.replace(stale, 0)  # stored revision is 1 now
    assert await store.campaigns.get("c1") == approved
    running = campaign("c1", revision=2, title="running")
    assert await store.campaigns.replace(running, 1)
    assert await store.campaigns.get("c1") == running
    assert not await store.campaigns.replace(campaign("missing", revision=1), 0)
    assert await store.campaigns.get("missing") is None


async def test_campaigns_all_sorted_by_created_at(store: Store) -> None:
    assert await store.campaigns.all() == []
    late = campaign("a", created_at=T0 + timedelta(hours=2))
    early = campaign("b", created_at=T0)
    middle = campaign("c", created_at=T0 + timedelta(hours=1))
    for c in (late, early, middle):
        assert await store.campaigns.create(c)
    assert await store.campaigns.all() == [early, middle, late]


async def test_campaign_round_trip_keeps_every_field(store: Store) -> None:
    full = Campaign(id="c9", title="Khẩn", channels=[Channel.EMAIL],
                    texts={Channel.EMAIL: "Họp khẩn"}, created_at=datetime.now(UTC),
                    created_by="cdc", state=CampaignState.APPROVED, coordinating=["ubnd"],
                    subject="Họp", strip_diacritics=True, approved_by="gd", audience_size=7,
                    level=3, revision=4)
    assert await store.campaigns.create(full)
    assert await store.campaigns.get("c9") == full


async def test_campaigns_by_id(store: Store) -> None:
    assert await store.campaigns.many([]) == {}
    one, two = campaign("c1", title="Một"), campaign("c2", title="Hai")
    for c in (one, two):
        assert await store.campaigns.create(c)
    assert await store.campaigns.many(["c2", "missing", "c1", "c2"]) == {"c2": two, "c1": one}


# -- waves ----------------------------------------------------------------------------------------


async def test_wave_create_once(store: Store) -> None:
    w = wave("w1")
    assert await store.waves.get("w1") is None
    assert await store.waves.create(w, WaveState.CREATED)
    assert not await store.waves.create(wave("w1", created_at=T0 + timedelta(days=1)),
                                        WaveState.SENDING)
    assert await store.waves.get("w1") == w
    assert await store.waves.states(["w1"]) == {"w1": WaveState.CREATED}


async def test_wave_create_race_has_one_winner(store: Store) -> None:
    results = await asyncio.gather(*(store.waves.create(wave("w1"), WaveState.CREATED)
                                     for _ in range(10)))
    assert results.count(True) == 1
    assert await store.waves.all() == [wave("w1")]


async def test_waves_all_and_states(store: Store) -> None:
    assert await store.waves.all() == []
    assert await store.waves.states() == {}
    w2 = wave("w2", created_at=T0 + timedelta(minutes=1))
    w1 = wave("w1", created_at=T0)
    await store.waves.create(w2, WaveState.CREATED)
    await store.waves.create(w1, WaveState.FANNING_OUT)
    assert await store.waves.all() == [w1, w2]
    await store.waves.set_state("w2", WaveState.PAUSED)
    assert await store.waves.states(["w2", "missing"]) == {"w2": WaveState.PAUSED}
    assert await store.waves.states([]) == {}
    assert await store.waves.states(None) == {"w1": WaveState.FANNING_OUT,
                                              "w2": WaveState.PAUSED}
    await store.waves.set_state("w1", WaveState.SENDING)
    assert await store.waves.states(["w1"]) == {"w1": WaveState.SENDING}


async def test_wave_progress_empty_at_first(store: Store) -> None:
    await store.waves.create(wave("w1"), WaveState.CREATED)
    assert await store.waves.progress("w1") == {}
    assert await store.waves.progress("missing") == {}


async def test_mark_skipped_once(store: Store) -> None:
    assert await store.waves.mark_skipped("plan:3:2024-03-01T08:00")
    assert not await store.waves.mark_skipped("plan:3:2024-03-01T08:00")
    assert await store.waves.mark_skipped("plan:3:2024-03-01T09:00")


# -- queue: enqueue, cursor, read -----------------------------------------------------------------


async def test_enqueue_a_step_once(store: Store) -> None:
    q = store.queue
    b1, b2 = batch("w1", [1, 2]), batch("w1", [3, 4])
    assert await q.cursor(ROUTE, "w1") == -1
    assert await q.enqueue(ROUTE, "w1", 0, [b1, b2])
    assert await q.cursor(ROUTE, "w1") == 0
    assert not await q.enqueue(ROUTE, "w1", 0, [b1, b2])
    assert await q.cursor(ROUTE, "w1") == 0
    assert await q.cursor(ROUTE, "w2") == -1
    assert await q.cursor("zalo", "w1") == -1
    assert await q.depth(ROUTE) == (2, 0, 0)
    found = await q.read(ROUTE, "c1", 10, 0)
    assert [d.batches for d in found] == [[b1], [b2]]
    assert len({d.entry for d in found}) == 2
    assert await q.read(ROUTE, "c1", 10, 0) == []


async def test_enqueue_next_steps_and_older_steps(store: Store) -> None:
    q = store.queue
    assert await q.enqueue(ROUTE, "w1", 0, [batch("w1", [1])])
    assert await q.enqueue(ROUTE, "w1", 1, [batch("w1", [2])])
    assert await q.enqueue(ROUTE, "w2", 0, [batch("w2", [1])])  # cursors are per wave
    assert not await q.enqueue(ROUTE, "w1", 0, [batch("w1", [1])])  # a step already passed
    assert await q.cursor(ROUTE, "w1") == 1
    assert await q.cursor(ROUTE, "w2") == 0
    found = await q.read(ROUTE, "c1", 10, 0)
    assert [d.batches for d in found] == [[batch("w1", [1])], [batch("w1", [2])],
                                          [batch("w2", [1])]]


async def test_an_enqueued_step_counts_its_messages_once_as_fanned(store: Store) -> None:
    q = store.queue
    assert await q.enqueue(ROUTE, "w1", 0, [batch("w1", [1, 2, 3]), batch("w1", [4, 5])])
    assert not await q.enqueue(ROUTE, "w1", 0, [batch("w1", [1, 2, 3])])  # resumed: not again
    assert await q.enqueue("zalo", "w1", 0, [batch("w1", [6])])
    assert await q.enqueue(ROUTE, "w1", 1, [batch("w1", [7, 8])])
    assert (await store.waves.progress("w1"))[FANNED] == 8
    assert FANNED not in await store.waves.progress("w2")


async def test_the_messages_a_cancelled_wave_never_enqueued_are_counted_once(
        store: Store) -> None:
    assert await store.queue.enqueue(ROUTE, "w1", 0, [batch("w1", [1, 2, 3])])
    [delivery] = await store.queue.read(ROUTE, "c1", 10, 0)
    done = Completion()
    done.count("w1", "cancelled", 3)  # a worker read them after the wave was cancelled
    await store.queue.complete(ROUTE, delivery.entry, done)
    assert await store.waves.count_unfanned("w1", 40)
    assert not await store.waves.count_unfanned("w1", 40)  # a second process: nothing more
    assert not await store.waves.count_unfanned("w1", 7)
    counts = await store.waves.progress("w1")
    assert counts["cancelled"] == 43 and counts[UNFANNED] == 40 and counts[FANNED] == 3


async def test_read_returns_same_batch_contents(store: Store) -> None:
    sent = [Batch(wave="w-7", channel=Channel.ZALO, ids=[0, 7, 1_000_000],
                  addrs=["84900000000", "zalo:123456789012", "84911111111"]),
            Batch(wave="w-7", channel=Channel.ZALO, ids=[5], addrs=["84955555555"],
                  attempts=[2])]
    assert await store.queue.enqueue("zalo-oa", "w-7", 0, sent)
    found = await store.queue.read("zalo-oa", "c1", 1, 0)  # count is honoured
    assert len(found) == 1
    found += await store.queue.read("zalo-oa", "c1", 1, 0)
    got = [b for d in found for b in d.batches]
    assert got == sent
    assert [b.ids for b in got] == [[0, 7, 1_000_000], [5]]
    assert got[0].addrs == sent[0].addrs
    assert got[0].channel is Channel.ZALO
    assert got[0].wave == "w-7"
    assert got[1].attempt(0) == 2


async def test_read_blocks_then_returns_nothing_on_an_empty_route(store: Store) -> None:
    started = time.monotonic()
    assert await store.queue.read("empty", "c1", 10, 50) == []
    assert time.monotonic() - started >= 0.04


async def test_blocked_read_wakes_up_on_enqueue(store: Store) -> None:
    async def later() -> None:
        await asyncio.sleep(0.05)
        await store.queue.enqueue(ROUTE, "w1", 0, [batch()])

    started = time.monotonic()
    found, _ = await asyncio.gather(store.queue.read(ROUTE, "c1", 10, 2000), later())
    assert [d.batches for d in found] == [[batch()]]
    assert time.monotonic() - started < 1.5


async def test_two_consumers_never_get_the_same_entry(store: Store) -> None:
    q = store.queue
    assert await q.enqueue(ROUTE, "w1", 0, [batch("w1", [i]) for i in range(20)])

    async def drain(consumer: str) -> list[Entry]:
        entries: list[Entry] = []
        while found := await q.read(ROUTE, consumer, 3, 0):
            entries += [d.entry for d in found]
            await asyncio.sleep(0)
        return entries

    a, b = await asyncio.gather(drain("a"), drain("b"))
    assert not set(a) & set(b)
    assert len(a) + len(b) == 20
    assert len(set(a) | set(b)) == 20
    for entry in a:
        assert await q.owner(ROUTE, entry) == "a"
    for entry in b:
        assert await q.owner(ROUTE, entry) == "b"


# -- queue: owner, complete, sent bits, counters --------------------------------------------------


async def test_owner_until_complete(store: Store) -> None:
    (d,) = await taken(store, [batch()])
    assert await store.queue.owner(ROUTE, d.entry) == "c1"
    await store.queue.complete(ROUTE, d.entry, Completion())
    assert await store.queue.owner(ROUTE, d.entry) is None
    assert await store.queue.depth(ROUTE) == (0, 0, 0)


async def test_sent_mask_before_and_after_complete(store: Store) -> None:
    q = store.queue
    ids = [0, 7, 1_000_000, 8, 6]
    assert await q.sent_mask("w1", ids) == [False] * 5
    assert await q.sent_mask("w1", []) == []
    (d,) = await taken(store, [batch("w1", [0, 7, 1_000_000])])
    await q.complete(ROUTE, d.entry, Completion(sent={"w1": [0, 7, 1_000_000], "w2": []}))
    assert await q.sent_mask("w1", ids) == [True, True, True, False, False]
    assert await q.sent_mask("w2", ids) == [False] * 5
    assert await q.sent_mask("w1", [1_000_000, 0]) == [True, True]


async def test_complete_adds_up_counters(store: Store) -> None:
    await store.waves.create(wave("w1"), WaveState.SENDING)
    d1, d2 = await taken(store, [batch("w1", [1, 2, 3]), batch("w1", [4, 5])])
    first = Completion()
    first.count("w1", "sent", 2)
    first.count("w1", "failed", 1)
    first.count("w1", "dead", 0)  # zero counts are not written
    await store.queue.complete(ROUTE, d1.entry, first)
    # the fan-out's count of what it enqueued (5) is there from the enqueue
    assert await store.waves.progress("w1") == {"fanned": 5, "sent": 2, "failed": 1}
    second = Completion(counts={"w1": {"sent": 2}, "w2": {"expired": 4}})
    await store.queue.complete(ROUTE, d2.entry, second)
    assert await store.waves.progress("w1") == {"fanned": 5, "sent": 4, "failed": 1}
    assert await store.waves.progress("w2") == {"expired": 4}


async def test_depth_counts_stream_retries_and_dead(store: Store) -> None:
    q = store.queue
    assert await q.depth(ROUTE) == (0, 0, 0)
    assert await q.enqueue(ROUTE, "w1", 0, [batch("w1", [i]) for i in range(3)])
    assert await q.depth(ROUTE) == (3, 0, 0)
    d1, d2 = await q.read(ROUTE, "c1", 2, 0)
    assert await q.depth(ROUTE) == (3, 0, 0)  # pending entries still count
    await q.complete(ROUTE, d1.entry, Completion(
        retries=[(time.time() + 60, RetryItem("w1", Channel.SMS, 0, addr(0), 1))]))
    assert await q.depth(ROUTE) == (2, 1, 0)
    await q.complete(ROUTE, d2.entry, Completion(
        dead=[DeadLetter("w1", Channel.SMS, 1, addr(1), 3, "rejected")]))
    assert await q.depth(ROUTE) == (1, 1, 1)
    assert await q.depth("other") == (0, 0, 0)


# -- queue: retries and dead letters --------------------------------------------------------------


async def test_due_retries_come_back_as_one_regrouped_delivery(store: Store) -> None:
    q = store.queue
    (d,) = await taken(store, [batch("w1", [1, 3])])
    now = time.time()
    items = [RetryItem("w1", Channel.SMS, 1, addr(1), 1),
             RetryItem("w2", Channel.SMS, 2, addr(2), 2),
             RetryItem("w1", Channel.SMS, 3, addr(3), 3),
             RetryItem("w1", Channel.ZALO, 4, "zalo:4", 1)]
    future = RetryItem("w1", Channel.SMS, 9, addr(9), 1)
    await q.complete(ROUTE, d.entry, Completion(
        retries=[(now - 10 + k, item) for k, item in enumerate(items)]
        + [(now + 3600, future)]))
    assert await q.depth(ROUTE) == (0, 5, 0)

    assert await q.move_due(ROUTE, now, 100) == 4
    assert await q.depth(ROUTE) == (1, 1, 0)
    assert await q.move_due(ROUTE, now, 100) == 0  # the future one stays scheduled

    back = await read_one(store)
    assert back.entry != d.entry
    by_group = {(b.wave, b.channel): b for b in back.batches}
    assert len(back.batches) == len(by_group) == 3
    assert by_group["w1", Channel.SMS] == Batch("w1", Channel.SMS, [1, 3], [addr(1), addr(3)],
                                                [1, 3], retried=True)
    assert by_group["w2", Channel.SMS] == Batch("w2", Channel.SMS, [2], [addr(2)], [2],
                                                retried=True)
    assert by_group["w1", Channel.ZALO] == Batch("w1", Channel.ZALO, [4], ["zalo:4"], [1],
                                                 retried=True)
    assert by_group["w1", Channel.SMS].attempt(1) == 3
    assert await q.owner(ROUTE, back.entry) == "c1"

    await q.complete(ROUTE, back.entry, Completion())
    assert await q.depth(ROUTE) == (0, 1, 0)
    assert await q.move_due(ROUTE, now + 7200, 100) == 1
    assert [b for dd in await q.read(ROUTE, "c1", 10, 0) for b in dd.batches] == [
        Batch("w1", Channel.SMS, [9], [addr(9)], [1], retried=True)]


async def test_a_batch_district_travels_with_the_batch_its_retries_and_dead_letters(
        store: Store) -> None:
    """A wave with a text per district: its batches, retried messages and dead letters keep
    their district, and due retries come back as one batch per (wave, district)."""
    q = store.queue
    cut = Batch("w1", Channel.SMS, [1, 2], [addr(1), addr(2)], district="ha-long")
    (d,) = await taken(store, [cut])
    assert d.batches == [cut]
    now = time.time()
    items = [RetryItem("w1", Channel.SMS, 1, addr(1), 1, district="ha-long"),
             RetryItem("w1", Channel.SMS, 3, addr(3), 1, district="cam-pha"),
             RetryItem("w1", Channel.SMS, 4, addr(4), 1, district="ha-long"),
             RetryItem("w1", Channel.SMS, 5, addr(5), 1)]
    await q.complete(ROUTE, d.entry, Completion(
        retries=[(now - 1, item) for item in items],
        dead=[DeadLetter("w1", Channel.SMS, 2, addr(2), 1, "rejected", district="ha-long")]))
    assert await q.move_due(ROUTE, now, 100) == 4
    back = await read_one(store)
    by_district = {b.district: b for b in back.batches}
    assert len(back.batches) == 3
    assert by_district["ha-long"].ids == [1, 4] and by_district["cam-pha"].ids == [3]
    assert by_district[""].ids == [5]  # a visitor's: the wave's neutral text
    await q.complete(ROUTE, back.entry, Completion())
    (letter,) = await q.dead_letters(ROUTE)
    assert letter.district == "ha-long"
    assert (await q.requeue_dead(ROUTE, "w1", after=-1, limit=10, due=0.0,
                                 urgent=False)).requeued == 1
    assert await q.move_due(ROUTE, time.time(), 10) == 1
    (replayed,) = (await read_one(store)).batches
    assert (replayed.ids, replayed.district) == ([2], "ha-long")  # replayed in its district


def test_entries_written_before_batches_had_a_district_still_decode() -> None:
    old_batch = msgspec.msgpack.encode(["w1", "sms", [1], [addr(1)], [], False])
    assert msgspec.msgpack.decode(old_batch, type=Batch).district == ""
    old_item = msgspec.msgpack.encode(["w1", "sms", 1, addr(1), 1, 7, False])
    assert msgspec.msgpack.decode(old_item, type=RetryItem).district == ""
    old_letter = msgspec.msgpack.encode(["w1", "sms", 1, addr(1), 1, "x"])
    assert msgspec.msgpack.decode(old_letter, type=DeadLetter).district == ""


async def test_move_due_honours_the_limit(store: Store) -> None:
    q = store.queue
    (d,) = await taken(store, [batch("w1", list(range(5)))])
    now = time.time()
    await q.complete(ROUTE, d.entry, Completion(
        retries=[(now - 100 + i, RetryItem("w1", Channel.SMS, i, addr(i), 1))
                 for i in range(5)]))
    assert await q.move_due(ROUTE, now, 2) == 2
    assert await q.depth(ROUTE) == (1, 3, 0)
    assert await q.move_due(ROUTE, now, 10) == 3
    assert await q.depth(ROUTE) == (2, 0, 0)
    assert await q.move_due(ROUTE, now, 10) == 0
    first, second = await q.read(ROUTE, "c1", 10, 0)
    assert [b.ids for b in first.batches] == [[0, 1]]  # earliest due first
    assert [b.ids for b in second.batches] == [[2, 3, 4]]


async def test_move_due_with_many_retries(store: Store) -> None:
    """A big retry wave (an outage of a carrier) moves back in one entry."""
    q = store.queue
    n = 5000
    (d,) = await taken(store, [batch("w1", [0])])
    now = time.time()
    await q.complete(ROUTE, d.entry, Completion(
        retries=[(now - 1, RetryItem("w1", Channel.SMS, i, addr(i), 1)) for i in range(n)]))
    assert await q.move_due(ROUTE, now, n) == n
    assert await q.depth(ROUTE) == (1, 0, 0)
    back = await read_one(store)
    assert len(back.batches) == 1
    assert sorted(back.batches[0].ids) == list(range(n))
    assert back.batches[0].attempts == [1] * n


async def test_dead_letters(store: Store) -> None:
    q = store.queue
    assert await q.dead_letters(ROUTE) == []
    d1, d2 = await taken(store, [batch("w1", [1, 2]), batch("w1", [3])])
    first = [DeadLetter("w1", Channel.SMS, 1, addr(1), 3, "expired"),
             DeadLetter("w1", Channel.SMS, 2, addr(2), 1, "invalid number")]
    second = [DeadLetter("w1", Channel.SMS, 3, addr(3), 5, "rejected by carrier")]
    await q.complete(ROUTE, d1.entry, Completion(dead=first))
    await q.complete(ROUTE, d2.entry, Completion(dead=second))
    assert await q.dead_letters(ROUTE) == first + second
    assert await q.dead_letters(ROUTE, limit=2) == first
    assert await q.dead_letters(ROUTE, limit=1) == first[:1]
    assert await q.depth(ROUTE) == (0, 0, 3)
    assert await q.dead_letters("other") == []


# -- queue: reclaim and touch ---------------------------------------------------------------------


async def test_reclaim_takes_over_idle_entries(store: Store) -> None:
    q = store.queue
    (d,) = await taken(store, [batch()], consumer="a")
    assert await q.reclaim(ROUTE, "b", 60_000, 10) == []
    assert await q.owner(ROUTE, d.entry) == "a"
    claimed = await q.reclaim(ROUTE, "b", 0, 10)
    assert claimed == [Delivery(d.entry, [batch()])]
    assert await q.owner(ROUTE, d.entry) == "b"
    assert await q.read(ROUTE, "c", 10, 0) == []  # reclaimed entries are not new
    await q.complete(ROUTE, d.entry, Completion())
    assert await q.reclaim(ROUTE, "c", 0, 10) == []
    assert await q.owner(ROUTE, d.entry) is None


async def test_reclaim_honours_count(store: Store) -> None:
    q = store.queue
    found = await taken(store, [batch("w1", [i]) for i in range(3)], consumer="a")
    first = await q.reclaim(ROUTE, "b", 0, 2)
    assert len(first) == 2
    assert {d.entry for d in first} <= {d.entry for d in found}


async def test_touch_keeps_the_claim(store: Store) -> None:
    q = store.queue
    kept, idle = await taken(store, [batch("w1", [1]), batch("w1", [2])], consumer="a")
    await asyncio.sleep(0.3)
    await q.touch(ROUTE, "a", [kept.entry])
    await q.touch(ROUTE, "a", [])
    claimed = await q.reclaim(ROUTE, "b", 200, 10)
    assert [d.entry for d in claimed] == [idle.entry]
    assert await q.owner(ROUTE, kept.entry) == "a"
    assert await q.owner(ROUTE, idle.entry) == "b"


async def test_touch_never_takes_an_entry_back(store: Store) -> None:
    q = store.queue
    mine, theirs = await taken(store, [batch("w1", [1]), batch("w1", [2])], consumer="a")
    assert [d.entry for d in await q.reclaim(ROUTE, "b", 0, 1)] == [mine.entry]
    assert await q.touch(ROUTE, "a", [mine.entry, theirs.entry]) == [theirs.entry]
    assert await q.owner(ROUTE, mine.entry) == "b"
    assert await q.owner(ROUTE, theirs.entry) == "a"


# -- leases ---------------------------------------------------------------------------------------


async def test_lease_acquire_renew_release(store: Store) -> None:
    leases = store.leases
    assert await leases.acquire("scheduler", "a", 5)
    assert await leases.acquire("scheduler", "a", 5)  # renewal
    assert not await leases.acquire("scheduler", "b", 5)
    assert await leases.acquire("fanout", "b", 5)  # another lease
    await leases.release("scheduler", "b")  # not the holder: nothing happens
    assert not await leases.acquire("scheduler", "b", 5)
    await leases.release("scheduler", "a")
    assert await leases.acquire("scheduler", "b", 5)
    assert not await leases.acquire("scheduler", "a", 5)


async def test_lease_expires(store: Store) -> None:
    assert await store.leases.acquire("scheduler", "a", 0.2)
    assert not await store.leases.acquire("scheduler", "b", 0.2)
    await asyncio.sleep(0.3)
    assert await store.leases.acquire("scheduler", "b", 5)
    assert not await store.leases.acquire("scheduler", "a", 5)


# -- Redis only -----------------------------------------------------------------------------------


def test_route_keys_share_one_hash_tag() -> None:
    for route in (ROUTE, "zalo-oa", "email"):
        tag = f"{{r:{route}}}"
        route_keys = [keys.stream(route), keys.urgent_stream(route), keys.retries(route),
                      keys.urgent_retries(route), keys.dead(route), keys.cursor(route)]
        assert all(tag in key for key in route_keys)
        assert len(set(route_keys)) == 6
        assert all(key.count("{") == 1 for key in route_keys)
    for wave_id in ("w1", "c1:sms:2024-03-01T08:00"):
        tag = f"{{w:{wave_id}}}"
        assert tag in keys.sent(wave_id)
        assert tag in keys.progress(wave_id)


async def test_redis_keys_of_a_route_carry_its_hash_tag(redis_url: str) -> None:
    store = RedisStore(redis_url)
    try:
        q = store.queue
        (d,) = await taken(store, [batch("w1", [1, 2])])
        await q.complete(ROUTE, d.entry, Completion(
            retries=[(time.time() + 60, RetryItem("w1", Channel.SMS, 1, addr(1), 1))],
            dead=[DeadLetter("w1", Channel.SMS, 2, addr(2), 3, "expired")]))
    finally:
        await store.aclose()
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        route_keys = set(client.keys(f"*{ROUTE}*"))
    finally:
        client.close()
    assert route_keys == {keys.stream(ROUTE), keys.urgent_stream(ROUTE), keys.retries(ROUTE),
                          keys.dead(ROUTE), keys.dead_count(ROUTE), keys.cursor(ROUTE),
                          keys.dead_ids(ROUTE, "w1"), keys.dead_letters(ROUTE, "w1")}
    assert all(f"{{r:{ROUTE}}}" in key for key in route_keys)


async def test_redis_sent_bitmap_costs_at_most_a_bit_per_recipient(redis_url: str) -> None:
    store = RedisStore(redis_url)
    try:
        (d,) = await taken(store, [batch("big", [999_999])])
        await store.queue.complete(ROUTE, d.entry, Completion(sent={"big": [999_999]}))
        assert await store.queue.sent_mask("big", [999_999, 999_998]) == [True, False]
    finally:
        await store.aclose()
    client = redis.Redis.from_url(redis_url)
    try:
        used = client.memory_usage(keys.sent("big"))
    finally:
        client.close()
    assert used is not None
    assert 125_000 <= used <= 140_000  # 1,000,000 recipients: ≤ 1 byte each


async def test_oldest_entry_of_a_route(store: Store) -> None:
    q = store.queue
    assert await q.oldest(ROUTE) is None
    before = time.time()
    await q.enqueue(ROUTE, "w1", 0, [batch("w1", [1]), batch("w1", [2])])
    oldest = await q.oldest(ROUTE)
    assert oldest is not None and before - 1 <= oldest <= time.time() + 1
    for delivery in await q.read(ROUTE, "c1", 10, 0):
        await q.complete(ROUTE, delivery.entry, Completion())
    assert await q.oldest(ROUTE) is None
