"""The suppression lists' store: the contract both stores pass (memory, Redis, Redis Cluster)."""

from __future__ import annotations

import datetime as dt

import pytest

from dispatcher.domain.errors import InputError
from dispatcher.domain.model import Batch, Channel
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.optout import OptOut
from dispatcher.domain.suppression import DEAD_LETTER, OPERATOR, Suppression
from dispatcher.engine import suppressions
from dispatcher.store import Store

SMS, ZALO = Channel.SMS, Channel.ZALO


def entry(number: str, channel: Channel = SMS, reason: str = "asked", at: float = 1.0,
          **kw: str) -> Suppression:
    return Suppression(channel, number, reason, at, **kw)


async def test_add_mask_and_lookup_per_channel(store: Store) -> None:
    assert await store.suppressions.mask(SMS, []) == []
    added = await store.suppressions.add([
        entry("84912000001"), entry("84912000002", by="an"),
        entry("84912000001", ZALO, "zalo unfollow", source="opt_out")])
    assert added == 3
    assert await store.suppressions.mask(SMS, ["84912000009", "84912000002", "84912000001"]) \
        == [False, True, True]
    assert await store.suppressions.mask(ZALO, ["84912000002", "84912000001"]) == [False, True]
    assert await store.suppressions.mask(Channel.EMAIL, ["84912000001"]) == [False]
    found = await store.suppressions.lookup("84912000001")
    assert sorted((e.channel, e.reason, e.source) for e in found) == [
        (SMS, "asked", OPERATOR), (ZALO, "zalo unfollow", "opt_out")]
    assert await store.suppressions.count(SMS) == 2
    assert await store.suppressions.count(Channel.APP) == 0


async def test_add_again_replaces_the_entry_and_counts_it_once(store: Store) -> None:
    assert await store.suppressions.add([entry("84912000001")]) == 1
    later = entry("84912000001", reason="ESME_RINVDSTADR", at=9.0, source=DEAD_LETTER,
                  wave="w1")
    assert await store.suppressions.add([later]) == 0
    assert await store.suppressions.lookup("84912000001") == [later]
    assert await store.suppressions.count(SMS) == 1


async def test_remove(store: Store) -> None:
    await store.suppressions.add([entry("84912000001"), entry("84912000002")])
    gone = await store.suppressions.remove(SMS, "84912000001")
    assert gone is not None and gone.number == "84912000001"
    assert await store.suppressions.remove(SMS, "84912000001") is None
    assert await store.suppressions.mask(SMS, ["84912000001", "84912000002"]) == [False, True]
    page = await store.suppressions.page(SMS)
    assert [e.number for e in page.entries] == ["84912000002"]


async def test_pages_in_number_order_with_a_cursor(store: Store) -> None:
    numbers = [f"849120000{i:02d}" for i in range(25)]
    await store.suppressions.add([entry(n) for n in reversed(numbers)])
    seen: list[str] = []
    cursor = ""
    for _ in range(10):  # bounded: 3 pages are expected
        page = await store.suppressions.page(SMS, cursor, limit=10)
        seen += [e.number for e in page.entries]
        cursor = page.cursor
        if not cursor:
            break
    assert seen == numbers
    assert (await store.suppressions.page(ZALO)).entries == []


async def test_a_bad_cursor_names_the_field(store: Store) -> None:
    with pytest.raises(InputError) as caught:
        await store.suppressions.page(SMS, "x" * 500)
    assert caught.value.field == "cursor"


def at(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


async def test_opt_outs_join_a_batch_at_a_time(store: Store, numbering: Numbering) -> None:
    added = await suppressions.on_opt_outs(store, numbering, [
        OptOut(SMS, "84912000001", "keyword:TU CHOI", at(10.0)),
        OptOut(ZALO, "1234567890123", "unfollow", at(11.0)),
        OptOut(SMS, "0912 000 001", "keyword:HUY", at(12.0)),  # as a carrier may give it
        OptOut(SMS, "VIETTEL", "keyword:HUY", at(13.0))])  # no number: left out
    assert added == 2 and await suppressions.on_opt_outs(store, numbering, []) == 0
    (sms,) = await store.suppressions.lookup("84912000001")
    assert (sms.reason, sms.at, sms.source) == ("keyword:HUY", 12.0, "opt_out")
    assert await store.suppressions.mask(ZALO, ["1234567890123"]) == [True]


async def test_a_steps_suppressed_count_is_written_with_it_once(store: Store) -> None:
    batch = Batch("w-s", SMS, [1, 2], ["84912000001", "84912000002"])
    assert await store.queue.enqueue("sms.viettel", "w-s", 0, [batch], suppressed=3)
    assert not await store.queue.enqueue("sms.viettel", "w-s", 0, [batch], suppressed=3)
    assert await store.queue.enqueue("sms.mobifone", "w-s", 0, [], suppressed=2)
    assert await store.queue.enqueue("sms.viettel", "w-s", 1, [batch])
    assert (await store.waves.progress("w-s")).get("suppressed") == 5
