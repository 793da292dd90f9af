"""The engine's commands end to end: `loa demo`, `loa level`, `loa audience import`, `loa bench`."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from prometheus_client import REGISTRY

from adapters.email.adapter import EmailAdapter
from adapters.facebook import FacebookAdapter
from adapters.smpp.adapter import SmppAdapter
from adapters.smpp.simulator import Smsc, SmscConfig
from adapters.webhook.adapter import WebhookAdapter
from adapters.zalo.adapter import ZaloAdapter
from dispatcher.domain.errors import ConfigError
from dispatcher.domain.model import Campaign, CampaignState, Channel
from dispatcher.domain.plan import load_plan
from dispatcher.service import channels
from dispatcher.service.cli import main
from dispatcher.service.settings import load_settings
from dispatcher.store.redis import RedisStore


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def last_json(out: str) -> dict[str, object]:
    doc: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return doc


@pytest.fixture
def fast_retries(tmp_path: Path) -> Path:
    config = tmp_path / "loa.toml"
    config.write_text("[retry]\nbase_seconds = 0.05\nmax_seconds = 0.2\n", encoding="utf-8")
    return config


@pytest.fixture(autouse=True)
def no_redis_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOA_REDIS_URL", raising=False)


def test_demo_json_and_a_second_run_on_the_same_database_refused(
        capsys: pytest.CaptureFixture[str], redis_url: str, fast_retries: Path) -> None:
    args = ("demo", "--recipients", "2000", "--redis", redis_url, "--config", str(fast_retries),
            "--json")
    status, out, _ = run(capsys, *args)
    assert status == 0
    first = last_json(out)
    assert set(first) >= {"recipients", "messages", "sent", "duplicates", "failed",
                          "dead_letters", "seconds", "msgs_per_s", "delivered"}
    assert first["recipients"] == 2000
    messages = first["messages"]
    assert isinstance(messages, dict) and set(messages) == {c.value for c in Channel}
    assert first["duplicates"] == 0
    assert first["sent"] == sum(messages.values())
    # each portal post the engine counts sent is one post or notice at the simulator
    assert first["published"] == messages["portal"]
    # one post on each of the demo's pages: the province's, two departments', each district's
    assert messages["facebook"] == 3 + 13
    # the cell broadcast wave's alert to each of the demo's three carriers
    assert messages["cell_broadcast"] == 3
    # the level change and each public row's wave as a CAP message; the newest of them pushed
    # to the Wi-Fi controller simulator as the public notice (an older one may go first)
    level4 = load_plan().levels[4]
    assert first["cap_messages"] == 1 + sum(r.row.public for r in level4.rules.values()) >= 2
    notices, cap_messages = first["wifi_notices"], first["cap_messages"]
    assert isinstance(notices, int) and isinstance(cap_messages, int)
    assert 1 <= notices <= cap_messages
    # every number gets the SMS (a few refused by the simulated SMSC), and the ~2% Zalo does
    # not reach get an SMS instead
    assert 1950 <= messages["sms"] <= 2100
    delivered = first["delivered"]  # SMS receipts and Zalo delivery webhooks, matched back
    reachable = messages["sms"] + messages["zalo"]
    assert isinstance(delivered, int) and 0.85 * reachable <= delivered <= reachable
    failed, dead = first["failed"], first["dead_letters"]
    assert isinstance(failed, int) and isinstance(dead, int)
    assert dead >= failed  # dead letters: permanent failures and exhausted retries

    # the database now holds the demo's audience and level: a second run is refused
    status, out, err = run(capsys, *args)
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("loa: error: --redis: the database at ")
    assert "an audience of 2,000 recipients" in err and "level 4" in err


def _production(capsys: pytest.CaptureFixture[str], url: str,
                tmp_path: Path) -> dict[object, object]:
    """A Redis as production holds it: an audience and a level; every key and its value."""
    audience = tmp_path / "audience.csv"
    assert run(capsys, "audience", "generate", "--count", "300", "--seed", "7",
               "-o", str(audience))[0] == 0
    assert run(capsys, "audience", "import", str(audience), "--redis", url)[0] == 0
    config = tmp_path / "admin.toml"  # the Redis administrator's own, with its audit log
    config.write_text(f'[api]\naudit_log = "{tmp_path / "audit.jsonl"}"\n', encoding="utf-8")
    assert run(capsys, "level", "set", "--level", "1", "--reason", "báo cáo", "--user", "op1",
               "--admin-direct", "--config", str(config), "--redis", url)[0] == 0
    return _dump(url)


def _dump(url: str) -> dict[object, object]:
    client = redis.Redis.from_url(url)
    try:
        return {k: client.dump(k) for k in sorted(client.keys("*"))}
    finally:
        client.close()


def test_demo_never_touches_the_redis_of_the_environment_or_the_config(
        capsys: pytest.CaptureFixture[str], redis_url: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    before = _production(capsys, redis_url, tmp_path)
    assert before
    config = tmp_path / "prod.toml"
    config.write_text(f'[redis]\nurl = "{redis_url}"\n[retry]\nbase_seconds = 0.05\n'
                      "max_seconds = 0.2\n", encoding="utf-8")
    monkeypatch.setenv("LOA_REDIS_URL", redis_url)
    status, out, _ = run(capsys, "demo", "--recipients", "400", "--config", str(config),
                         "--json")
    assert status == 0
    assert last_json(out)["recipients"] == 400
    assert _dump(redis_url) == before  # not one key written, changed or removed


def test_demo_refuses_an_explicit_database_that_is_not_empty(
        capsys: pytest.CaptureFixture[str], redis_url: str, tmp_path: Path) -> None:
    before = _production(capsys, redis_url, tmp_path)
    status, out, err = run(capsys, "demo", "--recipients", "400", "--redis", redis_url)
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"loa: error: --redis: the database at {redis_url} is not empty "
                          "(an audience of 300 recipients, level 1, ")
    assert _dump(redis_url) == before
    # any key at all counts: a database is empty or it is not the demo's
    client = redis.Redis.from_url(redis_url)
    client.flushall()
    client.set("loa:anything", "1")
    client.close()
    status, _, err = run(capsys, "demo", "--recipients", "400", "--redis", redis_url)
    assert status == 2 and "1 Loa key (loa:*) of 1 keys" in err


def test_demo_in_memory(capsys: pytest.CaptureFixture[str], fast_retries: Path) -> None:
    status, out, _ = run(capsys, "demo", "--recipients", "500", "--config", str(fast_retries),
                         "--json")
    assert status == 0
    doc = last_json(out)
    sent = doc["sent"]
    assert doc["duplicates"] == 0 and isinstance(sent, int) and sent > 1000
    # the demo's simulators are declared as such: in its answer and in the metrics
    assert doc["simulated"] == [c.value for c in Channel]
    assert REGISTRY.get_sample_value("loa_channel_configured",
                                     {"channel": "email", "simulated": "true"}) == 1


@pytest.fixture
def independent_smsc() -> Iterator[Smsc]:
    """An SMSC simulator on its own thread and event loop, as an SMSC outside Loa would be:
    what it received is what the phones got."""
    smsc = Smsc(SmscConfig(keep_texts=True))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(smsc.start(), loop).result(timeout=10)
    try:
        yield smsc
    finally:
        asyncio.run_coroutine_threadsafe(smsc.stop(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


def test_demo_duplicates_are_counted_at_an_independent_smsc(
        capsys: pytest.CaptureFixture[str], fast_retries: Path, independent_smsc: Smsc) -> None:
    """The level's SMS wave and the SMS fallback of its Zalo wave carry the same text: a
    phone not on Zalo gets it once, and the demo's ``duplicates`` is what the SMSC saw."""
    status, out, _ = run(capsys, "demo", "--recipients", "3000", "--config", str(fast_retries),
                         "--smsc", f"127.0.0.1:{independent_smsc.port}", "--json")
    assert status == 0
    doc = last_json(out)
    texts = independent_smsc.texts
    twice = [n for n, got in texts.items() if any(k > 1 for k in Counter(got).values())]
    assert twice == [] and independent_smsc.stats.duplicates == 0
    messages = doc["messages"]
    assert isinstance(messages, dict)
    # the SMSC given is configured
    assert doc["simulated"] == [c.value for c in Channel if c is not Channel.SMS]
    assert messages["sms"] == independent_smsc.stats.messages == len(texts)
    assert doc["sms_fallback"] and doc["duplicates"] == 0  # some were not on Zalo


