"""Two people for a level change that sends: a raise waits for an approver's confirmation."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from dispatcher.domain.errors import PermissionDenied, StateError
from dispatcher.domain.model import LevelState, PendingLevel
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.engine.level import confirm_level, pending_level, propose_level
from dispatcher.service.api import ApiConfig, create_app
from dispatcher.service.audit import read_audit
from dispatcher.service.auth import Role, TokenEntry, hash_token
from dispatcher.service.settings import Settings
from dispatcher.store import MemoryStore, Store

NOW = dt.datetime(2024, 3, 5, 3, 0, tzinfo=dt.UTC)
USERS = {"vic": Role.VIEWER, "olga": Role.OPERATOR, "oscar": Role.OPERATOR,
         "carol": Role.APPROVER, "dave": Role.APPROVER}
TOKENS = {user: f"loa_test-token-of-{user}" for user in USERS}


def auth(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[user]}"}


class Env:
    def __init__(self, client: AsyncTestClient[Litestar], audit: Path) -> None:
        self.client = client
        self.audit = audit
        self.now = NOW

    async def level(self) -> int | None:
        r = await self.client.get("/v1/level", headers=auth("vic"))
        return int(r.json()["level"]) if r.status_code == 200 else None


async def _env(tmp_path: Path, plan: Plan, province: Province, numbering: Numbering,
               **api: object) -> AsyncIterator[Env]:
    audit = tmp_path / "audit.jsonl"
    config = ApiConfig(audit_log=str(audit), level_confirm_seconds=600,
                       tokens=[TokenEntry(u, r, hash_token(TOKENS[u])) for u, r in USERS.items()],
                       **api)  # type: ignore[arg-type]
    holder: list[Env] = []
    app = create_app(MemoryStore(), Settings(), plan, province, numbering, config,
                     clock=lambda: holder[0].now)
    async with AsyncTestClient(app) as client:
        holder.append(Env(client, audit))
        yield holder[0]


@pytest.fixture
async def env(tmp_path: Path, plan: Plan, province: Province,
              numbering: Numbering) -> AsyncIterator[Env]:
    async for e in _env(tmp_path, plan, province, numbering):
        yield e


async def test_a_raise_waits_for_a_second_person(env: Env) -> None:
    r = await env.client.put("/v1/level", headers=auth("olga"),
                             json={"level": 4, "reason": "ổ dịch mới"})
    assert r.status_code == 202, r.text
    pending = r.json()
    assert pending["pending"] is True and pending["level"] == 4 and pending["current"] == 0
    assert pending["proposed_by"] == "olga" and pending["reason"] == "ổ dịch mới"
    assert await env.level() is None  # the level in force is unchanged
    r = await env.client.get("/v1/level/pending", headers=auth("vic"))
    assert r.status_code == 200 and r.json()["id"] == pending["id"]

    r = await env.client.post("/v1/level/confirm", headers=auth("oscar"), json={"reason": "ok"})
    assert r.status_code == 403  # an operator may not confirm
    r = await env.client.post("/v1/level/confirm", headers=auth("carol"), json={})
    assert r.status_code == 400 and r.json()["field"] == "reason"
    assert await env.level() is None

    r = await env.client.post("/v1/level/confirm", headers=auth("carol"),
                              json={"reason": "đã xác minh", "id": pending["id"]})
    assert r.status_code == 200, r.text
    state = r.json()
    assert state["level"] == 4 and state["set_by"] == "olga" and state["confirmed_by"] == "carol"
    assert state["reason"] == "ổ dịch mới" and state["confirm_reason"] == "đã xác minh"
    assert await env.level() == 4
    r = await env.client.get("/v1/level/pending", headers=auth("vic"))
    assert r.status_code == 404
    r = await env.client.post("/v1/level/confirm", headers=auth("dave"), json={"reason": "x"})
    assert r.status_code == 409  # nothing waits any more
    records = {(a.who, a.action): a for a in read_audit(env.audit) if a.outcome == "ok"}
    proposed = records[("olga", "level.set")].detail
    # proposed: level 4 waits under its id; the level in force (none yet) is still in force
    assert (proposed["pending"], proposed["proposed"]) == (pending["id"], 4)
    assert proposed["before"] == proposed["after"] is None
    confirmed = records[("carol", "level.confirm")].detail
    assert confirmed["pending"]["id"] == pending["id"] and confirmed["reason"] == "đã xác minh"
    assert confirmed["before"] is None and confirmed["after"]["level"] == 4


async def test_the_proposer_cannot_confirm(tmp_path: Path, plan: Plan, province: Province,
                                           numbering: Numbering) -> None:
    async for env in _env(tmp_path, plan, province, numbering):
        r = await env.client.put("/v1/level", headers=auth("carol"),
                                 json={"cases": 5000, "reason": "báo cáo 8h"})
        assert r.status_code == 202
        r = await env.client.post("/v1/level/confirm", headers=auth("carol"),
                                  json={"reason": "tôi"})
        assert r.status_code == 403 and "another user" in r.json()["detail"]
        assert await env.level() is None


async def test_a_pending_change_expires(env: Env) -> None:
    r = await env.client.put("/v1/level", headers=auth("olga"), json={"level": 3, "reason": "r"})
    assert r.status_code == 202
    env.now = NOW + dt.timedelta(seconds=601)
    r = await env.client.get("/v1/level/pending", headers=auth("vic"))
    assert r.status_code == 404
    r = await env.client.post("/v1/level/confirm", headers=auth("carol"), json={"reason": "ok"})
    assert r.status_code == 409 and "expired" in r.json()["detail"]
    assert await env.level() is None


async def test_a_reason_is_required(env: Env) -> None:
    for body in ({"level": 2}, {"level": 2, "reason": ""}, {"level": 2, "reason": "  "}):
        r = await env.client.put("/v1/level", headers=auth("olga"), json=body)
        assert r.status_code == 400, body
        assert r.json().get("field") == "reason", r.text
    r = await env.client.get("/v1/level/pending", headers=auth("vic"))
    assert r.status_code == 404


async def test_duplicate_keys_are_refused(env: Env) -> None:
    body = b'{"level": 1, "reason": "r", "level": 4}'
    r = await env.client.put("/v1/level", headers={**auth("olga"),
                                                   "Content-Type": "application/json"},
                             content=body)
    assert r.status_code == 400 and r.json()["field"] == "level", r.text
    assert "twice" in r.json()["detail"]
    r = await env.client.get("/v1/level/pending", headers=auth("vic"))
    assert r.status_code == 404
    # every body: here a nested object of a stop
    r = await env.client.post("/v1/stop", headers={**auth("olga"),
                                                   "Content-Type": "application/json"},
                              content=b'{"reason": "a", "reason": "b"}')
    assert r.status_code == 400 and r.json()["field"] == "reason"
    r = await env.client.post("/v1/preview", headers={**auth("olga"),
                                                      "Content-Type": "application/json"},
                              content=b'{"text": "x", "selector": {"kinds": [], "kinds": []}}')
    assert r.status_code == 400 and r.json()["field"] == "kinds"
    r = await env.client.get("/v1/stop", headers=auth("vic"))
    assert r.json()["active"] is False


async def test_lowering_and_the_same_level_are_one_persons(tmp_path: Path, plan: Plan,
                                                          province: Province,
                                                          numbering: Numbering) -> None:
    async for env in _env(tmp_path, plan, province, numbering):
        r = await env.client.put("/v1/level", headers=auth("olga"),
                                 json={"level": 3, "reason": "r"})
        await env.client.post("/v1/level/confirm", headers=auth("carol"), json={"reason": "ok"})
        assert await env.level() == 3
        r = await env.client.put("/v1/level", headers=auth("olga"),
                                 json={"level": 3, "reason": "số ca mới"})
        assert r.status_code == 200 and r.json()["level"] == 3
        r = await env.client.put("/v1/level", headers=auth("olga"),
                                 json={"level": 1, "reason": "giảm"})
        assert r.status_code == 200 and r.json()["level"] == 1
        assert await env.level() == 1


async def test_single_person_changes_when_the_config_allows(
        tmp_path: Path, plan: Plan, province: Province, numbering: Numbering) -> None:
    async for env in _env(tmp_path, plan, province, numbering, level_single_person=True):
        r = await env.client.put("/v1/level", headers=auth("olga"),
                                 json={"level": 4, "reason": "r"})
        assert r.status_code == 200 and r.json()["level"] == 4


# -- on every store -------------------------------------------------------------------------------


async def test_two_confirmations_at_once_one_wins(store: Store, plan: Plan) -> None:
    pending = await propose_level(store, plan, now=NOW, user="olga", reason="r", level=4,
                                  confirm_seconds=60)
    assert isinstance(pending, PendingLevel)
    assert await pending_level(store, NOW) == pending
    assert await store.level.get() is None
    with pytest.raises(PermissionDenied):
        await confirm_level(store, plan, now=NOW, user="olga", reason="x")
    results = await asyncio.gather(
        confirm_level(store, plan, now=NOW, user="carol", reason="a"),
        confirm_level(store, plan, now=NOW, user="dave", reason="b"), return_exceptions=True)
    won = [r for r in results if isinstance(r, LevelState)]
    assert len(won) == 1 and isinstance(next(r for r in results if r not in won), StateError)
    assert (await store.level.get()) == won[0] and won[0].level == 4
    assert await store.level.pending() is None
    assert len(await store.level.history()) == 1
