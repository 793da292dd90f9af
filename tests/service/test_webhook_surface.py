"""The Zalo delivery webhook as a surface: dedup shared through the store, rejected requests
counted and logged at most once per minute."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import re
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from litestar import Litestar
from litestar.testing import AsyncTestClient
from prometheus_client import REGISTRY

from adapters.zalo.api import SIGNATURE_HEADER, sign
from adapters.zalo.webhook import ZaloEvent
from bench.localredis import free_port
from dispatcher.domain.errors import ConfigError
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.service import console
from dispatcher.service.api import ApiConfig, create_app, create_webhook_app, load_api_config
from dispatcher.service.api.webhook import LOG_EVERY_SECONDS, LogLimiter
from dispatcher.service.settings import Settings
from dispatcher.store import MemoryStore, RedisStore, Store
from tests.conftest import loa_process

APP_ID, OA_SECRET = "zalo-app", "oa-secret"
HOUR = 3600.0


def signed(*msg_ids: str, stamp: str | None = None) -> tuple[bytes, dict[str, str]]:
    ts = stamp or str(int(time.time() * 1000))
    events = [{"event_name": "user_received_message", "app_id": APP_ID, "timestamp": ts,
               "message": {"msg_id": m, "tracking_id": "w1:84912345678"}} for m in msg_ids]
    body = json.dumps(events if len(events) > 1 else events[0]).encode()
    return body, {SIGNATURE_HEADER: "mac=" + sign(APP_ID, body, ts, OA_SECRET),
                  "Content-Type": "application/json"}


def app_on(store: Store, tmp_path: Path, plan: Plan, province: Province, numbering: Numbering,
           events: list[ZaloEvent], now: list[float]) -> Litestar:
    api = ApiConfig(audit_log=str(tmp_path / "audit.jsonl"), zalo_app_id=APP_ID,
                    zalo_oa_secret=OA_SECRET)
    return create_app(store, Settings(), plan, province, numbering, api,
                      on_zalo_events=events.extend,
                      clock=lambda: dt.datetime.fromtimestamp(now[0], dt.UTC))


# -- the store's seen ids: the contract, on memory, Redis and Redis Cluster -----------------------


async def test_seen_ids_are_new_once_for_at_least_an_hour(store: Store) -> None:
    seen = store.webhook_seen
    t0 = 1000 * HOUR + 10
    assert await seen.first(["a", "b", "a"], t0) == [True, True, False]
    assert await seen.first(["b", "c"], t0 + 5) == [False, True]
    assert await seen.first(["a"], t0 + HOUR) == [False]  # the next hour still knows it
    assert await seen.first(["a"], t0 + 2 * HOUR) == [True]  # two hours on, it is new again
    await seen.forget(["c"], t0 + 5)
    assert await seen.first(["c"], t0 + 6) == [True]
    assert await seen.first([], t0) == []


async def test_two_processes_on_one_redis_pass_an_event_on_once(
        redis_url: str, tmp_path: Path, plan: Plan, province: Province,
        numbering: Numbering) -> None:
    stores = [RedisStore(redis_url), RedisStore(redis_url)]
    events: list[ZaloEvent] = []
    now = [time.time()]
    apps = [app_on(s, tmp_path, plan, province, numbering, events, now) for s in stores]
    async with AsyncTestClient(apps[0]) as one, AsyncTestClient(apps[1]) as two:
        body, headers = signed("m-1", "m-2")
        r = await one.post("/zalo/webhook", content=body, headers=headers)
        assert r.status_code == 200 and r.json()["events"] == 2
        # Zalo's retry reaches the other process: nothing is passed on twice
        r = await two.post("/zalo/webhook", content=body, headers=headers)
        assert r.status_code == 200 and r.json()["events"] == 0
        body, headers = signed("m-2", "m-3")
        r = await two.post("/zalo/webhook", content=body, headers=headers)
        assert r.status_code == 200 and r.json()["events"] == 1
        # each app runs on its client's own loop: its store is closed there
        for client, s in ((one, stores[0]), (two, stores[1])):
            await asyncio.to_thread(client.blocking_portal.call, s.aclose)
    assert [e.msg_id for e in events] == ["m-1", "m-2", "m-3"]


# -- rejected requests: 401, counted, logged at most once a minute --------------------------------


def rejected(status: str) -> float:
    return REGISTRY.get_sample_value("loa_webhook_rejected_total", {"status": status}) or 0.0


@pytest.mark.parametrize("stamp", ["nan", "inf", "-1", "1e13"])
async def test_a_signed_webhook_with_a_timestamp_that_is_no_time_is_401(
        stamp: str, tmp_path: Path, plan: Plan, province: Province,
        numbering: Numbering) -> None:
    events: list[ZaloEvent] = []
    app = app_on(MemoryStore(), tmp_path, plan, province, numbering, events, [time.time()])
    async with AsyncTestClient(app) as client:
        body, headers = signed("m-1", stamp=stamp)
        r = await client.post("/zalo/webhook", content=body, headers=headers)
    assert r.status_code == 401, r.text
    assert r.json()["type"].endswith("webhook-rejected") and "timestamp" in r.json()["detail"]
    assert events == []


async def test_rejected_webhooks_are_counted_and_logged_once_a_minute(
        tmp_path: Path, plan: Plan, province: Province, numbering: Numbering,
        caplog: pytest.LogCaptureFixture) -> None:
    now = [time.time()]
    app = app_on(MemoryStore(), tmp_path, plan, province, numbering, [], now)
    before = rejected("401")
    body, _ = signed("m-1")
    bad: dict[str, Any] = {SIGNATURE_HEADER: "mac=" + "0" * 64}
    with caplog.at_level(logging.WARNING, logger="dispatcher.service.api.webhook"):
        async with AsyncTestClient(app) as client:
            for _ in range(20):
                r = await client.post("/zalo/webhook", content=body, headers=bad)
                assert r.status_code == 401
            now[0] += LOG_EVERY_SECONDS
            r = await client.post("/zalo/webhook", content=body, headers=bad)
            assert r.status_code == 401
    lines = [r.getMessage() for r in caplog.records if "webhook rejected" in r.getMessage()]
    assert len(lines) == 2, lines
    assert "19 more rejected" in lines[1]
    assert rejected("401") - before == 21


def test_log_limiter_lets_one_line_through_per_period() -> None:
    clock = [0.0]
    limit = LogLimiter(60, lambda: clock[0])
    assert limit.allow() == 0
    assert [limit.allow() for _ in range(3)] == [None, None, None]
    clock[0] = 59.9
    assert limit.allow() is None
    clock[0] = 60.0
    assert limit.allow() == 4
    assert limit.allow() is None


# -- no third-party script on the operators' origin ------------------------------------------------

EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)
SCHEMA_PAGES = ["/schema", "/schema/", "/schema/swagger", "/schema/redoc", "/schema/elements",
                "/schema/rapidoc", "/schema/scalar", "/schema/openapi.yaml",
                "/schema/openapi.yml", "/schema/oauth2-redirect.html"]


async def test_no_page_of_the_app_loads_a_script_from_another_origin(
        tmp_path: Path, plan: Plan, province: Province, numbering: Numbering) -> None:
    app = app_on(MemoryStore(), tmp_path, plan, province, numbering, [], [time.time()])
    pages = {path for route in app.routes if "{" not in route.path
             for path in [route.path] if "GET" in getattr(route, "methods", {"GET"})}
    pages |= {*SCHEMA_PAGES, "/console/", "/console/index.html"}
    async with AsyncTestClient(app) as client:
        for path in sorted(pages):
            r = await client.get(path, follow_redirects=True)
            assert not EXTERNAL.search(r.text), (path, EXTERNAL.search(r.text))
            assert "<script" not in r.text or r.url.path.startswith("/console/"), path


async def test_the_schema_is_json_only_with_the_strict_csp(
        tmp_path: Path, plan: Plan, province: Province, numbering: Numbering) -> None:
    app = app_on(MemoryStore(), tmp_path, plan, province, numbering, [], [time.time()])
    async with AsyncTestClient(app) as client:
        r = await client.get("/schema/openapi.json")
        assert r.status_code == 200 and r.json()["info"]["title"] == "Loa API"
        assert r.headers["content-security-policy"] == console.CSP
        assert r.headers["x-content-type-options"] == "nosniff"
        r = await client.get("/schema")
        assert r.status_code == 200 and r.json()["info"]["title"] == "Loa API"
        for path in SCHEMA_PAGES[2:]:  # no renderer: Swagger, ReDoc, Elements, RapiDoc, ...
            r = await client.get(path, follow_redirects=False)
            assert r.status_code == 404, (path, r.status_code)
            assert "<script" not in r.text, path
            if "html" in r.headers["content-type"]:
                assert r.headers["content-security-policy"] == console.CSP, path
            else:  # a schema file that is not served: a problem document
                assert r.headers["content-type"] == "application/problem+json", path


# -- the public webhook on its own listener ------------------------------------------------------


async def test_with_a_webhook_port_the_webhook_is_on_its_own_app_only(
        tmp_path: Path, plan: Plan, province: Province, numbering: Numbering) -> None:
    store = MemoryStore()
    events: list[ZaloEvent] = []
    api = ApiConfig(audit_log=str(tmp_path / "audit.jsonl"), zalo_app_id=APP_ID,
                    zalo_oa_secret=OA_SECRET, webhook_port=8081)
    operators = create_app(store, Settings(), plan, province, numbering, api,
                           on_zalo_events=events.extend)
    public = create_webhook_app(store, api, on_zalo_events=events.extend)
    body, headers = signed("m-1")
    async with AsyncTestClient(operators) as ops, AsyncTestClient(public) as hook:
        r = await ops.post("/zalo/webhook", content=body, headers=headers)
        assert r.status_code == 404
        assert "/zalo/webhook" not in (await ops.get("/schema/openapi.json")).json()["paths"]
        assert (await ops.get("/metrics")).status_code == 200
        r = await hook.post("/zalo/webhook", content=body, headers=headers)
        assert r.status_code == 200 and r.json()["events"] == 1
        for path in ("/metrics", "/schema", "/schema/openapi.json", "/console/", "/v1/level",
                     "/healthz", "/"):
            assert (await hook.get(path)).status_code == 404, path
        assert (await hook.post("/v1/stop", json={"reason": "x"})).status_code == 404
    assert [e.msg_id for e in events] == ["m-1"]


def test_a_webhook_port_equal_to_the_api_port_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "loa.toml"
    config.write_text("[api]\nport = 8080\nwebhook_port = 8080\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"api\.webhook_port.*port of its own"):
        load_api_config(config)
    config.write_text("[api]\nwebhook_port = 70000\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"api\.webhook_port"):
        load_api_config(config)


def _status(url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, data=body, headers=headers or {},
                                     method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_loa_api_serves_the_webhook_on_its_port_and_not_on_the_operators(
        tmp_path: Path) -> None:
    port, webhook_port = free_port(), free_port()
    config = tmp_path / "loa.toml"
    config.write_text(f'[api]\nport = {port}\nwebhook_port = {webhook_port}\n'
                      f'zalo_app_id = "{APP_ID}"\nzalo_oa_secret_env = "LOA_TEST_OA_SECRET"\n'
                      '[channels]\nsimulate = ["sms", "zalo", "email", "app", "facebook", '
                      '"loudspeaker", "cell_broadcast"]\n',
                      encoding="utf-8")
    ops, hook = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{webhook_port}"
    with loa_process(["api", "--config", str(config)], cwd=tmp_path,
                     ready=[f"{ops}/healthz", f"{hook}/zalo/webhook"],
                     env=os.environ | {"LOA_REDIS_URL": "",
                                       "LOA_TEST_OA_SECRET": OA_SECRET}) as proc:
        body, headers = signed("m-1")
        assert _status(f"{ops}/zalo/webhook", body, headers) == 404
        assert _status(f"{ops}/metrics") == 200
        assert _status(f"{hook}/zalo/webhook", body, headers) == 200
        assert _status(f"{hook}/metrics") == 404
        assert _status(f"{hook}/console/") == 404
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    proc.communicate()


# -- the local stack ------------------------------------------------------------------------------


def test_the_local_stack_has_no_default_password_and_publishes_on_loopback_only() -> None:
    root = Path(__file__).resolve().parents[2]
    compose = yaml.safe_load((root / "docker-compose.yml").read_text(encoding="utf-8"))
    grafana = compose["services"]["grafana"]["environment"]
    password = grafana["GF_SECURITY_ADMIN_PASSWORD"]
    # required from the environment or .env: compose refuses to start without it
    assert re.fullmatch(r"\$\{GRAFANA_ADMIN_PASSWORD:\?[^}]+\}", password), password
    for name, service in compose["services"].items():
        for published in service.get("ports", []):
            assert str(published).startswith("127.0.0.1:"), (name, published)
