"""API errors as RFC 9457 problem details (dispatcher.service.api.problems): every refusal is
``application/problem+json`` with its type, title, status, detail, instance and, for bad input,
the field in error; the OpenAPI schema declares them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar.exceptions import HTTPException

from dispatcher.domain.errors import InputError, LoaError, StateError
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.service.api.problems import PROBLEM_BASE, TYPES, problem_for
from dispatcher.service.settings import EngineSettings, Settings
from tests.service.test_api import ASCII, LONG, SIMULATED, Env, _env, audience_file, auth  # noqa: F401

PROBLEM_JSON = "application/problem+json"


@pytest.fixture
async def env(tmp_path: Path, plan: Plan, province: Province, numbering: Numbering,
              audience_file: Path) -> AsyncIterator[Env]:  # noqa: F811
    """Campaigns above 10 recipients need approval."""
    settings = Settings(engine=EngineSettings(approval_threshold=10), channels=SIMULATED)
    async for e in _env(tmp_path, plan, province, numbering, audience_file, settings):
        yield e


def _problem(r: Any, status: int, slug: str) -> dict[str, Any]:
    """The body of ``r``, checked to be a problem of type ``slug`` with ``status``."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = r.json()
    assert body["type"] == PROBLEM_BASE + slug, body
    assert body["status"] == status and body["title"] and body["detail"].strip(), body
    assert body["error"] == body["detail"]  # kept for one release
    assert "Traceback" not in body["detail"]
    return body


def test_input_error_carries_its_field() -> None:
    exc = InputError("must not be empty", field="title")
    assert exc.field == "title" and str(exc) == "title: must not be empty"
    assert InputError("give either the number of cases or the level").field is None


async def test_a_refused_field_is_named(env: Env) -> None:
    r = await env.client.post("/v1/campaigns", headers=auth("olga"), json={
        "title": "Khuyến cáo", "channels": ["sms"], "text": LONG})
    assert _problem(r, 400, "invalid-input") == {
        "type": PROBLEM_BASE + "invalid-input", "title": "The request is not valid",
        "status": 400, "instance": "/v1/campaigns", "field": "texts.sms",
        "detail": "texts.sms: 4 parts (UCS-2, 252 characters) is more than max_parts 3",
        "error": "texts.sms: 4 parts (UCS-2, 252 characters) is more than max_parts 3"}
    r = await env.client.post("/v1/campaigns", headers=auth("olga"), json={
        "title": "  ", "channels": ["sms"], "text": ASCII})
    assert _problem(r, 400, "invalid-input")["field"] == "title"
    r = await env.client.post("/v1/stop", headers=auth("olga"), json={"reason": " "})
    assert _problem(r, 400, "invalid-input")["field"] == "reason"


async def test_type_errors_name_the_field(env: Env) -> None:
    r = await env.client.post("/v1/campaigns", headers=auth("olga"),
                              json={"title": 5, "channels": ["sms"], "text": ASCII})
    assert _problem(r, 400, "invalid-input")["field"] == "title"
    r = await env.client.put("/v1/level", headers=auth("olga"), json={"cases": "5", "reason": "r"})
    body = _problem(r, 400, "invalid-input")
    assert body["field"] == "cases" and body["detail"] == "cases: Expected `int | null`, got `str`"
    r = await env.client.post("/v1/campaigns", headers=auth("olga"), json={
        "title": "T", "channels": ["sms"], "text": ASCII, "selector": {"districts": ["x"]}})
    assert _problem(r, 400, "invalid-input")["field"].startswith("selector.districts")
    r = await env.client.get("/v1/level/history?limt=5", headers=auth("vic"))
    assert _problem(r, 400, "invalid-input")["instance"] == "/v1/level/history"
    r = await env.client.get("/v1/level/history?limit=0", headers=auth("vic"))
    assert _problem(r, 400, "invalid-input")["field"] == "limit"


