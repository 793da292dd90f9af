"""Where ``loa demo`` runs: always its own private ``redis-server``, never the Redis of the
configuration or ``LOA_REDIS_URL``; or, when asked explicitly (``--redis URL``), a database that
holds nothing at all.

The demo replaces the audience with synthetic numbers, sets level 4 and starts level-4 waves:
on a production Redis the production workers would send them. So a database given explicitly is
refused unless it is empty, with one line saying what it holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bench import localredis
from dispatcher.domain.errors import InputError
from dispatcher.store import keys
from dispatcher.store.redis import RedisStore

SCAN_COUNT = 1000


def shown(url: str) -> str:
    """``url`` without its password (for messages)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


async def private(stack: contextlib.AsyncExitStack) -> str:
    """Start a private ``redis-server`` (no persistence, a free loopback port, a temporary
    folder) that ``stack`` stops; its URL."""
    folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="loa-demo-redis-"))
    proc, server = await asyncio.to_thread(localredis.start, Path(folder))
    stack.push_async_callback(asyncio.to_thread, localredis.stop, proc)
    return server.url


async def what_it_holds(store: RedisStore) -> list[str]:
    """What the database of ``store`` holds, in words; empty when it holds no key."""
    client = store.client
    total = int(await client.dbsize())
    if total == 0:
        return []
    found = []
    meta = await store.audiences.meta()
    if meta is not None:
        found.append(f"an audience of {meta.count:,} recipients")
    campaigns = await store.campaigns.all()
    if campaigns:
        found.append(f"{len(campaigns)} campaign{'s' if len(campaigns) != 1 else ''}")
    level = await store.level.get()
    if level is not None:
        found.append(f"level {level.level}")
    loa = 0
    async for _ in client.scan_iter(match=f"{keys.PREFIX}:*", count=SCAN_COUNT):
        loa += 1
    found.append(f"{loa:,} Loa key{'s' if loa != 1 else ''} ({keys.PREFIX}:*) of {total:,} keys"
                 if loa else f"{total:,} other key{'s' if total != 1 else ''}")
    return found


async def explicit(url: str) -> None:
    """Refuse ``url`` unless its database is empty."""
    store = RedisStore(url)
    try:
        held = await what_it_holds(store)
    finally:
        await store.aclose()
    if held:
        raise InputError(f"the database at {shown(url)} is not empty ({', '.join(held)}): "
                         "loa demo runs only on an empty database; without --redis it starts "
                         "its own private redis-server", field="--redis")
