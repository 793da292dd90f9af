"""The checklist over the API: a day's items at the level in force (viewers), an item marked done
with a note and taken back (operators, audited), and what is refused, naming the field."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bench import audiencegen
from dispatcher.domain.model import LevelState
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.service.audit import PENDING, read_audit
from dispatcher.service.settings import Settings
from tests.service.test_api import NOW, SIMULATED, Env, _env, auth

TODAY = "2024-03-05"  # NOW is 10:00 on Tuesday 5 March 2024 in Quảng Ninh
NOTE = {"note": "Thông cáo số 12 đã gửi 14 cơ quan báo chí"}


@pytest.fixture
async def env(tmp_path: Path, plan: Plan, province: Province,
              numbering: Numbering) -> AsyncIterator[Env]:
    audience = tmp_path / "audience.csv"
    audiencegen.generate(audience, 20, seed=5, numbering=numbering, province=province)
    async for e in _env(tmp_path, plan, province, numbering, audience,
                        Settings(channels=SIMULATED)):
        yield e


async def at_level(env: Env, level: int, at: dt.datetime = NOW - dt.timedelta(hours=1)) -> None:
    await env.services.store.level.set(LevelState(level=level, at=at, reason="test",
                                                  set_by="olga"))


async def checklist(env: Env, query: str = "") -> dict[str, Any]:
    r = await env.client.get(f"/v1/checklist{query}", headers=auth("vic"))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def item(body: dict[str, Any], item_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(i for i in body["items"] if i["id"] == item_id)
    return found


async def test_no_level_in_force_nothing_to_do(env: Env) -> None:
    body = await checklist(env)
    assert body == {"date": TODAY, "level": 0, "level_name": "", "timezone": "Asia/Ho_Chi_Minh",
                    "items": [], "due": 0, "done": 0}


async def test_a_viewer_reads_today_s_items_of_the_level_in_force(env: Env) -> None:
    await at_level(env, 2)
    body = await checklist(env)
    assert body["date"] == TODAY and body["level"] == 2 and body["level_name"] == "Cấp độ II"
    release = item(body, "L2-press-release")
    assert release["due"] and release["done"] is None and release["quantity"] == "01-03 bản/ngày"
    assert release["lead"] == "Tiểu ban Truyền thông phòng, chống dịch của tỉnh"
    assert release["coordinating"] == ["Sở Thông tin và Truyền thông", "Sở Y tế"]
    village = item(body, "L2-village-reporters")  # Monday and Thursday
    assert not village["due"] and village["next_due"] == "2024-03-07"
    assert village["cadence"] == "2/week (mon, thu)"
    assert item(body, "L2-press-conference")["cadence"] == "as needed"
    assert item(body, "L2-hotline")["carried"]
    assert body["due"] == sum(1 for i in body["items"] if i["due"]) and body["done"] == 0
    thursday = await checklist(env, "?date=2024-03-07")
    assert item(thursday, "L2-village-reporters")["due"]


async def test_an_operator_marks_an_item_done_and_takes_it_back_audited(env: Env) -> None:
    await at_level(env, 2)
    r = await env.client.post("/v1/checklist/L2-press-release/done", json=NOTE,
                              headers=auth("olga"))
    assert r.status_code == 201, r.text
    mark = r.json()
    assert mark["by"] == "olga" and mark["date"] == TODAY and mark["note"] == NOTE["note"]
    assert mark["unit"] == "Tiểu ban Truyền thông phòng, chống dịch của tỉnh"  # the lead
    body = await checklist(env)
    assert item(body, "L2-press-release")["done"] == mark and body["done"] == 1

    r = await env.client.post("/v1/checklist/L2-press-release/done",
                              json={"note": "lần hai", "unit": "Sở Y tế"}, headers=auth("olga"))
    assert r.status_code == 409
    assert "already marked done on 2024-03-05 by olga" in r.json()["detail"]
    assert "undo it first" in r.json()["detail"]

    r = await env.client.request("DELETE", "/v1/checklist/L2-press-release/done",
                                 json={"reason": "nhầm việc"}, headers=auth("olga"))
    assert r.status_code == 200, r.text
    assert r.json() == mark
    assert item(await checklist(env), "L2-press-release")["done"] is None
    r = await env.client.request("DELETE", "/v1/checklist/L2-press-release/done",
                                 json={"reason": "lần nữa"}, headers=auth("olga"))
    assert r.status_code == 404 and "is not marked done on 2024-03-05" in r.json()["detail"]

    r = await env.client.post("/v1/checklist/L2-press-release/done",
                              json={"note": "Thông cáo số 13", "unit": "Sở Y tế"},
                              headers=auth("olga"))
    assert r.status_code == 201 and r.json()["unit"] == "Sở Y tế"

    records = [x for x in read_audit(env.audit) if x.action.startswith("checklist.")]
    assert [(x.action, x.outcome.split(":")[0]) for x in records] == [
        ("checklist.done", PENDING), ("checklist.done", "ok"),
        ("checklist.done", PENDING), ("checklist.done", "StateError"),
        ("checklist.undo", PENDING), ("checklist.undo", "ok"),
        ("checklist.undo", PENDING), ("checklist.undo", "NotFound"),
        ("checklist.done", PENDING), ("checklist.done", "ok")]
    assert records[0].who == "olga" and records[0].target == "L2-press-release"
    assert records[0].detail["note"] == NOTE["note"] and records[0].detail["date"] == TODAY
    assert records[5].detail["reason"] == "nhầm việc"
    assert records[5].detail["was"]["note"] == NOTE["note"]


async def test_a_viewer_may_not_mark(env: Env) -> None:
    await at_level(env, 2)
    r = await env.client.post("/v1/checklist/L2-hotline/done", json=NOTE, headers=auth("vic"))
    assert r.status_code == 403
    r = await env.client.get("/v1/checklist", headers={})
    assert r.status_code == 401


@pytest.mark.parametrize(("path", "body", "status", "field", "words"), [
    ("/v1/checklist/L2-hotline/done", {"note": "  "}, 400, "note", "required"),
    ("/v1/checklist/L2-hotline/done", {"note": "xong", "unit": "Sở Tài chính"}, 400, "unit",
     "'Sở Tài chính' is neither the lead nor a coordinating unit of L2-hotline"),
    ("/v1/checklist/L2-hotline/done", {"note": "xong", "date": "2024-03-06"}, 400, "date",
     "2024-03-06 is a day to come"),
    ("/v1/checklist/L2-hotline/done", {"note": "xong", "date": "05/03/2024"}, 400, "date",
     "'05/03/2024' is not a date (YYYY-MM-DD)"),
    ("/v1/checklist/L2-hotline/done", {"note": "xong", "date": "2022-01-01"}, 400, "date",
     "more than 400 days ago"),
    ("/v1/checklist/L2-hotline/done", {"note": "xong", "who": "an"}, 400, None, "who"),
    ("/v1/checklist/hotline/done", NOTE, 400, "item", "not an item id"),
    ("/v1/checklist/L2-mobile-propaganda/done", NOTE, 404, None,
     "no checklist item L2-mobile-propaganda"),
    ("/v1/checklist/L3-hotline/done", NOTE, 409, None,
     "L3-hotline is not on the checklist of 2024-03-05: level 2 is in force"),
])
async def test_a_wrong_mark_is_refused_naming_the_field(
        env: Env, path: str, body: dict[str, Any], status: int, field: str | None,
        words: str) -> None:
    await at_level(env, 2)
    r = await env.client.post(path, json=body, headers=auth("olga"))
    assert r.status_code == status, r.text
    problem = r.json()
    assert words in problem["detail"] and "\n" not in problem["detail"]
    if field is not None:
        assert problem["field"] == field
    assert await env.services.store.checklist.marks(dt.date(2024, 3, 5)) == []


async def test_a_past_day_is_the_level_in_force_at_its_end(env: Env) -> None:
    await at_level(env, 1, NOW - dt.timedelta(days=3))
    await at_level(env, 3, NOW - dt.timedelta(days=1, hours=20))  # 2024-03-03 21:00 local
    await at_level(env, 2)
    assert (await checklist(env, "?date=2024-03-02"))["level"] == 1
    assert (await checklist(env, "?date=2024-03-03"))["level"] == 3
    assert (await checklist(env, "?date=2024-03-04"))["level"] == 3
    assert (await checklist(env, "?date=2024-02-01"))["level"] == 0
    assert (await checklist(env, "?date=2024-03-09"))["level"] == 2  # a day to come: now's
    r = await env.client.post("/v1/checklist/L3-hotline/done",
                              json={"note": "trực đủ 3 ca", "date": "2024-03-04"},
                              headers=auth("olga"))
    assert r.status_code == 201, r.text
    day = await checklist(env, "?date=2024-03-04")
    assert item(day, "L3-hotline")["done"]["note"] == "trực đủ 3 ca"
    assert item(await checklist(env), "L2-hotline")["done"] is None  # today is another day


async def test_a_mark_of_the_level_before_stays_on_the_day_s_list(env: Env) -> None:
    await at_level(env, 1, NOW - dt.timedelta(hours=2))
    r = await env.client.post("/v1/checklist/L1-mobile-propaganda/done",
                              json={"note": "2 buổi"}, headers=auth("olga"))
    assert r.status_code == 201, r.text
    await at_level(env, 2)
    body = await checklist(env)
    mobile = body["items"][-1]
    assert mobile["id"] == "L1-mobile-propaganda" and not mobile["in_force"]
    assert mobile["done"]["note"] == "2 buổi"


@pytest.mark.parametrize(("query", "words"), [
    ("?date=tomorrow", "'tomorrow' is not a date"),
    ("?day=2024-03-05", "unknown query parameter 'day'"),
])
async def test_a_wrong_query_is_refused(env: Env, query: str, words: str) -> None:
    r = await env.client.get(f"/v1/checklist{query}", headers=auth("vic"))
    assert r.status_code == 400 and words in r.json()["detail"]


async def test_the_plan_view_gives_each_activity_its_id_and_cadence(env: Env) -> None:
    r = await env.client.get("/v1/plan", headers=auth("vic"))
    level2 = next(lv for lv in r.json()["levels"] if lv["level"] == 2)
    village = next(a for a in level2["activities"] if a["id"] == "village-reporters")
    assert village["cadence"] == "2/week (mon, thu)" and village["on_checklist"]
    facebook = next(a for a in level2["activities"] if a["id"] == "facebook-pages")
    assert facebook["channel"] == "facebook" and facebook["carried"]
