"""OA messages (Zalo user ids): the message type that reaches followers unprompted, each type's
body and path, the OA codes' outcomes, and the SMS fallback at the phone of the same audience
row, through the engine against the Zalo simulator over loopback."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest

from adapters.base import Adapter, Envelope
from adapters.memory import MemoryAdapter
from adapters.zalo import oasim
from adapters.zalo.adapter import ZaloAdapter
from adapters.zalo.api import OaRequest
from adapters.zalo.config import ZaloConfig
from adapters.zalo.oa import OA_PATHS, oa_tail
from adapters.zalo.simulator import ZaloSim
from adapters.zalo.tokens import MemoryTokenStore
from bench.cli.simzalo import _config as _zalo_config
from dispatcher.domain.audience import Validator
from dispatcher.domain.errors import ConfigError, InputError
from dispatcher.domain.model import (
    Campaign,
    CampaignState,
    Channel,
    Priority,
    Selector,
    Wave,
    WaveState,
)
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.engine import routing
from dispatcher.engine.fallback import fallback_wave_id
from dispatcher.engine.importer import import_audience
from dispatcher.engine.process import Engine, wave_progress
from dispatcher.service.cli import build_parser
from dispatcher.service.settings import load_settings
from dispatcher.store import RedisStore, Store
from tests.conftest import run_engine_until
from tests.engine.test_zalo_codes import PROBE, SETTINGS

TEXT = "KHẨN: Covid-19 lây lan rộng tại Quảng Ninh. Chỉ ra ngoài khi thật cần thiết."
USERS = 120  # audience rows with a Zalo user id (and, as every row, a phone)


def uid(i: int) -> str:
    return str(10**18 + 7919 * i)


def phone(i: int) -> str:
    return f"84912{i:06d}"


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[Store]:
    opened = RedisStore(redis_url)
    try:
        yield opened
    finally:
        await opened.aclose()


async def setup(store: Store, tmp_path: Path, numbering: Numbering, province: Province, *,
                urgent: bool = False) -> Wave:
    """An audience of USERS rows, each with a phone and a Zalo user id; a Zalo wave to all of
    them that falls back to SMS."""
    path = tmp_path / "audience.csv"
    rows = [f"0912{i:06d},{uid(i)},ha-long,resident" for i in range(USERS)]
    path.write_text("msisdn,zalo,district,kind\n" + "\n".join(rows) + "\n", encoding="utf-8")
    await import_audience(path, store, Validator(numbering, province), chunk_size=32)
    meta = await store.audiences.meta()
    assert meta is not None and meta.count == USERS
    now = dt.datetime.now(dt.UTC)
    await store.campaigns.create(Campaign(id="c", title="t", channels=[Channel.ZALO],
                                          texts={Channel.ZALO: TEXT}, created_at=now,
                                          created_by="a", state=CampaignState.RUNNING))
    wave = Wave(id="w-oa", campaign_id="c", channel=Channel.ZALO, text=TEXT,
                created_at=now, audience_version=meta.version,
                total=routing.reach(meta, Selector(), Channel.ZALO), start_now=True,
                priority=Priority.URGENT if urgent else Priority.NORMAL,
                fallback_text="Deo khau trang (SMS)")
    await store.waves.create(wave, WaveState.CREATED)
    return wave


def zalo(sim: ZaloSim, **changes: Any) -> ZaloAdapter:
    fields: dict[str, Any] = {
        "base_url": sim.url, "oa_url": sim.url, "oauth_url": sim.url,
        "app_id": sim.config.app_id, "secret_key": sim.config.secret_key,
        "template_id": "loa-alert", "mode": "auto", "timeout": 2.0, "token_retry_after": 0.0,
        "quota_probe_seconds": PROBE, "alert_probe_seconds": PROBE}
    fields.update(changes)
    return ZaloAdapter(ZaloConfig(**fields), MemoryTokenStore("sim-access-token",
                                                              "sim-refresh-token"))


async def send_wave(store: Store, sim: ZaloSim, wave: Wave, plan: Plan, numbering: Numbering,
                    province: Province, **config: Any) -> MemoryAdapter:
    """Run the engine until the wave and its SMS fallback are done; the SMS channel."""
    adapter, sms = zalo(sim, **config), MemoryAdapter()
    adapters: dict[Channel, Adapter] = {Channel.ZALO: adapter, Channel.SMS: sms}
    engine = Engine(store, plan, SETTINGS, province, adapters, numbering.carriers,
                    reconcile=False, numbering=numbering)
    companion = fallback_wave_id(wave.id)

    async def finished() -> bool:
        z = await wave_progress(store, wave)
        if z.queued or z.retrying:
            return False
        if not z.fallback:
            return True
        other = await store.waves.get(companion)
        if other is None:
            return False
        s = await wave_progress(store, other)
        return s.total == z.fallback and s.queued == 0 and s.retrying == 0

    try:
        await run_engine_until(engine, finished)
    finally:
        await adapter.aclose()
    return sms


def sms_to(sms: MemoryAdapter, wave: Wave) -> set[str]:
    companion = fallback_wave_id(wave.id)
    return {a for (w, a), n in sms.received.items() if w == companion and n}


# -- through the engine --------------------------------------------------------------------------


async def test_an_oa_alert_goes_as_a_transaction_message_and_reaches_followers(
        store: Store, sim: ZaloSim, tmp_path: Path, plan: Plan, numbering: Numbering,
        province: Province) -> None:
    """A third of the followers did not write to the OA in 7 days: a consultation (cs) message
    would be refused them (-230); the default type, transaction, reaches every follower."""
    wave = await setup(store, tmp_path, numbering, province)
    sim.set_config(oa_inactive_share=0.35)
    sms = await send_wave(store, sim, wave, plan, numbering, province)
    assert sim.oa_types == {"transaction": USERS}
    assert set(sim.received) == {uid(i) for i in range(USERS)} and sim.duplicates == 0
    assert not sim.oa_refused
    p = await wave_progress(store, wave)
    assert (p.sent, p.failed, p.fallback) == (USERS, 0, 0)
    assert sms.messages == 0


async def test_cs_messages_refused_for_no_interaction_go_by_sms_to_the_rows_phone(
        store: Store, sim: ZaloSim, tmp_path: Path, plan: Plan, numbering: Numbering,
        province: Province) -> None:
    """With oa_message_type cs, the users who did not interact in 7 days are refused (-230);
    each gets one SMS at the phone of its own audience row."""
    wave = await setup(store, tmp_path, numbering, province)
    sim.set_config(oa_inactive_share=0.35)
    sms = await send_wave(store, sim, wave, plan, numbering, province, oa_message_type="cs")
    refused = {u for u, code in sim.oa_refused.items() if code == -230}
    assert 0 < len(refused) < USERS and set(sim.oa_refused.values()) == {-230}
    assert sim.oa_types == {"cs": USERS - len(refused)}
    row = {uid(i): phone(i) for i in range(USERS)}
    assert sms_to(sms, wave) == {row[u] for u in refused}
    assert sms.duplicates == 0
    p = await wave_progress(store, wave)
    assert (p.sent, p.failed, p.fallback) == (USERS - len(refused), len(refused), len(refused))


USER_CODES = (-213, -218, -227, -230, -232, -244)


async def test_each_oa_code_that_cannot_reach_a_user_falls_back_to_sms(
        store: Store, sim: ZaloSim, tmp_path: Path, plan: Plan, numbering: Numbering,
        province: Province) -> None:
    """-213 not a follower, -218 per-user limit, -227 locked or inactive 45 days, -230 no
    interaction in 7 days, -232 interaction expired, -244 restricted this type: each user so
    refused gets the SMS at its row's phone, the others the OA message, nobody twice."""
    wave = await setup(store, tmp_path, numbering, province)
    refused = {uid(7 * n + 3): code for n, code in enumerate(USER_CODES)}
    sim.set_config(error_phones=refused)
    sms = await send_wave(store, sim, wave, plan, numbering, province)
    row = {uid(i): phone(i) for i in range(USERS)}
    assert sms_to(sms, wave) == {row[u] for u in refused}
    assert set(sim.received) == {uid(i) for i in range(USERS)} - set(refused)
    p = await wave_progress(store, wave)
    assert (p.sent, p.fallback, p.expired) == (USERS - len(refused), len(refused), 0)


