"""The audit log (dispatcher.service.audit): written before the change, complete, hash-chained,
0600, shared by several processes, readable by admins (``GET /v1/audit``), verified by the CLI."""

from __future__ import annotations

import multiprocessing
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from dispatcher.domain.audience import Validator
from dispatcher.domain.errors import AuditUnavailable
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.engine.importer import import_audience
from dispatcher.service.api import ApiConfig, create_app
from dispatcher.service.audit import (
    GENESIS,
    PENDING,
    AuditLog,
    audited,
    line_hash,
    read_audit,
    read_tail,
    verify,
)
from dispatcher.service.auth import TokenEntry, hash_token
from dispatcher.service.cli import main
from dispatcher.service.settings import EngineSettings, Settings
from dispatcher.store import MemoryStore
from tests.service.test_api import (  # noqa: F401 - audience_file is a fixture
    ASCII,
    NOW,
    SIMULATED,
    TOKENS,
    USERS,
    audience_file,
    auth,
)

Client = AsyncTestClient[Litestar]
Pair = tuple[Client, MemoryStore]


async def _client(tmp_path: Path, audit: Path, plan: Plan, province: Province,
                  numbering: Numbering, audience: Path) -> AsyncIterator[Pair]:
    store = MemoryStore()
    await import_audience(audience, store, Validator(numbering, province), chunk_size=64)
    api = ApiConfig(audit_log=str(audit), request_max_body_size=16_384,
                    tokens=[TokenEntry(u, r, hash_token(TOKENS[u])) for u, r in USERS.items()])
    settings = Settings(engine=EngineSettings(approval_threshold=10), channels=SIMULATED)
    app = create_app(store, settings, plan, province, numbering, api, clock=lambda: NOW)
    async with AsyncTestClient(app) as client:
        yield client, store


@pytest.fixture
async def api(tmp_path: Path, plan: Plan, province: Province, numbering: Numbering,
              audience_file: Path) -> AsyncIterator[Pair]:  # noqa: F811
    async for pair in _client(tmp_path, tmp_path / "audit.jsonl", plan, province, numbering,
                              audience_file):
        yield pair


@pytest.fixture
async def broken(tmp_path: Path, plan: Plan, province: Province, numbering: Numbering,
                 audience_file: Path) -> AsyncIterator[Pair]:  # noqa: F811
    """An audit path that cannot be written, even by root: its directory is a file."""
    (tmp_path / "not-a-dir").write_text("x", encoding="utf-8")
    async for pair in _client(tmp_path, tmp_path / "not-a-dir" / "audit.jsonl", plan, province,
                              numbering, audience_file):
        yield pair


# -- written before the change: no record, no change ----------------------------------------------


async def test_an_unwritable_audit_log_refuses_the_change(
        broken: Pair) -> None:
    client, store = broken
    r = await client.put("/v1/level", headers=auth("olga"), json={"cases": 5000, "reason": "r"})
    assert r.status_code == 503, r.text
    assert r.json()["type"].endswith("/audit-unavailable")
    assert "audit log cannot be written" in r.json()["detail"]
    assert "nothing was changed" in r.json()["detail"]
    assert await store.level.get() is None  # the level is unchanged
    r = await client.post("/v1/campaigns", headers=auth("olga"),
                          json={"title": "t", "channels": ["sms"], "text": ASCII})
    assert r.status_code == 503
    assert await store.campaigns.all() == []
    r = await client.post("/v1/stop", headers=auth("olga"), json={"reason": "test"})
    assert r.status_code == 503
    assert await store.stop.get() is None


async def test_a_refused_change_leaves_no_pending_work(broken: Pair, tmp_path: Path) -> None:
    client, store = broken
    for _ in range(2):  # refused each time, never half-done
        r = await client.delete("/v1/stop", headers=auth("olga"))
        assert r.status_code == 503 and r.headers["content-type"] == "application/problem+json"
    assert await store.stop.get() is None


