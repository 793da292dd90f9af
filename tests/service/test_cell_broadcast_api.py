"""Cell broadcasts over the API: GET /v1/cell-broadcasts for viewers (each carrier's
acknowledgement, state and Cancel), POST /v1/cell-broadcasts/{wave}/cancel for operators
(audited; a completed wave only), and an urgent campaign at level 4 that goes by cell broadcast
too."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.cellbroadcast.config import Auth, Carrier, CellBroadcastConfig
from dispatcher.domain.broadcast import Broadcast, Reason, State, Withdrawal
from dispatcher.domain.model import Channel, LevelState, Wave, WaveState
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.service.settings import Settings
from tests.cellbroadcast import CAP, areas
from tests.service.test_api import (  # noqa: F401 - audience_file is a fixture
    NOW,
    PROBLEM_JSON,
    SIMULATED,
    Env,
    _env,
    audience_file,
    auth,
)

CARRIERS = [Carrier(id="viettel", url="http://127.0.0.1:9/cap", auth=Auth.NONE),
            Carrier(id="mobifone", url="http://127.0.0.1:9/cap", auth=Auth.NONE)]
WAVE = "c-1-cell_broadcast"


@pytest.fixture
async def env(tmp_path: Path, plan: Plan, province: Province, numbering: Numbering,
              audience_file: Path) -> AsyncIterator[Env]:  # noqa: F811
    settings = Settings(channels=SIMULATED, cap=CAP,
                        cell_broadcast=CellBroadcastConfig(carriers=CARRIERS, areas=areas()))
    async for e in _env(tmp_path, plan, province, numbering, audience_file, settings):
        yield e


async def wave(env: Env, wave_id: str, state: WaveState,
               channel: Channel = Channel.CELL_BROADCAST) -> None:
    await env.services.store.waves.create(Wave(
        id=wave_id, campaign_id="c-1", channel=channel, text="KHẨN", created_at=NOW,
        audience_version="v"), state)


async def test_a_viewer_lists_the_broadcasts_newest_first(env: Env) -> None:
    store = env.services.store
    at = NOW.timestamp()
    await store.broadcasts.add([
        Broadcast(wave=WAVE, carrier="viettel", identifier=f"loa.cb.{WAVE}", seen_at=at,
                  live_until=at + 6 * 3600, state=State.BROADCASTING, state_at=at + 60,
                  reference="vt-000001", reads=2, detail="broadcasting"),
        Broadcast(wave="c-2-cell_broadcast", carrier="viettel", identifier="loa.cb.c-2",
                  seen_at=at + 10, live_until=at + 6 * 3600)])
    await store.broadcasts.withdrawn(WAVE, "viettel", Withdrawal(
        at=at + 120, reason=Reason.STOP, detail="HTTP 201 (accepted (created))"))
    r = await env.client.get("/v1/cell-broadcasts", headers=auth("vic"))
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [(i["wave"], i["carrier"]) for i in items] == [("c-2-cell_broadcast", "viettel"),
                                                         (WAVE, "viettel")]
    older = items[1]
    assert older["identifier"] == f"loa.cb.{WAVE}" and older["reference"] == "vt-000001"
    assert older["status"] == "cancelled" and older["reads"] == 2  # after its Cancel
    assert older["cancel"]["reason"] == "emergency_stop"
    assert older["recorded_at"].startswith(NOW.strftime("%Y-%m-%dT%H:%M:%S"))
    assert items[0]["status"] == "expired"  # its expiry passed (the records are from 2024)
    r = await env.client.get(f"/v1/cell-broadcasts?wave={WAVE}", headers=auth("vic"))
    assert [i["carrier"] for i in r.json()["items"]] == ["viettel"]
    assert r.json()["withdrawal"] is None
    assert (await env.client.get("/v1/cell-broadcasts")).status_code == 401
    r = await env.client.get("/v1/cell-broadcasts?limit=0", headers=auth("vic"))
    assert r.status_code == 400 and r.headers["content-type"] == PROBLEM_JSON


async def test_an_operator_withdraws_a_completed_wave_audited(env: Env) -> None:
    await wave(env, WAVE, WaveState.COMPLETED)
    body = {"reason": "Nội dung sai, phát lại sau"}
    assert (await env.client.post(f"/v1/cell-broadcasts/{WAVE}/cancel", json=body,
                                  headers=auth("vic"))).status_code == 403
    r = await env.client.post(f"/v1/cell-broadcasts/{WAVE}/cancel", json=body,
                              headers=auth("olga"))
    assert r.status_code == 202, r.text
    assert r.json()["withdrawal"]["by"] == "olga"
    assert r.json()["withdrawal"]["reason"] == "Nội dung sai, phát lại sau"
    kept = await env.services.store.broadcasts.requests()
    assert kept[WAVE].by == "olga" and kept[WAVE].at == NOW.timestamp()
    lines = [json.loads(line) for line in env.audit.read_text(encoding="utf-8").splitlines()]
    assert any(e["action"] == "cell_broadcast.cancel" and e["target"] == WAVE
               for e in lines)


async def test_withdrawing_needs_a_completed_cell_broadcast_wave_and_a_reason(env: Env) -> None:
    await wave(env, WAVE, WaveState.SENDING)
    await wave(env, "c-1-sms", WaveState.COMPLETED, Channel.SMS)
    body = {"reason": "sai"}
    r = await env.client.post(f"/v1/cell-broadcasts/{WAVE}/cancel", json=body,
                              headers=auth("olga"))
    assert r.status_code == 409 and "cancel its campaign (c-1)" in r.json()["detail"]
    for other in ("c-1-sms", "nothing"):
        r = await env.client.post(f"/v1/cell-broadcasts/{other}/cancel", json=body,
                                  headers=auth("olga"))
        assert r.status_code == 404, other
    r = await env.client.post(f"/v1/cell-broadcasts/{WAVE}/cancel", json={"reason": " "},
                              headers=auth("olga"))
    assert r.status_code == 400
    assert await env.services.store.broadcasts.requests() == {}


async def test_an_urgent_campaign_at_level_4_goes_by_cell_broadcast_too(env: Env) -> None:
    store = env.services.store
    await store.level.set(LevelState(level=3, at=NOW - dt.timedelta(days=1)))
    at_3 = await env.create(channels=["sms", "zalo"], priority="urgent",
                            texts={"sms": "SMS khan", "zalo": "Zalo khẩn"})
    assert at_3["channels"] == ["sms", "zalo"]
    await store.level.set(LevelState(level=4, at=NOW))
    at_4 = await env.create(channels=["zalo", "sms"], priority="urgent",
                            texts={"sms": "SMS khan", "zalo": "Zalo khẩn"})
    assert at_4["channels"] == ["zalo", "sms", "cell_broadcast"]
    assert at_4["texts"]["cell_broadcast"] == "SMS khan"
    routine = await env.create(channels=["sms"])
    assert routine["channels"] == ["sms"]
    officials = await env.create(channels=["email"], priority="urgent", text="Khẩn",
                                 selector={"kinds": ["official"]})
    assert officials["channels"] == ["email"]
