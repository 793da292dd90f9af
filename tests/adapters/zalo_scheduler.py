"""One process of tests/adapters/test_zalo_token_schedule.py: a Zalo adapter built as a worker
builds it, waiting on Redis for the signal to start its token schedule, until the pair it holds is
fresh.

Usage: python tests/adapters/zalo_scheduler.py CONFIG REDIS_URL NAME. Prints one JSON line: how many
renewals this process made and the access token it ended with.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

from adapters.zalo.adapter import ZaloAdapter
from dispatcher.domain.model import Channel
from dispatcher.service import channels
from dispatcher.service import zalo_tokens as zalotokens
from dispatcher.service.settings import load_settings
from dispatcher.store import RedisStore


async def main(config: Path, url: str, name: str) -> None:
    settings = load_settings(config, env=os.environ)
    store = RedisStore(url)
    tokens = zalotokens.token_store(store, settings, os.environ, owner=name)
    adapter = channels.build(settings, channels=[Channel.ZALO], env=os.environ,
                             zalo_tokens=tokens)[Channel.ZALO]
    assert isinstance(adapter, ZaloAdapter)
    try:
        await adapter.tokens.token()
        await store.client.rpush("test:ready", name)
        for _ in range(30):  # short waits: the client's socket timeout is longer
            if await store.client.blpop(["test:go"], 1):
                break
        else:
            raise AssertionError("no go")
        began = time.time()
        schedule = asyncio.create_task(adapter.schedule.run())
        try:
            while adapter.tokens.issued.at < began - 1:  # renewed here or taken from the other
                assert not schedule.done(), schedule
                await asyncio.sleep(0.02)
        finally:
            schedule.cancel()
            await asyncio.gather(schedule, return_exceptions=True)
        print(json.dumps({"renewed": adapter.tokens.refreshes, "access": adapter.tokens.access}))
    finally:
        await adapter.aclose()
        await store.aclose()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2], sys.argv[3]))
