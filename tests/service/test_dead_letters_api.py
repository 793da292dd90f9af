"""The API's dead letters: a wave's listed page by page (viewers), replayed onto the wave
(operators, audited); unknown waves 404, cancelled ones 409 with the reason, bad cursors 400."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dispatcher.domain.model import Batch, Channel, Wave, WaveState
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.engine.process import wave_progress
from dispatcher.service.audit import PENDING, read_audit
from dispatcher.service.settings import Settings
from dispatcher.store import Store
from dispatcher.store.base import Completion, DeadLetter
from tests.service.test_api import (  # noqa: F401 - audience_file is a fixture
    NOW,
    PROBLEM_JSON,
    SIMULATED,
    Env,
    _env,
    audience_file,
    auth,
)

ROUTES = ("sms.mobifone", "sms.viettel")


@pytest.fixture
async def env(tmp_path: Path, plan: Plan, province: Province, numbering: Numbering,
              audience_file: Path) -> AsyncIterator[Env]:  # noqa: F811
    async for e in _env(tmp_path, plan, province, numbering, audience_file,
                        Settings(channels=SIMULATED)):
        yield e


async def dead_wave(store: Store, wave_id: str = "c-1-sms", *, per_route: int = 3,
                    state: WaveState = WaveState.COMPLETED) -> list[DeadLetter]:
    """A wave whose ``per_route`` recipients on each of two routes were refused for good."""
    total = 2 * per_route + 4
    await store.waves.create(Wave(id=wave_id, campaign_id="c-1", channel=Channel.SMS, text="x",
                                  created_at=NOW, audience_version="v1", total=total), state)
    letters = []
    for n, route in enumerate(ROUTES):
        ids = [n * 100 + i for i in range(per_route)]
        addrs = [f"8491{i:07d}" for i in ids]
        await store.queue.enqueue(route, wave_id, 0, [Batch(wave_id, Channel.SMS, ids, addrs)])
        (delivery,) = await store.queue.read(route, "test", 1, 0)
        dead = [DeadLetter(wave_id, Channel.SMS, i, a, 1, "invalid destination")
                for i, a in zip(ids, addrs, strict=True)]
        await store.queue.complete(route, delivery.entry, Completion(
            sent={wave_id: [n * 100 + 50, n * 100 + 51]},
            counts={wave_id: {"failed": per_route}}, dead=dead))
        letters += dead
    return letters


async def test_a_viewer_lists_a_waves_dead_letters_page_by_page(env: Env) -> None:
    letters = await dead_wave(env.services.store)
    seen, cursor = [], ""
    while True:
        params = {"limit": "4"} | ({"cursor": cursor} if cursor else {})
        r = await env.client.get("/v1/waves/c-1-sms/dead-letters", params=params,
                                 headers=auth("vic"))
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["wave"] == "c-1-sms" and body["total"] == len(letters)
        seen += body["letters"]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert [(d["route"], d["id"], d["addr"]) for d in seen] == [
        (route, d.id, d.addr) for route, d in zip([ROUTES[0]] * 3 + [ROUTES[1]] * 3, letters,
                                                  strict=True)]
    assert all(d["attempts"] == 1 and d["reason"] == "invalid destination"
               and d["channel"] == "sms" and d["expired"] is False for d in seen)


async def test_an_operator_replays_them_once_with_an_audit_record(env: Env) -> None:
    store = env.services.store
    letters = await dead_wave(store)
    r = await env.client.post("/v1/waves/c-1-sms/dead-letters/replay", headers=auth("vic"))
    assert r.status_code == 403
    r = await env.client.post("/v1/waves/c-1-sms/dead-letters/replay",
                              json={"reason": "the carrier is back"}, headers=auth("olga"))
    assert r.status_code == 200, r.text
    assert r.json() == {"wave": "c-1-sms", "requeued": len(letters), "skipped": 0,
                        "state": "sending", "reopened": True, "covered": 0}
    wave = await store.waves.get("c-1-sms")
    assert wave is not None
    p = await wave_progress(store, wave)
    assert (p.failed, p.dead_letters, p.retrying, p.queued) == (0, 0, len(letters), 0)
    r = await env.client.get("/v1/waves/c-1-sms/dead-letters", headers=auth("olga"))
    assert r.json()["total"] == 0 and r.json()["letters"] == []

    r = await env.client.post("/v1/waves/c-1-sms/dead-letters/replay", headers=auth("olga"))
    assert r.status_code == 200 and (r.json()["requeued"], r.json()["skipped"]) == (0, 0)
    records = [(x.who, x.action, x.target, x.outcome, x.detail) for x in read_audit(env.audit)
               if x.action == "dead_letters.replay"]
    assert records[:2] == [
        ("olga", "dead_letters.replay", "c-1-sms", PENDING, {"reason": "the carrier is back"}),
        ("olga", "dead_letters.replay", "c-1-sms", "ok",
         {"reason": "the carrier is back", "requeued": len(letters), "skipped": 0,
          "covered": 0, "state": "sending", "reopened": True})]
    assert len(records) == 4


async def test_unknown_waves_cancelled_ones_and_bad_cursors_are_problems(env: Env) -> None:
    store = env.services.store
    await dead_wave(store, "gone-sms", state=WaveState.CANCELLED)
    r = await env.client.post("/v1/waves/gone-sms/dead-letters/replay", headers=auth("olga"))
    assert r.status_code == 409 and r.headers["content-type"] == PROBLEM_JSON
    assert "gone-sms is cancelled" in r.json()["detail"]
    r = await env.client.get("/v1/waves/gone-sms/dead-letters", headers=auth("vic"))
    assert r.json()["total"] == 6  # nothing was taken
    for method, path in (("GET", "/v1/waves/nope/dead-letters"),
                         ("POST", "/v1/waves/nope/dead-letters/replay")):
        r = await env.client.request(method, path, headers=auth("olga"))
        assert r.status_code == 404 and "nope" in r.json()["detail"], (method, r.text)
    r = await env.client.get("/v1/waves/gone-sms/dead-letters", params={"cursor": "x"},
                             headers=auth("vic"))
    assert r.status_code == 400 and r.json()["field"] == "cursor"
    for params in ({"limit": "0"}, {"limit": "1001"}, {"limt": "5"}):
        r = await env.client.get("/v1/waves/gone-sms/dead-letters", params=params,
                                 headers=auth("vic"))
        assert r.status_code == 400, params


async def test_the_schema_describes_both_operations(env: Env) -> None:
    r = await env.client.get("/schema/openapi.json")
    paths = r.json()["paths"]
    listing = paths["/v1/waves/{wave_id}/dead-letters"]["get"]
    replay = paths["/v1/waves/{wave_id}/dead-letters/replay"]["post"]
    assert {p["name"] for p in listing["parameters"]} >= {"wave_id", "limit", "cursor"}
    assert {"200", "400", "404"} <= set(listing["responses"])
    assert {"200", "403", "404", "409"} <= set(replay["responses"])
    schemas = r.json()["components"]["schemas"]
    assert {"DeadLetterList", "Replay"} <= set(schemas)
