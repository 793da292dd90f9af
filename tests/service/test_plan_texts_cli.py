"""``loa plan texts``: propose through the API with a token, approve by another user, list from
Redis; --admin-direct writes Redis with an audit record; one-line errors, no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dispatcher.domain.config import default_path
from dispatcher.service.audit import PENDING, read_audit
from tests.service.test_cli_gate import Api, api, no_api  # noqa: F401 - fixtures
from tests.service.test_cli_words import run

TEXT = "Rua tay, deo khau trang. Goi {hotline} neu sot."


def test_propose_approve_and_list_through_the_api(capsys: pytest.CaptureFixture[str],
                                                  api: Api) -> None:  # noqa: F811
    status, out, err = run(capsys, "plan", "texts", "propose", "--level", "4", "--channel",
                           "sms", "--text", TEXT, "--reason", "hotline", *api.as_("olga"),
                           "--json")
    assert status == 0, err
    version = json.loads(out)
    assert version["proposed_by"] == "olga" and version["state"] == "proposed"
    status, _, err = run(capsys, "plan", "texts", "approve", version["id"], *api.as_("olga"))
    assert status == 2 and err.count("\n") == 1 and "Traceback" not in err
    status, out, err = run(capsys, "plan", "texts", "approve", version["id"], "--reason", "ok",
                           *api.as_("carol"))
    assert status == 0, err
    assert version["id"] in out and "approved by carol" in out
    status, out, err = run(capsys, "plan", "texts", "list", "--level", "4", "--redis",
                           api.redis, "--json")
    assert status == 0, err
    assert [v["state"] for v in json.loads(out)["versions"]] == ["approved"]
    status, out, err = run(capsys, "plan", "show", "--level", "4", "--redis", api.redis,
                           "--json")
    assert status == 0, err
    row = json.loads(out)["levels"][0]["channels"]["sms"]
    assert (row["origin"], row["version"]) == ("approved", version["id"])
    assert row["template"].startswith("Rua tay, deo khau trang. Goi ")
    status, out, err = run(capsys, "plan", "show", "--level", "4", "--json")
    assert json.loads(out)["levels"][0]["channels"]["sms"]["origin"] == "file"  # no Redis
    status, _, err = run(capsys, "plan", "texts", "propose", "--level", "4", "--channel", "sms",
                         "--text", "Khong co so", *api.as_("olga"))
    assert status == 2 and err.count("\n") == 1 and "text" in err and "{hotline}" in err


def test_admin_direct_is_audited(capsys: pytest.CaptureFixture[str], redis_url: str,
                                 tmp_path: Path) -> None:
    config = tmp_path / "loa.toml"
    audit = tmp_path / "audit.jsonl"
    config.write_text(f'[api]\naudit_log = "{audit}"\n', encoding="utf-8")

    def direct(user: str) -> tuple[str, ...]:
        return ("--admin-direct", "--user", user, "--config", str(config), "--redis",
                redis_url)

    status, out, err = run(capsys, "plan", "texts", "propose", "--level", "3", "--channel",
                           "sms", "--text", TEXT, *direct("root"), "--json")
    assert status == 0, err
    version = json.loads(out)["id"]
    status, _, err = run(capsys, "plan", "texts", "reject", version, *direct("bob"))
    assert status == 0, err
    status, out, _ = run(capsys, "plan", "texts", "list", "--redis", redis_url, "--diff")
    assert "rejected by bob" in out and "+Rua tay" in out
    records = [(r.action, r.outcome) for r in read_audit(audit)]
    assert records == [(action, outcome) for action in ("plan_text.propose", "plan_text.reject")
                       for outcome in (PENDING, "ok")]


def test_list_pages_with_a_cursor_and_filters(capsys: pytest.CaptureFixture[str],
                                              redis_url: str, tmp_path: Path) -> None:
    config = tmp_path / "loa.toml"
    config.write_text(f'[api]\naudit_log = "{tmp_path / "audit.jsonl"}"\n', encoding="utf-8")
    direct = ("--admin-direct", "--config", str(config), "--redis", redis_url)
    ids = []
    for n in range(3):
        status, out, err = run(capsys, "plan", "texts", "propose", "--level", "3", "--channel",
                               "sms", "--text", f"Tin {n}. Goi {{hotline}}.", "--user", "root",
                               *direct, "--json")
        assert status == 0, err
        ids.append(json.loads(out)["id"])
    status, _, err = run(capsys, "plan", "texts", "reject", ids[0], "--reason", "trung lap",
                         "--user", "bob", *direct)
    assert status == 0, err
    status, out, err = run(capsys, "plan", "texts", "list", "--redis", redis_url, "--json")
    newest = [v["id"] for v in json.loads(out)["versions"]]
    assert sorted(newest) == sorted(ids) and json.loads(out)["next_cursor"] == ""
    seen, cursor = [], ""
    for _ in range(4):
        status, out, err = run(capsys, "plan", "texts", "list", "--redis", redis_url,
                               "--limit", "2", *(("--cursor", cursor) if cursor else ()))
        assert status == 0, err
        seen += [line.split()[0] for line in out.splitlines() if line.startswith("txt-")]
        more = [line for line in out.splitlines() if line.startswith("more: --cursor ")]
        if not more:
            break
        cursor = more[0].removeprefix("more: --cursor ")
    assert seen == newest
    status, out, err = run(capsys, "plan", "texts", "list", "--redis", redis_url, "--state",
                           "rejected")
    assert status == 0, err
    assert ids[0] in out and "rejected because: trung lap" in out and ids[1] not in out
    for bad, words in ((("--limit", "0"), "--limit"),
                       (("--cursor", "txt-20261207000000-abcdef"), "cursor")):
        status, _, err = run(capsys, "plan", "texts", "list", "--redis", redis_url, *bad)
        assert status == 2 and err.count("\n") == 1 and words in err and "Traceback" not in err


def test_plan_show_says_which_approved_text_the_plan_refuses(
        capsys: pytest.CaptureFixture[str], redis_url: str, tmp_path: Path) -> None:
    config = tmp_path / "loa.toml"
    config.write_text(f'[api]\naudit_log = "{tmp_path / "audit.jsonl"}"\n', encoding="utf-8")
    direct = ("--admin-direct", "--config", str(config), "--redis", redis_url)
    two_parts = "Rua tay, deo khau trang, giu khoang cach. " * 4 + "Goi {hotline} neu sot."
    status, out, err = run(capsys, "plan", "texts", "propose", "--level", "2", "--channel",
                           "sms", "--text", two_parts, "--user", "root", *direct, "--json")
    assert status == 0, err
    version = json.loads(out)["id"]
    status, _, err = run(capsys, "plan", "texts", "approve", version, "--user", "bob", *direct)
    assert status == 0, err
    capped = tmp_path / "plan.toml"  # the file changed: one part per SMS
    capped.write_text(default_path("plan.toml").read_text(encoding="utf-8").replace(
        "sms_max_parts = 3", "sms_max_parts = 1"), encoding="utf-8")
    status, out, err = run(capsys, "plan", "show", "--level", "2", "--plan", str(capped),
                           "--redis", redis_url, "--json")
    assert status == 0, err
    row = json.loads(out)["levels"][0]["channels"]["sms"]
    assert row["origin"] == "file" and row["refused"]["version"] == version
    status, out, err = run(capsys, "plan", "show", "--level", "2", "--plan", str(capped),
                           "--redis", redis_url, "--lang", "en")
    assert status == 0, err
    assert f"the approved text {version} no longer fits the plan" in out
    assert "sms_max_parts 1" in out
