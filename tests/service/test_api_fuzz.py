"""Fuzzing the HTTP API from its own OpenAPI schema (schemathesis, in-process ASGI).

Every operation gets schema-valid and schema-violating requests, each sent with the bearer
token of every role. Whatever comes back must be documented in the schema (status, content type,
body), never a 5xx, and a refusal must be problem details that say why (``detail``). A schema-valid
request may be refused only for what a JSON schema cannot say (a text for each channel named, a
title of blanks): :func:`refused_only_for_what_the_schema_cannot_say`.
Path parameters name campaigns that exist too, so approve, pause, resume and cancel meet every
state. The default run keeps to a few examples per operation; the ``slow`` one tries many more.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from litestar import Litestar
from schemathesis import GenerationMode
from schemathesis.config._checks import NegativeDataRejectionConfig
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import positive_data_acceptance

from bench import audiencegen
from dispatcher.domain.audience import Validator
from dispatcher.domain.model import Channel, Kind, Selector
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.engine.campaigns import Campaigns
from dispatcher.engine.importer import import_audience
from dispatcher.service.api import ApiConfig, create_app
from dispatcher.service.api.problems import PROBLEM_BASE
from dispatcher.service.auth import Role, TokenEntry, hash_token
from dispatcher.service.settings import ChannelSettings, EngineSettings, Settings
from dispatcher.store import MemoryStore
from tests.service.test_dead_letters_api import dead_wave

USERS = {"vic": Role.VIEWER, "olga": Role.OPERATOR, "carol": Role.APPROVER, "root": Role.ADMIN}
TOKENS = {user: f"loa_fuzz-token-of-{user}" for user in USERS}
NOW = dt.datetime(2024, 3, 5, 3, 0, tzinfo=dt.UTC)

#: How invalid requests may be refused (never by a 5xx): schemathesis's list, and 413 for a body
#: over request_max_body_size, refused before it is read.
REFUSALS = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]

#: Reasons a schema-valid body may still be refused, by operation: rules across fields that a
#: JSON schema cannot state.
SEMANTIC_REFUSALS = {
    "POST /v1/campaigns": ("title: must not be empty", "texts.", "sms_fallback: "),
    "POST /v1/preview": ("text: ", "texts.sms: "),
    # the list is the body, CSV or JSON by its Content-Type: not described by a JSON schema
    "POST /v1/lists": ("content-type: ", "body: "),
    # the number as people write it, a reason on one line, a channel in the path
    "GET /v1/suppressions": ("channel: ",),
    "POST /v1/suppressions": ("number: ", "reason: "),
    "DELETE /v1/suppressions/{channel}/{number}": ("number: ", "reason: ", "channel: "),
    # a day as YYYY-MM-DD, not a day to come; an item id of the plan; a note and a unit
    "GET /v1/checklist": ("date: ",),
    "POST /v1/checklist/{item}/done": ("date: ", "item: ", "note: ", "unit: "),
    "DELETE /v1/checklist/{item}/done": ("date: ", "item: "),
}


class Fixture:
    def __init__(self, app: Litestar, campaign_ids: list[str]) -> None:
        self.app = app
        self.campaign_ids = campaign_ids


def _build(tmp: Path, plan: Plan, province: Province, numbering: Numbering) -> Fixture:
    audience = tmp / "audience.csv"
    audiencegen.generate(audience, 200, seed=11, numbering=numbering, province=province)
    store = MemoryStore()
    settings = Settings(engine=EngineSettings(approval_threshold=50),
                        channels=ChannelSettings(simulate=list(Channel)),
                        rates={"sms.viettel": 20.0, "zalo": 10.0})

    async def prepare() -> list[str]:
        await import_audience(audience, store, Validator(numbering, province), chunk_size=32)
        campaigns = Campaigns(store, settings, province)
        ids = []
        kinds: list[Kind]
        for title, channels, kinds in (("big", [Channel.SMS, Channel.ZALO], []),
                                       ("small", [Channel.EMAIL], [Kind.OFFICIAL])):
            created = await campaigns.create(
                title=title, channels=channels, texts=dict.fromkeys(channels, "Deo khau trang"),
                created_by="olga", now=NOW, selector=Selector(kinds=kinds))
            ids.append(created.id)
        await dead_wave(store, "c-dead-sms")  # a wave with dead letters to list and replay
        return ids

    ids = asyncio.run(prepare())
    api = ApiConfig(audit_log=str(tmp / "audit.jsonl"), request_max_body_size=16_384,
                    zalo_app_id="zalo-app", zalo_oa_secret="oa-secret",
                    tokens=[TokenEntry(u, r, hash_token(TOKENS[u])) for u, r in USERS.items()])
    app = create_app(store, settings, plan, province, numbering, api,
                     on_zalo_events=lambda events: None, clock=lambda: NOW)
    return Fixture(app, ids)


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory, plan: Plan, province: Province,
           numbering: Numbering) -> Fixture:
    return _build(tmp_path_factory.mktemp("fuzz"), plan, province, numbering)


def refused_only_for_what_the_schema_cannot_say(ctx: Any, response: Any, case: Any) -> None:
    """Schema-valid data is accepted, or refused for a reason the schema cannot express."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 400:
        return None
    error = response.json().get("detail", "")
    allowed = SEMANTIC_REFUSALS.get(case.operation.label, ())
    assert error.startswith(allowed) if allowed else False, (
        f"a schema-valid request was refused: 400 {error!r}")
    return None


