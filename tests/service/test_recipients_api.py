""""Did this citizen get it?" over the API: GET /v1/recipients/{number} for viewers, the number as
people write it; a bad number is a 400 naming the field, one in no audience a 404."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dispatcher.domain.model import Batch, Campaign, Channel, Selector, Wave, WaveState
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.service.settings import Settings
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


@pytest.fixture
async def env(tmp_path: Path, plan: Plan, province: Province, numbering: Numbering,
              audience_file: Path) -> AsyncIterator[Env]:  # noqa: F811
    async for e in _env(tmp_path, plan, province, numbering, audience_file,
                        Settings(channels=SIMULATED)):
        yield e


async def test_a_viewer_asks_whether_a_number_got_the_wave(env: Env) -> None:
    store = env.services.store
    meta = await store.audiences.meta()
    assert meta is not None
    chunk = (await store.audiences.chunks(meta.version, [meta.groups[0].chunks[0]]))[0]
    first, second = chunk.recipients[0], chunk.recipients[1]
    ids = [chunk.first_id, chunk.first_id + 1]
    await store.campaigns.create(Campaign(id="c-1", title="Thông báo khẩn",
                                          channels=[Channel.SMS], texts={Channel.SMS: "x"},
                                          created_at=NOW, created_by="olga"))
    await store.waves.create(Wave(id="c-1-sms", campaign_id="c-1", channel=Channel.SMS,
                                  text="Đeo khẩu trang", created_at=NOW,
                                  audience_version=meta.version), WaveState.COMPLETED)
    other = Selector(districts=[d for d in {g.district for g in meta.groups}
                                if d and d != first.district][:1])
    await store.waves.create(Wave(id="c-2-sms", campaign_id="c-1", channel=Channel.SMS,
                                  text="y", created_at=NOW, audience_version=meta.version,
                                  selector=other), WaveState.COMPLETED)
    await store.queue.enqueue("sms.x", "c-1-sms", 0, [Batch("c-1-sms", Channel.SMS, ids,
                                                            [first.msisdn, second.msisdn])])
    (delivery,) = await store.queue.read("sms.x", "test", 1, 0)
    await store.queue.complete("sms.x", delivery.entry, Completion(
        sent={"c-1-sms": [ids[0]]}, counts={"c-1-sms": {"failed": 1}},
        dead=[DeadLetter("c-1-sms", Channel.SMS, ids[1], second.msisdn, 1, "invalid number")]))

    written = "0" + first.msisdn[2:5] + " " + first.msisdn[5:8] + " " + first.msisdn[8:]
    r = await env.client.get(f"/v1/recipients/{written}", headers=auth("vic"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["number"] == first.msisdn and body["days"] == 30
    assert body["row"]["district"] == first.district and body["row"]["kind"] == first.kind
    assert [(w["wave"], w["campaign_title"], w["channel"], w["text"], w["outcome"])
            for w in body["waves"]] == [("c-1-sms", "Thông báo khẩn", "sms", "Đeo khẩu trang",
                                         "sent")]
    r = await env.client.get(f"/v1/recipients/+{second.msisdn}", headers=auth("vic"))
    [w] = r.json()["waves"]
    assert (w["outcome"], w["reason"], w["attempts"]) == ("failed", "invalid number", 1)


async def test_a_bad_number_is_400_one_in_no_audience_404_and_a_token_is_needed(
        env: Env) -> None:
    r = await env.client.get("/v1/recipients/12345", headers=auth("vic"))
    assert r.status_code == 400 and r.headers["content-type"] == PROBLEM_JSON
    assert r.json()["field"] == "number"
    r = await env.client.get("/v1/recipients/0999999999", headers=auth("vic"))
    assert r.status_code in (400, 404)
    r = await env.client.get("/v1/recipients/0912000001", headers=auth("vic"))
    assert r.status_code == 404 and "in no audience" in r.json()["detail"]
    r = await env.client.get("/v1/recipients/0912000001")
    assert r.status_code == 401
    r = await env.client.get("/v1/recipients/0912000001?days=0", headers=auth("vic"))
    assert r.status_code == 400
