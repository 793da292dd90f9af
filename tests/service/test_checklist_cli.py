"""``loa checklist``: the day's items from Redis, ``done`` and ``undo`` through the API with a
token or with --admin-direct (audited); one-line errors naming the option, no traceback."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path

import pytest

from dispatcher.domain.model import VN, LevelState
from dispatcher.service.audit import PENDING, read_audit
from dispatcher.store import RedisStore
from tests.service.test_cli_gate import Api, api, no_api  # noqa: F401 - fixtures
from tests.service.test_cli_words import run
from tests.service.test_dead_letters_cli import admin


def at_level(url: str, level: int) -> None:
    async def go() -> None:
        store = RedisStore(url)
        try:
            await store.level.set(LevelState(level=level, at=dt.datetime.now(dt.UTC)
                                             - dt.timedelta(minutes=1)))
        finally:
            await store.aclose()
    asyncio.run(go())


def test_show_without_a_level_says_there_is_nothing(capsys: pytest.CaptureFixture[str],
                                                    redis_url: str) -> None:
    status, out, err = run(capsys, "checklist", "--redis", redis_url)
    assert status == 0, err
    assert "không có cấp độ dịch nào đang áp dụng (cấp 0), không có việc." in out


def test_mark_show_and_undo_with_admin_direct(capsys: pytest.CaptureFixture[str],
                                              redis_url: str, tmp_path: Path) -> None:
    at_level(redis_url, 2)
    today = dt.datetime.now(VN).date()
    how = admin(tmp_path)
    status, out, err = run(capsys, "checklist", "done", "L2-press-release", "--note",
                           "Thông cáo số 12", "--unit", "Sở Y tế", *how, "--redis", redis_url)
    assert status == 0, err
    assert out.strip() == (f"L2-press-release marked done ({today.isoformat()}): Sở Y tế, root "
                           "— Thông cáo số 12")
    status, out, err = run(capsys, "checklist", "--redis", redis_url, "--json")
    assert status == 0, err
    body = json.loads(out)
    assert body["level"] == 2 and body["date"] == today.isoformat() and body["done"] == 1
    release = next(i for i in body["items"] if i["id"] == "L2-press-release")
    assert release["done"]["unit"] == "Sở Y tế" and release["done"]["by"] == "root"

    status, out, _ = run(capsys, "checklist", "--redis", redis_url)
    lines = out.splitlines()
    assert lines[0].startswith("Việc cần làm ") and "cấp 2, Cấp độ II: 1/" in lines[0]
    assert "Đến hạn trong ngày:" in lines
    assert any(line.startswith("  [x] L2-press-release  Báo chí: Thông cáo báo chí")
               for line in lines)
    assert any(line.startswith("      Đã xong: Sở Y tế, root đánh dấu lúc") for line in lines)
    assert "Khi cần (không theo lịch):" in lines
    assert any(line.startswith("  [ ] L2-press-conference") for line in lines)

    status, out, _ = run(capsys, "checklist", "--redis", redis_url, "--unit", "Sở Y tế",
                         "--json")
    mine = json.loads(out)
    assert {i["lead"] for i in mine["items"]} == {"Sở Y tế"}
    assert (mine["due"], mine["done"]) == (1, 0)  # its advice channel; the release is not its

    status, out, err = run(capsys, "checklist", "undo", "L2-press-release", "--reason",
                           "nhầm", *how, "--redis", redis_url)
    assert status == 0, err
    assert out.startswith("L2-press-release mark taken back")
    records = [(r.who, r.action, r.target, r.outcome, r.detail.get("via"))
               for r in read_audit(tmp_path / "audit.jsonl")]
    assert records == [("root", f"checklist.{verb}", "L2-press-release", outcome,
                        "admin-direct") for verb in ("done", "undo")
                       for outcome in (PENDING, "ok")]


def test_mark_and_undo_through_the_api(capsys: pytest.CaptureFixture[str],
                                       api: Api) -> None:  # noqa: F811
    at_level(api.redis, 4)
    status, out, err = run(capsys, "checklist", "done", "L4-press-conference", "--note",
                           "Họp báo 15h", *api.as_("olga"), "--json")
    assert status == 0, err
    assert json.loads(out)["by"] == "olga"
    status, _, err = run(capsys, "checklist", "done", "L4-press-conference", "--note", "lại",
                         *api.as_("olga"))
    assert status == 2 and "already marked done" in err and err.count("\n") == 1
    status, _, err = run(capsys, "checklist", "undo", "L4-press-conference", "--reason",
                         "nhầm", *api.as_("olga"))
    assert status == 0, err


@pytest.mark.parametrize(("argv", "message"), [
    (("done", "L2-hotline", "--note", " "), "note: required"),
    (("done", "L2-hotline", "--note", "x", "--date", "mai"), "--date: 'mai' is not a date"),
    (("done", "L3-hotline", "--note", "x"), "L3-hotline is not on the checklist of"),
    (("done", "hotline", "--note", "x"), "item: 'hotline' is not an item id"),
    (("undo", "L2-hotline", "--reason", "x"), "L2-hotline is not marked done on"),
    (("--unit", "Sở Tài chính"), "--unit: 'Sở Tài chính' leads no item of this checklist"),
    (("--date", "26/07/2021"), "--date: '26/07/2021' is not a date (YYYY-MM-DD)"),
])
def test_errors_are_one_line(capsys: pytest.CaptureFixture[str], redis_url: str,
                             tmp_path: Path, argv: tuple[str, ...], message: str) -> None:
    at_level(redis_url, 2)
    how = admin(tmp_path) if argv[0] in ("done", "undo") else ()
    status, out, err = run(capsys, "checklist", *argv, *how, "--redis", redis_url)
    assert status in (1, 2) and out == "" and "Traceback" not in err
    assert err.count("\n") == 1 and message in err, err


def test_a_change_without_a_token_is_refused(capsys: pytest.CaptureFixture[str],
                                             redis_url: str) -> None:
    status, out, err = run(capsys, "checklist", "done", "L2-hotline", "--note", "x", "--redis",
                           redis_url)
    assert status == 2 and out == "" and "goes through the Loa API" in err
