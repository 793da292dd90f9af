"""One process of tests/service/test_zalo_tokens_shared.py: a Zalo adapter built as a worker builds
it, waiting on Redis for the signal to send one message with an access token Zalo has expired.

Usage: python tests/service/zalo_renewer.py CONFIG REDIS_URL NAME PHONE. Prints one JSON line: what
was sent and retried, and the access token this process ended with.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from adapters.base import Envelope
from adapters.zalo.adapter import ZaloAdapter
from dispatcher.domain.model import Channel
from dispatcher.service import channels
from dispatcher.service import zalo_tokens as zalotokens
from dispatcher.service.settings import load_settings
from dispatcher.store import RedisStore


async def main(config: Path, url: str, name: str, phone: str) -> None:
    settings = load_settings(config, env=os.environ)
    store = RedisStore(url)
    tokens = zalotokens.token_store(store, settings, os.environ, owner=name)
    adapter = channels.build(settings, channels=[Channel.ZALO], env=os.environ,
                             zalo_tokens=tokens)[Channel.ZALO]
    assert isinstance(adapter, ZaloAdapter)
    try:
        await adapter.tokens.token()
        await store.client.rpush("test:ready", name)
        assert await store.client.blpop(["test:go"], 30), "no go"
        results = await adapter.send(Envelope(wave="w1", channel=Channel.ZALO,
                                              text="Đeo khẩu trang", addrs=[phone],
                                              route="zalo"))
        print(json.dumps({"sent": len(results.sent), "retry": [r for _, r in results.retry],
                          "access": adapter.tokens.access}))
    finally:
        await adapter.aclose()
        await store.aclose()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]))
