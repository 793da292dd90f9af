"""Zalo's daily ZNS quota through the engine against the Zalo simulator: the quota read before a
wave, the policy of a wave whose audience exceeds it (the rest by SMS at once, or wait for the
reset), and the reset time."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from adapters.base import Adapter, DailyQuota, Envelope
from adapters.memory import MemoryAdapter
from adapters.zalo.adapter import ZaloAdapter
from adapters.zalo.config import ZaloConfig, next_quota_reset
from adapters.zalo.quota import ZaloQuotaReader, parse_quota, reset_time, time_zone
from adapters.zalo.simulator import ZaloSim, ZaloSimConfig
from adapters.zalo.tokens import MemoryTokenStore
from bench import audiencegen
from dispatcher.domain.audience import Validator
from dispatcher.domain.config import default_path
from dispatcher.domain.errors import ConfigError, InputError
from dispatcher.domain.model import (
    VN,
    Campaign,
    CampaignState,
    Channel,
    OverQuota,
    Priority,
    Selector,
    Wave,
    WaveState,
)
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan, load_plan, next_slot
from dispatcher.domain.province import Province
from dispatcher.engine import routing
from dispatcher.engine.campaigns import Campaigns, wave_id
from dispatcher.engine.fallback import fallback_wave_id
from dispatcher.engine.importer import import_audience
from dispatcher.engine.process import Engine, wave_progress
from dispatcher.engine.reconciler import Reconciler
from dispatcher.service.api import ApiConfig, create_app
from dispatcher.service.auth import Role, TokenEntry, hash_token
from dispatcher.service.settings import ChannelSettings, Settings, load_settings
from dispatcher.store import MemoryStore, Store
from tests.bench.test_cli_engine import run as run_cli
from tests.engine.test_zalo_codes import PROBE, SETTINGS, run, store, until

__all__ = ["store"]  # the fixture

QUOTA = 100  # of an audience of about 280 on Zalo


def zalo(sim: ZaloSim, **changes: Any) -> ZaloAdapter:
    """The Zalo channel on the simulator; a paused route tries a batch every PROBE seconds."""
    config = ZaloConfig(base_url=sim.url, oa_url=sim.url, oauth_url=sim.url,
                        app_id=sim.config.app_id, secret_key=sim.config.secret_key,
                        template_id="loa-alert", mode="auto", timeout=2.0,
                        token_retry_after=0.0, quota_probe_seconds=PROBE,
                        alert_probe_seconds=PROBE)
    return ZaloAdapter(msgspec.structs.replace(config, **changes),
                       MemoryTokenStore("sim-access-token", "sim-refresh-token"))


async def zalo_wave(store: Store, tmp_path: Path, numbering: Numbering, province: Province,
                    *, priority: Priority = Priority.NORMAL, **fields: object) -> Wave:
    path = tmp_path / "audience.csv"
    audiencegen.generate(path, 300, seed=17, numbering=numbering, province=province)
    await import_audience(path, store, Validator(numbering, province), chunk_size=64)
    meta = await store.audiences.meta()
    assert meta is not None
    now = dt.datetime.now(dt.UTC)
    await store.campaigns.create(Campaign(id="c", title="t", channels=[Channel.ZALO],
                                          texts={Channel.ZALO: "Zalo"}, created_at=now,
                                          created_by="a", state=CampaignState.RUNNING))
    wave = Wave(id="w-zalo", campaign_id="c", channel=Channel.ZALO, text="Zalo",
                created_at=now, audience_version=meta.version, priority=priority,
                total=routing.reach(meta, Selector(), Channel.ZALO), start_now=True,
                fallback_text="Deo khau trang (SMS)", **fields)  # type: ignore[arg-type]
    await store.waves.create(wave, WaveState.CREATED)
    return wave


async def test_an_urgent_wave_over_the_quota_sends_the_rest_by_sms_at_once(
        store: Store, sim: ZaloSim, tmp_path: Path, plan: Plan, numbering: Numbering,
        province: Province) -> None:
    """Zalo takes QUOTA messages today and answers -144 after; the wave is urgent (as a level 4
    wave is) with SMS fallback: the phones beyond the quota are received by the SMS side now,
    not at midnight, nobody twice, nobody dead-lettered. Zalo user ids (no number for an SMS)
    wait for the reset, and go then."""
    wave = await zalo_wave(store, tmp_path, numbering, province, priority=Priority.URGENT)
    sim.set_config(daily_quota=QUOTA)
    # a try of Zalo every minute while out of quota: nothing of this wave waits for it
    adapter = zalo(sim, quota_probe_seconds=60.0)
    sms = MemoryAdapter()
    adapters: dict[Channel, Adapter] = {Channel.ZALO: adapter, Channel.SMS: sms}
    engine = Engine(store, plan, SETTINGS, province, adapters, numbering.carriers,
                    reconcile=False, numbering=numbering)
    companion = fallback_wave_id(wave.id)

    async def body() -> None:
        async def by_sms() -> bool:  # the quota is spent: the rest by SMS, user ids wait
            z = await wave_progress(store, wave)
            other = await store.waves.get(companion)
            if z.queued or other is None or z.sent + z.fallback + z.retrying < wave.total:
                return False
            s = await wave_progress(store, other)
            return s.total == z.fallback and s.queued == 0 and s.retrying == 0
        await until(by_sms, timeout=10)
        z = await wave_progress(store, wave)
        assert (z.sent, z.expired) == (QUOTA, 0) and z.fallback == z.failed > 0
        assert sum(sim.received.values()) == QUOTA  # nothing more was taken by Zalo
        sent_by_sms = {a for (w, a), n in sms.received.items() if w == companion and n}
        assert len(sent_by_sms) == z.fallback and all(a.startswith("84") for a in sent_by_sms)
        sim.reset_quota()  # a new day: the user ids go by Zalo
        adapter.resume()

        async def finished() -> bool:
            z = await wave_progress(store, wave)
            return z.retrying == 0 and z.queued == 0 and z.sent + z.fallback == wave.total
        await until(finished, timeout=10)

    try:
        await run(engine, body)
    finally:
        await adapter.aclose()
    z = await wave_progress(store, wave)
    by_sms = {a for (w, a), n in sms.received.items() if w == companion and n}
    assert len(by_sms) == z.fallback and sms.duplicates == 0 and sim.duplicates == 0
    assert not by_sms & set(sim.received)
    assert len(by_sms) + len(sim.received) == wave.total and z.expired == 0



@pytest.mark.parametrize(("priority", "over_quota"), [
    (Priority.URGENT, OverQuota.WAIT),  # an urgent wave told to wait
    (Priority.NORMAL, None),  # a routine wave: waits by default
])
async def test_a_wave_whose_policy_is_wait_keeps_the_rest_for_the_reset(
        store: Store, sim: ZaloSim, tmp_path: Path, plan: Plan, numbering: Numbering,
        province: Province, priority: Priority, over_quota: OverQuota | None) -> None:
    """Policy "wait": beyond the quota the route pauses, nothing goes by SMS, nothing is
    dead-lettered; after the reset every recipient gets the Zalo message."""
    wave = await zalo_wave(store, tmp_path, numbering, province, priority=priority,
                           over_quota=over_quota)
    sim.set_config(daily_quota=QUOTA)
    adapter, sms = zalo(sim), MemoryAdapter()
    adapters: dict[Channel, Adapter] = {Channel.ZALO: adapter, Channel.SMS: sms}
    engine = Engine(store, plan, SETTINGS, province, adapters, numbering.carriers,
                    reconcile=False, numbering=numbering)

    async def body() -> None:
        await until(lambda: _true(adapter.pause_kind == "quota"), timeout=10)
        p = await wave_progress(store, wave)
        assert (p.failed, p.expired, p.fallback) == (0, 0, 0)
        assert p.over_quota == wave.total - QUOTA  # counted when the wave started
        sim.reset_quota()  # a new day, and a quota raised for it
        sim.set_config(daily_quota=0)

        async def finished() -> bool:
            p = await wave_progress(store, wave)
            return p.sent == wave.total and p.retrying == 0
        await until(finished, timeout=10)

    try:
        await run(engine, body)
    finally:
        await adapter.aclose()
    assert sms.messages == 0 and sim.duplicates == 0 and len(sim.received) == wave.total


async def _true(value: bool) -> bool:
    return value


async def test_a_routine_wave_told_sms_sends_the_rest_by_sms(
        store: Store, sim: ZaloSim, tmp_path: Path, plan: Plan, numbering: Numbering,
        province: Province) -> None:
    """A routine wave with over_quota "sms" (a plan row, a campaign): the same as urgent."""
    wave = await zalo_wave(store, tmp_path, numbering, province, over_quota=OverQuota.SMS)
    sim.set_config(daily_quota=QUOTA)
    adapter, sms = zalo(sim), MemoryAdapter()
    adapters: dict[Channel, Adapter] = {Channel.ZALO: adapter, Channel.SMS: sms}
    engine = Engine(store, plan, SETTINGS, province, adapters, numbering.carriers,
                    reconcile=False, numbering=numbering)

    async def body() -> None:
        async def by_sms() -> bool:
            z = await wave_progress(store, wave)
            other = await store.waves.get(fallback_wave_id(wave.id))
            if other is None or z.queued or z.sent + z.fallback + z.retrying < wave.total:
                return False
            s = await wave_progress(store, other)
            return s.total == z.fallback and s.queued == 0 and s.retrying == 0
        await until(by_sms, timeout=10)

    try:
        await run(engine, body)
    finally:
        await adapter.aclose()
    z = await wave_progress(store, wave)
    companion = fallback_wave_id(wave.id)
    assert (z.sent, z.expired) == (QUOTA, 0) and sum(sim.received.values()) == QUOTA
    assert z.fallback == z.failed == len({a for (w, a), n in sms.received.items()
                                          if w == companion and n}) > 0


async def test_a_wave_starts_when_the_quota_cannot_be_read(
        store: Store, sim: ZaloSim, tmp_path: Path, plan: Plan, numbering: Numbering,
        province: Province) -> None:
    """Zalo does not answer the quota: "quota unknown" is recorded and the wave goes on."""
    wave = await zalo_wave(store, tmp_path, numbering, province, priority=Priority.URGENT)
    sim.set_config(quota_error=-32)
    adapter = zalo(sim)
    adapters: dict[Channel, Adapter] = {Channel.ZALO: adapter, Channel.SMS: MemoryAdapter()}
    engine = Engine(store, plan, SETTINGS, province, adapters, numbering.carriers,
                    reconcile=False, numbering=numbering)

    async def body() -> None:
        async def finished() -> bool:
            p = await wave_progress(store, wave)
            return p.sent == wave.total
        await until(finished, timeout=10)

    try:
        await run(engine, body)
    finally:
        await adapter.aclose()
    p = await wave_progress(store, wave)
    assert (p.quota_unknown, p.over_quota) == (1, 0) and sim.stats.quota_reads == 1
    assert len(sim.received) == wave.total


# -- the quota read, and when it resets -----------------------------------------------------------


async def test_the_quota_is_read_from_zalo(sim: ZaloSim) -> None:
    adapter = zalo(sim)
    try:
        sim.set_config(daily_quota=5000)
        sim.quota_used = 1200
        quota = await adapter.quota()
        assert quota is not None and (quota.daily, quota.remaining) == (5000, 3800)
        assert quota.reset == "00:00 Asia/Ho_Chi_Minh"
        sim.expire_token()  # refused (-124): unknown, not an error
        assert await adapter.quota() is None
    finally:
        await adapter.aclose()
    assert parse_quota(200, b'{"error":0,"data":{"dailyQuota":5000,"remainingQuota":"7"}}') \
        == DailyQuota(remaining=7, daily=5000)
    assert parse_quota(200, b'{"error":-124,"message":"token"}') is None
    assert parse_quota(502, b"") is None


async def test_zalo_unreachable_for_the_quota_is_unknown() -> None:
    config = ZaloConfig(base_url="http://127.0.0.1:1", template_id="t", timeout=1.0)
    adapter = ZaloAdapter(config, MemoryTokenStore("a", "r"))
    try:
        assert await adapter.quota() is None
    finally:
        await adapter.aclose()


def test_the_reset_time_and_zone_are_configurable() -> None:
    now = dt.datetime(2026, 11, 26, 10, 0, tzinfo=dt.UTC).timestamp()  # 17:00 in Vietnam
    assert next_quota_reset(now) == dt.datetime(2026, 11, 26, 17, 0, tzinfo=dt.UTC).timestamp()
    at, tz = reset_time("07:30"), time_zone("Asia/Bangkok")
    assert next_quota_reset(now, at, tz) == dt.datetime(
        2026, 11, 27, 0, 30, tzinfo=dt.UTC).timestamp()  # 07:30 tomorrow in Bangkok (+07)
    at = reset_time("18:00")
    assert next_quota_reset(now, at, VN) == dt.datetime(
        2026, 11, 26, 11, 0, tzinfo=dt.UTC).timestamp()  # later today


async def test_the_quota_pause_lasts_until_the_configured_reset(sim: ZaloSim) -> None:
    sim.set_config(daily_quota=2)
    config = ZaloConfig(base_url=sim.url, oauth_url=sim.url, app_id=sim.config.app_id,
                        template_id="loa-alert", quota_reset="06:15", quota_timezone="UTC")
    adapter = ZaloAdapter(config, MemoryTokenStore("sim-access-token", "sim-refresh-token"))
    try:
        results = await adapter.send(Envelope(wave="w", channel=Channel.ZALO, text="t",
                                              addrs=[f"8491234560{n}" for n in range(4)]))
    finally:
        await adapter.aclose()
    assert len(results.sent) == 2 and len(results.requeue) == 2
    reset = dt.datetime.fromtimestamp(adapter.paused_until, dt.UTC)
    assert (reset.hour, reset.minute) == (6, 15) and adapter.paused_until > time.time()


@pytest.mark.parametrize(("key", "value", "error"), [
    ("quota_reset", "24:00", "quota_reset"),
    ("quota_reset", "7h", "quota_reset"),
    ("quota_timezone", "Asia/Hanoi_City", "quota_timezone"),
])
def test_a_bad_reset_setting_is_refused_naming_the_key(
        tmp_path: Path, key: str, value: str, error: str) -> None:
    path = tmp_path / "loa.toml"
    path.write_text(f'[zalo]\ntemplate_id = "t"\n{key} = "{value}"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=error) as caught:
        load_settings(path, env={})
    assert "\n" not in str(caught.value)


# -- the plan's policy, per level ---------------------------------------------------------------


def test_the_plan_sends_by_sms_beyond_the_quota_at_the_urgent_level_only(plan: Plan) -> None:
    policies = {n: level.rules[Channel.ZALO].row.over_quota
                for n, level in plan.levels.items() if Channel.ZALO in level.rules}
    top = max(plan.levels)
    assert policies[top] is OverQuota.SMS
    assert all(p is OverQuota.WAIT for n, p in policies.items() if n != top)


def plan_with(tmp_path: Path, row: str, line: str) -> Path:
    text = default_path("plan.toml").read_text(encoding="utf-8")
    marker = f"[levels.channels.{row}]\n"
    assert marker in text
    path = tmp_path / "plan.toml"
    path.write_text(text.replace(marker, marker + line + "\n", 1), encoding="utf-8")
    return path


def test_a_plan_row_may_say_wait_or_sms(tmp_path: Path) -> None:
    plan = load_plan(plan_with(tmp_path, "zalo", 'over_quota = "sms"'))
    first = min(n for n, level in plan.levels.items() if Channel.ZALO in level.rules)
    assert plan.levels[first].rules[Channel.ZALO].row.over_quota is OverQuota.SMS


@pytest.mark.parametrize(("row", "line", "error"), [
    ("zalo", 'over_quota = "later"', "over_quota"),
    ("sms", 'over_quota = "wait"', "over_quota"),
])
def test_a_bad_plan_policy_is_refused_naming_the_key(tmp_path: Path, row: str, line: str,
                                                     error: str) -> None:
    with pytest.raises(ConfigError, match=error) as caught:
        load_plan(plan_with(tmp_path, row, line))
    assert "\n" not in str(caught.value)


async def test_a_level_4_plan_wave_carries_the_plan_policy(
        store: Store, tmp_path: Path, plan: Plan, numbering: Numbering,
        province: Province) -> None:
    path = tmp_path / "audience.csv"
    audiencegen.generate(path, 50, seed=3, numbering=numbering, province=province)
    await import_audience(path, store, Validator(numbering, province), chunk_size=64)
    meta = await store.audiences.meta()
    assert meta is not None
    top = max(plan.levels)
    rule = plan.levels[top].rules[Channel.ZALO]
    slot = next_slot(plan, top, Channel.ZALO, dt.datetime.now(dt.UTC))
    assert slot is not None
    assert await Reconciler(store, plan).create_wave(rule, slot, meta, dt.datetime.now(dt.UTC))
    wave = await store.waves.get(slot.id)
    assert wave is not None and wave.over_quota is OverQuota.SMS and wave.fallback_text
    assert wave.quota_policy is OverQuota.SMS


# -- campaigns ----------------------------------------------------------------------------------


async def test_a_campaign_policy_defaults_by_priority_and_needs_the_sms_fallback(
        store: Store, tmp_path: Path, numbering: Numbering, province: Province) -> None:
    path = tmp_path / "audience.csv"
    audiencegen.generate(path, 50, seed=3, numbering=numbering, province=province)
    await import_audience(path, store, Validator(numbering, province), chunk_size=64)
    campaigns = Campaigns(store, Settings(), province)
    now = dt.datetime.now(dt.UTC)
    common: dict[str, Any] = {"title": "t", "channels": [Channel.ZALO],
                              "texts": {Channel.ZALO: "Zalo"}, "created_by": "a", "now": now}
    with pytest.raises(InputError, match="over_quota"):
        await campaigns.create(**common, over_quota=OverQuota.SMS)
    for priority, over_quota, expected in [(Priority.URGENT, None, OverQuota.SMS),
                                           (Priority.NORMAL, None, OverQuota.WAIT),
                                           (Priority.URGENT, OverQuota.WAIT, OverQuota.WAIT),
                                           (Priority.NORMAL, OverQuota.SMS, OverQuota.SMS)]:
        created = await campaigns.create(**common, priority=priority, sms_fallback=True,
                                         over_quota=over_quota)
        await campaigns.start(created.id, now)
        wave = await store.waves.get(wave_id(created.id, Channel.ZALO))
        assert wave is not None and wave.quota_policy is expected


# -- the preview ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "says"), [
    ({"priority": "urgent", "sms_fallback": True}, "go by SMS at once"),
    ({"sms_fallback": True}, "wait for the quota reset at 00:00 Asia/Ho_Chi_Minh"),
    ({"priority": "urgent"}, "wait for the quota reset at 00:00 Asia/Ho_Chi_Minh"),  # no SMS
    ({"sms_fallback": True, "over_quota": "sms"}, "go by SMS at once"),
])
async def test_the_preview_says_what_zalo_can_take_today(
        tmp_path: Path, plan: Plan, numbering: Numbering, province: Province,
        body: dict[str, Any], says: str) -> None:
    with sim_in_thread(ZaloSimConfig(daily_quota=150)) as sim:
        sim.quota_used = 100
        reader = ZaloQuotaReader(sim.url, MemoryTokenStore("sim-access-token", ""),
                                 reset="00:00 Asia/Ho_Chi_Minh")
        async with preview_client(tmp_path, plan, numbering, province, reader) as client:
            r = await client.post("/v1/preview", headers=VIEWER, json={
                "text": "Deo khau trang", "channels": ["zalo", "sms"], **body})
    assert r.status_code == 200, r.text
    zalo = r.json()["zalo"]
    n = r.json()["channels"]["zalo"]["recipients"]
    assert (zalo["recipients"], zalo["remaining"], zalo["daily"]) == (n, 50, 150)
    assert zalo["beyond"] == n - 50 > 0
    assert zalo["summary"].startswith(f"Zalo can take 50 of {n:,} today; the other {n - 50:,} ")
    assert zalo["summary"].endswith(says)
    assert sim.stats.quota_reads == 1


async def test_the_preview_says_quota_unknown_when_zalo_does_not_answer(
        tmp_path: Path, plan: Plan, numbering: Numbering, province: Province) -> None:
    reader = ZaloQuotaReader("http://127.0.0.1:1", MemoryTokenStore("a", ""), reset="00:00 UTC",
                             timeout=1.0)
    async with preview_client(tmp_path, plan, numbering, province, reader) as client:
        r = await client.post("/v1/preview", headers=VIEWER, json={
            "text": "Deo khau trang", "channels": ["zalo"]})
        assert r.status_code == 200, r.text
        zalo = r.json()["zalo"]
        assert zalo["remaining"] is None and zalo["beyond"] == 0
        assert zalo["summary"].startswith("Zalo quota unknown")
        r = await client.post("/v1/preview", headers=VIEWER, json={"text": "Deo khau trang"})
        assert r.json()["zalo"] is None  # no Zalo among the channels


VIEWER = {"Authorization": "Bearer loa_test-viewer-token"}


@contextlib.contextmanager
def sim_in_thread(config: ZaloSimConfig) -> Iterator[ZaloSim]:
    """The simulator on a loop of its own: the test client blocks the test's loop while the
    application answers."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="zalo-sim", daemon=True)
    thread.start()
    sim = ZaloSim(config)
    try:
        asyncio.run_coroutine_threadsafe(sim.start(), loop).result(5)
        yield sim
    finally:
        asyncio.run_coroutine_threadsafe(sim.stop(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


@contextlib.asynccontextmanager
async def preview_client(tmp_path: Path, plan: Plan, numbering: Numbering, province: Province,
                         reader: ZaloQuotaReader, store: Store | None = None,
                         ) -> AsyncIterator[AsyncTestClient[Litestar]]:
    store = store or MemoryStore()
    path = tmp_path / "audience.csv"
    audiencegen.generate(path, 300, seed=17, numbering=numbering, province=province)
    await import_audience(path, store, Validator(numbering, province), chunk_size=64)
    api = ApiConfig(audit_log=str(tmp_path / "audit.jsonl"), tokens=[
        TokenEntry("vic", Role.VIEWER, hash_token("loa_test-viewer-token"))])
    settings = Settings(channels=ChannelSettings(simulate=list(Channel)))
    app = create_app(store, settings, plan, province, numbering, api, zalo_quota=reader)
    async with AsyncTestClient(app) as client:
        yield client


def test_loa_campaign_create_takes_over_quota(capsys: pytest.CaptureFixture[str],
                                              redis_url: str, tmp_path: Path) -> None:
    path = tmp_path / "audience.csv"
    assert run_cli(capsys, "audience", "generate", "--count", "50", "-o", str(path))[0] == 0
    assert run_cli(capsys, "audience", "import", str(path), "--redis", redis_url)[0] == 0
    config = tmp_path / "loa.toml"
    config.write_text(f'[api]\naudit_log = "{tmp_path / "audit.jsonl"}"\n', encoding="utf-8")
    common = ("--channels", "zalo", "--text", "Deo khau trang", "--user", "alice",
              "--admin-direct", "--redis", redis_url, "--config", str(config), "--json")
    status, _, err = run_cli(capsys, "campaign", "create", "--title", "a", "--over-quota", "sms",
                             *common)
    assert status == 2 and "over_quota" in err and len(err.strip().splitlines()) == 1
    status, out, err = run_cli(capsys, "campaign", "create", "--title", "b", "--urgent",
                               "--sms-fallback", "--over-quota", "wait", *common)
    assert status == 0, err
    assert json.loads(out.strip().splitlines()[-1])["over_quota"] == "wait"


async def test_a_campaign_shows_its_zalo_recipients_beyond_the_quota(
        tmp_path: Path, plan: Plan, numbering: Numbering, province: Province) -> None:
    store = MemoryStore()
    reader = ZaloQuotaReader("http://127.0.0.1:1", MemoryTokenStore("a", ""), reset="00:00 UTC")
    async with preview_client(tmp_path, plan, numbering, province, reader, store) as client:
        meta = await store.audiences.meta()
        assert meta is not None
        now = dt.datetime.now(dt.UTC)
        await store.campaigns.create(Campaign(
            id="c", title="t", channels=[Channel.ZALO, Channel.SMS],
            texts={Channel.ZALO: "Zalo", Channel.SMS: "SMS"}, created_at=now, created_by="a",
            state=CampaignState.RUNNING))
        for channel in (Channel.ZALO, Channel.SMS):
            await store.waves.create(Wave(id=wave_id("c", channel), campaign_id="c",
                                          channel=channel, text="t", created_at=now,
                                          audience_version=meta.version, total=10),
                                     WaveState.SENDING)
        await store.receipts.count({wave_id("c", Channel.ZALO): {"over_quota": 7}})
        r = await client.get("/v1/campaigns/c", headers=VIEWER)
    assert r.status_code == 200, r.text
    progress = r.json()["progress"]
    assert (progress["zalo"]["over_quota"], progress["zalo"]["quota_unknown"]) == (7, False)
    assert "over_quota" not in progress["sms"]
