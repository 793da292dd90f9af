"""The HTTP API (dispatcher.service.api): every endpoint, every role, approval, bad bodies, the
CLI."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from adapters.zalo.api import SIGNATURE_HEADER, sign
from adapters.zalo.webhook import ZaloEvent
from bench import audiencegen
from bench.localredis import free_port
from bench.simconfig import EVERY_CHANNEL_SIMULATED
from dispatcher.domain.audience import Validator
from dispatcher.domain.model import Channel
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.engine.importer import import_audience
from dispatcher.engine.reconciler import Reconciler
from dispatcher.service.api import ApiConfig, create_app
from dispatcher.service.api.context import Services
from dispatcher.service.audit import PENDING, read_audit
from dispatcher.service.auth import Role, TokenEntry, hash_token
from dispatcher.service.settings import ChannelSettings, EngineSettings, Settings
from dispatcher.store import MemoryStore
from tests.conftest import loa_process

NOW = dt.datetime(2024, 3, 5, 3, 0, tzinfo=dt.UTC)
VIETNAMESE = ("KHẨN: Covid-19 lây lan rộng tại Quảng Ninh. Chỉ ra ngoài khi thật cần thiết, đeo "
              "khẩu trang. Sốt, ho, khó thở: gọi y tế xã, phường.")
ASCII = "Deo khau trang, rua tay, giu khoang cach, khai bao y te."
LONG = "Đeo khẩu trang, rửa tay, giữ khoảng cách. " * 6  # 252 characters: 4 parts of UCS-2
USERS = {"vic": Role.VIEWER, "olga": Role.OPERATOR, "carol": Role.APPROVER,
         "dave": Role.APPROVER, "root": Role.ADMIN}
TOKENS = {user: f"loa_test-token-of-{user}" for user in USERS}
APP_ID, OA_SECRET = "zalo-app", "oa-secret"
RECIPIENTS = 300
PROBLEM_JSON = "application/problem+json"
SIMULATED = ChannelSettings(simulate=list(Channel))  # the API tests send to no one


def auth(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[user]}"}


@pytest.fixture(scope="module")
def audience_file(tmp_path_factory: pytest.TempPathFactory, numbering: Numbering,
                  province: Province) -> Path:
    path = tmp_path_factory.mktemp("api") / "audience.csv"
    audiencegen.generate(path, RECIPIENTS, seed=5, numbering=numbering, province=province)
    return path


class Env:
    def __init__(self, client: AsyncTestClient[Litestar], app: Litestar, audit: Path,
                 events: list[ZaloEvent]) -> None:
        self.client = client
        self.app = app
        self.audit = audit
        self.events = events

    @property
    def services(self) -> Services:
        services: Services = self.app.state.services
        return services

    async def create(self, user: str = "olga", **body: Any) -> dict[str, Any]:
        doc = {"title": "Khuyến cáo", "channels": ["sms"], "text": ASCII, **body}
        r = await self.client.post("/v1/campaigns", json=doc, headers=auth(user))
        assert r.status_code == 201, r.text
        created: dict[str, Any] = r.json()
        return created


async def _env(tmp_path: Path, plan: Plan, province: Province, numbering: Numbering,
               audience_file: Path, settings: Settings) -> AsyncIterator[Env]:
    store = MemoryStore()
    await import_audience(audience_file, store, Validator(numbering, province), chunk_size=64)
    audit = tmp_path / "audit.jsonl"
    api = ApiConfig(audit_log=str(audit), request_max_body_size=16_384, zalo_app_id=APP_ID,
                    zalo_oa_secret=OA_SECRET,
                    tokens=[TokenEntry(u, r, hash_token(TOKENS[u])) for u, r in USERS.items()])
    events: list[ZaloEvent] = []
    app = create_app(store, settings, plan, province, numbering, api,
                     on_zalo_events=events.extend, clock=lambda: NOW)
    async with AsyncTestClient(app) as client:
        yield Env(client, app, audit, events)


@pytest.fixture
async def env(tmp_path: Path, plan: Plan, province: Province, numbering: Numbering,
              audience_file: Path) -> AsyncIterator[Env]:
    """Campaigns above 10 recipients need approval; SMS routes limited to 50/s each."""
    settings = Settings(engine=EngineSettings(approval_threshold=10), channels=SIMULATED,
                        rates={f"sms.{c}": 50.0 for c in numbering.carriers} | {"zalo": 10.0})
    async for e in _env(tmp_path, plan, province, numbering, audience_file, settings):
        yield e


@pytest.fixture
async def open_env(tmp_path: Path, plan: Plan, province: Province, numbering: Numbering,
                   audience_file: Path) -> AsyncIterator[Env]:
    """Default settings: no rate limits, the 300-recipient audience needs no approval."""
    async for e in _env(tmp_path, plan, province, numbering, audience_file,
                      Settings(channels=SIMULATED)):
        yield e


# -- authentication and roles ---------------------------------------------------------------------


async def test_no_token_or_a_wrong_one_is_401(env: Env) -> None:
    for headers in ({}, {"Authorization": "Bearer loa_nope"}, {"Authorization": "Basic abc"},
                    {"Authorization": "Bearer "}):
        r = await env.client.get("/v1/level", headers=headers)
        assert r.status_code == 401, headers
        assert r.headers["www-authenticate"] == "Bearer"
        assert r.headers["content-type"] == PROBLEM_JSON and "token" in r.json()["detail"]
    r = await env.client.post("/v1/campaigns", json={"title": "x"})
    assert r.status_code == 401


@pytest.mark.parametrize(("user", "status"), [("vic", 403), ("olga", 201), ("carol", 201),
                                              ("root", 201)])
async def test_who_may_create_a_campaign(env: Env, user: str, status: int) -> None:
    r = await env.client.post("/v1/campaigns", headers=auth(user), json={
        "title": "T", "channels": ["sms"], "text": ASCII})
    assert r.status_code == status, r.text
    if status == 403:
        assert "operator" in r.json()["detail"]
    else:
        assert r.json()["id"] and r.json()["created_by"] == user


async def test_every_role_reads(env: Env) -> None:
    for user in USERS:
        assert (await env.client.get("/v1/campaigns", headers=auth(user))).status_code == 200
        r = await env.client.get("/v1/level/history", headers=auth(user))
        assert r.status_code == 200 and r.json() == []


async def test_viewer_and_operator_may_not_approve(env: Env) -> None:
    created = await env.create("olga")
    for user in ("vic", "olga"):
        r = await env.client.post(f"/v1/campaigns/{created['id']}/approve", headers=auth(user))
        assert r.status_code == 403, user
    r = await env.client.put("/v1/level", json={"cases": 3}, headers=auth("vic"))
    assert r.status_code == 403


# -- campaigns ------------------------------------------------------------------------------------


async def test_mass_campaign_is_approved_by_another_user(env: Env) -> None:
    created = await env.create("carol", channels=["sms", "zalo"],
                               texts={"zalo": VIETNAMESE})
    assert created["state"] == "pending_approval"
    assert created["audience_size"] == RECIPIENTS
    assert created["texts"] == {"sms": ASCII, "zalo": VIETNAMESE}
    cid = created["id"]
    r = await env.client.post(f"/v1/campaigns/{cid}/approve", headers=auth("carol"))
    assert r.status_code == 403
    assert "another user" in r.json()["detail"]
    r = await env.client.post(f"/v1/campaigns/{cid}/approve", headers=auth("dave"))
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "approved" and r.json()["approved_by"] == "dave"
    r = await env.client.post(f"/v1/campaigns/{cid}/approve", headers=auth("root"))
    assert r.status_code == 409 and "not pending approval" in r.json()["detail"]


async def test_small_campaign_needs_no_approval(open_env: Env) -> None:
    created = await open_env.create("olga")
    assert created["state"] == "approved"


async def test_pause_resume_cancel_and_progress(env: Env) -> None:
    created = await env.create("olga", channels=["sms", "zalo"])
    cid = created["id"]
    r = await env.client.post(f"/v1/campaigns/{cid}/pause", headers=auth("olga"))
    assert r.status_code == 409 and "pending_approval" in r.json()["detail"]
    assert (await env.client.post(f"/v1/campaigns/{cid}/approve",
                                  headers=auth("carol"))).status_code == 200
    await env.services.campaigns.start(cid, NOW - dt.timedelta(seconds=10))  # the engine's part

    r = await env.client.get(f"/v1/campaigns/{cid}", headers=auth("vic"))
    assert r.status_code == 200
    detail = r.json()
    assert detail["campaign"]["state"] == "running"
    sms = detail["progress"]["sms"]
    assert set(sms) == {"wave", "state", "total", "queued", "sent", "delivered", "failed",
                        "retrying", "dead_lettered", "cancelled", "fallback", "rate",
                        "eta_seconds"}
    assert sms["total"] == RECIPIENTS and sms["queued"] == RECIPIENTS and sms["sent"] == 0
    assert sms["rate"] == 0 and sms["eta_seconds"] is None
    assert 0 < detail["progress"]["zalo"]["total"] < RECIPIENTS

    for action, state in (("pause", "paused"), ("resume", "running"), ("cancel", "cancelled")):
        r = await env.client.post(f"/v1/campaigns/{cid}/{action}", headers=auth("olga"))
        assert r.status_code == 200, r.text
        assert r.json()["state"] == state
    r = await env.client.get(f"/v1/campaigns/{cid}", headers=auth("vic"))
    assert r.json()["progress"]["sms"]["state"] == "cancelled"
    r = await env.client.post(f"/v1/campaigns/{cid}/resume", headers=auth("olga"))
    assert r.status_code == 409

    r = await env.client.get("/v1/campaigns", headers=auth("vic"))
    assert [c["id"] for c in r.json()] == [cid]


async def test_unknown_campaign_is_404(env: Env) -> None:
    r = await env.client.get("/v1/campaigns/c-nope", headers=auth("vic"))
    assert r.status_code == 404 and r.json()["detail"] == "no campaign c-nope"
    r = await env.client.post("/v1/campaigns/c-nope/cancel", headers=auth("olga"))
    assert r.status_code == 404


async def test_idempotency_key_gives_the_same_campaign(env: Env) -> None:
    body = {"title": "Một lần", "channels": ["sms"], "text": ASCII}
    headers = auth("olga") | {"Idempotency-Key": "req-42"}
    first = await env.client.post("/v1/campaigns", json=body, headers=headers)
    again = await env.client.post("/v1/campaigns", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    other_user = await env.client.post("/v1/campaigns", json=body,
                                       headers=auth("root") | {"Idempotency-Key": "req-42"})
    assert other_user.json()["id"] != first.json()["id"]
    changed = await env.client.post("/v1/campaigns", json=body | {"title": "Khác"},
                                    headers=headers)
    assert changed.status_code == 409 and "Idempotency-Key" in changed.json()["detail"]
    listed = (await env.client.get("/v1/campaigns", headers=auth("vic"))).json()
    assert len(listed) == 2


async def test_campaign_input_errors_are_400(env: Env) -> None:
    r = await env.client.post("/v1/campaigns", headers=auth("olga"), json={
        "title": "T", "channels": ["sms"], "text": ASCII, "selector": {"districts": ["nowhere"]}})
    assert r.status_code == 400 and "selector.districts" in r.json()["detail"]
    r = await env.client.post("/v1/campaigns", headers=auth("olga"), json={
        "title": "T", "channels": ["email"], "text": ""})
    assert r.status_code == 400 and "texts.email" in r.json()["detail"]


async def test_an_sms_over_max_parts_is_400_naming_parts_and_cap(env: Env) -> None:
    r = await env.client.post("/v1/campaigns", headers=auth("olga"), json={
        "title": "T", "channels": ["sms"], "text": LONG})
    assert r.status_code == 400
    assert r.json()["detail"] == ("texts.sms: 4 parts (UCS-2, 252 characters) is more than "
                                  "max_parts 3")
    assert r.json()["field"] == "texts.sms"
    r = await env.client.post("/v1/campaigns", headers=auth("olga"), json={
        "title": "T", "channels": ["zalo"], "text": LONG, "sms_fallback": True})
    assert r.status_code == 400 and r.json()["detail"].startswith("sms_fallback: ")
    assert "is more than max_parts 3" in r.json()["detail"]
    for bad in (0, 11):
        r = await env.client.post("/v1/campaigns", headers=auth("olga"), json={
            "title": "T", "channels": ["sms"], "text": ASCII, "max_parts": bad})
        assert r.status_code == 400 and "max_parts" in r.json()["detail"]
    assert (await env.client.get("/v1/campaigns", headers=auth("vic"))).json() == []

    default = await env.create("olga")
    assert default["max_parts"] == 3
    four = await env.create("olga", text=LONG, max_parts=4)
    r = await env.client.get(f"/v1/campaigns/{four['id']}", headers=auth("vic"))
    assert r.status_code == 200 and r.json()["campaign"]["max_parts"] == 4


# -- bad bodies -----------------------------------------------------------------------------------


async def test_wrong_type_names_the_field(env: Env) -> None:
    r = await env.client.post("/v1/campaigns", headers=auth("olga"),
                              json={"title": 5, "channels": ["sms"], "text": ASCII})
    assert r.status_code == 400
    assert "title" in r.json()["detail"] and "str" in r.json()["detail"]
    r = await env.client.put("/v1/level", headers=auth("olga"), json={"cases": "many"})
    assert r.status_code == 400 and "cases" in r.json()["detail"]
    r = await env.client.post("/v1/campaigns", headers=auth("olga"),
                              json={"title": "T", "channels": ["fax"], "text": ASCII})
    assert r.status_code == 400 and "channels" in r.json()["detail"]


async def test_unknown_field_and_missing_field_are_400(env: Env) -> None:
    r = await env.client.post("/v1/campaigns", headers=auth("olga"), json={
        "title": "T", "channels": ["sms"], "text": ASCII, "urgent": True})
    assert r.status_code == 400
    assert r.json()["detail"] == "invalid request: Object contains unknown field `urgent`"
    r = await env.client.post("/v1/campaigns", headers=auth("olga"), json={"title": "T"})
    assert r.status_code == 400 and "channels" in r.json()["detail"]
    r = await env.client.post("/v1/campaigns", headers=auth("olga") | {
        "Content-Type": "application/json"}, content=b"{not json")
    assert r.status_code == 400 and r.headers["content-type"] == PROBLEM_JSON


async def test_huge_bodies_are_413(env: Env) -> None:
    r = await env.client.post("/v1/campaigns", headers=auth("olga"), json={
        "title": "T", "channels": ["sms"], "text": "x" * 100_000})
    assert r.status_code == 413 and r.json()["detail"] == (
        "request body too large (the limit is 16384 bytes)")
    r = await env.client.post("/v1/preview", headers=auth("vic"), json={"text": "a" * 5000})
    assert r.status_code == 400 and "text" in r.json()["detail"]  # within the body limit


async def test_unexpected_errors_do_not_leak(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken() -> None:
        raise RuntimeError("redis://:hunter2@db secret detail")

    monkeypatch.setattr(env.services.store.campaigns, "all", broken)
    r = await env.client.get("/v1/campaigns", headers=auth("vic"))
    assert r.status_code == 500 and r.json()["detail"] == "internal error"
    assert "hunter2" not in r.text


# -- level ----------------------------------------------------------------------------------------


async def raise_level(env: Env, user: str, body: dict[str, Any],
                      confirmer: str = "carol") -> dict[str, Any]:
    """Propose a raise of the level as ``user`` (202) and confirm it as ``confirmer``."""
    r = await env.client.put("/v1/level", headers=auth(user), json=body)
    assert r.status_code == 202 and r.json()["pending"] is True, r.text
    r = await env.client.post("/v1/level/confirm", headers=auth(confirmer),
                              json={"reason": "xác nhận"})
    assert r.status_code == 200, r.text
    state: dict[str, Any] = r.json()
    return state


async def test_level_set_get_and_history(env: Env, plan: Plan) -> None:
    r = await env.client.get("/v1/level", headers=auth("vic"))
    assert r.status_code == 404 and "no level" in r.json()["detail"]
    state = await raise_level(env, "olga", {"cases": 42, "reason": "ca bệnh mới"})
    assert state["level"] == plan.level_for_cases(42)
    assert state["set_by"] == "olga" and state["cases"] == 42
    state = await raise_level(env, "root", {"level": 4, "reason": "x"})
    assert state["level"] == 4
    r = await env.client.get("/v1/level", headers=auth("vic"))
    assert r.json()["level"] == 4 and r.json()["set_by"] == "root"
    r = await env.client.get("/v1/level/history", headers=auth("vic"))
    assert [s["set_by"] for s in r.json()] == ["root", "olga"]
    r = await env.client.get("/v1/level/history?limit=1", headers=auth("vic"))
    assert len(r.json()) == 1
    r = await env.client.put("/v1/level", headers=auth("olga"),
                             json={"cases": 1, "level": 2, "reason": "x"})
    assert r.status_code == 400 and "either" in r.json()["detail"]
    r = await env.client.put("/v1/level", headers=auth("olga"), json={"level": 9, "reason": "x"})
    assert r.status_code == 400 and "not in the plan" in r.json()["detail"]


async def test_the_openings_of_the_level_in_force(env: Env, plan: Plan) -> None:
    r = await env.client.get("/v1/level/openings", headers=auth("vic"))
    assert r.status_code == 200 and r.json() == []
    await raise_level(env, "olga", {"level": 4, "reason": "x"})
    await Reconciler(env.services.store, plan).tick(NOW)
    r = await env.client.get("/v1/level/openings", headers=auth("vic"))
    assert r.status_code == 200
    found = r.json()
    assert [o["channel"] for o in found] == list(plan.level(4).rules)
    assert {o["outcome"] for o in found} == {"sent"} and {o["urgent"] for o in found} == {True}
    sms = found[0]
    assert sms["wave"] == "L4-sms-opening-20240305T100000" and sms["state"] == "created"
    assert sms["total"] == RECIPIENTS and sms["sent"] == 0
    assert sms["since"] == sms["decided_at"] == "2024-03-05T03:00:00Z"


async def test_a_plan_campaign_is_paused_resumed_and_cancelled_with_sensible_answers(
        env: Env, plan: Plan) -> None:
    await raise_level(env, "olga", {"level": 4, "reason": "x"})
    await Reconciler(env.services.store, plan).tick(NOW)
    c, url = env.client, "/v1/campaigns/plan-L4-sms"
    r = await c.post(f"{url}/pause", headers=auth("olga"))
    assert r.status_code == 400 and r.json()["detail"].startswith("reason: say why the level 4")
    r = await c.post(f"{url}/resume", json={"reason": "x"}, headers=auth("olga"))
    assert r.status_code == 409 and r.json()["detail"] == (
        "campaign plan-L4-sms is running: only a paused campaign can be resumed")
    r = await c.post(f"{url}/pause", json={"reason": "sai số"}, headers=auth("olga"))
    assert r.status_code == 200 and r.json()["state"] == "paused"
    r = await c.post(f"{url}/resume", json={"reason": "đã sửa"}, headers=auth("olga"))
    assert r.status_code == 200 and r.json()["state"] == "running"
    r = await c.post(f"{url}/cancel", json={"reason": "nhầm"}, headers=auth("olga"))
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    r = await c.post(f"{url}/pause", json={"reason": "x"}, headers=auth("olga"))
    assert r.status_code == 409 and r.json()["detail"] == (
        "campaign plan-L4-sms is cancelled: it cannot be paused (the level 4 plan starts it "
        "again at its next slot while the level is in force)")
    r = await c.get("/v1/level/openings", headers=auth("vic"))
    assert r.json()[0]["channel"] == "sms" and r.json()[0]["state"] == "cancelled"
    r = await c.get("/v1/plan", headers=auth("vic"))
    assert r.json()["opening_damping_hours"] == plan.opening_damping.total_seconds() // 3600
    # which rows are public notices (a CAP message and the public page's latest message)
    for level in r.json()["levels"]:
        rules = plan.levels[level["level"]].rules
        assert {ch: row["public"] for ch, row in level["channels"].items()} == {
            ch.value: rule.row.public for ch, rule in rules.items()}
    assert any(row["public"] for level in r.json()["levels"] for row in level["channels"].values())


# -- preview --------------------------------------------------------------------------------------


async def test_preview_counts_parts_pdus_and_time(env: Env) -> None:
    r = await env.client.post("/v1/preview", headers=auth("vic"), json={
        "text": VIETNAMESE, "channels": ["sms", "zalo", "email"]})
    assert r.status_code == 200, r.text
    p = r.json()
    sms = p["sms"]
    assert sms["encoding"] == "ucs2" and sms["parts"] == 2
    assert sms["recipients"] == RECIPIENTS == p["audience_size"]
    assert sum(sms["by_carrier"].values()) == RECIPIENTS
    assert sms["pdus"] == RECIPIENTS * 2
    routes = sms["by_route"]
    assert sum(r["pdus"] for r in routes.values()) == sms["pdus"]
    assert all(r["tps"] == 50.0 for r in routes.values())
    slowest = max(r["pdus"] for r in routes.values()) / 50.0
    assert sms["seconds"] == pytest.approx(slowest, abs=0.1)
    assert sms["tps"] == 50.0 * len(routes)
    assert p["needs_approval"] is True
    zalo = p["channels"]["zalo"]
    assert 0 < zalo["recipients"] < RECIPIENTS
    assert zalo["seconds"] == pytest.approx(zalo["recipients"] / 10.0, abs=0.1)
    assert p["channels"]["email"]["seconds"] is None  # no rate: no limit

    r = await env.client.post("/v1/preview", headers=auth("vic"), json={
        "text": VIETNAMESE, "strip_diacritics": True})
    assert r.json()["sms"]["encoding"] == "gsm7" and r.json()["sms"]["parts"] == 1


async def test_preview_refuses_an_sms_over_max_parts(env: Env) -> None:
    r = await env.client.post("/v1/preview", headers=auth("vic"), json={"text": LONG})
    assert r.status_code == 400
    assert r.json()["detail"] == "text: 4 parts (UCS-2, 252 characters) is more than max_parts 3"
    r = await env.client.post("/v1/preview", headers=auth("vic"), json={
        "texts": {"sms": LONG}, "text": ASCII, "max_parts": 2, "strip_diacritics": True})
    assert r.status_code == 200, r.text  # 2 parts of GSM-7
    r = await env.client.post("/v1/preview", headers=auth("vic"), json={
        "texts": {"sms": LONG}, "max_parts": 1, "strip_diacritics": True})
    assert r.status_code == 400
    assert r.json()["detail"] == ("texts.sms: 2 parts (GSM-7, 252 characters) is more than "
                                  "max_parts 1")
    r = await env.client.post("/v1/preview", headers=auth("vic"), json={
        "text": LONG, "max_parts": 4})
    assert r.status_code == 200, r.text
    sms = r.json()["sms"]
    assert (sms["parts"], sms["pdus"]) == (4, RECIPIENTS * 4)
    r = await env.client.post("/v1/preview", headers=auth("vic"), json={
        "text": ASCII, "max_parts": 11})
    assert r.status_code == 400 and "max_parts" in r.json()["detail"]


async def test_preview_without_limits_and_with_a_selector(open_env: Env,
                                                          province: Province) -> None:
    district = next(iter(province.districts))
    r = await open_env.client.post("/v1/preview", headers=auth("vic"), json={
        "text": ASCII, "selector": {"districts": [district], "kinds": ["resident"]}})
    assert r.status_code == 200, r.text
    sms = r.json()["sms"]
    assert sms["encoding"] == "gsm7" and sms["parts"] == 1
    assert 0 < sms["recipients"] < RECIPIENTS
    assert sum(sms["by_carrier"].values()) == sms["recipients"]
    assert sms["tps"] is None and sms["seconds"] is None
    r = await open_env.client.post("/v1/preview", headers=auth("vic"), json={"text": ""})
    assert r.status_code == 400 and "text" in r.json()["detail"]


async def test_preview_without_audience_is_409(tmp_path: Path, plan: Plan,
                                               province: Province,
                                               numbering: Numbering) -> None:
    api = ApiConfig(audit_log=str(tmp_path / "a.jsonl"),
                    tokens=[TokenEntry("vic", Role.VIEWER, hash_token(TOKENS["vic"]))])
    app = create_app(MemoryStore(), Settings(), plan, province, numbering, api)
    async with AsyncTestClient(app) as client:
        r = await client.post("/v1/preview", headers=auth("vic"), json={"text": "x"})
        assert r.status_code == 409 and "audience" in r.json()["detail"]
        r = await client.post("/zalo/webhook", content=b"{}")
        assert r.status_code == 404  # not configured


# -- audit ----------------------------------------------------------------------------------------


async def test_state_changes_are_audited(env: Env) -> None:
    await env.client.put("/v1/level", headers=auth("olga"), json={"cases": 5, "reason": "r"})
    created = await env.create("carol")
    cid = created["id"]
    await env.client.post(f"/v1/campaigns/{cid}/approve", headers=auth("carol"))  # refused
    await env.client.post(f"/v1/campaigns/{cid}/approve", headers=auth("dave"))
    await env.client.post(f"/v1/campaigns/{cid}/cancel", headers=auth("olga"))
    await env.client.get("/v1/campaigns", headers=auth("vic"))  # reads are not audited
    records = [r for r in read_audit(env.audit) if r.outcome != PENDING]  # the outcomes
    assert [(r.who, r.role, r.action, r.outcome.split(":")[0]) for r in records] == [
        ("olga", "operator", "level.set", "ok"),
        ("carol", "approver", "campaign.create", "ok"),
        ("carol", "approver", "campaign.approve", "PermissionDenied"),
        ("dave", "approver", "campaign.approve", "ok"),
        ("olga", "operator", "campaign.cancel", "ok")]
    assert records[0].detail["cases"] == 5 and records[0].target == "level"
    assert records[3].target == cid
    assert all(r.at.tzinfo is not None for r in records)
    assert TOKENS["olga"] not in env.audit.read_text(encoding="utf-8")


# -- health, metrics, schema, Zalo webhook --------------------------------------------------------


async def test_health_metrics_and_schema(env: Env) -> None:
    r = await env.client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    r = await env.client.get("/readyz")
    assert r.status_code == 200
    r = await env.client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert "# TYPE" in r.text
    r = await env.client.get("/schema/openapi.json")
    assert r.status_code == 200
    schema = r.json()
    assert {"/v1/campaigns", "/v1/level", "/v1/preview", "/v1/level/history"} <= set(
        schema["paths"])
    assert "BearerToken" in schema["components"]["securitySchemes"]
    assert "CampaignCreate" in schema["components"]["schemas"]


async def test_readyz_when_the_store_fails(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    async def down() -> None:
        raise ConnectionError("refused")

    monkeypatch.setattr(env.services.store.level, "get", down)
    r = await env.client.get("/readyz")
    assert r.status_code == 503 and r.json()["detail"] == "the store does not answer"


def _zalo_body(msg_id: str) -> tuple[bytes, str]:
    ts = str(int(time.time() * 1000))
    body = json.dumps({"event_name": "user_received_message", "app_id": APP_ID,
                       "timestamp": ts, "message": {"msg_id": msg_id,
                                                    "tracking_id": "w1:84912345678"}}).encode()
    return body, ts


async def test_zalo_webhook_signature(env: Env) -> None:
    body, ts = _zalo_body("m-1")
    good = {SIGNATURE_HEADER: "mac=" + sign(APP_ID, body, ts, OA_SECRET),
            "Content-Type": "application/json"}
    r = await env.client.post("/zalo/webhook", content=body, headers=good)
    assert r.status_code == 200, r.text
    assert [e.msg_id for e in env.events] == ["m-1"]
    r = await env.client.post("/zalo/webhook", content=body, headers=good)  # Zalo's retry
    assert r.status_code == 200 and len(env.events) == 1
    bad = {SIGNATURE_HEADER: "mac=" + sign(APP_ID, body, ts, "wrong")}
    r = await env.client.post("/zalo/webhook", content=body, headers=bad)
    assert r.status_code == 401 and "signature" in r.json()["detail"]
    r = await env.client.post("/zalo/webhook", content=body)
    assert r.status_code == 401
    assert len(env.events) == 1


async def test_unknown_route_is_json_404(env: Env) -> None:
    r = await env.client.get("/v2/nothing", headers=auth("vic"))
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM_JSON


# -- the CLI: loa config init, loa token create, loa api ------------------------------------------


def _loa(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dispatcher.service.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60, check=False,
                          env=os.environ | {"LOA_REDIS_URL": ""})


def _http(url: str, token: str | None = None, method: str = "GET",
          body: dict[str, Any] | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = json.dumps(body).encode() if body is not None else None
    if data is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_cli_config_token_and_api(tmp_path: Path) -> None:
    config = tmp_path / "loa.toml"
    done = _loa("config", "init", str(config), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "[api]" in config.read_text(encoding="utf-8")
    again = _loa("config", "init", str(config), cwd=tmp_path)
    assert again.returncode == 2 and "--force" in again.stderr
    bad = _loa("token", "create", "--config", str(config), "--user", "u", "--role", "god",
               cwd=tmp_path)
    assert bad.returncode == 2 and "--role" in bad.stderr
    created = _loa("token", "create", "--config", str(config), "--user", "olga", "--role",
                   "operator", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("loa_") and token not in config.read_text(encoding="utf-8")
    approver = _loa("token", "create", "--config", str(config), "--user", "anh", "--role",
                    "approver", cwd=tmp_path).stdout.strip().splitlines()[-1]

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with loa_process(["api", "--config", str(config), "--port", str(port)], cwd=tmp_path,
                     ready=[f"{base}/healthz"], env=os.environ | {"LOA_REDIS_URL": ""}) as proc:
        assert _http(f"{base}/healthz") == (200, {"status": "ok"})
        assert _http(f"{base}/v1/level")[0] == 401
        status, doc = _http(f"{base}/v1/level", token, "PUT", {"cases": 3, "reason": "test"})
        assert status == 202 and doc["pending"] is True, doc
        assert _http(f"{base}/v1/level", token)[0] == 404  # not in force until confirmed
        status, doc = _http(f"{base}/v1/level/confirm", approver, "POST", {"reason": "ok"})
        assert status == 200, doc
        status, doc = _http(f"{base}/v1/level", token)
        assert status == 200 and doc["set_by"] == "olga" and doc["confirmed_by"] == "anh"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    proc.communicate()
    audit = read_audit(tmp_path / "loa-audit.jsonl")
    assert [(r.who, r.action, r.outcome) for r in audit] == [
        ("", "signin.failed", "NotAuthorized"), ("olga", "level.set", PENDING),
        ("olga", "level.set", "ok"), ("anh", "level.confirm", PENDING),
        ("anh", "level.confirm", "ok")]


def test_loa_run_serves_the_api_and_sends_what_it_is_asked(tmp_path: Path,
                                                           redis_url: str) -> None:
    config = tmp_path / "loa.toml"
    assert _loa("config", "init", str(config), cwd=tmp_path).returncode == 0
    with config.open("a", encoding="utf-8") as f:
        f.write(f'{EVERY_CHANNEL_SIMULATED}')
    token = _loa("token", "create", "--config", str(config), "--user", "olga", "--role",
                 "admin", cwd=tmp_path).stdout.strip().splitlines()[-1]
    audience = tmp_path / "audience.csv"
    assert _loa("audience", "generate", "--count", "800", "-o", str(audience),
                cwd=tmp_path).returncode == 0
    done = _loa("audience", "import", str(audience), "--redis", redis_url, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with loa_process(["run", "--config", str(config), "--port", str(port), "--redis",
                      redis_url], cwd=tmp_path, ready=[f"{base}/healthz"],
                     env=dict(os.environ)) as proc:
        status, doc = _http(f"{base}/v1/campaigns", token, "POST",
                            {"title": "Khẩn", "channels": ["sms"], "text": "Deo khau trang",
                             "priority": "urgent"})
        assert status == 201, doc
        campaign = doc["id"]
        deadline = time.monotonic() + 30
        while True:  # the engine in the same process starts and sends it
            status, doc = _http(f"{base}/v1/campaigns/{campaign}", token)
            if status == 200 and doc["campaign"]["state"] == "completed":
                assert doc["progress"]["sms"]["sent"] == 800
                break
            assert time.monotonic() < deadline, doc
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    proc.communicate()


@pytest.fixture
async def costly(tmp_path: Path, plan: Plan, province: Province, numbering: Numbering,
                 audience_file: Path) -> AsyncIterator[Env]:
    """The recipients' threshold far above the audience; SMS parts above 1,000 need approval."""
    settings = Settings(engine=EngineSettings(approval_threshold=10_000,
                                              approval_threshold_pdus=1_000), channels=SIMULATED)
    async for e in _env(tmp_path, plan, province, numbering, audience_file, settings):
        yield e


