"""Typed ZNS templates: configured in [zalo.templates], named by a plan row or a campaign, their
values checked before any wave is made, rendered by the preview, sent as Zalo's template_data
(counted by the simulator, which answers -109, -1122, -1121 and -131 as Zalo does)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from adapters.base import Adapter, Envelope
from adapters.memory import MemoryAdapter
from adapters.zalo.adapter import ZaloAdapter
from adapters.zalo.config import ZaloConfig
from adapters.zalo.simulator import ZaloSim
from adapters.zalo.templates import TemplateParam, ZnsTemplate, problem
from adapters.zalo.tokens import MemoryTokenStore
from bench import audiencegen
from bench.cli.simzalo import _templates
from dispatcher.domain import zns
from dispatcher.domain.audience import Validator
from dispatcher.domain.config import default_path, read_toml
from dispatcher.domain.errors import ConfigError, InputError
from dispatcher.domain.model import (
    VN,
    Campaign,
    CampaignState,
    Channel,
    Selector,
    Wave,
    WaveState,
    ZnsMessage,
)
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan, next_slot, plan_from_dict
from dispatcher.domain.province import Province
from dispatcher.engine import routing
from dispatcher.engine.campaigns import Campaigns
from dispatcher.engine.importer import import_audience
from dispatcher.engine.process import Engine, wave_progress
from dispatcher.engine.reconciler import Reconciler
from dispatcher.service import zns_check
from dispatcher.service.api import ApiConfig, create_app
from dispatcher.service.auth import Role, TokenEntry, hash_token
from dispatcher.service.cli.campaign import _zns_params
from dispatcher.service.settings import (
    ChannelSettings,
    EngineSettings,
    RetrySettings,
    Settings,
    load_settings,
)
from dispatcher.store import MemoryStore, RedisStore, Store

ALERT = ZnsTemplate(template_id="zns-alert-1", params=[
    TemplateParam(name="title", max_length=100),
    TemplateParam(name="area", max_length=200),
    TemplateParam(name="instruction", max_length=200),
    TemplateParam(name="hotline", type="phone"),
    TemplateParam(name="date", type="date")])
VALUES = {"title": "KHẨN: dịch Covid-19 cấp độ IV", "area": "Thành phố Hạ Long",
          "instruction": "Chỉ ra ngoài khi thật cần thiết, đeo khẩu trang",
          "hotline": "1900 9095", "date": "{date}"}
SIM_TEMPLATES = {"loa-alert": ["content"], "zns-alert-1": [p.name for p in ALERT.params]}
SIM_LIMITS = {"zns-alert-1": {p.name: p.limit for p in ALERT.params}}
SETTINGS = Settings(engine=EngineSettings(batch_size=50, chunk_size=64, lease_seconds=2.0,
                                          state_refresh_seconds=0.1),
                    retry=RetrySettings(max_attempts=3, base_seconds=0.05, max_seconds=0.2))


def zalo_config(url: str = "http://127.0.0.1:1", **fields: Any) -> ZaloConfig:
    return ZaloConfig(**{"base_url": url, "oa_url": url, "oauth_url": url, "app_id": "sim-app",
                         "secret_key": "sim-app-secret", "template_id": "loa-alert",
                         "templates": {"alert": ALERT}, "timeout": 2.0,
                         "token_retry_after": 0.0, "alert_probe_seconds": 60.0, **fields})


# -- the checks ------------------------------------------------------------------------------------


def test_each_parameter_is_checked_and_named() -> None:
    assert problem(ALERT, VALUES) is None
    cases = {
        "area": ("x" * 240, "zns_params.area", "240 characters, the template allows 200"),
        "hotline": ("gọi 1900", "zns_params.hotline", "not a phone number (digits, + first)"),
        "date": ("mai", "zns_params.date", "not a date (dd/mm/yyyy, or {date})"),
        "instruction": ("xem https://qn.gov.vn", "zns_params.instruction",
                        "no link may be sent in a ZNS parameter (Zalo's template rules)"),
        "title": ("Gọi 0912 345 678 ngay", "zns_params.title",
                  "a phone number may only be sent in a phone parameter (Zalo forbids them "
                  "in the body)"),
    }
    for name, (value, field, message) in cases.items():
        assert problem(ALERT, {**VALUES, name: value}) == (field, message), name
    missing = {k: v for k, v in VALUES.items() if k != "area"}
    assert problem(ALERT, missing) == ("zns_params.area",
                                       "missing: the template needs a string value")
    assert problem(ALERT, {**VALUES, "link": "x"})[0] == "zns_params.link"  # type: ignore[index]
    assert problem(ALERT, {**VALUES, "area": "{district}"}) == (
        "zns_params.area", "the only field a value may hold is {date}")


def test_templates_are_settings_with_types_and_limits(tmp_path: Path) -> None:
    path = tmp_path / "loa.toml"
    path.write_text('[zalo]\napp_id = "a"\n[zalo.templates.alert]\ntemplate_id = "345678"\n'
                    'params = [{ name = "title", type = "string", max_length = 100 },\n'
                    '          { name = "hotline", type = "phone" }]\n', encoding="utf-8")
    zalo = load_settings(path, env={}).zalo
    assert zalo is not None and zalo.templates["alert"].template_id == "345678"
    assert [p.limit for p in zalo.templates["alert"].params] == [100, 15]
    path.write_text('[zalo]\napp_id = "a"\n[zalo.templates.alert]\ntemplate_id = "345678"\n'
                    'params = [{ name = "title", type = "string", max_length = 240 }]\n',
                    encoding="utf-8")
    with pytest.raises(ConfigError, match=r"zalo.templates.alert.*params\[0\].max_length: a "
                                          r"string parameter takes at most 200 characters"):
        load_settings(path, env={})


def plan_with_zalo_row(**row: Any) -> Plan:
    data = read_toml(default_path("plan.toml"))
    data["levels"][3]["channels"]["zalo"].update(row)
    return plan_from_dict(data)


def test_the_plan_is_refused_when_its_template_would_be() -> None:
    plan = plan_with_zalo_row(zns_template="alert", zns_params={**VALUES, "hotline": "{hotline}"})
    rule = plan.level(4).rules[Channel.ZALO]
    assert rule.row.zns_params["hotline"] == plan.hotline  # filled in when the plan loads
    zns_check.check_plan(plan, zalo_config(), "plan")
    zns_check.check_plan(plan, None, "plan")  # Zalo simulated or absent: nothing to check against
    long = plan_with_zalo_row(zns_template="alert", zns_params={**VALUES, "area": "x" * 240})
    with pytest.raises(ConfigError) as refused:
        zns_check.check_plan(long, zalo_config(), "plan")
    assert str(refused.value) == ("plan: levels[3].channels.zalo.zns_params.area: 240 "
                                  "characters, the template allows 200")
    unknown = plan_with_zalo_row(zns_template="flood", zns_params=VALUES)
    with pytest.raises(ConfigError, match=r"zns_template: 'flood' is not in \[zalo.templates\]"):
        zns_check.check_plan(unknown, zalo_config(), "plan")
    with pytest.raises(ConfigError, match=r"levels\[0\].channels.zalo.zns_template: required"):
        zns_check.check_plan(plan_from_dict(read_toml(default_path("plan.toml"))),
                       zalo_config(template_id=""), "plan")
    data = read_toml(default_path("plan.toml"))
    data["levels"][3]["channels"]["sms"]["zns_template"] = "alert"
    with pytest.raises(ConfigError, match=r"channels\.sms\.zns_template: only a zalo row"):
        plan_from_dict(data)


# -- the simulator answers like Zalo --------------------------------------------------------------


async def test_the_simulator_answers_template_faults_like_zalo(sim: ZaloSim) -> None:
    sim.set_config(templates={**SIM_TEMPLATES, "old": ["title"]}, limits=SIM_LIMITS,
                   unapproved=frozenset({"old"}))
    sent = {**VALUES, "date": "07/12/2026"}
    adapter = ZaloAdapter(zalo_config(sim.url), MemoryTokenStore("sim-access-token", ""))
    try:
        cases: list[tuple[str, dict[str, str], int]] = [
            ("nope", {}, -109), ("zns-alert-1", {"area": ""}, -1122),
            ("zns-alert-1", {"area": "x" * 201}, -1121), ("old", {}, -131),
            ("zns-alert-1", {}, 0)]
        for template_id, change, code in cases:
            data = {k: v for k, v in {**sent, **change}.items() if v}
            status, answer = await adapter._client.post(
                adapter._zns_url, msgspec.json.encode({
                    "phone": "84912345678", "tracking_id": "t", "template_id": template_id,
                    "template_data": data}),
                {"access_token": "sim-access-token"})
            assert status == 200 and msgspec.json.decode(answer)["error"] == code, template_id
    finally:
        await adapter.aclose()


# -- through the engine ----------------------------------------------------------------------------


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[Store]:
    opened = RedisStore(redis_url)
    try:
        yield opened
    finally:
        await opened.aclose()


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 20) -> None:
    async def wait() -> None:
        while not await check():
            await asyncio.sleep(0.05)
    await asyncio.wait_for(wait(), timeout)


async def zalo_wave(store: Store, tmp_path: Path, numbering: Numbering, province: Province,
                    zns_message: ZnsMessage | None, text: str) -> Wave:
    path = tmp_path / "audience.csv"
    audiencegen.generate(path, 200, seed=3, numbering=numbering, province=province)
    await import_audience(path, store, Validator(numbering, province), chunk_size=64)
    meta = await store.audiences.meta()
    assert meta is not None
    now = dt.datetime.now(dt.UTC)
    await store.campaigns.create(Campaign(id="c", title="t", channels=[Channel.ZALO],
                                          texts={Channel.ZALO: text}, created_at=now,
                                          created_by="a", state=CampaignState.RUNNING))
    wave = Wave(id="w-zalo", campaign_id="c", channel=Channel.ZALO, text=text, created_at=now,
                audience_version=meta.version, start_now=True,
                total=routing.reach(meta, Selector(), Channel.ZALO),
                zns=zns.for_wave(zns_message, now.astimezone(VN).date()))
    await store.waves.create(wave, WaveState.CREATED)
    return wave


async def send_wave(store: Store, sim: ZaloSim, plan: Plan, numbering: Numbering,
                    province: Province, wave: Wave, done: Callable[[], Awaitable[bool]]) -> None:
    adapter = ZaloAdapter(zalo_config(sim.url, mode="auto", alert_probe_seconds=0.3),
                          MemoryTokenStore("sim-access-token", "sim-refresh-token"))
    adapters: dict[Channel, Adapter] = {Channel.ZALO: adapter, Channel.SMS: MemoryAdapter()}
    engine = Engine(store, plan, SETTINGS, province, adapters, numbering.carriers,
                    reconcile=False, numbering=numbering)
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))
    try:
        await until(done)
    finally:
        stop.set()
        await task
        await adapter.aclose()


async def test_a_typed_wave_sends_each_parameter_to_its_template(
        store: Store, sim: ZaloSim, tmp_path: Path, plan: Plan, numbering: Numbering,
        province: Province) -> None:
    """Every phone gets the typed template with every value (the simulator counts the
    messages whose template_data holds the area: all of them), ``{date}`` filled in."""
    sim.set_config(templates=SIM_TEMPLATES, limits=SIM_LIMITS, mark=VALUES["area"])
    wave = await zalo_wave(store, tmp_path, numbering, province,
                           ZnsMessage(template="alert", params=VALUES), "KHẨN " * 100)
    assert wave.zns is not None and "{date}" not in wave.zns.params["date"]

    async def finished() -> bool:
        p = await wave_progress(store, wave)
        return p.sent == wave.total
    await send_wave(store, sim, plan, numbering, province, wave, finished)
    stats = sim.snapshot()
    assert stats.accepted == wave.total and stats.invalid == 0 and stats.duplicates == 0
    # every phone by the typed template; the OA recipients (Zalo user ids) by the text
    assert all(len(k) == 11 and k.startswith("84") for k in sim.marked)
    assert not any(len(k) == 11 and k.startswith("84") for k in sim.received)
    assert stats.marked == stats.marked_recipients == wave.total - sum(sim.received.values()) > 0


async def test_a_long_alert_as_free_text_is_refused_by_zalo_mid_wave(
        store: Store, sim: ZaloSim, tmp_path: Path, plan: Plan, numbering: Numbering,
        province: Province) -> None:
    """What the typed templates avoid: the whole alert in one parameter is over Zalo's limit,
    found out only by -1121 once the wave is sending (the route stops, nothing is sent)."""
    sim.set_config(limits={"loa-alert": {"content": 200}})
    wave = await zalo_wave(store, tmp_path, numbering, province, None, "KHẨN " * 100)

    async def refused() -> bool:
        return sim.stats.invalid > 0
    await send_wave(store, sim, plan, numbering, province, wave, refused)
    assert not any(len(k) == 11 and k.startswith("84") for k in sim.received)  # no ZNS went


# -- campaigns, the API and its preview -----------------------------------------------------------


@pytest.fixture
async def api(tmp_path: Path, plan: Plan, province: Province,
              numbering: Numbering) -> AsyncIterator[AsyncTestClient[Any]]:
    path = tmp_path / "audience.csv"
    audiencegen.generate(path, 100, seed=5, numbering=numbering, province=province)
    store = MemoryStore()
    await import_audience(path, store, Validator(numbering, province), chunk_size=64)
    settings = Settings(zalo=zalo_config(), channels=ChannelSettings(
        simulate=[Channel.SMS, Channel.EMAIL, Channel.APP]))
    config = ApiConfig(audit_log=str(tmp_path / "audit.jsonl"),
                       tokens=[TokenEntry("olga", Role.OPERATOR, hash_token("loa_t-olga"))])
    app = create_app(store, settings, plan, province, numbering, config,
                     clock=lambda: dt.datetime(2026, 12, 6, 23, 30, tzinfo=dt.UTC))
    async with AsyncTestClient(app) as client:
        client.headers["Authorization"] = "Bearer loa_t-olga"
        yield client


async def test_the_preview_renders_the_template(api: AsyncTestClient[Any]) -> None:
    r = await api.post("/v1/preview", json={"text": "KHẨN", "channels": ["zalo"],
                                            "zns_template": "alert", "zns_params": VALUES})
    assert r.status_code == 200, r.text
    shown = r.json()["zns"]
    assert (shown["template"], shown["template_id"]) == ("alert", "zns-alert-1")
    params = {p["name"]: p for p in shown["params"]}
    assert list(params) == ["title", "area", "instruction", "hotline", "date"]
    assert params["date"] == {"name": "date", "type": "date", "value": "07/12/2026",
                              "length": 10, "limit": 20}  # the day in Vietnam
    assert params["area"]["limit"] == 200 and params["area"]["length"] == len(VALUES["area"])
    r = await api.post("/v1/preview", json={
        "text": "KHẨN", "channels": ["zalo"], "zns_template": "alert",
        "zns_params": {**VALUES, "area": "x" * 240}})
    assert r.status_code == 400
    assert r.json()["detail"] == "zns_params.area: 240 characters, the template allows 200"


async def test_a_campaign_over_a_limit_is_refused_when_created(
        api: AsyncTestClient[Any]) -> None:
    doc = {"title": "Khẩn", "channels": ["zalo"], "text": "KHẨN", "zns_template": "alert"}
    r = await api.post("/v1/campaigns", json={**doc, "zns_params": {**VALUES, "area": "x" * 240}})
    assert r.status_code == 400
    assert r.json()["detail"] == "zns_params.area: 240 characters, the template allows 200"
    r = await api.post("/v1/campaigns", json={**doc, "zns_template": "flood",
                                              "zns_params": VALUES})
    assert r.status_code == 400 and r.json()["detail"].startswith(
        "zns_template: 'flood' is not in [zalo.templates]")
    r = await api.post("/v1/campaigns", json={**doc, "zns_params": VALUES})
    assert r.status_code == 201, r.text
    assert r.json()["zns"] == {"template": "alert", "params": VALUES}


async def test_a_started_campaign_gives_its_wave_the_typed_values(
        plan: Plan, province: Province, numbering: Numbering, tmp_path: Path) -> None:
    path = tmp_path / "audience.csv"
    audiencegen.generate(path, 50, seed=5, numbering=numbering, province=province)
    store = MemoryStore()
    await import_audience(path, store, Validator(numbering, province), chunk_size=64)
    campaigns = Campaigns(store, Settings(zalo=zalo_config()), province)
    now = dt.datetime(2026, 12, 6, 18, 0, tzinfo=dt.UTC)  # 7 December in Vietnam
    with pytest.raises(InputError, match=r"zns_params\.hotline: not a phone number"):
        await campaigns.create(title="t", channels=[Channel.ZALO], texts={Channel.ZALO: "x"},
                               created_by="a", now=now, zns=ZnsMessage(
                                   template="alert", params={**VALUES, "hotline": "y tế"}))
    campaign = await campaigns.create(
        title="t", channels=[Channel.ZALO, Channel.SMS],
        texts={Channel.ZALO: "x", Channel.SMS: "x"}, created_by="a", now=now,
        zns=ZnsMessage(template="alert", params=VALUES))
    await campaigns.start(campaign.id, now)
    waves = {w.channel: w for w in await campaigns.waves(campaign.id)}
    zalo_zns = waves[Channel.ZALO].zns
    assert zalo_zns is not None and zalo_zns.params["date"] == "07/12/2026"
    assert waves[Channel.SMS].zns is None
    envelope = Envelope(wave="w", channel=Channel.ZALO, text="x", addrs=["84912345678"],
                        zns=zalo_zns)
    from adapters.zalo.adapter import zns_tail  # noqa: PLC0415
    tail = zns_tail(zalo_config(), envelope)
    assert isinstance(tail, bytes) and b'"template_id":"zns-alert-1"' in tail
    assert b'"date":"07/12/2026"' in tail


async def test_a_plan_wave_carries_its_row_template_with_the_date_of_its_slot(
        province: Province, numbering: Numbering, tmp_path: Path) -> None:
    plan = plan_with_zalo_row(zns_template="alert", zns_params={**VALUES, "hotline": "{hotline}"})
    path = tmp_path / "audience.csv"
    audiencegen.generate(path, 50, seed=5, numbering=numbering, province=province)
    store = MemoryStore()
    await import_audience(path, store, Validator(numbering, province), chunk_size=64)
    meta = await store.audiences.meta()
    assert meta is not None
    rule = plan.level(4).rules[Channel.ZALO]
    now = dt.datetime(2026, 12, 6, 23, 45, tzinfo=dt.UTC)  # 06:45 on 7 December in Vietnam
    slot = next_slot(plan, 4, Channel.ZALO, now)
    assert slot is not None
    assert await Reconciler(store, plan).create_wave(rule, slot, meta, now)
    wave = await store.waves.get(slot.id)
    assert wave is not None and wave.zns is not None
    assert wave.zns.params == {**VALUES, "hotline": plan.hotline,
                               "date": slot.at.astimezone(VN).strftime("%d/%m/%Y")}
    sms_slot = next_slot(plan, 4, Channel.SMS, now)
    assert sms_slot is not None
    assert await Reconciler(store, plan).create_wave(plan.level(4).rules[Channel.SMS], sms_slot,
                                                     meta, now)
    sms_wave = await store.waves.get(sms_slot.id)
    assert sms_wave is not None and sms_wave.zns is None  # the SMS row has no template


async def test_a_wave_whose_template_is_no_longer_configured_stops_the_route(
        sim: ZaloSim) -> None:
    adapter = ZaloAdapter(zalo_config(sim.url, templates={}),
                          MemoryTokenStore("sim-access-token", ""))
    try:
        results = await adapter.send(Envelope(
            wave="w", channel=Channel.ZALO, text="x", addrs=["84912345678", "84912345679"],
            zns=ZnsMessage(template="alert", params=VALUES)))
    finally:
        await adapter.aclose()
    assert [i for i, _ in results.requeue] == [0, 1] and not results.failed
    assert adapter.pause_kind == "configuration" and sim.stats.requests == 0


def test_the_command_line_reads_template_values_and_simulated_limits() -> None:
    assert _zns_params(["area=Hạ Long", "date={date}"]) == {"area": "Hạ Long",
                                                             "date": "{date}"}
    with pytest.raises(InputError, match="--zns-param: 'area' is not NAME=VALUE"):
        _zns_params(["area"])
    assert _templates(["zns-alert-1:title=100,area=200,date"]) == (
        {"zns-alert-1": ["title", "area", "date"]},
        {"zns-alert-1": {"title": 100, "area": 200}})
    with pytest.raises(InputError, match="the limit must be a number"):
        _templates(["t:area=long"])