def test_demo_rejects_a_bad_size(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "demo", "--recipients", "0")
    assert status == 2 and out == ""
    assert err.strip() == "loa: error: --recipients must be at least 1"


def test_level_set_and_show(capsys: pytest.CaptureFixture[str], redis_url: str,
                            monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # the audit log of --admin-direct (loa-audit.jsonl)
    status, out, _ = run(capsys, "level", "set", "--cases", "42", "--reason", "báo cáo 8h",
                         "--user", "alice", "--admin-direct", "--redis", redis_url, "--json")
    assert status == 0
    state = last_json(out)
    assert (state["level"], state["cases"], state["set_by"]) == (3, 42, "alice")
    status, out, _ = run(capsys, "level", "set", "--level", "4", "--reason", "r",
                         "--user", "alice", "--admin-direct", "--redis", redis_url, "--json")
    assert status == 0
    status, out, _ = run(capsys, "level", "show", "--redis", redis_url, "--json")
    shown = last_json(out)
    assert shown["level"] == 4
    history = shown["history"]
    assert isinstance(history, list) and [h["level"] for h in history] == [4, 3]


def test_level_commands_need_redis(capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # the audit log of --admin-direct (loa-audit.jsonl)
    status, out, err = run(capsys, "level", "set", "--cases", "3", "--reason", "r",
                           "--user", "alice", "--admin-direct")
    assert status == 2 and out == ""
    assert "needs a Redis" in err and "Traceback" not in err
    status, _, err = run(capsys, "level", "set", "--level", "9", "--reason", "r",
                         "--user", "alice", "--admin-direct", "--redis", "redis://x:1/0")
    assert status == 2 and "level 9 is not in the plan" in err


def test_audience_import(capsys: pytest.CaptureFixture[str], redis_url: str,
                         tmp_path: Path) -> None:
    path = tmp_path / "audience.csv"
    assert run(capsys, "audience", "generate", "--count", "1500", "--with-errors",
               "-o", str(path))[0] == 0
    status, out, _ = run(capsys, "audience", "import", str(path), "--redis", redis_url, "--json")
    assert status == 0
    first = last_json(out)
    report = first["report"]
    assert isinstance(report, dict)
    assert first["already_current"] is False
    assert first["recipients"] == report["valid"] and report["rows"] == 1500
    status, out, _ = run(capsys, "audience", "import", str(path), "--redis", redis_url, "--json")
    assert last_json(out)["already_current"] is True
    status, _, err = run(capsys, "audience", "import", str(tmp_path / "none.csv"),
                         "--redis", redis_url)
    assert status == 2 and "cannot read" in err


def test_bench_engine_on_a_private_redis(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "bench", "engine", "--recipients", "3000", "--json")
    assert status == 0
    doc = last_json(out)
    assert doc["duplicates"] == 0
    assert doc["channels"] == ["sms", "zalo"]
    messages = doc["messages"]
    assert isinstance(messages, int) and 5800 < messages <= 6000
    assert isinstance(doc["dedup_bytes_per_recipient"], float)
    assert doc["dedup_bytes_per_recipient"] <= 1.0


def test_smpp_passwords_come_from_the_environment_and_never_show(tmp_path: Path) -> None:
    config = tmp_path / "loa.toml"
    config.write_text('[smpp.viettel]\nhost = "127.0.0.1"\nport = 2775\nsystem_id = "qn"\n'
                      'password_env = "LOA_TEST_VIETTEL_PW"\n', encoding="utf-8")
    settings = load_settings(config, env={"LOA_TEST_VIETTEL_PW": "s3cr3t-pw"})
    link = settings.smpp["viettel"]
    assert link.password == "s3cr3t-pw" and link.bind().password == "s3cr3t-pw"
    assert "s3cr3t-pw" not in repr(settings) and "s3cr3t-pw" not in repr(link.bind())
    with pytest.raises(ConfigError, match=r"smpp.viettel.password_env: the environment variable "
                                          r"LOA_TEST_VIETTEL_PW is not set"):
        load_settings(config, env={})


def test_app_and_email_secrets_come_from_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "loa.toml"
    config.write_text('[app]\nurl = "https://push.example/v1/notify"\nsecret_env = "LOA_T_APP"\n'
                      '[email]\nhost = "mail.example"\nsender = "ttt@quangninh.gov.vn"\n'
                      'username = "ttt"\npassword_env = "LOA_T_MAIL"\n', encoding="utf-8")
    settings = load_settings(config, env={"LOA_T_APP": "app-secret-1", "LOA_T_MAIL": "mail-pw-2"})
    assert settings.app is not None and settings.app.secret == "app-secret-1"
    assert settings.email is not None and settings.email.password == "mail-pw-2"
    assert "app-secret-1" not in repr(settings) and "mail-pw-2" not in repr(settings)
    with pytest.raises(ConfigError, match=r"email.password_env: the environment variable "
                                          r"LOA_T_MAIL is not set"):
        load_settings(config, env={"LOA_T_APP": "x"})


def test_the_channel_registry_builds_configured_adapters(tmp_path: Path) -> None:
    # fail closed: tests/service/test_failclosed.py
    assert channels.build(load_settings(env={})) == {}
    config = tmp_path / "loa.toml"
    config.write_text(
        f'zalo_tokens_file = "{tmp_path / "tokens.json"}"\n'
        '[smpp.default]\nhost = "127.0.0.1"\nport = 2775\nsystem_id = "qn"\n'
        '[zalo]\nbase_url = "http://127.0.0.1:1"\napp_id = "a"\ntemplate_id = "t"\n'
        'secret_key_env = "LOA_T_ZALO"\n'
        '[app]\nurl = "http://127.0.0.1:1/push"\n'
        '[email]\nhost = "127.0.0.1"\nsender = "ttt@quangninh.gov.vn"\n'
        '[facebook]\n[[facebook.pages]]\nid = "province"\npage_id = "1001"\n'
        'token_env = "LOA_T_FACEBOOK"\n', encoding="utf-8")
    settings = load_settings(config, env={"LOA_T_ZALO": "zalo-app-secret",
                                          "LOA_T_FACEBOOK": "page-token"})
    assert "zalo-app-secret" not in repr(settings) and "page-token" not in repr(settings)
    built = channels.build(settings, env={})
    assert {c: type(a) for c, a in built.items()} == {
        Channel.SMS: SmppAdapter, Channel.ZALO: ZaloAdapter, Channel.EMAIL: EmailAdapter,
        Channel.APP: WebhookAdapter, Channel.FACEBOOK: FacebookAdapter}


def test_an_unreachable_redis_is_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "level", "show", "--redis", "redis://127.0.0.1:1/0")
    assert status == 3 and out == ""
    assert err.startswith("loa: error: Redis: ") and "Traceback" not in err


def test_campaign_verbs_over_redis(capsys: pytest.CaptureFixture[str], redis_url: str,
                                   tmp_path: Path) -> None:
    path = tmp_path / "audience.csv"
    assert run(capsys, "audience", "generate", "--count", "300", "-o", str(path))[0] == 0
    assert run(capsys, "audience", "import", str(path), "--redis", redis_url)[0] == 0
    config = tmp_path / "loa.toml"
    config.write_text(f'[engine]\napproval_threshold = 100\n[api]\naudit_log = '
                      f'"{tmp_path / "audit.jsonl"}"\n', encoding="utf-8")
    common = ("--redis", redis_url, "--config", str(config), "--json")
    status, out, err = run(capsys, "campaign", "create", "--title", "Khẩn", "--channels",
                           "sms,zalo", "--text", "Deo khau trang", "--user", "alice",
                           "--admin-direct", *common)
    assert status == 0, err
    created = last_json(out)
    assert created["state"] == "pending_approval"
    cid = str(created["id"])
    status, _, err = run(capsys, "campaign", "approve", cid, "--user", "alice",
                         "--admin-direct", *common)
    assert status == 2 and "another user" in err
    status, out, _ = run(capsys, "campaign", "approve", cid, "--user", "bao", "--admin-direct",
                         *common)
    assert status == 0
    assert last_json(out)["campaign"]["approved_by"] == "bao"  # type: ignore[index]
    status, out, _ = run(capsys, "campaign", "cancel", cid, "--user", "bao", "--admin-direct",
                         *common)
    assert last_json(out)["campaign"]["state"] == "cancelled"  # type: ignore[index]
    status, out, _ = run(capsys, "campaign", "list", *common)
    assert [c["id"] for c in last_json(out)["campaigns"]] == [cid]  # type: ignore[attr-defined]
    status, _, err = run(capsys, "campaign", "show", "nope", *common)
    assert status == 2 and "no campaign nope" in err
    status, _, err = run(capsys, "campaign", "create", "--title", "x", "--channels", "fax",
                         "--text", "y", *common)
    assert status == 2 and "--channels" in err


def test_campaign_list_and_show_never_print_escape_sequences(
        capsys: pytest.CaptureFixture[str], redis_url: str) -> None:
    """A title stored with an escape sequence and an RTL override (by an older version, or
    straight into Redis) is printed escaped: it cannot act on the operator's terminal."""
    hostile = Campaign(id="c-1", title="Khẩn\x1b[2J\x1b]0;pwned\x07\u202eabc",
                       channels=[Channel.SMS], texts={Channel.SMS: "x"},
                       created_at=dt.datetime(2026, 11, 26, tzinfo=dt.UTC), created_by="a",
                       state=CampaignState.APPROVED)

    async def put() -> None:
        store = RedisStore(redis_url)
        try:
            assert await store.campaigns.create(hostile)
        finally:
            await store.aclose()

    asyncio.run(put())
    for verb in (("list",), ("show", "c-1")):
        status, out, _ = run(capsys, "campaign", *verb, "--redis", redis_url)
        assert status == 0
        assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
        assert "Khẩn\\x1b[2J\\x1b]0;pwned\\x07\\u202eabc" in out


def test_campaign_create_caps_sms_parts(capsys: pytest.CaptureFixture[str], redis_url: str,
                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the audit log of --admin-direct (loa-audit.jsonl)
    path = tmp_path / "audience.csv"
    assert run(capsys, "audience", "generate", "--count", "50", "-o", str(path))[0] == 0
    assert run(capsys, "audience", "import", str(path), "--redis", redis_url)[0] == 0
    common = ("--redis", redis_url, "--json")
    direct = ("--admin-direct", "--user", "alice", *common)
    long = "Đeo khẩu trang, rửa tay, giữ khoảng cách. " * 6  # 252 characters: 4 parts of UCS-2
    status, out, err = run(capsys, "campaign", "create", "--title", "Dài", "--text", long,
                           *direct)
    assert status == 2 and out == ""
    assert err.strip() == ("loa: error: texts.sms: 4 parts (UCS-2, 252 characters) is more "
                           "than max_parts 3")
    status, out, err = run(capsys, "campaign", "create", "--title", "Dài", "--text", long,
                           "--max-parts", "4", *direct)
    assert status == 0, err
    assert last_json(out)["max_parts"] == 4
    status, out, err = run(capsys, "campaign", "create", "--title", "Ngắn", "--text", "Xin chào",
                           *direct)
    assert status == 0 and last_json(out)["max_parts"] == 3
    status, _, err = run(capsys, "campaign", "create", "--title", "x", "--text", "y",
                         "--max-parts", "11", *direct)
    assert status == 2 and "max_parts: must be 1 to 10, not 11" in err
    status, out, _ = run(capsys, "campaign", "list", *common)
    assert len(last_json(out)["campaigns"]) == 2  # type: ignore[arg-type]