# -- every action, with its full target, before and after -----------------------------------------


async def test_every_action_is_recorded_with_its_target_before_and_after(
        api: Pair, tmp_path: Path) -> None:
    client, _ = api
    audit = tmp_path / "audit.jsonl"
    for body in ({"cases": 5, "reason": "8h"}, {"level": 4, "reason": "9h"}):
        r = await client.put("/v1/level", headers=auth("olga"), json=body)
        assert r.status_code == 202  # a raise waits for its second person
        r = await client.post("/v1/level/confirm", headers=auth("carol"),
                              json={"reason": "đã kiểm tra"})
        assert r.status_code == 200
    r = await client.post("/v1/campaigns", headers=auth("olga"),
                          json={"title": "Khuyến cáo", "channels": ["sms"], "text": ASCII})
    cid = r.json()["id"]
    await client.post(f"/v1/campaigns/{cid}/approve", headers=auth("carol"))
    await client.post(f"/v1/campaigns/{cid}/pause", headers=auth("olga"),
                      json={"reason": "sai chính tả"})
    await client.post(f"/v1/campaigns/{cid}/resume", headers=auth("olga"))
    await client.post(f"/v1/campaigns/{cid}/cancel", headers=auth("olga"),
                      json={"reason": "thôi"})
    await client.post("/v1/stop", headers=auth("olga"), json={"reason": "nhầm"})
    await client.request("DELETE", "/v1/stop", headers=auth("olga"), json={"reason": "ổn"})
    records = read_audit(audit)
    intents = [x for x in records if x.outcome == PENDING]
    outcomes = [x for x in records if x.outcome != PENDING]
    assert [(x.action, x.target) for x in intents] == [
        ("level.set", "level"), ("level.confirm", "level"), ("level.set", "level"),
        ("level.confirm", "level"), ("campaign.create", cid),
        ("campaign.approve", cid), ("campaign.pause", cid), ("campaign.resume", cid),
        ("campaign.cancel", cid), ("stop", "everything"), ("stop.lift", "everything")]
    # each outcome follows its own intent, and names it
    assert [x.intent for x in outcomes] == [x.seq for x in intents]
    assert all(o.seq == i.seq + 1 for i, o in zip(intents, outcomes, strict=True))
    assert intents[0].detail["before"] is None
    # proposed, not in force: the level stays as it was until the confirmation
    assert outcomes[0].detail["proposed"] == 2 and outcomes[0].detail["after"] is None
    assert (intents[1].who, outcomes[1].detail["after"]) == ("carol", {"level": 2, "cases": 5})
    assert intents[2].detail["before"] == {"level": 2, "cases": 5}
    assert outcomes[3].detail["after"] == {"level": 4, "cases": None}
    assert outcomes[3].detail["before"] == {"level": 2, "cases": 5}
    assert intents[4].detail["texts"] == {"sms": ASCII}
    assert intents[4].detail["title"] == "Khuyến cáo"
    assert outcomes[4].detail["state"] == "pending_approval"
    assert (intents[5].who, outcomes[5].outcome) == ("carol", "ok")
    assert outcomes[4].detail["texts"] == {"sms": ASCII}  # an outcome reads on its own
    assert intents[6].detail["reason"] == "sai chính tả"
    assert intents[8].detail["reason"] == "thôi"
    assert [intents[9].detail["reason"], intents[10].detail["reason"]] == ["nhầm", "ổn"]
    assert verify(audit).broken == 0


async def test_a_refused_action_is_recorded_with_its_error(api: Pair, tmp_path: Path) -> None:
    client, _ = api
    r = await client.post("/v1/campaigns/c-none/approve", headers=auth("carol"))
    assert r.status_code == 404
    pending, outcome = read_audit(tmp_path / "audit.jsonl")
    assert pending.outcome == PENDING and outcome.outcome == "NotFound: no campaign c-none"