def error_bodies_say_why(ctx: Any, response: Any, case: Any) -> None:
    """Every 4xx answer is problem details (RFC 9457) saying why, with no traceback."""
    if 400 <= response.status_code < 500:
        assert response.headers["content-type"] == ["application/problem+json"], response.headers
        body = response.json()
        assert body["status"] == response.status_code and body["detail"].strip(), body
        assert body["type"].startswith(PROBLEM_BASE), body
        instance = body["instance"]  # a URI reference: the path, percent-encoded
        assert instance.isascii() and " " not in instance, body
        assert unquote(instance) == unquote(case.formatted_path), body
        assert "Traceback" not in body["detail"]


QUIET = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]


def _strategy(operation: Any, mode: GenerationMode, campaign_ids: list[str]) -> Any:
    """Cases of ``operation``; positive ones also on the campaigns (and the wave) that exist."""
    generated = operation.as_strategy(generation_mode=mode)
    if mode is GenerationMode.NEGATIVE:
        return generated
    if "{wave_id}" in operation.path:
        return st.one_of(generated, operation.as_strategy(
            generation_mode=mode, path_parameters={"wave_id": "c-dead-sms"}))
    if "{campaign_id}" not in operation.path:
        return generated
    return st.one_of(generated, *(
        operation.as_strategy(generation_mode=mode, path_parameters={"campaign_id": c})
        for c in campaign_ids))


def _only_headers_invalid(case: Any) -> bool:
    """A negative case whose only invalid part is its headers (the token the calls replace)."""
    meta = case.meta
    if meta is None or meta.generation.mode.is_positive:
        return False
    negative = [where.value for where, info in meta.components.items()
                if not info.mode.is_positive]
    return bool(negative) and all(where == "header" for where in negative)


def _query_lost_on_the_wire(case: Any) -> bool:
    """A negative case whose only invalid part is query parameters with no value to send (an
    empty list, null, an empty object) next to valid ones: the HTTP client drops them, so the
    server gets a valid request and rightly answers it."""
    meta = case.meta
    if meta is None or meta.generation.mode.is_positive or not case.query:
        return False
    negative = {where.value for where, info in meta.components.items()
                if not info.mode.is_positive}
    if "query" not in negative or not negative <= {"query", "header"}:
        return False
    schemas = {p["name"]: p.get("schema", {})
               for p in case.operation.definition.raw.get("parameters", []) if p["in"] == "query"}
    for key, value in case.query.items():
        if value in ([], None, {}):
            continue  # not sent
        schema = schemas.get(key)
        if schema is None or schema.get("type") != "integer" or not _valid_integer(value, schema):
            return False  # something invalid does reach the server
    return True


def _valid_integer(value: Any, schema: dict[str, Any]) -> bool:
    if isinstance(value, bool) or not isinstance(value, int):
        return False
    low, high = schema.get("minimum", value), schema.get("maximum", value)
    return bool(low <= value <= high)


