"""The situation record over the API: set (operators, audited, validated), read, history."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from bench import audiencegen
from dispatcher.domain import template
from dispatcher.domain.model import Channel
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.domain.smstext import segment, strip_diacritics
from dispatcher.service.audit import PENDING, read_audit
from dispatcher.service.settings import Settings
from tests.service.test_api import SIMULATED, Env, _env, auth

RECORD: dict[str, Any] = {"cases_today": 3, "cases_total": 42, "date": "2026-12-07",
                          "hotline": "1900 1234", "areas": ["ha-long", "Cam Pha"],
                          "fields": {"advice": "Đeo khẩu trang"}}


def with_sms(plan: Plan, level: int, written: str, *, max_parts: int | None = None) -> Plan:
    """``plan`` whose ``level`` SMS is ``written`` (as if the file said so)."""
    entry = plan.levels[level]
    rule = entry.rules[Channel.SMS]
    rule = msgspec.structs.replace(rule, row=msgspec.structs.replace(
        rule.row, written=written, template=written.replace("{hotline}", plan.hotline)))
    entry = msgspec.structs.replace(entry, rules={**entry.rules, Channel.SMS: rule})
    return msgspec.structs.replace(plan, levels={**plan.levels, level: entry},
                                   sms_max_parts=max_parts or plan.sms_max_parts)


@pytest.fixture
async def env(tmp_path: Path, plan: Plan, province: Province,
              numbering: Numbering) -> AsyncIterator[Env]:
    audience = tmp_path / "audience.csv"
    audiencegen.generate(audience, 50, seed=5, numbering=numbering, province=province)
    async for e in _env(tmp_path, plan, province, numbering, audience,
                        Settings(channels=SIMULATED)):
        yield e


async def test_no_situation_yet_is_404(env: Env) -> None:
    r = await env.client.get("/v1/situation", headers=auth("vic"))
    assert r.status_code == 404
    assert "no situation has been set yet" in r.json()["detail"]


async def test_an_operator_sets_it_everyone_reads_it_with_its_history(env: Env) -> None:
    r = await env.client.put("/v1/situation", json=RECORD, headers=auth("olga"))
    assert r.status_code == 200, r.text
    second = {**RECORD, "cases_today": 5, "cases_total": 47}
    r = await env.client.put("/v1/situation", json=second, headers=auth("olga"))
    assert r.status_code == 200, r.text
    r = await env.client.get("/v1/situation", headers=auth("vic"))
    assert r.status_code == 200
    body = r.json()
    assert body["by"] == "olga"
    assert body["situation"]["areas"] == ["Hạ Long", "Cẩm Phả"]  # the districts' names
    assert body["situation"]["cases_total"] == 47
    r = await env.client.get("/v1/situation/history?limit=5", headers=auth("vic"))
    assert [v["situation"]["cases_today"] for v in r.json()] == [5, 3]
    records = [x for x in read_audit(env.audit) if x.action == "situation.set"
               and x.outcome != PENDING]
    assert [x.outcome for x in records] == ["ok", "ok"]
    assert records[-1].who == "olga"
    assert records[-1].detail["before"]["cases_total"] == 42


async def test_a_viewer_may_not_set_it(env: Env) -> None:
    r = await env.client.put("/v1/situation", json=RECORD, headers=auth("vic"))
    assert r.status_code == 403


@pytest.mark.parametrize(("changes", "field", "detail"), [
    ({"cases_today": -1}, "cases_today", "cases_today: must be 0 or more"),
    ({"areas": ["Hà Nội"]}, "areas[0]", "areas[0]: 'Hà Nội' is not a district of Quảng Ninh"),
    ({"hotline": "abc"}, "hotline", "hotline: 'abc' is not a telephone number"),
    ({"date": "07/12/2026"}, "date", "date"),
    ({"cases_total": "42"}, "cases_total", "Expected `int`, got `str`"),
    ({"colour": "red"}, None, "colour"),
])
async def test_a_wrong_record_is_refused_naming_the_field(
        env: Env, changes: dict[str, Any], field: str | None, detail: str) -> None:
    r = await env.client.put("/v1/situation", json={**RECORD, **changes}, headers=auth("olga"))
    assert r.status_code == 400, r.text
    problem = r.json()
    if field is not None:
        assert problem["field"] == field
    assert detail in problem["detail"]
    assert "\n" not in problem["detail"]
    assert await env.services.store.situation.get() is None


async def test_a_record_that_would_push_a_plan_sms_past_its_cap_is_refused(env: Env) -> None:
    written = "{date}: {new_cases} ca mới ({areas}). {advice} Gọi {hotline}."
    env.services.plan = with_sms(env.services.plan, 1, written, max_parts=1)
    long_advice = {**RECORD, "fields": {"advice": "Khuyến cáo rất dài. " * 7}}
    r = await env.client.put("/v1/situation", json=long_advice, headers=auth("olga"))
    assert r.status_code == 400, r.text
    assert r.json()["field"] == "situation"
    assert "the level 1 sms text would be 2 parts" in r.json()["detail"]
    r = await env.client.put("/v1/situation", json={**RECORD, "fields": {}},
                             headers=auth("olga"))
    assert r.status_code == 400
    assert r.json()["field"] == "fields.advice"
    assert "the level 1 sms text names {advice}: give it" in r.json()["detail"]
    r = await env.client.put("/v1/situation", json=RECORD, headers=auth("olga"))
    assert r.status_code == 200
    assert dt.date.fromisoformat(r.json()["situation"]["date"]) == dt.date(2026, 12, 7)


async def test_a_record_that_would_push_a_plan_sms_naming_district_past_its_cap_is_refused(
        env: Env) -> None:
    written = "{district}: {advice} Gọi {hotline}."
    plan = env.services.plan = with_sms(env.services.plan, 1, written, max_parts=1)
    strip = plan.levels[1].rules[Channel.SMS].row.strip_diacritics
    longest = max((d.name for d in env.services.province.districts.values()), key=len)

    def parts(district: str, advice: str) -> int:
        text = written.format(district=district, advice=advice, hotline="1900 1234")
        return len(segment(text, strip=strip).parts)

    # the longest advice that fits with "toàn tỉnh", but not in the longest district's name
    advice = next("x" * k for k in range(200, 0, -1) if parts(template.NEUTRAL, "x" * k) == 1)
    assert parts(longest, advice) == 2
    r = await env.client.put("/v1/situation", json={**RECORD, "fields": {"advice": advice}},
                             headers=auth("olga"))
    assert r.status_code == 400, r.text
    assert r.json()["field"] == "situation"
    assert f"the level 1 sms text in {longest} would be 2 parts" in r.json()["detail"]
    r = await env.client.put("/v1/situation", json={**RECORD, "fields": {"advice": advice[2:]}},
                             headers=auth("olga"))
    assert r.status_code == 200, r.text


async def test_the_preview_shows_each_channel_s_text_rendered_with_its_cost(env: Env) -> None:
    r = await env.client.put("/v1/situation", json=RECORD, headers=auth("olga"))
    assert r.status_code == 200
    body = {"text": "{date}: {new_cases} ca moi tai {areas}. {advice}. Goi {hotline}.",
            "channels": ["sms", "zalo"], "strip_diacritics": True}
    r = await env.client.post("/v1/preview", json=body, headers=auth("vic"))
    assert r.status_code == 200, r.text
    sms, zalo = r.json()["channels"]["sms"], r.json()["channels"]["zalo"]
    assert sms["text"] == ("07/12/2026: 3 ca moi tai Ha Long, Cam Pha. Deo khau trang. "
                           "Goi 1900 1234.")
    assert (sms["encoding"], sms["parts"]) == ("gsm7", 1)
    assert sms["pdus"] == sms["recipients"] * 1
    assert zalo["text"] == ("07/12/2026: 3 ca moi tai Hạ Long, Cẩm Phả. Đeo khẩu trang. "
                            "Goi 1900 1234.")
    assert zalo["encoding"] is None


async def test_the_preview_of_a_text_naming_district_shows_each_district_s_and_the_longest(
        env: Env) -> None:
    districts = {d.id: d.name for d in env.services.province.districts.values()}
    longest = max(districts.values(), key=len)
    body = {"text": "Nguoi dan {district}: deo khau trang.", "channels": ["sms", "zalo"],
            "strip_diacritics": True}
    r = await env.client.post("/v1/preview", json=body, headers=auth("vic"))
    assert r.status_code == 200, r.text  # no situation record needed for {district}
    sms, zalo = r.json()["channels"]["sms"], r.json()["channels"]["zalo"]
    assert sms["district"] == zalo["district"] == longest
    assert sms["text"] == strip_diacritics(f"Nguoi dan {longest}: deo khau trang.")
    assert zalo["text"] == f"Nguoi dan {longest}: deo khau trang."  # the worst case
    assert sms["districts"] == {d: f"Nguoi dan {n}: deo khau trang." for d, n in
                                districts.items()}
    assert r.json()["sms"]["text"] == sms["text"]
    body = {"text": "Tai {district}: " + "x" * (160 - len("Tai : ") - len(longest) + 1),
            "max_parts": 1, "strip_diacritics": True, "selector": {"districts": ["ha-long"]}}
    r = await env.client.post("/v1/preview", json=body, headers=auth("vic"))
    assert r.status_code == 200, r.text  # Hạ Long is short enough
    assert r.json()["channels"]["sms"]["districts"].keys() == {"ha-long"}
    r = await env.client.post("/v1/preview", json={**body, "selector": {}},
                              headers=auth("vic"))
    assert r.status_code == 400, r.text
    assert r.json()["field"] == "text"
    assert r.json()["detail"].startswith(f"text: rendered for {longest}, 2 parts")


@pytest.mark.parametrize(("body", "field", "detail"), [
    ({"text": "{case} ca"}, "text", "text: unknown field {case}: a text may name"),
    ({"texts": {"sms": "Tai {district} {town}"}}, "texts.sms", "unknown field {town}"),
])
async def test_the_preview_and_a_campaign_refuse_an_unknown_field(
        env: Env, body: dict[str, Any], field: str, detail: str) -> None:
    await env.client.put("/v1/situation", json=RECORD, headers=auth("olga"))
    r = await env.client.post("/v1/preview", json=body, headers=auth("vic"))
    assert r.status_code == 400, r.text
    assert (r.json()["field"], detail in r.json()["detail"]) == (field, True)
    r = await env.client.post("/v1/campaigns", json={"title": "T", "channels": ["sms"], **body},
                              headers=auth("olga"))
    assert r.status_code == 400, r.text
    assert r.json()["field"] == "texts.sms"
    assert detail.removeprefix("text: ") in r.json()["detail"]


async def test_the_plan_view_shows_the_texts_rendered_with_the_record_in_force(env: Env) -> None:
    written = "{date}: {new_cases} ca mới tại {areas}. {advice} Gọi {hotline}."
    env.services.plan = with_sms(env.services.plan, 1, written)
    r = await env.client.get("/v1/plan", headers=auth("vic"))
    sms = r.json()["levels"][0]["channels"]["sms"]
    assert sms["template"] == written.replace("{hotline}", "1900 9095")  # as written
    assert sms["text"].startswith("{date}: {new_cases}")  # no record yet: as written
    assert (await env.client.put("/v1/situation", json=RECORD, headers=auth("olga"))).is_success
    r = await env.client.get("/v1/plan", headers=auth("vic"))
    sms = r.json()["levels"][0]["channels"]["sms"]
    assert sms["text"] == "07/12/2026: 3 ca moi tai Ha Long, Cam Pha. Deo khau trang Goi 1900 1234."
    assert (sms["encoding"], sms["parts"]) == ("gsm7", 1)


async def test_the_plan_view_shows_a_text_naming_district_in_the_longest_district(
        env: Env) -> None:
    written = "{district}: {new_cases} ca mới. Gọi {hotline}."
    env.services.plan = with_sms(env.services.plan, 1, written)
    longest = max((d.name for d in env.services.province.districts.values()), key=len)
    assert (await env.client.put("/v1/situation", json=RECORD, headers=auth("olga"))).is_success
    r = await env.client.get("/v1/plan", headers=auth("vic"))
    sms = r.json()["levels"][0]["channels"]["sms"]
    assert sms["district"] == longest
    assert sms["text"] == strip_diacritics(f"{longest}: 3 ca mới. Gọi 1900 1234.")
    assert r.json()["levels"][0]["channels"]["zalo"]["district"] is None  # not named there
