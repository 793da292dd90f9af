"""The suppression lists over the API: operators list, export (CSV), add and remove with a
reason (audited); viewers are refused; a bad number is a 400 naming the field; the recipient
lookup shows the number's entries; a public-safety campaign says so in the preview and the
audit log."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dispatcher.domain.model import Channel
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.domain.suppression import Suppression
from dispatcher.service.audit import PENDING, read_audit
from dispatcher.service.settings import Settings
from tests.service.test_api import (  # noqa: F401 - audience_file is a fixture
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


async def test_an_operator_adds_lists_and_removes_with_audit(env: Env) -> None:
    r = await env.client.post("/v1/suppressions", headers=auth("olga"), json={
        "channel": "sms", "number": "0912 345 678", "reason": "asked at the hotline"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["channel"], body["number"], body["reason"], body["source"], body["by"]) == (
        "sms", "84912345678", "asked at the hotline", "operator", "olga")
    await env.services.store.suppressions.add([
        Suppression(Channel.SMS, "84912000001", 'keyword "TU CHOI"', 5.0, source="opt_out")])
    r = await env.client.get("/v1/suppressions", params={"channel": "sms", "limit": "1"},
                             headers=auth("olga"))
    assert r.status_code == 200, r.text
    first = r.json()
    assert first["total"] == 2 and [e["number"] for e in first["entries"]] == ["84912000001"]
    r = await env.client.get("/v1/suppressions", headers=auth("olga"), params={
        "channel": "sms", "cursor": first["next_cursor"]})
    assert [e["number"] for e in r.json()["entries"]] == ["84912345678"]
    assert r.json()["next_cursor"] == ""

    r = await env.client.request("DELETE", "/v1/suppressions/sms/0912345678",
                                 headers=auth("olga"), json={"reason": "entered by mistake"})
    assert r.status_code == 200, r.text
    assert r.json()["number"] == "84912345678"
    r = await env.client.request("DELETE", "/v1/suppressions/sms/0912345678",
                                 headers=auth("olga"), json={"reason": "again"})
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM_JSON
    records = [(x.who, x.action, x.target, x.outcome, x.detail) for x in read_audit(env.audit)
               if x.action.startswith("suppression.")]
    assert records[:3] == [
        ("olga", "suppression.add", "sms:84912345678", PENDING,
         {"channel": "sms", "number": "84912345678", "reason": "asked at the hotline"}),
        ("olga", "suppression.add", "sms:84912345678", "ok",
         {"channel": "sms", "number": "84912345678", "reason": "asked at the hotline"}),
        ("olga", "suppression.remove", "sms:84912345678", PENDING,
         {"channel": "sms", "number": "84912345678", "reason": "entered by mistake"})]
    _who, action, _target, outcome, detail = records[3]
    assert (action, outcome, detail["reason"]) == ("suppression.remove", "ok",
                                                   "entered by mistake")
    assert (detail["was"]["reason"], detail["was"]["source"]) == ("asked at the hotline",
                                                                  "operator")
    assert records[5][3].startswith("NotFound")


async def test_viewers_are_refused_and_bad_input_names_the_field(env: Env) -> None:
    for method, path, body in (
            ("GET", "/v1/suppressions?channel=sms", None),
            ("GET", "/v1/suppressions.csv", None),
            ("POST", "/v1/suppressions", {"channel": "sms", "number": "0912345678",
                                          "reason": "x"}),
            ("DELETE", "/v1/suppressions/sms/0912345678", {"reason": "x"})):
        r = await env.client.request(method, path, json=body, headers=auth("vic"))
        assert r.status_code == 403, (method, path)
    cases = [
        ({"channel": "sms", "number": "0203 123 456", "reason": "x"}, "number", "landline"),
        ({"channel": "sms", "number": "abc", "reason": "x"}, "number", "character"),
        ({"channel": "email", "number": "not-an-address", "reason": "x"}, "number", "e-mail"),
        ({"channel": "sms", "number": "0912345678", "reason": "   "}, "reason", ""),
        ({"channel": "fax", "number": "0912345678", "reason": "x"}, "channel", ""),
    ]
    for doc, field, words in cases:
        r = await env.client.post("/v1/suppressions", json=doc, headers=auth("olga"))
        assert r.status_code == 400, doc
        assert r.headers["content-type"] == PROBLEM_JSON
        assert r.json()["field"] == field, r.text
        assert words in r.json()["detail"], r.text
    r = await env.client.request("DELETE", "/v1/suppressions/fax/0912345678",
                                 headers=auth("olga"), json={"reason": "x"})
    assert r.status_code == 400 and r.json()["field"] == "channel"
    r = await env.client.request("DELETE", "/v1/suppressions/sms/12", headers=auth("olga"),
                                 json={"reason": "x"})
    assert r.status_code == 400 and r.json()["field"] == "number"
    r = await env.client.get("/v1/suppressions", headers=auth("olga"))
    assert r.status_code == 400 and r.json()["field"] == "channel"
    assert await env.services.store.suppressions.count(Channel.SMS) == 0


async def test_the_list_exports_as_csv(env: Env) -> None:
    store = env.services.store
    await store.suppressions.add(
        [Suppression(Channel.SMS, f"849120{i:05d}", "=HYPERLINK(1)" if i == 3 else "opt-out",
                     1765000000.0 + i, source="opt_out") for i in range(1500)]
        + [Suppression(Channel.ZALO, "1234567890123", "zalo unfollow", 1765000000.0,
                       source="opt_out")])
    for path, params in (("/v1/suppressions.csv", {"channel": "sms"}),):
        r = await env.client.get(path, params=params, headers=auth("olga"))
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(r.text)))
        assert rows[0] == ["channel", "number", "reason", "at", "source", "by", "wave"]
        assert len(rows) == 1 + 1500
        assert rows[1] == ["sms", "84912000000", "opt-out", "2025-12-06T05:46:40+00:00",
                           "opt_out", "", ""]
        assert rows[4][2] == "'=HYPERLINK(1)"  # shown as text by a spreadsheet
    r = await env.client.get("/v1/suppressions.csv", headers=auth("olga"))
    rows = list(csv.reader(io.StringIO(r.text)))
    assert len(rows) == 1 + 1501 and rows[-1][:2] == ["zalo", "1234567890123"]


async def test_the_recipient_lookup_shows_the_numbers_entries(env: Env) -> None:
    store = env.services.store
    meta = await store.audiences.meta()
    assert meta is not None
    (chunk,) = await store.audiences.chunks(meta.version, [meta.groups[0].chunks[0]])
    number = chunk.recipients[0].msisdn
    await store.suppressions.add([Suppression(Channel.SMS, number, "asked", 2.0, by="olga")])
    r = await env.client.get(f"/v1/recipients/{number}", headers=auth("vic"))
    assert r.status_code == 200, r.text
    assert [(e["channel"], e["reason"]) for e in r.json()["suppressed"]] == [("sms", "asked")]


async def test_a_public_safety_campaign_is_shown_in_the_preview_and_the_audit(env: Env) -> None:
    await env.services.store.suppressions.add(
        [Suppression(Channel.SMS, "84912000001", "asked", 1.0)])
    r = await env.client.post("/v1/preview", headers=auth("olga"), json={
        "text": "Canh bao", "channels": ["sms"], "public_safety": True})
    assert r.status_code == 200, r.text
    assert r.json()["public_safety"] is True and r.json()["suppressed"] == {"sms": 1}
    created = await env.create(public_safety=True, text="Canh bao lu quet")
    assert created["public_safety"] is True
    (record,) = [x for x in read_audit(env.audit)
                 if x.action == "campaign.create" and x.outcome == PENDING]
    assert record.detail["public_safety"] is True
