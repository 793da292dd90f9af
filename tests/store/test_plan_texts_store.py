"""The store's plan texts (memory, Redis, Redis Cluster): versions in pages, newest first, by
level, channel and state, with a cursor; a decision taken once."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest

from dispatcher.domain.errors import InputError
from dispatcher.domain.model import Channel
from dispatcher.domain.textedits import TextState, TextVersion
from dispatcher.store import Store, keys
from dispatcher.store.redis import RedisStore

T0 = dt.datetime(2026, 12, 7, 1, 0, tzinfo=dt.UTC)


def version(n: int, level: int, channel: Channel, *, same_time: bool = False) -> TextVersion:
    at = T0 if same_time else T0 + dt.timedelta(minutes=n)
    return TextVersion(id=f"txt-20261207{n:06d}-{n:06x}", level=level, channel=channel,
                       text=f"text {n} {{hotline}}", proposed_by="olga", proposed_at=at)


async def kept(store: Store) -> list[TextVersion]:
    """Twelve versions over two levels and two channels, every third rejected, the last of
    level 4's SMS approved; newest first."""
    written = []
    for n in range(12):
        v = version(n, 4 if n % 2 else 3, Channel.SMS if n % 4 < 2 else Channel.ZALO)
        await store.plan_texts.add(v)
        if n % 3 == 0:
            v = msgspec.structs.replace(v, state=TextState.REJECTED, decided_by="carol",
                                        decided_at=T0 + dt.timedelta(hours=1))
            assert await store.plan_texts.decide(v)
        written.append(v)
    last = next(v for v in reversed(written)
                if (v.level, v.channel, v.state) == (4, Channel.SMS, TextState.PROPOSED))
    approved = msgspec.structs.replace(last, state=TextState.APPROVED, decided_by="carol",
                                       decided_at=T0 + dt.timedelta(hours=1))
    assert await store.plan_texts.decide(approved)
    assert not await store.plan_texts.decide(approved)  # once
    written[written.index(last)] = approved
    return written[::-1]


async def pages(store: Store, limit: int, **where: object) -> list[list[str]]:
    """The ids of every page, following the cursors."""
    found, cursor = [], ""
    for _ in range(50):
        page = await store.plan_texts.versions(cursor=cursor, limit=limit,
                                               **where)  # type: ignore[arg-type]
        found.append([v.id for v in page.versions])
        cursor = page.cursor
        if not cursor:
            return found
    raise AssertionError("the cursors never ended")


@pytest.mark.parametrize(("where", "chosen"), [
    ({}, lambda v: True),
    ({"level": 4}, lambda v: v.level == 4),
    ({"channel": Channel.ZALO}, lambda v: v.channel is Channel.ZALO),
    ({"level": 3, "channel": Channel.SMS}, lambda v: (v.level, v.channel) == (3, Channel.SMS)),
    ({"state": TextState.REJECTED}, lambda v: v.state is TextState.REJECTED),
    ({"level": 4, "channel": Channel.SMS, "state": TextState.APPROVED},
     lambda v: (v.level, v.channel, v.state) == (4, Channel.SMS, TextState.APPROVED)),
])
@pytest.mark.parametrize("limit", [1, 5, 100])
async def test_pages_follow_each_other_newest_first(store: Store, where: dict[str, object],
                                                    chosen: object, limit: int) -> None:
    written = await kept(store)
    expected = [v.id for v in written if chosen(v)]  # type: ignore[operator]
    assert expected
    found = await pages(store, limit, **where)
    assert [i for page in found for i in page] == expected
    assert all(0 < len(page) <= limit for page in found)
    assert len(found) == -(-len(expected) // limit)  # no empty last page


async def test_versions_proposed_at_the_same_time_are_paged_by_id(store: Store) -> None:
    for n in (3, 1, 2):
        await store.plan_texts.add(version(n, 4, Channel.SMS, same_time=True))
    assert await pages(store, 2) == [[version(3, 4, Channel.SMS).id,
                                      version(2, 4, Channel.SMS).id],
                                     [version(1, 4, Channel.SMS).id]]


async def test_a_version_proposed_between_pages_neither_repeats_nor_skips(store: Store) -> None:
    written = await kept(store)
    first = await store.plan_texts.versions(limit=4)
    await store.plan_texts.add(version(99, 4, Channel.SMS))  # newest: before the first page
    rest = await store.plan_texts.versions(cursor=first.cursor, limit=100)
    assert [v.id for v in first.versions + rest.versions] == [v.id for v in written]
    assert rest.versions[0].text == written[4].text  # the versions themselves


async def test_a_cursor_no_page_gave_is_refused_naming_it(store: Store) -> None:
    written = await kept(store)
    for cursor, where in (("txt-20261207000099-000063", {}),
                          (next(v.id for v in written if v.level == 3), {"level": 4})):
        with pytest.raises(InputError) as refused:
            await store.plan_texts.versions(cursor=cursor, **where)  # type: ignore[arg-type]
        assert refused.value.field == "cursor"
    empty = await store.plan_texts.versions(level=9)
    assert (empty.versions, empty.cursor) == ([], "")


async def test_versions_kept_before_they_were_ordered_are_listed(redis_url: str) -> None:
    store = RedisStore(redis_url)
    try:
        written = await kept(store)
        client = store.client
        for level in (None, 3, 4):
            for channel in (None, "sms", "zalo"):
                await client.delete(keys.plan_text_order(level, channel))
        assert await pages(store, 5, level=4) == [
            [v.id for v in written if v.level == 4][i:i + 5] for i in (0, 5)]
        assert await client.zcard(keys.plan_text_order()) == len(written)
    finally:
        await store.aclose()