async def test_an_urgent_promotion_refused_at_night_goes_by_sms_at_once(
        store: Store, sim: ZaloSim, tmp_path: Path, plan: Plan, numbering: Numbering,
        province: Province) -> None:
    """-234 (night) to promotion messages: an urgent wave's users get the SMS at once."""
    wave = await setup(store, tmp_path, numbering, province, urgent=True)
    sim.set_config(oa_night="on")
    sms = await send_wave(store, sim, wave, plan, numbering, province,
                          oa_message_type="promotion")
    assert set(sim.oa_refused.values()) == {-234} and len(sim.oa_refused) == USERS
    assert sms_to(sms, wave) == {phone(i) for i in range(USERS)}
    assert sim.stats.accepted == 0


# -- the adapter against the simulator -----------------------------------------------------------


def envelope(addrs: list[str], *, urgent: bool = False) -> Envelope:
    return Envelope(wave="w1", channel=Channel.ZALO, text=TEXT, addrs=addrs, route="zalo",
                    urgent=urgent)


@pytest.fixture
async def adapter_for(sim: ZaloSim) -> AsyncIterator[Callable[..., ZaloAdapter]]:
    made: list[ZaloAdapter] = []

    def make(**changes: Any) -> ZaloAdapter:
        made.append(zalo(sim, mode="oa", **changes))
        return made[-1]

    try:
        yield make
    finally:
        for adapter in made:
            await adapter.aclose()


