"""The CLI's state-changing verbs go through the API with a token, or, with --admin-direct,
to Redis directly with an audit record; without either they are refused with one line."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from dispatcher.service.audit import PENDING, read_audit
from tests.service.test_cli_words import run

CHANGES = [
    ("campaign", "create", "--title", "Khẩn", "--text", "Deo khau trang"),
    ("campaign", "approve", "c-1"),
    ("campaign", "pause", "c-1"),
    ("campaign", "resume", "c-1"),
    ("campaign", "cancel", "c-1"),
    ("level", "set", "--level", "4", "--reason", "r"),
    ("level", "confirm", "--reason", "r"),
    ("stop", "--reason", "tin sai"),
    ("stop", "--lift"),
    ("situation", "set", "--cases-today", "1", "--cases-total", "2", "--hotline", "1900 9095"),
    ("plan", "texts", "propose", "--level", "4", "--channel", "sms", "--text", "Goi {hotline}"),
    ("plan", "texts", "approve", "txt-1"),
    ("suppression", "add", "0912345678", "--channel", "sms", "--reason", "asked"),
    ("suppression", "remove", "0912345678", "--channel", "sms", "--reason", "by mistake"),
]


@pytest.fixture(autouse=True)
def no_api(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LOA_TOKEN", "LOA_API_URL", "LOA_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "320")


@pytest.mark.parametrize("argv", CHANGES, ids=lambda a: " ".join(a[:2]))
def test_a_change_without_a_token_is_refused(capsys: pytest.CaptureFixture[str],
                                             redis_url: str, argv: tuple[str, ...]) -> None:
    status, out, err = run(capsys, *argv, "--redis", redis_url)
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "goes through the Loa API" in err and "--admin-direct" in err


def test_user_is_for_admin_direct_only(capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOA_TOKEN", "loa_x")
    status, _, err = run(capsys, "level", "set", "--level", "1", "--reason", "r", "--user", "bo",
                         "--api", "http://127.0.0.1:9")
    assert status == 2 and "--user: through the API the token says who acts" in err


def test_an_unreachable_api_is_one_line(capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOA_TOKEN", "loa_x")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: nothing listens there
    status, _, err = run(capsys, "stop", "--reason", "r", "--api", f"http://127.0.0.1:{port}")
    assert status == 1 and err.count("\n") == 1 and "does not answer" in err


def test_admin_direct_writes_redis_and_the_audit_log(capsys: pytest.CaptureFixture[str],
                                                     redis_url: str, tmp_path: Path) -> None:
    config = tmp_path / "loa.toml"
    audit = tmp_path / "audit.jsonl"
    config.write_text(f'[api]\naudit_log = "{audit}"\n', encoding="utf-8")
    status, out, err = run(capsys, "level", "set", "--level", "2", "--reason", "báo cáo",
                           "--admin-direct", "--user", "root", "--config", str(config),
                           "--redis", redis_url, "--json")
    assert status == 0, err
    assert json.loads(out)["set_by"] == "root"
    status, _, err = run(capsys, "stop", "--reason", "tin sai", "--admin-direct", "--user",
                         "root", "--config", str(config), "--redis", redis_url)
    assert status == 0, err
    status, _, err = run(capsys, "stop", "--lift", "--admin-direct", "--user", "root",
                         "--config", str(config), "--redis", redis_url)
    assert status == 0, err
    records = [(r.who, r.role, r.action, r.outcome, r.detail.get("via"))
               for r in read_audit(audit)]
    assert records == [(who, role, action, outcome, "admin-direct")
                       for who, role in [("root", "redis-admin")]
                       for action in ("level.set", "stop", "stop.lift")
                       for outcome in (PENDING, "ok")]  # the intent first, then the outcome


def test_admin_direct_is_refused_when_its_record_cannot_be_written(
        capsys: pytest.CaptureFixture[str], redis_url: str, tmp_path: Path) -> None:
    config = tmp_path / "loa.toml"
    (tmp_path / "a-file").write_text("", encoding="utf-8")  # not a directory: cannot be written
    config.write_text(f'[api]\naudit_log = "{tmp_path / "a-file" / "audit.jsonl"}"\n',
                      encoding="utf-8")
    status, _, err = run(capsys, "level", "set", "--level", "4", "--reason", "thử",
                         "--admin-direct", "--user", "root", "--config", str(config),
                         "--redis", redis_url)
    assert status == 2 and "audit" in err and len(err.strip().splitlines()) == 1
    status, out, err = run(capsys, "level", "show", "--redis", redis_url, "--json")
    assert "no level" in (out + err).lower() or json.loads(out).get("level") != 4  # unchanged


# -- through a running `loa api` ------------------------------------------------------------------


class Api:
    def __init__(self, base: str, tokens: dict[str, Path], audit: Path, redis: str) -> None:
        self.base = base
        self.redis = redis
        self.tokens = tokens
        self.audit = audit

    def as_(self, user: str) -> tuple[str, ...]:
        return ("--api", self.base, "--token-file", str(self.tokens[user]))


@pytest.fixture
def api(capsys: pytest.CaptureFixture[str], redis_url: str, tmp_path: Path) -> Iterator[Api]:
    config = tmp_path / "loa.toml"
    assert run(capsys, "config", "init", str(config))[0] == 0
    with config.open("a", encoding="utf-8") as f:
        f.write('[channels]\nsimulate = ["sms", "zalo", "email", "app", "facebook", '
                '"loudspeaker", "cell_broadcast"]\n')
    text = config.read_text(encoding="utf-8").replace(
        "approval_threshold = 10000", "approval_threshold = 100")
    config.write_text(text, encoding="utf-8")
    tokens = {}
    for user, role in (("olga", "operator"), ("carol", "approver")):
        status, out, _ = run(capsys, "token", "create", "--config", str(config), "--user", user,
                             "--role", role)
        assert status == 0
        tokens[user] = tmp_path / f"{user}.token"
        tokens[user].write_text(out.strip().splitlines()[-1] + "\n", encoding="utf-8")
    audience = tmp_path / "audience.csv"
    assert run(capsys, "audience", "generate", "--count", "300", "-o", str(audience))[0] == 0
    assert run(capsys, "audience", "import", str(audience), "--redis", redis_url)[0] == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "dispatcher.service.cli", "api", "--config",
                             str(config), "--port", str(port), "--redis", redis_url],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=os.environ | {"LOA_REDIS_URL": ""})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2):
                    break
            except OSError:
                assert proc.poll() is None, proc.communicate()[1]
                assert time.monotonic() < deadline, "loa api did not answer in 20 s"
                time.sleep(0.1)
        yield Api(base, tokens, tmp_path / "loa-audit.jsonl", redis_url)
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        proc.communicate()


def test_the_verbs_through_the_api(capsys: pytest.CaptureFixture[str], api: Api) -> None:
    status, out, err = run(capsys, "level", "set", "--level", "4", "--reason", "ổ dịch",
                           *api.as_("olga"), "--json")
    assert status == 0, err
    assert json.loads(out)["pending"] is True  # a raise waits for a second person
    status, _, err = run(capsys, "level", "confirm", "--reason", "tôi", *api.as_("olga"))
    assert status == 2 and "loa: error: " in err  # not the proposer, nor an approver
    status, out, err = run(capsys, "level", "confirm", "--reason", "đã xác minh",
                           *api.as_("carol"), "--json")
    assert status == 0, err
    state = json.loads(out)
    assert (state["level"], state["set_by"], state["confirmed_by"]) == (4, "olga", "carol")
    status, out, _ = run(capsys, "level", "show", "--redis", api.redis, "--lang", "en")
    assert "set by olga, confirmed by carol (reason: ổ dịch)" in out.splitlines()[0]

    status, out, err = run(capsys, "campaign", "create", "--title", "Khẩn", "--text",
                           "Deo khau trang", *api.as_("olga"), "--json")
    assert status == 0, err
    created = json.loads(out)
    assert created["state"] == "pending_approval" and created["created_by"] == "olga"
    status, _, err = run(capsys, "campaign", "approve", created["id"], *api.as_("olga"))
    assert status == 2 and "approver role" in err
    status, out, err = run(capsys, "campaign", "approve", created["id"], *api.as_("carol"),
                           "--json")
    assert status == 0, err
    assert json.loads(out)["campaign"]["approved_by"] == "carol"
    status, out, err = run(capsys, "campaign", "cancel", created["id"], "--reason", "sai",
                           *api.as_("olga"), "--json")
    assert status == 0, err
    assert json.loads(out)["campaign"]["state"] == "cancelled"

    status, out, err = run(capsys, "stop", "--reason", "tin sai", *api.as_("olga"), "--json")
    assert status == 0 and json.loads(out)["active"] is True, err
    status, out, err = run(capsys, "stop", "--lift", *api.as_("olga"), "--json")
    assert status == 0 and json.loads(out)["active"] is False, err

    actions = [(r.who, r.action) for r in read_audit(api.audit) if r.outcome == "ok"]
    assert actions == [("olga", "level.set"), ("carol", "level.confirm"),
                       ("olga", "campaign.create"), ("carol", "campaign.approve"),
                       ("olga", "campaign.cancel"), ("olga", "stop"), ("olga", "stop.lift")]


SITUATION = ("situation", "set", "--cases-today", "3", "--cases-total", "42", "--hotline",
             "1900 9095", "--areas", "ha-long,Cam Pha", "--date", "2026-12-07", "--field",
             "advice=Đeo khẩu trang")


def test_the_situation_through_the_api(capsys: pytest.CaptureFixture[str], api: Api) -> None:
    status, out, err = run(capsys, *SITUATION, *api.as_("olga"), "--json")
    assert status == 0, err
    set_ = json.loads(out)
    assert set_["by"] == "olga" and set_["situation"]["areas"] == ["Hạ Long", "Cẩm Phả"]
    status, _, err = run(capsys, *SITUATION[:3], "-1", *SITUATION[4:], *api.as_("olga"))
    assert status == 2 and err.count("\n") == 1
    assert "cases_today: must be 0 or more" in err
    status, out, err = run(capsys, "situation", "show", "--redis", api.redis)
    assert status == 0, err
    assert "07/12/2026 3 new, 42 in total; hotline 1900 9095" in out
    assert "areas: Hạ Long, Cẩm Phả" in out and "{advice}: Đeo khẩu trang" in out
    status, out, err = run(capsys, "situation", "history", "--redis", api.redis, "--json")
    assert status == 0, err
    assert [v["by"] for v in json.loads(out)["versions"]] == ["olga"]
    assert [(r.who, r.action) for r in read_audit(api.audit) if r.outcome == "ok"] == [
        ("olga", "situation.set")]


def test_the_situation_admin_direct(capsys: pytest.CaptureFixture[str], redis_url: str,
                                    tmp_path: Path) -> None:
    config = tmp_path / "loa.toml"
    audit = tmp_path / "audit.jsonl"
    config.write_text(f'[api]\naudit_log = "{audit}"\n', encoding="utf-8")
    status, out, err = run(capsys, "situation", "show", "--redis", redis_url)
    assert status == 2 and "no situation has been set yet" in err
    status, out, err = run(capsys, *SITUATION, "--admin-direct", "--user", "root", "--config",
                           str(config), "--redis", redis_url, "--json")
    assert status == 0, err
    assert json.loads(out)["by"] == "root"
    status, out, err = run(capsys, "situation", "show", "--redis", redis_url, "--json")
    assert json.loads(out)["situation"]["fields"] == {"advice": "Đeo khẩu trang"}
    assert [(r.action, r.outcome) for r in read_audit(audit)] == [
        ("situation.set", PENDING), ("situation.set", "ok")]
