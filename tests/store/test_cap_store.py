"""The store of published CAP messages (dispatcher.store.cap): the contract, on memory, Redis
and Redis Cluster alike."""

from __future__ import annotations

import asyncio
import datetime as dt

from dispatcher.domain.cap import CapAlert, MsgType, Status
from dispatcher.store import Store

NOW = dt.datetime(2026, 3, 1, 1, 0, tzinfo=dt.UTC)


def alert(identifier: str, thread: str = "level", text: str = "") -> CapAlert:
    return CapAlert(identifier=identifier, sender="soyte@quangninh.gov.vn", sent=NOW,
                    status=Status.ACTUAL, msg_type=MsgType.ALERT, thread=thread, origin="level",
                    event_at=NOW, note=text)


async def test_a_message_is_kept_once_per_identifier_numbered_in_order(store: Store) -> None:
    first = await store.cap.publish(alert("loa.a"))
    second = await store.cap.publish(alert("loa.b", thread="campaign.c-1"))
    assert first is not None and second is not None
    assert (first.seq, second.seq) == (1, 2)
    assert await store.cap.publish(alert("loa.a", text="another text")) is None
    kept = await store.cap.get("loa.a")
    assert kept is not None and kept.seq == 1 and kept.alert.note == ""  # the first stays
    assert await store.cap.get("loa.none") is None
    assert [p.alert.identifier for p in await store.cap.latest(10)] == ["loa.b", "loa.a"]
    assert [p.seq for p in await store.cap.latest(1)] == [2]
    assert [p.alert.identifier for p in await store.cap.after(0)] == ["loa.a", "loa.b"]
    assert [p.alert.identifier for p in await store.cap.after(1)] == ["loa.b"]
    assert await store.cap.after(2) == []


async def test_the_head_of_a_thread_is_its_last_message(store: Store) -> None:
    assert await store.cap.head("level") is None
    await store.cap.publish(alert("loa.1"))
    await store.cap.publish(alert("loa.x", thread="campaign.c-1"))
    await store.cap.publish(alert("loa.2"))
    await store.cap.publish(alert("loa.1"))  # there already: the head does not move back
    head = await store.cap.head("level")
    assert head is not None and head.alert.identifier == "loa.2" and head.seq == 3


async def test_publishers_at_once_publish_a_message_once(store: Store) -> None:
    results = await asyncio.gather(*(store.cap.publish(alert("loa.same", text=str(i)))
                                     for i in range(8)))
    assert sum(r is not None for r in results) == 1
    assert [p.seq for p in await store.cap.latest(10)] == [1]


async def test_pruned_messages_leave_the_feed_and_the_others_keep_their_numbers(
        store: Store) -> None:
    for ident, thread in (("loa.1", "level"), ("loa.c", "campaign.c-1"), ("loa.2", "level"),
                          ("loa.3", "level")):
        await store.cap.publish(alert(ident, thread=thread))
    assert await store.cap.heads() == {"level": "loa.3", "campaign.c-1": "loa.c"}
    assert await store.cap.prune([alert("loa.1"), alert("loa.c", thread="campaign.c-1"),
                                  alert("loa.none")]) == 2
    assert await store.cap.prune([alert("loa.1")]) == 0  # once
    assert await store.cap.get("loa.1") is None and await store.cap.get("loa.c") is None
    assert [(p.seq, p.alert.identifier) for p in await store.cap.after(0)] == [
        (3, "loa.2"), (4, "loa.3")]
    assert [p.seq for p in await store.cap.after(0, limit=1)] == [3]
    assert [p.seq for p in await store.cap.latest(10)] == [4, 3]
    # a thread whose last message went has no head; the others keep theirs
    assert await store.cap.heads() == {"level": "loa.3"}
    assert await store.cap.head("campaign.c-1") is None
    assert await store.cap.prune([alert("loa.2")]) == 1  # not the head: the head stays
    head = await store.cap.head("level")
    assert head is not None and head.alert.identifier == "loa.3"
    published = await store.cap.publish(alert("loa.4"))
    assert published is not None and published.seq == 5  # numbers are never given twice
    assert await store.cap.publish(alert("loa.1")) is not None  # an identifier may come back
