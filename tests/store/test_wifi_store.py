"""The Wi-Fi controllers' cursors (dispatcher.store.wifi): the contract, on memory, Redis and
Redis Cluster alike."""

from __future__ import annotations

import asyncio

from dispatcher.store import Store


async def test_a_cursor_only_moves_forward(store: Store) -> None:
    assert await store.wifi.cursors() == {}
    assert await store.wifi.advance("hue-park", 0) == 0  # seen, nothing taken yet
    assert await store.wifi.cursors() == {"hue-park": 0}
    assert await store.wifi.advance("hue-park", 3) == 3
    assert await store.wifi.advance("hue-park", 2) == 3  # a late pusher: it stays at 3
    assert await store.wifi.advance("bai-chay", 1) == 1
    assert await store.wifi.cursors() == {"hue-park": 3, "bai-chay": 1}


async def test_pushers_at_once_leave_the_largest(store: Store) -> None:
    seqs = [5, 9, 2, 7, 9, 1, 8, 3]
    after = await asyncio.gather(*(store.wifi.advance("hue-park", s) for s in seqs))
    assert max(after) == 9 and all(a >= s for a, s in zip(after, seqs, strict=True))
    assert await store.wifi.cursors() == {"hue-park": 9}