@pytest.mark.parametrize("kind", ["transaction", "promotion", "cs"])
async def test_each_type_goes_to_its_path_with_its_body(
        sim: ZaloSim, adapter_for: Callable[..., ZaloAdapter], kind: str) -> None:
    users = [uid(i) for i in range(5)]
    results = await adapter_for(oa_message_type=kind).send(envelope(users))
    assert sorted(results.sent) == list(range(5))
    assert sim.oa_types == {kind: 5}


@pytest.mark.parametrize(("code", "kind"), [
    (-213, "fallback"), (-218, "fallback"), (-227, "fallback"), (-230, "fallback"),
    (-232, "fallback"), (-244, "fallback"), (-211, "requeue"), (-234, "requeue"),
    (-201, "requeue"), (-220, "retry")])
async def test_each_oa_code_has_its_outcome(
        sim: ZaloSim, adapter_for: Callable[..., ZaloAdapter], code: int, kind: str) -> None:
    """Fallback codes fail as ``Results.fallback``; -211 (quota), -234 (night, routine) and -201
    (configuration) requeue and pause the route; -220 renews the token (refused again: retry)."""
    user = uid(1)
    sim.set_config(error_phones={user: code})
    adapter = adapter_for()
    results = await adapter.send(envelope([user]))
    got = {"fallback": [r for i, r in results.failed if i in results.fallback],
           "requeue": results.requeue, "retry": results.retry}
    assert got[kind], results
    assert all(f"zalo {code}" in reason for _, reason in
               results.failed + results.requeue + results.retry)
    if kind == "requeue":
        assert adapter.paused_until > 0


async def test_the_oa_quota_is_answered_with_the_oa_code_and_pauses_the_route(
        sim: ZaloSim, adapter_for: Callable[..., ZaloAdapter]) -> None:
    sim.set_config(daily_quota=3)
    adapter = adapter_for()
    results = await adapter.send(envelope([uid(i) for i in range(6)]))
    assert len(results.sent) == 3 and len(results.requeue) == 3
    assert any("zalo -211" in reason for _, reason in results.requeue)
    assert adapter.pause_kind == "quota" and sim.stats.accepted == 3


async def test_night_covers_the_configured_types_only(
        sim: ZaloSim, adapter_for: Callable[..., ZaloAdapter]) -> None:
    sim.set_config(oa_night="on", oa_night_types=frozenset({"promotion"}))
    users = [uid(i) for i in range(4)]
    sent = await adapter_for().send(envelope(users))  # transaction
    assert sorted(sent.sent) == list(range(4))
    urgent = await adapter_for(oa_message_type="promotion").send(envelope(users, urgent=True))
    assert len(urgent.failed) == 4 and all("zalo -234" in r for _, r in urgent.failed)


async def test_non_followers_are_refused_whatever_the_type(
        sim: ZaloSim, adapter_for: Callable[..., ZaloAdapter]) -> None:
    sim.set_config(oa_not_follower_share=0.3, oa_inactive_share=0.3)
    users = [uid(i) for i in range(200)]
    results = await adapter_for().send(envelope(users))
    not_following = {u for u in users if oasim.in_share(0, "follow", u, 0.3)}
    assert {users[i] for i, _ in results.failed} == not_following
    assert 30 < len(not_following) < 90
    assert set(sim.oa_refused.values()) == {-213}


