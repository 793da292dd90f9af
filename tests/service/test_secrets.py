"""Secrets never show: not in logs (captured at DEBUG), error messages, reprs, API answers or the
Prometheus metrics, on the paths that log or raise while they are set: a bind refused for a wrong
password, a Zalo token renewal refused, the API's refusals and failures, settings printed."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient
from prometheus_client import generate_latest

from adapters.base import Envelope
from adapters.smpp.adapter import LinkConfig, SmppAdapter
from adapters.smpp.simulator import Smsc
from adapters.zalo.adapter import ZaloAdapter
from adapters.zalo.simulator import ZaloSim, ZaloSimConfig
from adapters.zalo.tokens import MemoryTokenStore
from dispatcher.domain.errors import ChannelError, ConfigError
from dispatcher.domain.model import Channel
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.domain.secret import Secret, SecretUrl
from dispatcher.service.api import create_app, load_deployment
from dispatcher.service.cli import main
from dispatcher.store import MemoryStore

SECRETS = {
    "LOA_T_SMPP_PASSWORD": "Sm7f3aQz",
    "LOA_T_ZALO_SECRET": "zalo-app-Secret-91c2",
    "LOA_T_APP_SECRET": "app-hmac-Secret-44d1",
    "LOA_T_EMAIL_PASSWORD": "mail-Pa55word-0b9e",
    "LOA_T_OA_SECRET": "oa-webhook-Secret-c3d8",
}
REDIS_PASSWORD = "redis-Pa55-e1f0"
TOKEN = "loa_api-Token-Of-olga-5d2b"
ALL = [*SECRETS.values(), REDIS_PASSWORD, TOKEN]

CONFIG = f"""\
[redis]
url = "redis://:{REDIS_PASSWORD}@127.0.0.1:1/0"
[smpp.viettel]
host = "127.0.0.1"
port = 1
system_id = "loa"
password_env = "LOA_T_SMPP_PASSWORD"
[zalo]
app_id = "app"
secret_key_env = "LOA_T_ZALO_SECRET"
template_id = "loa-alert"
[app]
url = "http://127.0.0.1:1/push"
secret_env = "LOA_T_APP_SECRET"
[email]
host = "127.0.0.1"
sender = "loa@quangninh.gov.vn"
username = "loa"
password_env = "LOA_T_EMAIL_PASSWORD"
[api]
audit_log = "AUDIT"
zalo_app_id = "app"
zalo_oa_secret_env = "LOA_T_OA_SECRET"
[[api.tokens]]
user = "olga"
role = "operator"
hash = "HASH"
"""


def assert_hidden(*texts: str) -> None:
    for text in texts:
        for secret in ALL:
            assert secret not in text, f"{secret!r} shows in {text[:2000]!r}"


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    from dispatcher.service.auth import hash_token  # noqa: PLC0415

    path = tmp_path / "loa.toml"
    path.write_text(CONFIG.replace("AUDIT", str(tmp_path / "audit.jsonl"))
                    .replace("HASH", hash_token(TOKEN)), encoding="utf-8")
    return path


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.DEBUG):
        yield caplog


def test_settings_do_not_show_their_secrets(config_file: Path) -> None:
    settings, api = load_deployment(config_file, SECRETS)
    assert settings.smpp["viettel"].password == SECRETS["LOA_T_SMPP_PASSWORD"]
    assert settings.zalo is not None and settings.zalo.secret_key == SECRETS["LOA_T_ZALO_SECRET"]
    assert settings.app is not None and settings.app.secret == SECRETS["LOA_T_APP_SECRET"]
    assert settings.email is not None
    assert settings.email.password == SECRETS["LOA_T_EMAIL_PASSWORD"]
    assert api.zalo_oa_secret == SECRETS["LOA_T_OA_SECRET"]
    assert settings.redis.url.endswith("@127.0.0.1:1/0")  # usable as it is
    assert_hidden(repr(settings), str(settings), repr(api), str(api), f"{settings}",
                  repr(settings.redis), repr(settings.smpp), repr(settings.zalo),
                  repr(settings.app), repr(settings.email))
    assert "redis://:***@127.0.0.1:1/0" in repr(settings)


def test_config_errors_do_not_show_secrets(config_file: Path, tmp_path: Path) -> None:
    text = config_file.read_text(encoding="utf-8")
    broken = [text.replace("port = 1\n", 'port = "x"\n', 1),
              text.replace('app_id = "app"\n', 'app_id = "app"\nbogus = 1\n', 1),
              text.replace('host = "127.0.0.1"\nsender', 'host = 5\nsender', 1),
              text.replace("[redis]\n", "[redis]\nbogus = 1\n", 1)]
    for data in broken:
        config_file.write_text(data, encoding="utf-8")
        with pytest.raises(ConfigError) as info:
            load_deployment(config_file, SECRETS)
        assert_hidden(str(info.value), repr(info.value))
    config_file.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_deployment(config_file, {k: v for k, v in SECRETS.items() if "SMPP" not in k})
    assert "LOA_T_SMPP_PASSWORD" in str(info.value)
    assert_hidden(str(info.value))


def test_secret_reprs() -> None:
    assert repr(Secret("x")) == "'***'" and Secret("x") == "x"
    assert repr(SecretUrl("redis://u:pw@h:1/0")) == "'redis://u:***@h:1/0'"
    assert repr(SecretUrl("redis://h:1/0")) == "'redis://h:1/0'"
    assert repr(SecretUrl("rediss+cluster://:pw@h")) == "'rediss+cluster://:***@h'"
    assert SecretUrl("redis://u:pw@h:1/0") == "redis://u:pw@h:1/0"


async def test_a_refused_bind_does_not_show_the_password(
        smsc: Smsc, debug_logs: pytest.LogCaptureFixture) -> None:
    smsc.set_config(credentials={"loa": "the-right-one"})
    link = LinkConfig(host="127.0.0.1", port=smsc.port, system_id="loa", bind_wait=1.0,
                      password=Secret(SECRETS["LOA_T_SMPP_PASSWORD"]), response_timeout=2.0)
    adapter = SmppAdapter({"default": link})
    try:
        with pytest.raises(ChannelError) as info:
            await adapter.send(Envelope(wave="w1", channel=Channel.SMS, text="x",
                                        addrs=["84912345678"], route="sms.viettel"))
    finally:
        await adapter.aclose()
    assert "bind refused" in str(info.value)
    assert_hidden(str(info.value), repr(info.value), debug_logs.text, repr(adapter),
                  repr(link), generate_latest().decode())


async def test_a_refused_token_renewal_does_not_show_the_app_secret(
        debug_logs: pytest.LogCaptureFixture) -> None:
    sim = ZaloSim(ZaloSimConfig())
    await sim.start()
    secret = SECRETS["LOA_T_ZALO_SECRET"]
    from adapters.zalo.config import ZaloConfig  # noqa: PLC0415

    config = ZaloConfig(base_url=sim.url, oa_url=sim.url, oauth_url=sim.url,
                        app_id=sim.config.app_id, secret_key=secret, template_id="loa-alert",
                        timeout=2.0, token_retry_after=0.0)
    adapter = ZaloAdapter(config, MemoryTokenStore("sim-access-token", "sim-refresh-token"))
    try:
        sim.expire_token()
        results = await adapter.send(Envelope(wave="w1", channel=Channel.ZALO, text="x",
                                              addrs=["84912345678"], route="zalo"))
    finally:
        await adapter.aclose()
        await sim.stop()
    assert results.retry and "refresh refused" in results.retry[0][1]
    assert_hidden(repr(results), debug_logs.text, repr(config), repr(adapter),
                  generate_latest().decode())


async def test_the_api_does_not_show_secrets(
        config_file: Path, plan: Plan, province: Province, numbering: Numbering,
        tmp_path: Path, debug_logs: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    settings, api = load_deployment(config_file, SECRETS)
    store = MemoryStore()
    app = create_app(store, settings, plan, province, numbering, api)
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    answers: list[str] = []
    async with AsyncTestClient(app) as client:
        calls: list[tuple[str, str, dict[str, Any]]] = [
            ("GET", "/v1/campaigns", {"headers": bearer}),
            ("PUT", "/v1/level", {"headers": bearer, "json": {"cases": 3, "reason": "r"}}),
            ("PUT", "/v1/level", {"headers": bearer, "json": {"cases": "x"}}),
            ("GET", "/v1/level", {"headers": {"Authorization": f"Bearer {TOKEN}x"}}),
            ("POST", "/v1/campaigns", {"headers": bearer, "json": {
                "title": "t", "channels": ["sms"], "text": "x"}}),
            ("POST", "/zalo/webhook", {"content": b"{}", "headers": {
                "X-ZEvent-Signature": "mac=00", "Content-Type": "application/json"}}),
            ("GET", "/metrics", {}),
            ("GET", "/schema/openapi.json", {}),
            ("GET", "/readyz", {}),
        ]
        for method, path, kwargs in calls:
            r = await client.request(method, path, **kwargs)
            answers.append(f"{r.status_code} {r.headers} {r.text}")

        async def broken() -> Any:
            raise RuntimeError(f"connection to {settings.redis.url} lost")

        monkeypatch.setattr(store.campaigns, "all", broken)
        r = await client.get("/v1/campaigns", headers=bearer)
        assert r.status_code == 500
        answers.append(r.text)
    audit = (tmp_path / "audit.jsonl").read_text(encoding="utf-8")
    assert "level.set" in audit
    assert_hidden(*answers, audit, generate_latest().decode())
    # the traceback of the unexpected error is logged; its message carried the Redis URL
    assert_hidden(*(r.getMessage() for r in debug_logs.records))
    assert_hidden(msgspec.json.encode(msgspec.to_builtins(api.tokens)).decode())


def test_cli_errors_do_not_show_secrets(config_file: Path, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    # Redis refuses the connection (port 1): the error names the server, not its password
    status = main(["campaign", "list", "--config", str(config_file)])
    out, err = capsys.readouterr()
    assert status != 0 and err.startswith("loa: error: ")
    assert_hidden(out, err)
