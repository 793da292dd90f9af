"""What citizens sent, over the API: GET /v1/incoming for viewers, newest first, by channel,
page by page; bad parameters are a 400 naming the field."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dispatcher.domain.incoming import OPT_OUT, UNFOLLOW, Incoming
from dispatcher.domain.model import Channel
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.service.settings import Settings
from tests.service.test_api import (  # noqa: F401 - audience_file is a fixture
    PROBLEM_JSON,
    SIMULATED,
    Env,
    _env,
    audience_file,
    auth,
)

AT = dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.UTC)


@pytest.fixture
async def env(tmp_path: Path, plan: Plan, province: Province, numbering: Numbering,
              audience_file: Path) -> AsyncIterator[Env]:  # noqa: F811
    async for e in _env(tmp_path, plan, province, numbering, audience_file,
                        Settings(channels=SIMULATED)):
        yield e


async def fill(env: Env) -> None:
    await env.services.store.incoming.add([
        Incoming(Channel.SMS, "84912345678", AT, text="Cho hỏi", encoding="ucs2"),
        Incoming(Channel.SMS, "84912345679", AT, kind=OPT_OUT, text="Từ chối",
                 encoding="ucs2", keyword="TU CHOI"),
        Incoming(Channel.ZALO, "u-1", AT, kind=UNFOLLOW)])


async def test_a_viewer_lists_what_citizens_sent_newest_first(env: Env) -> None:
    await fill(env)
    r = await env.client.get("/v1/incoming", headers=auth("vic"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["next_cursor"] == "" and body["retention_days"] == 30
    assert [(i["channel"], i["number"], i["kind"], i["text"], i["opt_out"])
            for i in body["items"]] == [
        ("zalo", "u-1", "unfollow", "", True),
        ("sms", "84912345679", "opt_out", "Từ chối", True),
        ("sms", "84912345678", "reply", "Cho hỏi", False)]
    assert body["items"][1]["keyword"] == "TU CHOI"
    assert body["items"][1]["at"].startswith("2026-12-07T08:00:00")

    r = await env.client.get("/v1/incoming?channel=sms&limit=1", headers=auth("vic"))
    page = r.json()
    assert [i["number"] for i in page["items"]] == ["84912345679"] and page["next_cursor"]
    r = await env.client.get(f"/v1/incoming?channel=sms&limit=1&cursor={page['next_cursor']}",
                             headers=auth("vic"))
    assert [i["number"] for i in r.json()["items"]] == ["84912345678"]


async def test_bad_parameters_are_400_naming_the_field_and_a_token_is_needed(
        env: Env) -> None:
    for query, field in (("channel=fax", "channel"), ("limit=0", "limit"),
                         ("cursor=abc", "cursor")):
        r = await env.client.get(f"/v1/incoming?{query}", headers=auth("vic"))
        assert r.status_code == 400 and r.headers["content-type"] == PROBLEM_JSON, query
        assert field in r.json()["detail"] or r.json().get("field") == field, r.text
    assert (await env.client.get("/v1/incoming")).status_code == 401
