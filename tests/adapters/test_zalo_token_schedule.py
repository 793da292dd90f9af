"""The Zalo tokens are renewed before they run out: at 80 % of the access token's life and every
``refresh_every_days`` at the latest, by one process of many; a renewal that fails is logged,
counted and tried again; the OA codes -216 and -220 renew through the engine."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import msgspec
import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from adapters.zalo.adapter import ZaloAdapter
from adapters.zalo.config import ZaloConfig
from adapters.zalo.schedule import DAY
from adapters.zalo.simulator import ZaloSim, ZaloSimConfig
from adapters.zalo.tokens import Issued, MemoryTokenStore
from bench import audiencegen
from dispatcher.domain.audience import Validator
from dispatcher.domain.errors import ConfigError
from dispatcher.domain.model import Campaign, CampaignState, Channel, Selector, Wave, WaveState
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.engine import routing
from dispatcher.engine.importer import import_audience
from dispatcher.engine.process import Engine, wave_progress
from dispatcher.service import process as service
from dispatcher.service import zalo_tokens as zalotokens
from dispatcher.service.settings import EngineSettings, RetrySettings, Settings, load_settings
from dispatcher.store import RedisStore, Store, keys

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = Settings(engine=EngineSettings(batch_size=50, chunk_size=64, lease_seconds=2.0,
                                          state_refresh_seconds=0.1),
                    retry=RetrySettings(max_attempts=3, base_seconds=0.05, max_seconds=0.2))


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[Store]:
    opened = RedisStore(redis_url)
    try:
        yield opened
    finally:
        await opened.aclose()


async def zalo_wave(store: Store, tmp_path: Path, numbering: Numbering, province: Province,
                    recipients: int = 300) -> Wave:
    path = tmp_path / "audience.csv"
    audiencegen.generate(path, recipients, seed=17, numbering=numbering, province=province)
    await import_audience(path, store, Validator(numbering, province), chunk_size=64)
    meta = await store.audiences.meta()
    assert meta is not None
    now = dt.datetime.now(dt.UTC)
    await store.campaigns.create(Campaign(id="c", title="t", channels=[Channel.ZALO],
                                          texts={Channel.ZALO: "Zalo"}, created_at=now,
                                          created_by="a", state=CampaignState.RUNNING))
    wave = Wave(id="w-zalo", campaign_id="c", channel=Channel.ZALO, text="Zalo",
                created_at=now, audience_version=meta.version,
                total=routing.reach(meta, Selector(), Channel.ZALO), start_now=True)
    await store.waves.create(wave, WaveState.CREATED)
    return wave


def config(sim: ZaloSim, **changes: object) -> ZaloConfig:
    base = ZaloConfig(base_url=sim.url, oa_url=sim.url, oauth_url=sim.url,
                      app_id=sim.config.app_id, secret_key=sim.config.secret_key,
                      template_id="loa-alert", timeout=2.0, token_retry_after=0.0)
    return msgspec.structs.replace(base, **changes)


async def until(check: Callable[[], Awaitable[bool] | bool], timeout: float = 10) -> None:
    async def wait() -> None:
        while True:
            done = check()
            if done if isinstance(done, bool) else await done:
                return
            await asyncio.sleep(0.02)
    await asyncio.wait_for(wait(), timeout)


async def send_wave(engine: Engine, store: Store, wave: Wave) -> None:
    """The wave through the engine as ``loa worker`` runs it (service.run_engine: with the
    Zalo token schedule), until every message is sent."""
    stop = asyncio.Event()
    task = asyncio.create_task(service.run_engine(engine, stop))
    try:
        async def sent() -> bool:
            if task.done():
                task.result()
            p = await wave_progress(store, wave)
            return p.sent == wave.total
        await until(sent, timeout=20)
    finally:
        stop.set()
        await task


def metric(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def test_scheduled_renewal_comes_before_the_token_expires_with_no_request_refused(
        store: Store, tmp_path: Path, plan: Plan, numbering: Numbering,
        province: Province) -> None:
    """Access tokens live 2 s; a wave kept slow (0.1 s an answer) outlasts two of them. The
    schedule renews at 80 % of their life: Zalo never refuses a token, every message goes."""
    sim = ZaloSim(ZaloSimConfig(token_ttl=2.0, delay=0.1))
    await sim.start()
    began = time.time()
    tokens = MemoryTokenStore("sim-access-token", "sim-refresh-token", issued_at=began,
                              expires_in=2.0)
    adapter = ZaloAdapter(config(sim, mode="auto", concurrency=10), tokens)
    try:
        wave = await zalo_wave(store, tmp_path, numbering, province)
        engine = Engine(store, plan, SETTINGS, province, {Channel.ZALO: adapter},
                        numbering.carriers, reconcile=False, numbering=numbering)
        await send_wave(engine, store, wave)
    finally:
        await sim.stop()
    assert sim.stats.last_request_at - began > 2.0  # the wave outlasted the first token
    assert sim.stats.token_rejected == 0  # no request met an expired token
    assert sim.stats.accepted == wave.total and sim.duplicates == 0
    assert sim.stats.refreshes >= 1 and sim.stats.refresh_refused == 0
    assert tokens.saves == sim.stats.refreshes and tokens.expires_in == 2.0


async def test_a_refresh_token_older_than_refresh_every_days_is_renewed(sim: ZaloSim) -> None:
    now = time.time()
    tokens = MemoryTokenStore("sim-access-token", "sim-refresh-token",
                              issued_at=now - 31 * DAY, expires_in=90000)
    adapter = ZaloAdapter(config(sim), tokens)
    schedule = adapter.schedule
    assert schedule.due(Issued(now - 10 * DAY, 0)) == ""  # no access lifetime: 30 days
    assert schedule.due(Issued(now - 3600, 90000)) == ""
    assert "access token has lived" in schedule.due(Issued(now - 80000, 90000))
    assert "age is unknown" in schedule.due(Issued())
    task = asyncio.create_task(schedule.run())
    try:
        await until(lambda: tokens.saves == 1)
        assert "refresh token is 31.0 days old" in schedule.due(Issued(now - 31 * DAY, 9e9))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await adapter.aclose()
    assert sim.stats.refreshes == 1 and tokens.refresh != "sim-refresh-token"
    assert tokens.issued_at >= now and tokens.expires_in == 90000
    assert adapter.tokens.access == tokens.access and sim.stats.token_rejected == 0


async def test_a_failed_scheduled_renewal_is_logged_counted_and_tried_again(
        sim: ZaloSim, caplog: pytest.LogCaptureFixture) -> None:
    tokens = MemoryTokenStore("sim-access-token", "spent-refresh-token",
                              issued_at=time.time() - 40 * DAY)
    adapter = ZaloAdapter(config(sim), tokens)
    schedule = adapter.schedule
    schedule.retry_first, schedule.retry_max = 0.05, 0.1  # tried again soon
    failures = metric("loa_zalo_token_refresh_failures_total")
    task = asyncio.create_task(schedule.run())
    try:
        with caplog.at_level(logging.ERROR):
            await until(lambda: sim.stats.refresh_refused >= 2)  # tried again after a while
        assert metric("loa_zalo_token_refresh_failures_total") - failures >= 2
        assert metric("loa_zalo_refresh_token_age_seconds") >= 40 * DAY
        assert metric("loa_zalo_token_renewal_failing") == 1
        alerts = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert alerts and "ALERT Zalo token renewal failed" in alerts[0].getMessage()
        assert "-14014 Invalid refresh token" in alerts[0].getMessage()
        tokens.refresh = "sim-refresh-token"  # the OA authorised again
        await until(lambda: not schedule.failing)  # the next try renewed
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    try:
        assert sim.stats.refreshes == 1 and tokens.saves == 1
        assert metric("loa_zalo_refresh_token_age_seconds") < 600  # the pair is new
        assert metric("loa_zalo_token_renewal_failing") == 0
    finally:
        await adapter.aclose()
    assert all("sim-refresh" not in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("code", [-220, -216])
async def test_oa_token_codes_renew_the_token_through_the_engine(
        store: Store, sim: ZaloSim, tmp_path: Path, plan: Plan, numbering: Numbering,
        province: Province, code: int) -> None:
    """OA messages with an expired (-220) or an unknown (-216) access token: one renewal, and
    every message is sent, none retried away."""
    if code == -220:
        sim.expire_token()
        tokens = MemoryTokenStore("sim-access-token", "sim-refresh-token")
    else:
        tokens = MemoryTokenStore("revoked-access-token", "sim-refresh-token")
    tokens.issued_at = time.time()  # not due: only the refusal renews
    adapter = ZaloAdapter(config(sim, mode="oa"), tokens)
    wave = await zalo_wave(store, tmp_path, numbering, province)
    engine = Engine(store, plan, SETTINGS, province, {Channel.ZALO: adapter},
                    numbering.carriers, reconcile=False, numbering=numbering)
    await send_wave(engine, store, wave)
    p = await wave_progress(store, wave)
    assert (p.sent, p.failed, p.expired) == (wave.total, 0, 0)
    assert sim.stats.token_rejected >= 1  # Zalo refused the token ...
    answered = {-220: sim.stats.oa_token_expired, -216: sim.stats.oa_token_invalid}
    assert answered[code] == sim.stats.token_rejected  # ... with this code
    assert sim.stats.refreshes == 1 and tokens.saves == 1  # ... and it was renewed once
    assert sim.stats.accepted == wave.total and sim.duplicates == 0


async def test_two_processes_sharing_redis_renew_once_when_the_schedule_fires(
        tmp_path: Path, redis_url: str) -> None:
    """Two worker processes, one pair in Redis issued 31 days ago: both schedules fire at
    start, one renews, the other takes its pair."""
    sim = ZaloSim(ZaloSimConfig(oauth_delay=0.3))
    await sim.start()
    r = aioredis.Redis.from_url(redis_url, socket_timeout=60)  # BLPOP waits for the start
    procs = []
    try:
        old = zalotokens.TokenPair("sim-access-token", "sim-refresh-token",
                                   int(time.time() - 31 * DAY), 90000)
        await r.set(keys.ZALO_TOKENS, msgspec.json.encode(old))
        env = {**os.environ, "LOA_ZALO_APP_SECRET": sim.config.secret_key}
        for n in (1, 2):
            host = tmp_path / f"host{n}"
            host.mkdir()
            cfg = host / "loa.toml"
            cfg.write_text(
                f'zalo_tokens_file = "{host / "zalo-tokens.json"}"\n'
                f'[zalo]\nbase_url = "{sim.url}"\noauth_url = "{sim.url}"\n'
                f'app_id = "{sim.config.app_id}"\ntemplate_id = "loa-alert"\n'
                'secret_key_env = "LOA_ZALO_APP_SECRET"\n', encoding="utf-8")
            procs.append(await asyncio.create_subprocess_exec(
                sys.executable, str(ROOT / "tests" / "adapters" / "zalo_scheduler.py"), str(cfg),
                redis_url,
                f"w{n}", env=env, cwd=host, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE))
        for _ in procs:
            assert await r.blpop(["test:ready"], 30), "a worker did not start"
        await r.rpush("test:go", "1", "1")
        outs = [await asyncio.wait_for(p.communicate(), 30) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], [e.decode()[-2000:] for _, e in outs]
        answers = [json.loads(o.decode().splitlines()[-1]) for o, _ in outs]
        assert sim.stats.refreshes == 1 and sim.stats.refresh_refused == 0
        assert sorted(a["renewed"] for a in answers) == [0, 1]
        assert answers[0]["access"] == answers[1]["access"] in sim.access_tokens
        raw = await r.get(keys.ZALO_TOKENS)
        assert raw is not None
        saved = msgspec.json.decode(raw, type=zalotokens.TokenPair)
        assert saved.access_token == answers[0]["access"] and saved.expires_in == 90000
        assert saved.saved_at >= old.saved_at + 30 * DAY
        assert all("sim-refresh" not in e.decode() for _, e in outs)
    finally:
        for p in procs:
            if p.returncode is None:
                p.kill()
                await p.wait()
        await r.aclose()
        await sim.stop()


def test_cli_refresh_token_renews_now_into_the_tokens_file(tmp_path: Path) -> None:
    async def main() -> tuple[subprocess.CompletedProcess[str], int]:
        async with ZaloSim() as sim:
            cfg = tmp_path / "loa.toml"
            cfg.write_text(
                f'zalo_tokens_file = "{tmp_path / "zalo-tokens.json"}"\n'
                f'[zalo]\nbase_url = "{sim.url}"\noauth_url = "{sim.url}"\n'
                f'app_id = "{sim.config.app_id}"\ntemplate_id = "loa-alert"\n'
                'secret_key_env = "LOA_ZALO_APP_SECRET"\n', encoding="utf-8")
            env = {**os.environ, "LOA_ZALO_APP_SECRET": sim.config.secret_key,
                   "LOA_ZALO_ACCESS_TOKEN": "sim-access-token",
                   "LOA_ZALO_REFRESH_TOKEN": "sim-refresh-token"}
            env.pop("LOA_REDIS_URL", None)
            done = await asyncio.to_thread(
                subprocess.run, [sys.executable, "-m", "dispatcher.service.cli", "zalo",
                                 "refresh-token", "--config", str(cfg), "--json"],
                check=False, capture_output=True, text=True, env=env, timeout=30)
            return done, sim.stats.refreshes

    done, refreshes = asyncio.run(main())
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["renewed"] is True and answer["expires_in"] == 90000 and refreshes == 1
    saved = json.loads((tmp_path / "zalo-tokens.json").read_text())
    assert saved["refresh_token"] != "sim-refresh-token" and saved["expires_in"] == 90000
    assert saved["access_token"] not in done.stdout + done.stderr


def test_cli_refresh_token_without_zalo_and_a_bad_refresh_every_days(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "dispatcher.service.cli", "zalo", "refresh-token"],
                          check=False, capture_output=True, text=True, timeout=30,
                          env={k: v for k, v in os.environ.items() if k != "LOA_REDIS_URL"})
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        "loa: error: settings: no [zalo] table: Zalo is not configured, there is no token "
        "to renew"]
    cfg = tmp_path / "loa.toml"
    cfg.write_text('[zalo]\ntemplate_id = "t"\nrefresh_every_days = 100\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="refresh_every_days must be more than 0 and at most 80"):
        load_settings(cfg, env={})
