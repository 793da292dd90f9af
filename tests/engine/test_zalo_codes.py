"""Zalo's error codes through the engine against the Zalo simulator: a quota pauses the route
and resumes with nothing dead-lettered, refusals fall back to SMS, configuration and money faults
stop the route with an alert and keep the audience."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from adapters.base import Adapter, Envelope, Results
from adapters.memory import MemoryAdapter
from adapters.zalo.adapter import ZaloAdapter
from adapters.zalo.codes import CODES, Outcome
from adapters.zalo.config import ZaloConfig, next_hour
from adapters.zalo.simulator import ZaloSim
from adapters.zalo.tokens import MemoryTokenStore
from bench import audiencegen
from bench.cli.simzalo import _refusals
from dispatcher.domain.audience import Validator
from dispatcher.domain.errors import InputError
from dispatcher.domain.model import VN, Campaign, CampaignState, Channel, Selector, Wave, WaveState
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.engine import routing
from dispatcher.engine.fallback import fallback_wave_id
from dispatcher.engine.importer import import_audience
from dispatcher.engine.process import Engine, wave_progress
from dispatcher.service.settings import EngineSettings, RetrySettings, Settings
from dispatcher.store import RedisStore, Store

SETTINGS = Settings(engine=EngineSettings(batch_size=50, chunk_size=64, lease_seconds=2.0,
                                          state_refresh_seconds=0.1),
                    retry=RetrySettings(max_attempts=3, base_seconds=0.05, max_seconds=0.2))
PROBE = 0.3  # seconds between the tries of a paused route


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[Store]:
    opened = RedisStore(redis_url)
    try:
        yield opened
    finally:
        await opened.aclose()


async def setup(store: Store, tmp_path: Path, numbering: Numbering, province: Province) -> Wave:
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
                created_at=now, audience_version=meta.version,
                total=routing.reach(meta, Selector(), Channel.ZALO), start_now=True,
                fallback_text="Deo khau trang (SMS)")
    await store.waves.create(wave, WaveState.CREATED)
    return wave


def zalo(sim: ZaloSim) -> ZaloAdapter:
    config = ZaloConfig(base_url=sim.url, oa_url=sim.url, oauth_url=sim.url,
                        app_id=sim.config.app_id, secret_key=sim.config.secret_key,
                        template_id="loa-alert", mode="auto", timeout=2.0,
                        token_retry_after=0.0, quota_probe_seconds=PROBE,
                        alert_probe_seconds=PROBE)
    return ZaloAdapter(config, MemoryTokenStore("sim-access-token", "sim-refresh-token"))


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 30) -> None:
    async def wait() -> None:
        while not await check():
            await asyncio.sleep(0.05)
    await asyncio.wait_for(wait(), timeout)


async def run(engine: Engine, body: Callable[[], Awaitable[None]]) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))
    try:
        await body()
    finally:
        stop.set()
        await task


@pytest.mark.parametrize("code", [-144, -131, -115])
async def test_a_wave_wide_code_pauses_the_route_and_keeps_the_audience(
        store: Store, sim: ZaloSim, tmp_path: Path, plan: Plan, numbering: Numbering,
        province: Province, code: int) -> None:
    """-144 (daily quota), -131 (template not approved), -115 (balance): the route pauses, no
    message is dead-lettered or sent by SMS, and when Zalo accepts again every one goes."""
    wave = await setup(store, tmp_path, numbering, province)
    sim.set_config(error_ratio=1.0, error_code=code)
    adapter, sms = zalo(sim), MemoryAdapter()
    adapters: dict[Channel, Adapter] = {Channel.ZALO: adapter, Channel.SMS: sms}
    engine = Engine(store, plan, SETTINGS, province, adapters, numbering.carriers,
                    reconcile=False, numbering=numbering)

    async def body() -> None:
        kind = PAUSE[CODES[code].outcome]
        await until(lambda: _true(  # the alert: the route is paused for this reason
            REGISTRY.get_sample_value("loa_zalo_route_paused", {"reason": kind}) == 1))
        asked = sim.stats.requests
        await asyncio.sleep(4 * PROBE)  # a few tries of the paused route
        # at most one batch per try (a try every PROBE seconds), not a retry storm
        assert sim.stats.requests - asked <= 6 * SETTINGS.engine.batch_size
        p = await wave_progress(store, wave)
        assert (p.failed, p.expired, p.sent) == (0, 0, 0)
        sim.set_config(error_ratio=0.0)  # the quota reset, the template approved, topped up

        async def finished() -> bool:
            p = await wave_progress(store, wave)
            return p.sent == wave.total and p.retrying == 0
        await until(finished)

    try:
        await run(engine, body)
    finally:
        await adapter.aclose()
    p = await wave_progress(store, wave)
    assert (p.sent, p.failed, p.expired) == (wave.total, 0, 0)
    assert sms.messages == 0 and sim.duplicates == 0


async def _true(value: bool) -> bool:
    return value


async def test_refusals_fall_back_to_sms(
        store: Store, sim: ZaloSim, tmp_path: Path, plan: Plan, numbering: Numbering,
        province: Province) -> None:
    """-141 (refused ZNS from this OA) and -119 on some phones: those go by SMS, once."""
    wave = await setup(store, tmp_path, numbering, province)
    sim.set_config(refusals={-141: 0.05, -119: 0.05})
    adapter, sms = zalo(sim), MemoryAdapter()
    adapters: dict[Channel, Adapter] = {Channel.ZALO: adapter, Channel.SMS: sms}
    engine = Engine(store, plan, SETTINGS, province, adapters, numbering.carriers,
                    reconcile=False, numbering=numbering)
    companion = fallback_wave_id(wave.id)

    async def body() -> None:
        async def finished() -> bool:
            z = await wave_progress(store, wave)
            other = await store.waves.get(companion)
            if z.queued or z.retrying or other is None:
                return False
            s = await wave_progress(store, other)
            return s.total == z.fallback and s.queued == 0 and s.retrying == 0
        await until(finished)

    try:
        await run(engine, body)
    finally:
        await adapter.aclose()
    refused = {a for a in sim.refused if a.startswith("84")}
    assert {sim.refused[a] for a in refused} == {-141, -119}
    z = await wave_progress(store, wave)
    assert z.failed == z.fallback == len(refused) > 0
    assert {a for (w, a), n in sms.received.items() if w == companion and n} == set(refused)
    assert sms.duplicates == 0



# -- every code of the table, through the adapter against the simulator --------------------------


KIND = {Outcome.RETRY: "retry", Outcome.FAIL: "fail", Outcome.FALLBACK: "fallback",
        Outcome.REFRESH: "retry", Outcome.QUOTA: "requeue", Outcome.CONFIGURATION: "requeue",
        Outcome.BALANCE: "requeue", Outcome.NIGHT: "requeue"}
PAUSE = {Outcome.QUOTA: "quota", Outcome.CONFIGURATION: "configuration",
         Outcome.BALANCE: "balance", Outcome.NIGHT: "night"}


def _kinds(results: Results) -> set[str]:
    return ({"retry" for _ in results.retry} | {"requeue" for _ in results.requeue}
            | {"fallback" if i in results.fallback else "fail" for i, _ in results.failed})


@pytest.mark.parametrize("code", sorted(c for c in CODES if c))
async def test_every_code_of_the_table_has_its_outcome(sim: ZaloSim, code: int) -> None:
    expected = CODES[code].outcome
    sim.set_config(error_ratio=1.0, error_code=code)
    adapter = zalo(sim)
    try:
        results = await adapter.send(Envelope(wave="w", channel=Channel.ZALO, text="t",
                                              addrs=["84912345678", "84912345679"],
                                              route="zalo"))
    finally:
        await adapter.aclose()
    assert _kinds(results) == {KIND[expected]}, results
    assert adapter.pause_kind == PAUSE.get(expected, "")
    if expected in PAUSE:
        assert results.pause_until > time.time()
    assert all(f"zalo {code}" in r or "paused" in r
               for _, r in results.retry + results.failed + results.requeue)


async def test_night_rule_sends_urgent_messages_by_sms_and_holds_the_others(
        sim: ZaloSim) -> None:
    sim.set_config(error_ratio=1.0, error_code=-133)
    adapter = zalo(sim)
    try:
        urgent = await adapter.send(Envelope(wave="w", channel=Channel.ZALO, text="t",
                                             addrs=["84912345678"], route="zalo", urgent=True))
        assert [r for _, r in urgent.failed] == [
            "fallback: zalo -133: template not allowed 22:00-06:00"]
        assert urgent.fallback == [0]
        assert adapter.pause_kind == ""
        routine = await adapter.send(Envelope(wave="w", channel=Channel.ZALO, text="t",
                                              addrs=["84912345678"], route="zalo"))
        assert len(routine.requeue) == 1 and adapter.pause_kind == "night"
        morning = dt.datetime.fromtimestamp(adapter.paused_until, VN)
        assert (morning.hour, morning.minute) == (6, 0)
        assert adapter.paused_until - time.time() <= 24 * 3600
    finally:
        await adapter.aclose()


def test_next_hour_is_in_vietnam() -> None:
    late = dt.datetime(2026, 11, 26, 22, 30, tzinfo=VN).timestamp()
    assert next_hour(late, 6) == dt.datetime(2026, 11, 27, 6, 0, tzinfo=VN).timestamp()
    early = dt.datetime(2026, 11, 27, 1, 0, tzinfo=VN).timestamp()
    assert next_hour(early, 6) == dt.datetime(2026, 11, 27, 6, 0, tzinfo=VN).timestamp()


async def test_unknown_codes_are_retried_then_pause_the_route_with_an_alert(
        sim: ZaloSim) -> None:
    sim.set_config(error_ratio=1.0, error_code=-999)
    adapter = zalo(sim)
    limit = adapter.config.unknown_code_limit
    addrs = [f"8491{i:07d}" for i in range(limit + 10)]
    try:
        results = await adapter.send(Envelope(wave="w", channel=Channel.ZALO, text="t",
                                              addrs=addrs, route="zalo"))
    finally:
        await adapter.aclose()
    assert len(results.retry) == limit - 1 and not results.failed
    assert len(results.requeue) == len(addrs) - limit + 1
    assert adapter.pause_kind == "unknown" and adapter.stats.alert_pauses == 1


async def test_the_simulator_refuses_a_fixed_share_of_phones(sim: ZaloSim) -> None:
    sim.set_config(refusals={-141: 0.1, -134: 0.1})
    addrs = [f"8491{i:07d}" for i in range(1000)]
    codes = [sim.refusal(a) for a in addrs]
    assert 150 < sum(1 for c in codes if c) < 250
    assert {c for c in codes if c} == {-141, -134}
    assert codes == [sim.refusal(a) for a in addrs]  # the same phones every time


def test_sim_cli_reads_refusals_and_names_a_bad_one() -> None:
    assert _refusals(["-141=0.02", "-119=0.5"]) == {-141: 0.02, -119: 0.5}
    with pytest.raises(InputError, match="--refusal: '-141' is not CODE=SHARE"):
        _refusals(["-141"])
    with pytest.raises(InputError, match="--refusal: '-141=2'"):
        _refusals(["-141=2"])


def test_docs_list_every_code_of_the_table() -> None:
    text = (Path(__file__).parents[2] / "docs" / "channels.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip() for line in text.splitlines() if line.startswith("| -")}
    assert rows == {str(code) for code in CODES if code}


async def test_quota_mid_wave_with_refusals_loses_no_one(
        store: Store, sim: ZaloSim, tmp_path: Path, plan: Plan, numbering: Numbering,
        province: Province) -> None:
    """The issue's case, smaller: -144 after 120 messages and -141 for some phones. Before, the
    rest was retried and dead-lettered with no SMS; now the route waits for the quota and the
    refused phones get the SMS."""
    wave = await setup(store, tmp_path, numbering, province)
    sim.set_config(daily_quota=120, refusals={-141: 0.05})
    adapter, sms = zalo(sim), MemoryAdapter()
    adapters: dict[Channel, Adapter] = {Channel.ZALO: adapter, Channel.SMS: sms}
    engine = Engine(store, plan, SETTINGS, province, adapters, numbering.carriers,
                    reconcile=False, numbering=numbering)
    companion = fallback_wave_id(wave.id)

    async def body() -> None:
        await until(lambda: _true(adapter.pause_kind == "quota"))
        assert (await wave_progress(store, wave)).expired == 0
        sim.reset_quota()
        sim.set_config(daily_quota=0)  # a new day

        async def finished() -> bool:
            z = await wave_progress(store, wave)
            other = await store.waves.get(companion)
            if z.queued or z.retrying or other is None or z.sent + z.failed < wave.total:
                return False
            s = await wave_progress(store, other)
            return s.total == z.fallback and s.queued == 0 and s.retrying == 0
        await until(finished)

    try:
        await run(engine, body)
    finally:
        await adapter.aclose()
    refused = {a for a in sim.refused if a.startswith("84")}
    z = await wave_progress(store, wave)
    assert z.expired == 0 and z.failed == z.fallback == len(refused) > 0
    assert z.sent == wave.total - len(sim.refused) and sim.duplicates == 0
    assert {a for (w, a), n in sms.received.items() if w == companion and n} == refused
