"""Zalo OA tokens shared by workers on many hosts: one refresh token, renewed by one process at
a time, read by the others from Redis. Two OS processes renew at once against the Zalo
simulator, whose refresh tokens each work once."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import msgspec
import pytest
import redis.asyncio as aioredis

from adapters.zalo.api import TokenAnswer
from adapters.zalo.simulator import ZaloSim, ZaloSimConfig
from adapters.zalo.tokens import (
    FileTokenStore,
    MemoryTokenStore,
    TokenError,
    TokenManager,
    TokenStoreError,
)
from dispatcher.service import zalo_tokens as zalotokens
from dispatcher.service.settings import Settings
from dispatcher.store import RedisStore, keys

ROOT = Path(__file__).resolve().parents[2]


def worker_config(path: Path, sim: ZaloSim, tokens_file: Path) -> Path:
    path.write_text(
        f'zalo_tokens_file = "{tokens_file}"\n'
        f'[zalo]\nbase_url = "{sim.url}"\noauth_url = "{sim.url}"\noa_url = "{sim.url}"\n'
        f'app_id = "{sim.config.app_id}"\ntemplate_id = "loa-alert"\n'
        'secret_key_env = "LOA_ZALO_APP_SECRET"\ntoken_retry_after = 0.0\n', encoding="utf-8")
    return path


async def test_two_hosts_renew_the_expired_token_at_once_with_one_renewal(
        tmp_path: Path, redis_url: str) -> None:
    # a token answer takes 0.3 s: both renewals are under way together, whatever the order
    # the two processes wake up in
    sim = ZaloSim(ZaloSimConfig(oauth_delay=0.3))
    await sim.start()
    r = aioredis.Redis.from_url(redis_url)
    procs = []
    try:
        sim.expire_token()  # the token every host was given has expired
        env = {**os.environ, "LOA_ZALO_APP_SECRET": sim.config.secret_key,
               "LOA_ZALO_ACCESS_TOKEN": "sim-access-token",
               "LOA_ZALO_REFRESH_TOKEN": "sim-refresh-token"}
        for n in (1, 2):  # two hosts: each its own directory for files
            host = tmp_path / f"host{n}"
            host.mkdir()
            config = worker_config(host / "loa.toml", sim, host / "zalo-tokens.json")
            procs.append(await asyncio.create_subprocess_exec(
                sys.executable, str(ROOT / "tests" / "service" / "zalo_renewer.py"), str(config),
                redis_url,
                f"w{n}", f"8491234567{n}", env=env, cwd=host,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE))
        for _ in procs:  # both ready, then both go at once
            assert await r.blpop(["test:ready"], 30), "a renewer did not start"
        await r.rpush("test:go", "1", "1")
        outs = [await asyncio.wait_for(p.communicate(), 60) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], [e.decode()[-2000:] for _, e in outs]
        answers = [json.loads(o.decode().splitlines()[-1]) for o, _ in outs]
        assert [a["retry"] for a in answers] == [[], []]
        assert [a["sent"] for a in answers] == [1, 1]
        assert sim.stats.refreshes == 1 and sim.stats.refresh_refused == 0
        valid = set(sim.access_tokens)
        assert answers[0]["access"] == answers[1]["access"] and answers[0]["access"] in valid
        assert all("sim-refresh" not in e.decode() for _, e in outs)  # no secret in the logs
        raw = await r.get(keys.ZALO_TOKENS)
        assert raw is not None
        saved = msgspec.json.decode(raw)
        assert saved["access_token"] == answers[0]["access"]
        assert saved["refresh_token"] not in ("", "sim-refresh-token")
    finally:
        for p in procs:
            if p.returncode is None:
                p.kill()
                await p.wait()
        await r.aclose()
        await sim.stop()


async def test_redis_holds_the_pair_once_renewed_and_seeds_from_the_file_or_env(
        tmp_path: Path, redis_url: str) -> None:
    store = RedisStore(redis_url)
    try:
        settings = Settings(zalo_tokens_file=str(tmp_path / "zalo-tokens.json"))
        env = {"LOA_ZALO_ACCESS_TOKEN": "a0", "LOA_ZALO_REFRESH_TOKEN": "r0"}
        tokens = zalotokens.token_store(store, settings, env, owner="w1")
        assert await tokens.get() == ("a0", "r0")  # nothing in Redis yet: the environment
        await FileTokenStore(settings.zalo_tokens_file).save("a1", "r1")
        assert await tokens.get() == ("a1", "r1")  # a file a single-host Loa renewed wins
        await tokens.save("a2", "r2")
        other = zalotokens.token_store(store, settings, {}, owner="w2")
        assert await other.get() == ("a2", "r2")  # every process reads the one pair
        assert (await FileTokenStore(settings.zalo_tokens_file).get()) == ("a1", "r1")
        await store.client.set(keys.ZALO_TOKENS, b"{}")
        with pytest.raises(TokenStoreError, match=r"^Redis key loa:zalo-tokens is not a Zalo "
                                                  r"token pair"):
            await other.get()
    finally:
        await store.aclose()


async def test_a_renewal_waits_for_the_holder_and_says_so_when_it_gives_up(
        redis_url: str) -> None:
    store = RedisStore(redis_url)
    try:
        seed = MemoryTokenStore("a0", "r0")
        first = zalotokens.RedisTokenStore(store.client, store.leases, seed, owner="w1")
        second = zalotokens.RedisTokenStore(store.client, store.leases, seed, owner="w2",
                                            poll=0.0, polls=3)
        calls: list[str] = []

        async def exchange(refresh: str) -> TokenAnswer:
            calls.append(refresh)
            return TokenAnswer(access_token="a1", refresh_token="r1")

        async with first.renewal():  # w1 renews (and is slow about it)
            manager = TokenManager(second, exchange, retry_after=60.0)
            with pytest.raises(TokenError, match="another Loa process has been renewing the "
                                                 "Zalo token"):
                await manager.refresh("a0")
        assert calls == []  # w2 never spent the refresh token
        assert await TokenManager(second, exchange).refresh("a0") == "a1"  # free again
        assert calls == ["r0"] and await first.get() == ("a1", "r1")
    finally:
        await store.aclose()


async def test_a_renewer_that_died_holding_the_lease_is_taken_over(redis_url: str) -> None:
    store = RedisStore(redis_url)
    try:
        seed = MemoryTokenStore("a0", "r0")
        assert await store.leases.acquire(keys.ZALO_RENEWAL, "dead-worker", 0.2)  # never freed
        survivor = zalotokens.RedisTokenStore(store.client, store.leases, seed, owner="w2",
                                              poll=0.02, polls=500)

        async def exchange(refresh: str) -> TokenAnswer:
            return TokenAnswer(access_token="a1", refresh_token="r1")

        assert await TokenManager(survivor, exchange).refresh("a0") == "a1"
        assert await survivor.get() == ("a1", "r1")
        assert await store.leases.acquire(keys.ZALO_RENEWAL, "w3", 1.0)  # given back
    finally:
        await store.aclose()
