"""Incoming messages' store: the contract both stores pass (memory, Redis, Redis Cluster)."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

from dispatcher.domain.incoming import OPT_OUT, UNFOLLOW, Incoming
from dispatcher.domain.model import Channel
from dispatcher.domain.optout import OptOut
from dispatcher.store import Store
from dispatcher.store.incoming import Retention

T0 = dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.UTC)


def sms(n: int, text: str = "") -> Incoming:
    return Incoming(Channel.SMS, f"8491234{n:04d}", T0, text=text or f"tin {n}",
                    encoding="ucs2")


async def test_items_newest_first_in_pages_with_a_cursor(store: Store) -> None:
    await store.incoming.add([sms(n) for n in range(5)])
    await store.incoming.add([Incoming(Channel.ZALO, "u-1", T0, kind=UNFOLLOW),
                              sms(5, "Từ chối")])
    first = await store.incoming.page(limit=3)
    assert [i.text for i in first.items] == ["Từ chối", "", "tin 4"]
    assert first.items[1].kind == UNFOLLOW and first.items[1].opt_out
    assert first.cursor and all(i.id for i in first.items)
    second = await store.incoming.page(cursor=first.cursor, limit=3)
    assert [i.text for i in second.items] == ["tin 3", "tin 2", "tin 1"]
    third = await store.incoming.page(cursor=second.cursor, limit=3)
    assert [i.text for i in third.items] == ["tin 0"] and third.cursor == ""


async def test_a_channel_filter_keeps_the_channel_only(store: Store) -> None:
    await store.incoming.add([sms(1), Incoming(Channel.ZALO, "u-1", T0, text="xin chào"),
                              sms(2)])
    page = await store.incoming.page(channel=Channel.ZALO)
    assert [(i.number, i.text) for i in page.items] == [("u-1", "xin chào")]
    assert page.cursor == ""
    assert [i.number for i in (await store.incoming.page(channel=Channel.SMS)).items] == [
        "84912340002", "84912340001"]


async def test_retention_forgets_what_is_older_than_its_days(store: Store) -> None:
    store.incoming.retention = Retention(days=30)
    await store.incoming.add([sms(1), sms(2)])
    await store.incoming.record_opt_outs([OptOut(Channel.SMS, "84912340001", "keyword:HUY", T0)])
    assert len((await store.incoming.page()).items) == 2
    await asyncio.sleep(0.01)
    between = time.time()  # after the first two were added, before the third is
    await asyncio.sleep(0.01)
    later = between + 30 * 86400  # "now" 30 days after ``between``: the first two are older
    await store.incoming.add([sms(3)], now=later)
    await store.incoming.record_opt_outs([OptOut(Channel.ZALO, "u-9", "unfollow", T0)],
                                         now=later)
    assert [i.text for i in (await store.incoming.page()).items] == ["tin 3"]
    assert [o.number for o in await store.incoming.opt_outs()] == ["u-9"]


async def test_the_stream_is_capped_at_max_items(store: Store) -> None:
    store.incoming.retention = Retention(days=30, max_items=5)
    for n in range(0, 400, 100):  # approximate trimming in Redis: whole nodes of 100
        await store.incoming.add([sms(n + k) for k in range(100)])
    kept = (await store.incoming.page(limit=1000)).items
    assert len(kept) < 400 and kept[0].text == "tin 399"


async def test_opt_outs_are_recorded_newest_first(store: Store) -> None:
    await store.incoming.record_opt_outs([
        OptOut(Channel.SMS, "84912340001", "keyword:TU CHOI", T0),
        OptOut(Channel.ZALO, "u-1", "unfollow", T0 + dt.timedelta(seconds=1))])
    got = await store.incoming.opt_outs()
    assert [(o.channel, o.number, o.reason) for o in got] == [
        (Channel.ZALO, "u-1", "unfollow"), (Channel.SMS, "84912340001", "keyword:TU CHOI")]
    assert got[1].at == T0
    assert OPT_OUT == "opt_out"
