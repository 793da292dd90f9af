"""API tokens: expiry, `loa token list|revoke`, a running API reading revocations from its file,
and the limit on failed sign-ins (dispatcher.service.auth, dispatcher.service.tokenfile,
dispatcher.service.api.signin)."""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import time
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from litestar import Litestar
from prometheus_client import REGISTRY

from bench.localredis import free_port
from dispatcher.domain.errors import ConfigError, InputError
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.service.api import ApiConfig, create_app, load_deployment
from dispatcher.service.auth import Role, TokenEntry, TokenTable, User, add_token, hash_token
from dispatcher.service.cli import main
from dispatcher.service.settings import Settings
from dispatcher.service.tokenfile import TokenSource, read_tokens, revoke_tokens
from dispatcher.store import MemoryStore
from tests.conftest import loa_process

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
PROBLEM_JSON = "application/problem+json"


class Clock:
    """A clock that moves only when told."""

    def __init__(self, now: dt.datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


def failures(reason: str) -> float:
    return REGISTRY.get_sample_value("loa_api_signin_failures_total", {"reason": reason}) or 0.0


# -- expiry ---------------------------------------------------------------------------------------


def test_a_token_expires() -> None:
    token = "loa_token-of-olga"
    table = TokenTable([TokenEntry("olga", Role.OPERATOR, hash_token(token), created=NOW,
                                   expires=NOW + dt.timedelta(days=1))])
    assert table.authenticate(token, NOW) == User("olga", Role.OPERATOR)
    assert table.authenticate(token, NOW + dt.timedelta(days=1)) == "expired"
    assert table.authenticate("loa_other", NOW) == "unknown"
    lasting = TokenTable([TokenEntry("olga", Role.OPERATOR, hash_token(token))])
    assert lasting.authenticate(token, NOW + dt.timedelta(days=9999)) == User("olga",
                                                                              Role.OPERATOR)


def test_add_token_writes_the_expiry_90_days_by_default(tmp_path: Path) -> None:
    path = tmp_path / "loa.toml"
    path.write_text("[api]\nport = 9000\n", encoding="utf-8")
    add_token(path, "olga", Role.OPERATOR, now=NOW)
    add_token(path, "carol", Role.APPROVER, now=NOW, expires=dt.datetime(2026, 4, 1,
                                                                        tzinfo=dt.UTC))
    tokens = tomllib.loads(path.read_text(encoding="utf-8"))["api"]["tokens"]
    assert tokens[0]["expires"] == NOW + dt.timedelta(days=90)
    assert tokens[1]["expires"] == dt.datetime(2026, 4, 1, tzinfo=dt.UTC)
    _, api = load_deployment(path, env={})
    assert [t.expires for t in api.tokens] == [NOW + dt.timedelta(days=90),
                                               dt.datetime(2026, 4, 1, tzinfo=dt.UTC)]
    with pytest.raises(InputError, match="--expires"):
        add_token(path, "olga", Role.OPERATOR, now=NOW, expires=NOW)


def test_cli_token_create_takes_expires(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "loa.toml"
    path.write_text("", encoding="utf-8")
    assert main(["token", "create", "--config", str(path), "--user", "olga", "--role",
                 "operator", "--expires", "2099-01-02"]) == 0
    err = capsys.readouterr().err
    assert "valid until 2099-01-02 00:00:00Z" in err
    assert read_tokens(path)[0].expires == dt.datetime(2099, 1, 2, tzinfo=dt.UTC)
    assert main(["token", "create", "--config", str(path), "--user", "olga", "--role",
                 "operator", "--expires", "7d"]) == 0
    before = dt.datetime.now(dt.UTC) + dt.timedelta(days=7)
    expires = read_tokens(path)[1].expires
    assert expires is not None and abs((expires - before).total_seconds()) < 3600
    for bad in ("soon", "2001-01-01", "0d"):
        capsys.readouterr()
        assert main(["token", "create", "--config", str(path), "--user", "x", "--role",
                     "viewer", "--expires", bad]) == 2
        err = capsys.readouterr().err
        assert err.startswith("loa: error: --expires:") and err.count("\n") == 1, err
    assert len(read_tokens(path)) == 2


# -- list and revoke ------------------------------------------------------------------------------


def _file(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    path = tmp_path / "loa.toml"
    path.write_text("# deployment\n[engine]\nbatch_size = 100\n", encoding="utf-8")
    made = {u: add_token(path, u, r, now=NOW) for u, r in
            (("olga", Role.OPERATOR), ("carol", Role.APPROVER))}
    made["olga2"] = add_token(path, "olga", Role.VIEWER, now=NOW)
    with path.open("a", encoding="utf-8") as f:
        f.write("\n[rates]\nzalo = 10.0\n")
    return path, made


def test_token_list_shows_ids_never_the_tokens(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    path, made = _file(tmp_path)
    assert main(["token", "list", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "USER", "ROLE", "CREATED", "EXPIRES"]
    assert [line.split()[:3] for line in lines[1:]] == [
        [hash_token(made["olga"])[:8], "olga", "operator"],
        [hash_token(made["carol"])[:8], "carol", "approver"],
        [hash_token(made["olga2"])[:8], "olga", "viewer"]]
    assert "2026-05-30 12:00:00Z" in lines[1]
    for token in made.values():
        assert token not in out and token[4:12] not in out and hash_token(token) not in out


def test_revoke_by_user_and_by_id_keeps_the_rest_of_the_file(tmp_path: Path) -> None:
    path, made = _file(tmp_path)
    removed = revoke_tokens(path, user="olga")
    assert [(e.user, e.role) for e in removed] == [("olga", Role.OPERATOR),
                                                   ("olga", Role.VIEWER)]
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# deployment\n[engine]\nbatch_size = 100\n")
    assert text.endswith("[rates]\nzalo = 10.0\n")
    settings, api = load_deployment(path, env={})
    assert settings.engine.batch_size == 100 and settings.rates["zalo"] == 10.0
    assert [t.user for t in api.tokens] == ["carol"]
    revoke_tokens(path, token_id=hash_token(made["carol"])[:6])
    assert read_tokens(path) == []
    with pytest.raises(InputError, match="no token of user 'carol'"):
        revoke_tokens(path, user="carol")
    with pytest.raises(InputError, match="--id"):
        revoke_tokens(path, token_id="zz")


def test_revoke_refuses_tokens_it_cannot_edit(tmp_path: Path) -> None:
    path = tmp_path / "loa.toml"
    original = f'[api]\ntokens = [{{user = "olga", role = "viewer", hash = "{"a" * 64}"}}]\n'
    path.write_text(original, encoding="utf-8")
    with pytest.raises(ConfigError, match="by hand"):
        revoke_tokens(path, user="olga")
    assert path.read_text(encoding="utf-8") == original


def test_cli_token_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, made = _file(tmp_path)
    assert main(["token", "revoke", "--config", str(path), "--user", "carol"]) == 0
    out = capsys.readouterr().out
    assert out == f"revoked {hash_token(made['carol'])[:8]} (carol, approver)\n"
    assert main(["token", "revoke", "--config", str(path), "--user", "nobody"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("loa: error: no token of user 'nobody'") and err.count("\n") == 1


# -- a running API --------------------------------------------------------------------------------


def _app(plan: Plan, province: Province, numbering: Numbering, tmp_path: Path, clock: Clock,
         entries: list[TokenEntry], tokens_file: Path | None = None, **api: float) -> Litestar:
    config = ApiConfig(audit_log=str(tmp_path / "audit.jsonl"), tokens=entries,
                       **api)  # type: ignore[arg-type]
    return create_app(MemoryStore(), Settings(), plan, province, numbering, config,
                      clock=clock, tokens_file=tokens_file)


@pytest.fixture
async def clients() -> AsyncIterator[list[httpx.AsyncClient]]:
    made: list[httpx.AsyncClient] = []
    yield made
    for client in made:
        await client.aclose()


def client(app: Litestar, made: list[httpx.AsyncClient],
           address: str = "10.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))  # type: ignore[arg-type]
    made.append(httpx.AsyncClient(transport=transport, base_url="http://loa"))
    return made[-1]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_an_expired_token_is_401_saying_expired(
        plan: Plan, province: Province, numbering: Numbering, tmp_path: Path,
        clients: list[httpx.AsyncClient]) -> None:
    clock = Clock()
    token = "loa_token-of-olga"
    app = _app(plan, province, numbering, tmp_path, clock, [TokenEntry(
        "olga", Role.OPERATOR, hash_token(token), expires=NOW + dt.timedelta(hours=1))])
    http = client(app, clients)
    assert (await http.get("/v1/me", headers=bearer(token))).status_code == 200
    clock.advance(3600)
    r = await http.get("/v1/me", headers=bearer(token))
    assert r.status_code == 401 and r.headers["content-type"] == PROBLEM_JSON
    assert r.json()["type"].endswith("/unauthorized") and r.json()["detail"] == "token expired"
    assert r.headers["www-authenticate"] == "Bearer"


async def test_a_revoked_token_is_refused_by_the_running_api(
        plan: Plan, province: Province, numbering: Numbering, tmp_path: Path,
        clients: list[httpx.AsyncClient]) -> None:
    path, made = _file(tmp_path)
    clock = Clock()
    app = _app(plan, province, numbering, tmp_path, clock, read_tokens(path), path,
               token_reload_seconds=2.0)
    http = client(app, clients)
    for user in ("olga", "carol"):
        assert (await http.get("/v1/me", headers=bearer(made[user]))).status_code == 200
    assert main(["token", "revoke", "--config", str(path), "--user", "olga"]) == 0
    clock.advance(2.0)
    r = await http.get("/v1/me", headers=bearer(made["olga"]))
    assert r.status_code == 401 and r.json()["detail"] == "unknown token"
    assert (await http.get("/v1/me", headers=bearer(made["carol"]))).status_code == 200
    fresh = add_token(path, "dave", Role.APPROVER, now=NOW)
    clock.advance(2.0)
    r = await http.get("/v1/me", headers=bearer(fresh))
    assert r.status_code == 200 and r.json()["user"] == "dave"


def test_the_file_is_looked_at_once_per_interval(tmp_path: Path) -> None:
    path, made = _file(tmp_path)
    clock = Clock()
    source = TokenSource(read_tokens(path), path, interval=2.0, clock=clock)
    assert source.table().lookup(made["carol"]) is not None
    revoke_tokens(path, user="carol")
    clock.advance(1.0)
    assert source.table().lookup(made["carol"]) is not None  # within the interval: not read
    clock.advance(1.0)
    assert source.table().lookup(made["carol"]) is None
    path.write_text("not = [toml", encoding="utf-8")  # broken: the last tokens read stay
    clock.advance(2.0)
    assert source.table().lookup(made["olga"]) is not None


# -- failed sign-ins ------------------------------------------------------------------------------


async def test_failed_sign_ins_are_limited_per_address(
        plan: Plan, province: Province, numbering: Numbering, tmp_path: Path,
        clients: list[httpx.AsyncClient], caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    good = "loa_the-good-token-of-olga"
    app = _app(plan, province, numbering, tmp_path, clock,
               [TokenEntry("olga", Role.OPERATOR, hash_token(good))],
               signin_max_failures=5, signin_window_seconds=60)
    attacker, other = client(app, clients, "10.0.0.66"), client(app, clients, "10.0.0.7")
    unknown, limited = failures("unknown"), failures("limited")
    guesses = [f"loa_guess-{i:04d}-xxxxxxxx" for i in range(8)]
    with caplog.at_level(logging.WARNING, logger="dispatcher.service.api.signin"):
        answers = [await attacker.get("/v1/me", headers=bearer(g)) for g in guesses]
        clock.advance(1)
    assert [r.status_code for r in answers] == [401] * 5 + [429] * 3
    r = answers[-1]
    assert r.headers["content-type"] == PROBLEM_JSON and r.headers["retry-after"] == "60"
    assert r.json()["type"].endswith("/too-many-sign-ins") and r.json()["status"] == 429
    assert failures("unknown") - unknown == 5 and failures("limited") - limited == 3
    lines = [rec.getMessage() for rec in caplog.records]
    assert len(lines) == 5 and all("10.0.0.66" in line and "unknown" in line for line in lines)
    assert not any(g in line or g[4:] in line for g in guesses for line in lines)
    # the good token works from another address, not from the limited one
    assert (await other.get("/v1/me", headers=bearer(good))).status_code == 200
    assert (await attacker.get("/v1/me", headers=bearer(good))).status_code == 429
    clock.advance(59)  # the first failure leaves the window
    assert (await attacker.get("/v1/me", headers=bearer(good))).status_code == 200


async def test_failed_sign_ins_are_limited_per_token_prefix(
        plan: Plan, province: Province, numbering: Numbering, tmp_path: Path,
        clients: list[httpx.AsyncClient]) -> None:
    clock = Clock()
    app = _app(plan, province, numbering, tmp_path, clock, [], signin_max_failures=3,
               signin_window_seconds=10)
    answers = [await client(app, clients, f"10.1.0.{i}").get(
        "/v1/me", headers=bearer(f"loa_samePREFIX-{i}")) for i in range(4)]
    assert [r.status_code for r in answers] == [401, 401, 401, 429]
    assert answers[-1].headers["retry-after"] == "10"
    r = await client(app, clients, "10.1.0.9").get("/v1/me",
                                                   headers=bearer("loa_otherPREFIX"))
    assert r.status_code == 401
    r = await client(app, clients, "10.1.0.9").get("/v1/me")  # no token at all: by address
    assert r.status_code == 401 and "missing bearer token" in r.json()["detail"]


def test_sign_in_settings_must_be_positive(tmp_path: Path) -> None:
    path = tmp_path / "loa.toml"
    for key in ("token_reload_seconds", "signin_max_failures", "signin_window_seconds"):
        path.write_text(f"[api]\n{key} = 0\n", encoding="utf-8")
        with pytest.raises(ConfigError, match=f"api.{key}: must be more than 0"):
            load_deployment(path, env={})


# -- `loa api` as a process -----------------------------------------------------------------------


def test_loa_api_refuses_a_token_revoked_while_it_runs(tmp_path: Path) -> None:
    """`loa api` reads the file again by itself: nothing but `loa token revoke` happens."""
    from tests.service.test_api import _http  # noqa: PLC0415 - the process helper

    config = tmp_path / "loa.toml"
    lasting = f'[[api.tokens]]\nuser = "old"\nrole = "viewer"\nhash = "{"ab" * 32}"\n'
    config.write_text("[api]\ntoken_reload_seconds = 0.05\n\n" + lasting, encoding="utf-8")
    olga, carol = (add_token(config, u, r) for u, r in (("olga", Role.OPERATOR),
                                                        ("carol", Role.APPROVER)))
    port = free_port()
    base = f"http://127.0.0.1:{port}/v1/me"
    with loa_process(["api", "--config", str(config), "--port", str(port)], cwd=tmp_path,
                     ready=[base], env=os.environ | {"LOA_REDIS_URL": ""}) as proc:
        assert _http(base, olga)[0] == 200
        assert main(["token", "revoke", "--config", str(config), "--user", "olga"]) == 0
        while (status := _http(base, olga)[0]) == 200:  # until it has looked at the file
            time.sleep(0.05)
        assert status == 401
        assert _http(base, carol) == (200, {"user": "carol", "role": "approver"})
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    err = proc.communicate()[1].decode()
    assert "tokens read again" in err and olga not in err
    assert "tokens with no expiry (abababab)" in err