async def test_failed_signins_are_recorded_without_the_token(api: Pair, tmp_path: Path) -> None:
    client, _ = api
    wrong = "loa_wrongtokenABCDEFGHIJKLMNOP"
    r = await client.put("/v1/level", headers={"Authorization": f"Bearer {wrong}"},
                         json={"cases": 5})
    assert r.status_code == 401
    r = await client.get("/v1/level")
    assert r.status_code == 401
    text = (tmp_path / "audit.jsonl").read_text(encoding="utf-8")
    assert wrong not in text
    first, second = read_audit(tmp_path / "audit.jsonl")
    assert (first.action, first.target, first.outcome) == ("signin.failed", "/v1/level",
                                                           "NotAuthorized")
    assert first.detail["token_prefix"] == "loa_wron" and first.detail["method"] == "PUT"
    assert first.detail["reason"] == "unknown token"
    assert second.detail["token_prefix"] == "" and "missing" in second.detail["reason"]


# -- readable by admins ---------------------------------------------------------------------------


async def test_admins_read_the_newest_records(api: Pair) -> None:
    client, _ = api
    for cases in (1, 50, 500):
        await client.put("/v1/level", headers=auth("olga"),
                         json={"cases": cases, "reason": "báo cáo"})
    for user in ("vic", "olga", "carol"):
        r = await client.get("/v1/audit", headers=auth(user))
        assert r.status_code == 403, user
    r = await client.get("/v1/audit?limit=2", headers=auth("root"))
    assert r.status_code == 200, r.text
    newest = r.json()
    assert [(x["seq"], x["outcome"]) for x in newest] == [(6, "ok"), (5, PENDING)]
    assert newest[1]["detail"]["cases"] == 500
    r = await client.get("/v1/audit?limit=0", headers=auth("root"))
    assert r.status_code == 400
    r = await client.get("/v1/audit", headers=auth("root"))
    assert len(r.json()) == 6


# -- the chain ------------------------------------------------------------------------------------


def _log(path: Path, n: int) -> AuditLog:
    log = AuditLog(path)
    for i in range(n):
        log.write(who="olga", role="operator", action="level.set", target="level",
                  detail={"cases": i})
    return log