async def test_many_sms_parts_to_a_small_audience_need_approval(costly: Env) -> None:
    long = "Deo khau trang, rua tay. " * 58  # 10 parts of GSM-7: 3,000 PDUs to 300 people
    r = await costly.client.post("/v1/preview", headers=auth("vic"), json={
        "text": long, "max_parts": 10})
    assert r.status_code == 200, r.text
    assert r.json()["sms"]["pdus"] == RECIPIENTS * 10 and r.json()["needs_approval"] is True
    r = await costly.client.post("/v1/preview", headers=auth("vic"), json={
        "texts": {"sms": long, "zalo": "Đeo khẩu trang"}, "channels": ["sms", "zalo"],
        "max_parts": 10})
    assert r.status_code == 200, r.text
    assert r.json()["channels"]["sms"]["parts"] == 10
    assert r.json()["channels"]["zalo"]["parts"] is None
    created = await costly.create(text=long, max_parts=10)
    assert created["state"] == "pending_approval" and created["pdus"] == RECIPIENTS * 10
    short = await costly.create()
    assert short["state"] == "approved" and short["pdus"] == RECIPIENTS


@pytest.mark.parametrize(("path", "body", "field", "said"), [
    ("/v1/campaigns", {"title": "Khẩn\u202e", "channels": ["sms"], "text": ASCII}, "title",
     "U+202E RIGHT-TO-LEFT OVERRIDE"),
    ("/v1/campaigns", {"title": "Khẩn", "channels": ["sms"], "text": ASCII + "\u200b"},
     "text", "U+200B ZERO WIDTH SPACE"),
    ("/v1/campaigns", {"title": "Khẩn", "channels": ["sms"], "texts": {"sms": "a\u200bb"}},
     "texts.sms", "U+200B ZERO WIDTH SPACE"),
    ("/v1/campaigns", {"title": "Khẩn", "channels": ["sms"], "text": ASCII,
                       "coordinating": ["CDC\u202e"]}, "coordinating[0]", "U+202E"),
    ("/v1/campaigns", {"title": "Khẩn", "channels": ["zalo"], "texts": {"zalo": "a\x00b"}},
     "texts.zalo", "U+0000"),
    ("/v1/preview", {"text": "Deo\u200b khau trang"}, "text", "U+200B ZERO WIDTH SPACE"),
])
async def test_invisible_characters_are_refused_with_the_field_and_the_character(
        env: Env, path: str, body: dict[str, Any], field: str, said: str) -> None:
    r = await env.client.post(path, headers=auth("olga"), json=body)
    assert r.status_code == 400, r.text
    assert r.json()["field"] == field and said in r.json()["detail"]


async def test_the_schema_says_which_characters_are_refused(env: Env) -> None:
    r = await env.client.get("/schema/openapi.json")
    schemas = r.json()["components"]["schemas"]
    title = schemas["CampaignCreate"]["properties"]["title"]
    barred = re.compile(title["not"]["pattern"])
    assert all(barred.search(c) for c in "\x00\x1b\n\x85\u202e\u2066\u200b\ufeff")
    assert not barred.search("Thông báo khẩn: đeo khẩu trang!")
    text = re.compile(schemas["CampaignCreate"]["properties"]["text"]["not"]["pattern"])
    assert not text.search("Dòng một\r\nDòng hai\t.") and text.search("\u200b")