def fuzz(fuzzed: Fixture, max_examples: int) -> None:
    """Fuzz every operation of the schema, positive and negative, with every role's token;
    fail with every distinct failure found."""
    schema = schemathesis.openapi.from_asgi("/schema/openapi.json", fuzzed.app)
    schema.config.checks.negative_data_rejection = NegativeDataRejectionConfig(
        expected_statuses=REFUSALS)
    failures: dict[str, str] = {}
    labels = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        labels.append(operation.label)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(max_examples=max_examples, deadline=None, database=None,
                      suppress_health_check=QUIET)
            @given(case=_strategy(operation, mode, fuzzed.campaign_ids))
            def run(case: Any) -> None:
                if _only_headers_invalid(case) or _query_lost_on_the_wire(case):
                    return  # every call below sends a valid token: nothing invalid is left
                for user in USERS:
                    case.call_and_validate(
                        headers={"Authorization": f"Bearer {TOKENS[user]}"},
                        excluded_checks=[positive_data_acceptance],
                        additional_checks=[refused_only_for_what_the_schema_cannot_say,
                                           error_bodies_say_why])

            try:
                run()
            except Unsatisfiable:
                # nothing of the operation can be invalid (no parameter, body or token)
                assert mode is GenerationMode.NEGATIVE, operation.label
            except (AssertionError, BaseExceptionGroup) as exc:
                failures[f"{operation.label} ({mode.value})"] = _short(str(exc))
    assert set(labels) == OPERATIONS
    assert not failures, "\n\n".join(f"== {k}\n{v}" for k, v in failures.items())


def _short(report: str, width: int = 300) -> str:
    """A failure report with its long lines (generated bodies, curl commands) cut."""
    return "\n".join(line if len(line) <= width else f"{line[:width]}... ({len(line)} chars)"
                     for line in report.splitlines())


#: Every operation of the API: the schema must publish them all.
OPERATIONS = {
    "GET /v1/me", "GET /v1/plan",
    "GET /v1/level", "PUT /v1/level", "GET /v1/level/history", "GET /v1/level/openings",
    "GET /v1/level/pending", "POST /v1/level/confirm",
    "POST /v1/campaigns",
    "GET /v1/campaigns", "GET /v1/campaigns/{campaign_id}",
    "POST /v1/campaigns/{campaign_id}/approve", "POST /v1/campaigns/{campaign_id}/pause",
    "POST /v1/campaigns/{campaign_id}/resume", "POST /v1/campaigns/{campaign_id}/cancel",
    "GET /v1/stop", "POST /v1/stop", "DELETE /v1/stop", "GET /v1/audit",
    "POST /v1/preview", "POST /zalo/webhook", "GET /healthz", "GET /readyz", "GET /metrics",
    "GET /v1/waves/{wave_id}/dead-letters", "POST /v1/waves/{wave_id}/dead-letters/replay",
    "GET /v1/situation", "GET /v1/situation/history", "PUT /v1/situation",
    "GET /v1/plan/texts", "POST /v1/plan/texts", "POST /v1/plan/texts/{version_id}/approve",
    "POST /v1/plan/texts/{version_id}/reject",
    "GET /v1/recipients/{number}",
    "POST /v1/lists", "GET /v1/lists", "GET /v1/lists/{list_id}",
    "GET /v1/incoming",
    "GET /v1/suppressions", "GET /v1/suppressions.csv", "POST /v1/suppressions",
    "DELETE /v1/suppressions/{channel}/{number}",
    "GET /public/cap/feed.xml", "GET /public/cap/{name}", "GET /public/notice",
    "GET /public/notice.json",
    "GET /v1/checklist", "POST /v1/checklist/{item}/done", "DELETE /v1/checklist/{item}/done",
    "GET /v1/cell-broadcasts", "POST /v1/cell-broadcasts/{wave}/cancel",
}


def test_every_operation_every_role(fuzzed: Fixture) -> None:
    fuzz(fuzzed, max_examples=15)


@pytest.mark.slow
def test_every_operation_every_role_long(fuzzed: Fixture) -> None:
    # sized for CI's time budget: 25 operations x positive and negative x 60 examples
    fuzz(fuzzed, max_examples=60)