def test_the_chain_links_every_line_to_the_one_before(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _log(path, 3)
    lines = path.read_bytes().splitlines()
    records = read_audit(path)
    assert [r.seq for r in records] == [1, 2, 3]
    assert records[0].prev == GENESIS
    assert records[1].prev == line_hash(lines[0]) and records[2].prev == line_hash(lines[1])
    assert verify(path) == verify(path)
    assert (verify(path).count, verify(path).broken, verify(path).head) == (
        3, 0, line_hash(lines[2]))


@pytest.mark.parametrize(("tamper", "line"), [
    (lambda ls: [ls[0], ls[1].replace(b'"cases":1', b'"cases":9'), *ls[2:]], 3),  # edited
    (lambda ls: [ls[0], *ls[2:]], 2),  # deleted
    (lambda ls: [ls[0], ls[2], ls[1], *ls[3:]], 2),  # reordered
    (lambda ls: ls[1:], 1),  # the first removed
    (lambda ls: [*ls[:3], b"{not json", *ls[3:]], 4),  # a line inserted
])
def test_verify_finds_the_first_tampered_line(tmp_path: Path, tamper: object,
                                             line: int) -> None:
    path = tmp_path / "audit.jsonl"
    _log(path, 5)
    assert callable(tamper)
    path.write_bytes(b"\n".join(tamper(path.read_bytes().splitlines())) + b"\n")
    found = verify(path)
    assert found.broken == line, found


def test_a_log_that_ends_in_a_partial_line_refuses_to_grow(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = _log(path, 2)
    with path.open("ab") as f:
        f.write(b'{"at":')
    with pytest.raises(AuditUnavailable, match="partial line"):
        log.write(who="x", role="admin", action="a", target="t")
    assert verify(path).broken == 3
    assert [r.seq for r in read_tail(path, 5)] == [2, 1]  # what can be read still shows


# -- the file: 0600, several writers --------------------------------------------------------------


def test_the_file_is_created_0600_and_a_readable_one_is_made_0600(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "audit.jsonl"
    _log(path, 1)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    old = tmp_path / "old.jsonl"
    old.write_bytes(b"")
    old.chmod(0o644)
    _log(old, 1)
    assert stat.S_IMODE(old.stat().st_mode) == 0o600


def _append(path: str, who: str, n: int) -> None:
    log = AuditLog(path)
    for i in range(n):
        log.write(who=who, role="operator", action="level.set", target="level",
                  detail={"i": i})


def test_several_processes_append_to_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append, args=(str(path), f"p{k}", 40)) for k in range(4)]
    for p in procs:
        p.start()
    _append(str(path), "main", 40)
    for p in procs:
        p.join()
        assert p.exitcode == 0
    found = verify(path)
    assert (found.count, found.broken) == (200, 0), found
    assert sorted({r.who for r in read_audit(path)}) == ["main", "p0", "p1", "p2", "p3"]


# -- loa audit verify -----------------------------------------------------------------------------


def _loa(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def test_loa_audit_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "audit.jsonl"
    _log(path, 4)
    status, out, err = _loa(capsys, "audit", "verify", str(path))
    assert status == 0, err
    assert out.startswith(f"OK: 4 records in {path}, head ")
    config = tmp_path / "loa.toml"
    config.write_text(f'[api]\naudit_log = "{path}"\n', encoding="utf-8")
    assert _loa(capsys, "audit", "verify", "--config", str(config))[0] == 0
    lines = path.read_bytes().splitlines()
    path.write_bytes(b"\n".join([lines[0], lines[2], lines[3]]) + b"\n")
    status, out, err = _loa(capsys, "audit", "verify", str(path))
    assert status == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"loa: error: {path}: line 2: "), err
    status, out, err = _loa(capsys, "audit", "verify", str(tmp_path / "nope.jsonl"))
    assert status == 2 and err.count("\n") == 1 and "nope.jsonl" in err
    config.write_text("[api]\naudit_log = 5\n", encoding="utf-8")
    status, out, err = _loa(capsys, "audit", "verify", "--config", str(config))
    assert status == 2 and "api.audit_log" in err and err.count("\n") == 1


# -- the outcome -----------------------------------------------------------------------------------


async def test_an_outcome_that_cannot_be_written_leaves_the_change_and_says_so(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    done = []

    async def change() -> str:
        done.append(True)
        with path.open("ab") as f:  # a torn line: the next append is refused
            f.write(b'{"at":')
        return "changed"

    result = await audited(log, who="olga", role="operator", action="level.set",
                           target="level", work=change(), detail={"cases": 5})
    assert result == "changed" and done == [True]
    assert "the outcome of line 1 (level.set level) is not recorded" in caplog.text
    assert verify(path).count == 1 and verify(path).broken == 2


async def test_work_is_never_started_when_its_intent_cannot_be_written(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x", encoding="utf-8")
    started = []

    async def change() -> None:
        started.append(True)

    with pytest.raises(AuditUnavailable, match="nothing was changed"):
        await audited(AuditLog(tmp_path / "file" / "audit.jsonl"), who="olga", role="operator",
                      action="stop", target="everything", work=change())
    assert started == []


async def test_a_store_failure_is_an_outcome_too(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"

    async def change() -> None:
        raise ConnectionError("redis://:s3cret@redis:6379 refused")

    with pytest.raises(ConnectionError):
        await audited(AuditLog(path), who="olga", role="operator", action="stop",
                      target="everything", work=change())
    _, outcome = read_audit(path)
    assert outcome.outcome == "ConnectionError (internal error)" and outcome.intent == 1
    assert "s3cret" not in path.read_text(encoding="utf-8")
