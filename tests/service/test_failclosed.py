"""Fail closed: a channel without configuration never "sends" into memory; a process that needs
one refuses to start, the API refuses a campaign on one, and a channel declared simulated says
so (log, /readyz, metrics)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from prometheus_client import REGISTRY

from adapters.memory import MemoryAdapter
from bench import audiencegen
from dispatcher.domain.audience import Validator
from dispatcher.domain.errors import ChannelUnavailable, ConfigError
from dispatcher.domain.model import OUTLETS, Campaign, CampaignState, Channel
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan, load_plan
from dispatcher.domain.province import Province
from dispatcher.engine.importer import import_audience
from dispatcher.service import channels, failclosed
from dispatcher.service.api import ApiConfig, create_app
from dispatcher.service.auth import Role, TokenEntry, hash_token
from dispatcher.service.channels import Mode
from dispatcher.service.cli import main
from dispatcher.service.settings import ChannelSettings, Settings, load_settings
from dispatcher.store import MemoryStore

ROOT = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2024, 3, 5, 3, 0, tzinfo=dt.UTC)
TOKEN = "loa_test-token-of-olga"
# the channel tables of config/loa-compose.toml: SMS and Zalo, no e-mail, no app
SMS_AND_ZALO = ('[smpp.default]\nhost = "127.0.0.1"\nport = 2775\nsystem_id = "loa"\n'
                '[zalo]\nbase_url = "http://127.0.0.1:1"\napp_id = "a"\n'
                'template_id = "t"\n')


def simulated(*names: Channel) -> Settings:
    return Settings(channels=ChannelSettings(simulate=list(names)))


def campaign(cid: str, state: CampaignState, *chs: Channel, fallback: bool = False) -> Campaign:
    return Campaign(id=cid, title="t", channels=list(chs), texts={c: "x" for c in chs},
                    created_at=NOW, created_by="olga", state=state, sms_fallback=fallback)


# -- the registry ----------------------------------------------------------------------------------


def test_a_channel_without_configuration_gets_no_adapter() -> None:
    built = channels.build(load_settings(env={}), env={})
    assert built == {}  # never the in-process channel that answers "sent" to no one
    built = channels.build(simulated(Channel.EMAIL, Channel.APP), env={})
    assert set(built) == {Channel.EMAIL, Channel.APP}
    assert all(type(a) is MemoryAdapter for a in built.values())
    assert channels.modes(simulated(Channel.EMAIL)) == {
        **dict.fromkeys(Channel, Mode.MISSING), Channel.EMAIL: Mode.SIMULATED}


def test_simulate_is_checked(tmp_path: Path) -> None:
    config = tmp_path / "loa.toml"
    config.write_text('[channels]\nsimulate = ["email", "fax"]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"channels\.simulate"):
        load_settings(config, env={})
    config.write_text(SMS_AND_ZALO + '[channels]\nsimulate = ["zalo"]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"loa.toml: channels.simulate: zalo is configured and "
                                          r"declared simulated"):
        load_settings(config, env={})


# -- start-up --------------------------------------------------------------------------------------


@pytest.mark.timeout(60)  # before fail closed, the worker started and ran until a signal
def test_loa_worker_refuses_a_plan_channel_without_configuration(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, redis_url: str) -> None:
    config = tmp_path / "loa.toml"
    config.write_text(SMS_AND_ZALO, encoding="utf-8")
    status = main(["worker", "--config", str(config), "--redis", redis_url])
    out, err = capsys.readouterr()
    assert status == 2 and out == ""
    line, = err.strip().splitlines()
    assert line.startswith(f"loa: error: {config}: channel email has no configuration and the "
                           "plan at level 1, 2, 3, 4 uses it: add the [email] table, or declare "
                           'it simulated with [channels] simulate = ["email"]')
    assert "channel app has no configuration" in line and "[app]" in line
    assert "Traceback" not in err


@pytest.mark.timeout(60)
def test_loa_run_refuses_a_plan_channel_without_configuration(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, redis_url: str) -> None:
    config = tmp_path / "loa.toml"
    config.write_text(SMS_AND_ZALO + '[channels]\nsimulate = ["app"]\n[api]\n'
                      f'audit_log = "{tmp_path / "audit.jsonl"}"\n', encoding="utf-8")
    status = main(["run", "--config", str(config), "--redis", redis_url, "--port", "1"])
    err = capsys.readouterr().err
    assert status == 2
    line = err.strip().splitlines()[-1]
    assert "channel email has no configuration" in line and "[email]" in line
    assert "channel app" not in line


async def test_an_accepted_campaign_on_a_missing_channel_refuses_start(plan: Plan) -> None:
    store = MemoryStore()
    no_plan = msgspec.structs.replace(plan, levels={})
    modes = channels.modes(simulated(Channel.SMS))
    await store.campaigns.create(campaign("c-done", CampaignState.CANCELLED, Channel.EMAIL))
    await store.campaigns.create(campaign("c-sms", CampaignState.RUNNING, Channel.SMS))
    await failclosed.check(store, no_plan, modes, source="loa.toml")  # nothing needs email
    await store.campaigns.create(campaign("c-mail", CampaignState.PENDING_APPROVAL,
                                          Channel.EMAIL))
    with pytest.raises(ConfigError, match=r"^loa.toml: channel email has no configuration and "
                                          r"campaign c-mail uses it: add the \[email\] table"):
        await failclosed.check(store, no_plan, modes, source="loa.toml")
    # a Zalo campaign that falls back to SMS needs SMS
    modes = channels.modes(simulated(Channel.ZALO, Channel.EMAIL))
    store = MemoryStore()
    await store.campaigns.create(campaign("c-z", CampaignState.PAUSED, Channel.ZALO,
                                          fallback=True))
    with pytest.raises(ConfigError, match=r"channel sms has no configuration and campaign c-z"):
        await failclosed.check(store, no_plan, modes, source="loa.toml")


async def test_a_simulated_channel_says_so_in_the_log_and_the_metrics(
        plan: Plan, caplog: pytest.LogCaptureFixture) -> None:
    settings = simulated(*Channel)
    with caplog.at_level(logging.INFO, logger="dispatcher.service.failclosed"):
        await failclosed.check(MemoryStore(), plan, channels.modes(settings), source="loa.toml")
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("channel email is SIMULATED" in m for m in warned)
    assert len(warned) == len(Channel)

    def value(channel: str, sim: str) -> float | None:
        return REGISTRY.get_sample_value("loa_channel_configured",
                                         {"channel": channel, "simulated": sim})

    assert value("email", "true") == 1 and value("email", "false") is None
    failclosed.announce(channels.modes(simulated(Channel.SMS)))
    assert value("email", "true") is None and value("email", "false") == 0
    assert value("sms", "true") == 1


def test_the_compose_config_starts_and_declares_what_it_simulates(plan: Plan) -> None:
    env = {"LOA_SMPP_PASSWORD": "x", "LOA_ZALO_SECRET_KEY": "y", "LOA_PORTAL_QN_PASSWORD": "z",
           "LOA_PORTAL_DVC_SECRET": "s",
           "LOA_FACEBOOK_TOKEN_PROVINCE": "p", "LOA_FACEBOOK_TOKEN_SO_TTTT": "s",
           "LOA_FACEBOOK_TOKEN_HA_LONG": "h"}
    settings = load_settings(ROOT / "config" / "loa-compose.toml", env=env)
    modes = channels.modes(settings)
    assert failclosed.refusal(modes, failclosed.needs(plan, []), "compose") is None
    assert [c for c in Channel if modes[c] is Mode.SIMULATED] == [Channel.EMAIL, Channel.APP,
                                                                  Channel.LOUDSPEAKER]
    assert modes[Channel.FACEBOOK] is Mode.CONFIGURED


# -- the API ---------------------------------------------------------------------------------------


@pytest.fixture
async def client(tmp_path: Path, plan: Plan, province: Province,
                 numbering: Numbering) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """SMS simulated; Zalo, e-mail and app without configuration."""
    store = MemoryStore()
    path = tmp_path / "audience.csv"
    audiencegen.generate(path, 50, seed=5, numbering=numbering, province=province)
    await import_audience(path, store, Validator(numbering, province), chunk_size=64)
    api = ApiConfig(audit_log=str(tmp_path / "audit.jsonl"),
                    tokens=[TokenEntry("olga", Role.OPERATOR, hash_token(TOKEN))])
    app = create_app(store, simulated(Channel.SMS), plan, province, numbering, api,
                     clock=lambda: NOW)
    async with AsyncTestClient(app) as c:
        yield c


async def test_the_api_refuses_a_campaign_on_a_channel_without_configuration(
        client: AsyncTestClient[Litestar]) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    body = {"title": "Khuyến cáo", "text": "Deo khau trang"}
    r = await client.post("/v1/campaigns", json=body | {"channels": ["sms", "email"]},
                          headers=headers)
    assert r.status_code == 422 and "email" in r.text and "sms" not in r.text.split("email")[0]
    r = await client.post("/v1/campaigns", json=body | {"channels": ["zalo"]}, headers=headers)
    assert r.status_code == 422 and "zalo" in r.text
    assert (await client.get("/v1/campaigns", headers=headers)).json() == []
    r = await client.post("/v1/campaigns", json=body | {"channels": ["sms"]}, headers=headers)
    assert r.status_code == 201, r.text


async def test_readyz_names_the_simulated_channels(client: AsyncTestClient[Litestar]) -> None:
    r = await client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "simulated": ["sms"], "channels": {
        "sms": "simulated", "zalo": "missing", "email": "missing", "app": "missing",
        **{c.value: "missing" for c in OUTLETS}}}


def test_the_refusal_names_the_fallback_channel() -> None:
    modes = channels.modes(simulated(Channel.ZALO))
    with pytest.raises(ChannelUnavailable, match=r"channels: sms \(the SMS fallback of Zalo\)"):
        failclosed.require(modes, [Channel.ZALO], True)
    failclosed.require(modes, [Channel.ZALO], False)


TABLES = {Channel.SMS: "[smpp.<link>]", Channel.ZALO: "[zalo]", Channel.EMAIL: "[email]",
          Channel.APP: "[app]", Channel.FACEBOOK: "[facebook]", Channel.PORTAL: "[portal]",
          Channel.LOUDSPEAKER: "[loudspeaker]"}


@pytest.mark.parametrize("missing", sorted(failclosed.needs(load_plan(), [])))
async def test_each_channel_the_plan_uses_is_refused_alone_when_it_has_no_configuration(
        plan: Plan, missing: Channel) -> None:
    """The others simulated, the one left without a table stops the start with its name and its
    table; declared simulated too, the start goes on."""
    others = [c for c in Channel if c is not missing]
    with pytest.raises(ConfigError) as refused:
        await failclosed.check(MemoryStore(), plan, channels.modes(simulated(*others)),
                               source="loa.toml")
    line = str(refused.value)
    assert "\n" not in line and line.startswith(f"loa.toml: channel {missing} has no "
                                                "configuration and the plan at level")
    assert TABLES[missing] in line and f'simulate = ["{missing}"]' in line
    assert all(f"channel {c} " not in line for c in others)
    await failclosed.check(MemoryStore(), plan, channels.modes(simulated(*Channel)),
                           source="loa.toml")