async def test_every_refusal_has_its_type(env: Env) -> None:
    r = await env.client.get("/v1/level")
    assert _problem(r, 401, "unauthorized")["instance"] == "/v1/level"
    assert r.headers["www-authenticate"] == "Bearer"
    r = await env.client.post("/v1/campaigns", headers=auth("vic"), json={})
    assert "field" not in _problem(r, 403, "forbidden")
    r = await env.client.get("/v1/campaigns/c-nope", headers=auth("vic"))
    assert _problem(r, 404, "not-found")["detail"] == "no campaign c-nope"
    r = await env.client.get("/v2/nothing", headers=auth("vic"))
    _problem(r, 404, "not-found")
    r = await env.client.patch("/v1/level", headers=auth("olga"), json={})
    _problem(r, 405, "method-not-allowed")
    r = await env.client.put("/v1/level", headers=auth("olga"), json={"level": 3, "reason": "x"})
    assert r.status_code == 202
    r = await env.client.post("/v1/campaigns", headers=auth("olga"), json={
        "title": "T", "channels": ["sms"], "text": "x" * 100_000})
    assert _problem(r, 413, "body-too-large")["detail"] == (
        "request body too large (the limit is 16384 bytes)")


async def test_state_and_server_failures(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    created = await env.create()
    r = await env.client.post(f"/v1/campaigns/{created['id']}/resume", headers=auth("olga"))
    assert _problem(r, 409, "conflict")["instance"] == f"/v1/campaigns/{created['id']}/resume"
    r = await env.client.post(f"/v1/campaigns/{created['id']}/approve", headers=auth("olga"))
    assert r.status_code == 403  # olga is an operator

    async def broken() -> None:
        raise RuntimeError("redis://:hunter2@db secret detail")

    monkeypatch.setattr(env.services.store.campaigns, "all", broken)
    r = await env.client.get("/v1/campaigns", headers=auth("vic"))
    assert _problem(r, 500, "internal")["detail"] == "internal error"
    assert "hunter2" not in r.text
    monkeypatch.setattr(env.services.store.level, "get", broken)
    r = await env.client.get("/readyz")
    assert _problem(r, 503, "unavailable")["detail"] == "the store does not answer"


async def test_approving_ones_own_campaign_is_its_own_type(env: Env) -> None:
    created = await env.create("carol", selector={})
    assert created["state"] == "pending_approval"
    r = await env.client.post(f"/v1/campaigns/{created['id']}/approve", headers=auth("carol"))
    assert "another user" in _problem(r, 403, "not-permitted")["detail"]


def test_one_table_maps_errors_and_statuses() -> None:
    class Unconfigured(InputError):
        """What a channel-specific refusal may look like: still bad input."""

    assert problem_for(Unconfigured("nope", field="channels")).status == 400
    assert problem_for(StateError("busy")).slug == "conflict"
    assert problem_for(LoaError("ours")).status == 500
    assert problem_for(HTTPException(status_code=422)).slug == "unprocessable"
    unknown = problem_for(HTTPException(status_code=418))
    assert (unknown.status, unknown.uri, unknown.title) == (418, "about:blank", "I'm a Teapot")


async def test_the_schema_declares_problem_details(env: Env) -> None:
    schema = (await env.client.get("/schema/openapi.json")).json()
    problem = schema["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "instance"} <= set(problem["required"])
    assert "field" in problem["properties"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    assert list(response["content"]) == [PROBLEM_JSON], (method, path, status)
                    ref = response["content"][PROBLEM_JSON]["schema"]["$ref"]
                    assert ref == "#/components/schemas/Problem"


def test_the_docs_list_every_type() -> None:
    errors = (Path(__file__).parents[2] / "docs" / "api.md").read_text().split("## Errors")[1]
    for kind in TYPES:
        assert f"| {kind.status} | `{kind.slug}` |" in errors, kind
    assert PROBLEM_BASE in errors
