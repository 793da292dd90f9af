"""The plan's texts over the API: an operator proposes, an approver who is not the proposer
approves or rejects (audited); the versions are listed and the plan view shows the text in
force and where it comes from."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from bench import audiencegen
from dispatcher.domain.model import Channel
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.engine import textedits
from dispatcher.service.audit import PENDING, read_audit
from dispatcher.service.auth import Role
from dispatcher.service.settings import Settings
from tests.service.test_api import NOW, SIMULATED, USERS, Env, _env, auth

TEXT = "Rua tay, deo khau trang. Goi {hotline} neu sot."


@pytest.fixture
async def env(tmp_path: Path, plan: Plan, province: Province,
              numbering: Numbering) -> AsyncIterator[Env]:
    audience = tmp_path / "audience.csv"
    audiencegen.generate(audience, 30, seed=5, numbering=numbering, province=province)
    async for e in _env(tmp_path, plan, province, numbering, audience,
                        Settings(channels=SIMULATED)):
        yield e


async def propose(env: Env, user: str = "olga", **body: Any) -> Any:
    doc = {"level": 4, "channel": "sms", "text": TEXT, "reason": "hotline staff ask", **body}
    return await env.client.post("/v1/plan/texts", json=doc, headers=auth(user))


def approvers() -> list[str]:
    return [u for u, r in USERS.items() if r is Role.APPROVER]


async def test_proposed_approved_listed_and_in_force_in_the_plan_view(env: Env,
                                                                      plan: Plan) -> None:
    r = await propose(env, "vic")
    assert r.status_code == 403
    r = await propose(env)
    assert r.status_code == 201, r.text
    version = r.json()
    assert version["state"] == "proposed" and version["proposed_by"] == "olga"
    assert version["replaces"] == "" and "+Rua tay" in version["diff"]
    r = await env.client.post(f"/v1/plan/texts/{version['id']}/approve", headers=auth("olga"))
    assert r.status_code == 403  # the operator role may not approve
    approver = approvers()[0]
    r = await env.client.post(f"/v1/plan/texts/{version['id']}/approve",
                              json={"reason": "checked with the hotline"},
                              headers=auth(approver))
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "approved" and r.json()["decided_by"] == approver
    r = await env.client.post(f"/v1/plan/texts/{version['id']}/reject", headers=auth(approver))
    assert r.status_code == 409
    r = await env.client.get("/v1/plan", headers=auth("vic"))
    row = next(lv for lv in r.json()["levels"] if lv["level"] == 4)["channels"]["sms"]
    assert (row["origin"], row["version"]) == ("approved", version["id"])
    assert row["template"] == TEXT.replace("{hotline}", plan.hotline)
    other = next(lv for lv in r.json()["levels"] if lv["level"] == 4)["channels"]["zalo"]
    assert (other["origin"], other["version"]) == ("file", None)
    r = await env.client.get("/v1/plan/texts?level=4&channel=sms", headers=auth("vic"))
    assert [v["id"] for v in r.json()["versions"]] == [version["id"]]
    assert r.json()["versions"][0]["decision_reason"] == "checked with the hotline"
    r = await env.client.get("/v1/plan/texts?level=3", headers=auth("vic"))
    assert r.json() == {"versions": [], "next_cursor": ""}
    actions = [(x.action, x.outcome.split(":")[0]) for x in read_audit(env.audit)
               if x.outcome != PENDING and x.action.startswith("plan_text.")]
    assert actions == [("plan_text.propose", "ok"), ("plan_text.approve", "ok"),
                       ("plan_text.reject", "StateError")]


async def test_the_proposer_cannot_approve_but_may_withdraw(env: Env) -> None:
    approver = approvers()[0]
    r = await propose(env, approver)  # an approver may do what an operator does
    assert r.status_code == 201, r.text
    version = r.json()
    r = await env.client.post(f"/v1/plan/texts/{version['id']}/approve", headers=auth(approver))
    assert r.status_code == 403
    assert "another user" in r.json()["detail"]
    r = await env.client.post(f"/v1/plan/texts/{version['id']}/reject", headers=auth(approver))
    assert r.status_code == 200 and r.json()["state"] == "rejected"


async def test_a_bad_text_is_refused_naming_the_field(env: Env) -> None:
    r = await propose(env, text="Rua tay thuong xuyen.")
    assert r.status_code == 400
    problem = r.json()
    assert problem["field"] == "text" and "{hotline}" in problem["detail"]
    r = await propose(env, channel="email", text="Goi {hotline}.", subject="Tin {nope}")
    assert r.status_code == 400 and r.json()["field"] == "subject"
    r = await env.client.post("/v1/plan/texts/txt-nope/approve", headers=auth(approvers()[0]))
    assert r.status_code == 404


async def test_the_versions_come_in_pages_by_level_channel_and_state(env: Env) -> None:
    approver = approvers()[0]
    ids = []
    for n in range(5):
        r = await propose(env, text=f"Ban tin {n}. Goi {{hotline}}.",
                          channel="sms" if n % 2 else "zalo")
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    r = await env.client.post(f"/v1/plan/texts/{ids[1]}/reject",
                              json={"reason": "sai so"}, headers=auth(approver))
    assert r.status_code == 200, r.text
    r = await env.client.get("/v1/plan/texts", headers=auth("vic"))
    newest = [v["id"] for v in r.json()["versions"]]  # the default limit holds them
    assert sorted(newest) == sorted(ids) and r.json()["next_cursor"] == ""
    seen, cursor = [], ""
    for _ in range(5):
        r = await env.client.get(f"/v1/plan/texts?limit=2&cursor={cursor}", headers=auth("vic"))
        assert r.status_code == 200, r.text
        assert len(r.json()["versions"]) <= 2
        seen += [v["id"] for v in r.json()["versions"]]
        cursor = r.json()["next_cursor"]
        if not cursor:
            break
    assert seen == newest  # (the test's clock stands still: by id)
    r = await env.client.get("/v1/plan/texts?channel=sms&state=proposed", headers=auth("vic"))
    assert [v["id"] for v in r.json()["versions"]] == [ids[3]]
    r = await env.client.get("/v1/plan/texts?state=rejected", headers=auth("vic"))
    [rejected] = r.json()["versions"]
    assert (rejected["id"], rejected["decided_by"], rejected["decision_reason"]) == (
        ids[1], approver, "sai so")


@pytest.mark.parametrize(("query", "field"), [
    ("limit=0", "limit"),
    ("limit=501", "limit"),
    ("state=gone", "state"),
    ("cursor=abc", "cursor"),
    ("cursor=txt-20261207000000-abcdef", "cursor"),  # a well-formed id no page gave
    ("level=0", "level"),
    ("page=2", None),
])
async def test_a_bad_page_query_is_refused_naming_it(env: Env, query: str,
                                                     field: str | None) -> None:
    r = await env.client.get(f"/v1/plan/texts?{query}", headers=auth("vic"))
    assert r.status_code == 400, r.text
    problem = r.json()
    assert "\n" not in problem["detail"]
    if field is not None:
        assert problem.get("field") == field or field in problem["detail"], problem
    else:
        assert "page" in problem["detail"]


async def test_the_plan_view_shows_an_approved_text_the_plan_refuses_and_why(
        tmp_path: Path, plan: Plan, province: Province, numbering: Numbering) -> None:
    audience = tmp_path / "audience.csv"
    audiencegen.generate(audience, 30, seed=5, numbering=numbering, province=province)
    capped = msgspec.structs.replace(plan, sms_max_parts=1)  # restarted with a lower cap
    two_parts = "Rua tay, deo khau trang, giu khoang cach. " * 4 + "Goi {hotline} neu sot."
    async for env in _env(tmp_path, capped, province, numbering, audience,
                          Settings(channels=SIMULATED)):
        store = env.services.store  # approved under the plan before the restart
        version = await textedits.propose(store, plan, level=4, channel=Channel.SMS,
                                          text=two_parts, by="olga", now=NOW)
        await textedits.approve(store, plan, version.id, by="carol", now=NOW)
        r = await env.client.get("/v1/plan", headers=auth("vic"))
        assert r.status_code == 200, r.text
        row = next(lv for lv in r.json()["levels"] if lv["level"] == 4)["channels"]["sms"]
        assert (row["origin"], row["version"]) == ("file", None)
        assert row["template"] == plan.levels[4].rules[Channel.SMS].row.template
        assert row["refused"]["version"] == version.id
        assert row["refused"]["reason"].startswith("text: ")
        assert "sms_max_parts 1" in row["refused"]["reason"]
        zalo = next(lv for lv in r.json()["levels"] if lv["level"] == 4)["channels"]["zalo"]
        assert zalo["refused"] is None