# -- bodies and settings -------------------------------------------------------------------------


def test_bodies_of_each_type_decode_as_zalo_reads_them() -> None:
    decode = msgspec.json.Decoder(OaRequest).decode
    for kind in OA_PATHS:
        body = b'{"recipient":{"user_id":"1"' + oa_tail(kind, TEXT, header="Thông báo",
                                                        notice="w1")
        req = decode(body)
        assert oasim.text_of(kind, req.message) == TEXT
    transaction = decode(b'{"recipient":{"user_id":"1"' + oa_tail(
        "transaction", TEXT, header="H", notice="w1"))
    assert transaction.message.attachment is not None
    payload = transaction.message.attachment.payload
    assert payload is not None and payload.template_type == "transaction_event"
    assert {"type": "table", "content": [{"key": "Mã thông báo", "value": "w1"}]} in (
        payload.elements)


async def test_a_body_that_does_not_fit_its_type_is_refused(sim: ZaloSim) -> None:
    """-201 (parameter invalid): a text element over 1,000 characters, a cs body sent as a
    transaction, a promotion body with a transaction template type."""
    user = b'{"recipient":{"user_id":"%s"' % uid(1).encode()
    bodies = [("promotion", oa_tail("promotion", "x" * 1001, header="H")),
              ("transaction", oa_tail("cs", TEXT)),
              ("promotion", oa_tail("transaction", TEXT, header="H"))]
    async with aiohttp.ClientSession() as session:
        for kind, tail in bodies:
            async with session.post(sim.url + OA_PATHS[kind], data=user + tail,
                                    headers={"access_token": "sim-access-token"}) as answer:
                assert (await answer.json())["error"] == -201
    assert sim.stats.invalid == 3 and sim.stats.accepted == 0


@pytest.mark.parametrize(("changes", "field"), [
    ({"oa_message_type": "broadcast"}, "oa_message_type"),
    ({"oa_template_type": "promotion"}, "oa_template_type"),
    ({"oa_message_type": "promotion", "oa_template_type": "transaction_event"},
     "oa_template_type"),
    ({"oa_header": ""}, "oa_header"),
    ({"oa_header": "x" * 101}, "oa_header"),
    ({"oa_language": "FR"}, "oa_language")])
def test_bad_oa_settings_name_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        ZaloConfig(template_id="t", **changes)


def test_settings_name_a_bad_oa_setting_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "loa.toml"
    for line, field in [('oa_message_type = "broadcast"', "zalo.oa_message_type"),
                        ('oa_header = ""', "oa_header")]:
        path.write_text(f'[zalo]\napp_id = "a"\ntemplate_id = "t"\n{line}\n', encoding="utf-8")
        with pytest.raises(ConfigError, match=field) as caught:
            load_settings(path, env={})
        assert "\n" not in str(caught.value)
    path.write_text('[zalo]\napp_id = "a"\ntemplate_id = "t"\n', encoding="utf-8")
    zalo = load_settings(path, env={}).zalo
    assert zalo is not None and zalo.oa_message_type == "transaction"


def test_sim_cli_reads_the_oa_rules() -> None:
    args = build_parser().parse_args(
        ["sim", "zalo", "--oa-not-follower-share", "0.1", "--oa-inactive-share", "0.4",
         "--oa-night", "clock", "--oa-night-type", "cs", "--oa-night-type", "promotion"])
    config = _zalo_config(args)
    assert (config.oa_not_follower_share, config.oa_inactive_share, config.oa_night,
            config.oa_night_types) == (0.1, 0.4, "clock", frozenset({"cs", "promotion"}))
    with pytest.raises(InputError, match="oa_inactive_share"):
        _zalo_config(build_parser().parse_args(["sim", "zalo", "--oa-inactive-share", "2"]))


def test_clock_night_is_22_to_6_in_vietnam() -> None:
    at = dt.datetime(2026, 12, 7, tzinfo=oasim.VN)
    assert [h for h in range(24) if oasim.is_night("clock", at.replace(hour=h))] == [
        0, 1, 2, 3, 4, 5, 22, 23]
    assert not oasim.is_night("off", at) and oasim.is_night("on", at.replace(hour=12))
