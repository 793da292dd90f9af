"""Lists of numbers over the API: POST /v1/lists (CSV or a JSON array, streamed past the body
limit, rejected rows reported by line, 413 beyond the caps), GET /v1/lists/{id}, and campaigns
to a list: an unknown list is a 400 naming the field, the list's size decides the approval; a
list removed after [lists] retention_days is 404 and a campaign naming it 400."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from dispatcher.domain import numberlist
from dispatcher.domain.errors import TooLarge
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.engine.retention import Retention
from dispatcher.service.api import lists
from dispatcher.service.audit import PENDING, read_audit
from dispatcher.service.settings import EngineSettings, Settings
from tests.service.test_api import (  # noqa: F401 - audience_file is a fixture
    ASCII,
    PROBLEM_JSON,
    SIMULATED,
    Env,
    _env,
    audience_file,
    auth,
)

CSV = {"Content-Type": "text/csv"}


@pytest.fixture
async def env(tmp_path: Path, plan: Plan, province: Province, numbering: Numbering,
              audience_file: Path) -> AsyncIterator[Env]:  # noqa: F811
    """Campaigns above 10 recipients need approval; bodies above 16 KiB are refused."""
    settings = Settings(engine=EngineSettings(approval_threshold=10), channels=SIMULATED)
    async for e in _env(tmp_path, plan, province, numbering, audience_file, settings):
        yield e


def numbers(n: int, start: int = 0) -> list[str]:
    return [f"0912 {i // 1000:03d} {i % 1000:03d}" for i in range(start, start + n)]


async def upload(env: Env, body: bytes, content_type: str = "text/csv", user: str = "olga",
                 query: str = "?name=quan-bar") -> dict[str, Any]:
    r = await env.client.post(f"/v1/lists{query}", content=body,
                              headers={**auth(user), "Content-Type": content_type})
    assert r.status_code == 201, r.text
    answer: dict[str, Any] = r.json()
    return answer


async def test_a_csv_list_is_checked_by_line_and_stored_beside_the_audience(env: Env) -> None:
    body = (b"msisdn,name\n"
            b"0912 000 001,An\n"
            b"+84 912 000 002,Binh\n"
            b"024 3825 1234,landline\n"
            b"0912000001,again\n"
            b"\n"
            b"0987 65,short\n")
    report = await upload(env, body)
    assert (report["rows"], report["valid"], report["duplicates"], report["rejected"]) == \
        (5, 2, 1, 2)
    assert [(r["line"], r["duplicate"]) for r in report["rejects"]] == \
        [(4, False), (5, True), (7, False)]
    assert report["rejects"][0]["reason"].startswith("msisdn:")
    assert report["rejects"][0]["fields"] == ["024 3825 1234", "landline"]
    assert report["ignored_columns"] == ["name"] and report["format"] == "csv"
    assert report["by_district"] == {"(none)": 2} and sum(report["by_carrier"].values()) == 2
    assert report["id"].startswith("l-") and report["name"] == "quan-bar"
    r = await env.client.get(f"/v1/lists/{report['id']}", headers=auth("vic"))
    assert r.status_code == 200 and r.json()["recipients"] == 2
    assert r.json()["name"] == "quan-bar"
    store = env.services.store
    current = await store.audiences.meta()
    assert current is not None and current.version != report["id"]  # the province's stays
    assert await store.recipients.find(report["id"], "84912000002") == 1  # the lookup's index


async def test_a_json_array_is_checked_item_by_item(env: Env) -> None:
    body = b'["0912000001", 84912000002, null, "12", true, "0912 000 001"]'
    report = await upload(env, body, "application/json")
    assert (report["rows"], report["valid"], report["duplicates"], report["rejected"]) == \
        (6, 2, 1, 3)
    assert [(r["line"], r["fields"]) for r in report["rejects"]] == \
        [(3, ["null"]), (4, ["12"]), (5, ["true"]), (6, ["0912 000 001"])]
    assert report["format"] == "json"
    same = await upload(env, body, "application/json; charset=utf-8")
    assert same["id"] == report["id"]  # the same bytes: the same list


async def test_a_list_streams_past_the_body_limit(env: Env) -> None:
    body = ("msisdn\n" + "\n".join(numbers(3000)) + "\n").encode()
    assert len(body) > env.services.api.request_max_body_size
    report = await upload(env, body)
    assert report["valid"] == 3000 and report["rejected"] == 0


async def test_over_the_caps_is_413_and_nothing_is_stored(
        env: Env, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(lists, "MAX_BYTES", 100)
    body = ("msisdn\n" + "\n".join(numbers(20)) + "\n").encode()
    r = await env.client.post("/v1/lists", content=body, headers={**auth("olga"), **CSV})
    assert r.status_code == 413 and r.headers["content-type"] == PROBLEM_JSON
    assert "100 a list may take" in r.json()["detail"] and r.json()["field"] == "body"

    class Chunked:  # a body without Content-Length: counted as it comes
        def __init__(self) -> None:
            self.headers: dict[str, str] = {}

        async def stream(self) -> AsyncIterator[bytes]:
            for _ in range(20):
                yield b"0912000001\n"

    with pytest.raises(TooLarge, match="more than the 100 bytes"):
        await lists._receive(Chunked(), tmp_path / "body", "csv")  # type: ignore[arg-type]
    monkeypatch.setattr(lists, "MAX_BYTES", 10_000)
    monkeypatch.setattr(lists, "MAX_ROWS", 5)
    monkeypatch.setattr(numberlist, "MAX_ROWS", 5)
    r = await env.client.post("/v1/lists", content=body, headers={**auth("olga"), **CSV})
    assert r.status_code == 413 and "more than 5 rows" in r.json()["detail"]
    r = await env.client.post("/v1/lists", json=numbers(6), headers=auth("olga"))
    assert r.status_code == 413 and "more than 5 rows" in r.json()["detail"]
    records = [r for r in read_audit(env.audit)
               if r.action == "list.upload" and r.outcome != PENDING]
    assert [r.outcome.split(":")[0] for r in records] == ["TooLarge"]  # the JSON one, read


async def test_bad_uploads_are_one_line_400s(env: Env) -> None:
    cases = [
        (b"name\nAn\n", "text/csv", "no msisdn column"),
        (b"", "text/csv", "empty"),
        (b'{"numbers": []}', "application/json", "not an array"),
        (b"[1, 2", "application/json", "not JSON"),
        (b'["12", "34"]', "application/json", "no valid number"),
        (b"msisdn\n0912000001\n", "application/pdf", "is not text/csv"),
        ("msisdn\n0912000001\n".encode("utf-16"), "text/csv", "UTF-16"),
        (b"PK\x03\x04" + bytes(200), "text/csv", "ZIP archive"),
    ]
    for body, media, words in cases:
        r = await env.client.post("/v1/lists", content=body,
                                  headers={**auth("olga"), "Content-Type": media})
        assert r.status_code == 400, (words, r.text)
        problem = r.json()
        assert words in problem["detail"] and "\n" not in problem["detail"], problem
        assert "/tmp" not in problem["detail"] and "loa-list-" not in problem["detail"]
        assert problem["field"] in ("body", "content-type")
    r = await env.client.post("/v1/lists", content=b"msisdn\n0912000001\n",
                              headers={**auth("vic"), **CSV})
    assert r.status_code == 403
    r = await env.client.get("/v1/lists/l-0000", headers=auth("vic"))
    assert r.status_code == 404 and "no list 'l-0000'" in r.json()["detail"]


async def test_a_campaign_to_a_list_is_priced_and_approved_on_the_list(env: Env) -> None:
    small = await upload(env, ("msisdn\n" + "\n".join(numbers(5)) + "\n").encode())
    big = await upload(env, ("msisdn\n" + "\n".join(numbers(40)) + "\n").encode())
    r = await env.client.get("/v1/lists?limit=5", headers=auth("vic"))
    assert r.status_code == 200
    assert {(i["id"], i["recipients"]) for i in r.json()} == {(small["id"], 5), (big["id"], 40)}
    created = await env.create(audience_list=small["id"])
    assert (created["state"], created["audience_size"]) == ("approved", 5)
    assert created["audience_list"] == small["id"]
    created = await env.create(audience_list=big["id"])  # the threshold is 10
    assert (created["state"], created["audience_size"]) == ("pending_approval", 40)
    r = await env.client.post(f"/v1/campaigns/{created['id']}/approve", headers=auth("olga"))
    assert r.status_code == 403
    r = await env.client.post(f"/v1/campaigns/{created['id']}/approve", headers=auth("carol"))
    assert r.status_code == 200 and r.json()["state"] == "approved"
    r = await env.client.post("/v1/preview", headers=auth("vic"),
                              json={"text": ASCII, "audience_list": big["id"]})
    assert r.status_code == 200 and r.json()["sms"]["recipients"] == 40
    records = [r for r in read_audit(env.audit) if r.outcome != PENDING]
    uploads = [r for r in records if r.action == "list.upload"]
    assert [r.target for r in uploads] == [small["id"], big["id"]]
    assert uploads[1].detail["valid"] == 40 and uploads[1].who == "olga"


async def test_a_campaign_to_an_unknown_list_is_400_naming_the_field(env: Env) -> None:
    doc = {"title": "x", "channels": ["sms"], "text": ASCII}
    for value in ("l-0123456789abcdef", "not-a-list"):
        r = await env.client.post("/v1/campaigns", headers=auth("olga"),
                                  json={**doc, "audience_list": value})
        assert r.status_code == 400 and r.json()["field"] == "audience_list", r.text
        assert "upload it first" in r.json()["detail"]
    listed = await upload(env, b"msisdn\n0912000001\n")
    r = await env.client.post("/v1/campaigns", headers=auth("olga"), json={
        **doc, "audience_list": listed["id"], "selector": {"kinds": ["resident"]}})
    assert r.status_code == 400 and r.json()["field"] == "selector"


async def test_a_list_removed_after_its_retention_is_404_and_refused_to_a_campaign(
        env: Env) -> None:
    old = await upload(env, ("msisdn\n" + "\n".join(numbers(3)) + "\n").encode())
    used = await upload(env, ("msisdn\n" + "\n".join(numbers(3, start=10)) + "\n").encode())
    await env.create(audience_list=used["id"])  # approved: not yet final
    settings = env.services.settings
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=settings.lists.retention_days + 1)
    pruned = await Retention(env.services.store, settings, name="engine").tick(later)
    assert pruned.lists == [old["id"]]
    r = await env.client.get(f"/v1/lists/{old['id']}", headers=auth("vic"))
    assert r.status_code == 404
    assert r.json()["detail"] == (
        f"no list {old['id']!r}: never uploaded, or removed 30 days after its upload ([lists] "
        "retention_days) once no campaign in progress named it")
    r = await env.client.post("/v1/campaigns", headers=auth("olga"), json={
        "title": "x", "channels": ["sms"], "text": ASCII, "audience_list": old["id"]})
    assert r.status_code == 400 and r.json()["field"] == "audience_list", r.text
    assert "retention_days" in r.json()["detail"]
    r = await env.client.get(f"/v1/lists/{used['id']}", headers=auth("vic"))
    assert r.status_code == 200 and r.json()["recipients"] == 3
    assert [i["id"] for i in (await env.client.get("/v1/lists", headers=auth("vic"))).json()
            ] == [used["id"]]
