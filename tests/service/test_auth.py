"""API tokens and roles (dispatcher.service.auth) and the audit log (dispatcher.service.audit)."""

from __future__ import annotations

import datetime as dt
import hashlib
import tomllib
from pathlib import Path

import pytest

from dispatcher.domain.errors import ConfigError, InputError
from dispatcher.service.api import load_deployment
from dispatcher.service.audit import AuditLog, read_audit
from dispatcher.service.auth import (
    TOKEN_PREFIX,
    Role,
    TokenEntry,
    TokenTable,
    User,
    add_token,
    generate_token,
    hash_token,
)


def test_roles_are_ordered() -> None:
    assert Role.ADMIN.allows(Role.APPROVER)
    assert Role.APPROVER.allows(Role.OPERATOR)
    assert Role.OPERATOR.allows(Role.VIEWER)
    assert not Role.VIEWER.allows(Role.OPERATOR)
    assert not Role.OPERATOR.allows(Role.APPROVER)
    assert not Role.APPROVER.allows(Role.ADMIN)


def test_tokens_are_prefixed_random_and_stored_as_sha256() -> None:
    a, b = generate_token(), generate_token()
    assert a.startswith(TOKEN_PREFIX) and a != b
    assert len(a) >= len(TOKEN_PREFIX) + 43  # 32 random bytes, base64url
    assert hash_token(a) == hashlib.sha256(a.encode()).hexdigest()


def test_lookup_finds_the_user_and_refuses_others() -> None:
    a, b = generate_token(), generate_token()
    table = TokenTable([TokenEntry("alice", Role.OPERATOR, hash_token(a)),
                        TokenEntry("bob", Role.VIEWER, hash_token(b))])
    assert table.lookup(a) == User("alice", Role.OPERATOR)
    assert table.lookup(b) == User("bob", Role.VIEWER)
    assert table.lookup(generate_token()) is None
    assert table.lookup("") is None
    assert table.lookup("ünïcode") is None


def test_add_token_appends_and_keeps_the_file(tmp_path: Path) -> None:
    path = tmp_path / "loa.toml"
    original = "# my comment\n[engine]\nbatch_size = 100\n\n[api]\nport = 9000\n"
    path.write_text(original, encoding="utf-8")
    now = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    t1 = add_token(path, "alice", Role.OPERATOR, now=now)
    t2 = add_token(path, "carol", "approver", now=now)
    text = path.read_text(encoding="utf-8")
    assert text.startswith(original)
    assert t1 not in text and t2 not in text
    data = tomllib.loads(text)
    assert data["engine"]["batch_size"] == 100
    assert [t["user"] for t in data["api"]["tokens"]] == ["alice", "carol"]
    assert data["api"]["tokens"][0]["hash"] == hash_token(t1)
    assert data["api"]["tokens"][1]["role"] == "approver"
    settings, api = load_deployment(path, env={})
    assert settings.engine.batch_size == 100 and api.port == 9000
    assert TokenTable(api.tokens).lookup(t2) == User("carol", Role.APPROVER)


def test_add_token_refuses_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "loa.toml"
    with pytest.raises(ConfigError, match="file not found"):
        add_token(path, "alice", Role.ADMIN)
    path.write_text("", encoding="utf-8")
    with pytest.raises(InputError, match="--role"):
        add_token(path, "alice", "root")
    with pytest.raises(InputError, match="--user"):
        add_token(path, 'al"ice', Role.ADMIN)
    path.write_text("[api]\ntokens = []\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        add_token(path, "alice", Role.ADMIN)
    assert path.read_text(encoding="utf-8") == "[api]\ntokens = []\n"


def test_deployment_file_errors_name_the_key(tmp_path: Path) -> None:
    path = tmp_path / "loa.toml"
    path.write_text("[api]\nport = \"x\"\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="api"):
        load_deployment(path, env={})
    path.write_text("[api]\nzalo_oa_secret_env = \"NOPE\"\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="NOPE"):
        load_deployment(path, env={})
    path.write_text("[engine]\nbatch_size = 0\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"engine\.batch_size"):
        load_deployment(path, env={})


def test_example_config_loads(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "config" / "loa.example.toml"
    settings, api = load_deployment(example, env={})
    assert settings.engine.approval_threshold == 10_000
    assert api.port == 8080 and api.request_max_body_size == 65_536 and api.tokens == []


def test_audit_log_appends_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "audit.jsonl"
    log = AuditLog(path)
    log.write(who="alice", role="operator", action="level.set", target="level",
              detail={"cases": 3})
    log.write(who="bob", role="approver", action="campaign.approve", target="c-1",
              outcome="PermissionDenied: no")
    records = read_audit(path)  # readable before close: every line is flushed
    log.close()
    assert [(r.who, r.action, r.target, r.outcome) for r in records] == [
        ("alice", "level.set", "level", "ok"),
        ("bob", "campaign.approve", "c-1", "PermissionDenied: no")]
    assert records[0].detail == {"cases": 3} and records[0].at.tzinfo is not None
    AuditLog(path).write(who="x", role="admin", action="a", target="t")
    assert len(read_audit(path)) == 3
