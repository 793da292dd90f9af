"""The level in force, on a real Redis: `loa level set|show` in the plan's time zone and in
both languages, and `loa plan show` marking it."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from dispatcher.service.cli import plan as plan_cli
from tests.service.test_cli_words import MONDAY_NIGHT_UTC, lines, rows, run

VN = ZoneInfo("Asia/Ho_Chi_Minh")
THU = ("Thứ Hai", "Thứ Ba", "Thứ Tư", "Thứ Năm", "Thứ Sáu", "Thứ Bảy", "Chủ Nhật")


def vi_time(iso: object) -> str:
    local = dt.datetime.fromisoformat(str(iso)).astimezone(VN)
    return f"{THU[local.weekday()]} {local:%d/%m/%Y %H:%M} (UTC+07:00)"


def en_time(iso: object) -> str:
    local = dt.datetime.fromisoformat(str(iso)).astimezone(VN)
    return f"{local:%a %d %b %Y %H:%M} (UTC+07:00)"


def utc_clock(iso: object) -> str:
    return f"{dt.datetime.fromisoformat(str(iso)).astimezone(dt.UTC):%H:%M}"


@pytest.fixture(autouse=True)
def wide_and_without_redis(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("COLUMNS", "320")
    monkeypatch.delenv("LOA_REDIS_URL", raising=False)
    monkeypatch.chdir(tmp_path)  # the audit log of --admin-direct (loa-audit.jsonl)



def set_level(capsys: pytest.CaptureFixture[str], redis_url: str, *argv: str) -> dict[str, object]:
    reason = () if "--reason" in argv else ("--reason", "r")
    status, out, err = run(capsys, "level", "set", "--admin-direct", *argv, *reason, "--redis",
                           redis_url, "--json")
    assert status == 0, err
    state: dict[str, object] = json.loads(out)
    return state


def test_level_set_prints_local_times_in_both_languages(capsys: pytest.CaptureFixture[str],
                                                        redis_url: str) -> None:
    first = set_level(capsys, redis_url, "--cases", "42", "--user", "alice", "--reason", "8h")
    since = first["since"]
    # the same level again: it is in force since the first time
    status, out, _ = run(capsys, "level", "set", "--cases", "43", "--user", "bob",
                         "--reason", "r", "--admin-direct", "--redis", redis_url)
    assert status == 0
    assert lines(out) == [f"Đang áp dụng: cấp 3 — Cấp độ III, từ {vi_time(since)}, do bob đặt "
                          "(43 ca; lý do: r)"]
    assert utc_clock(since) not in out
    status, out, _ = run(capsys, "level", "set", "--cases", "1", "--user", "bob", "--reason",
                         "báo cáo 8h", "--admin-direct", "--redis", redis_url, "--lang", "en")
    state = json.loads(run(capsys, "level", "show", "--redis", redis_url, "--json")[1])
    at = state["history"][0]["at"]
    assert lines(out) == [f"In force: level 1 — Cấp độ I, since {en_time(at)}, set by bob "
                          "(1 case; reason: báo cáo 8h)"]


def test_level_zero_says_what_it_means(capsys: pytest.CaptureFixture[str],
                                       redis_url: str) -> None:
    set_level(capsys, redis_url, "--level", "4", "--user", "alice")
    status, out, _ = run(capsys, "level", "set", "--level", "0", "--user", "bob", "--reason", "r",
                         "--admin-direct", "--redis",
                         redis_url)
    assert status == 0
    at = json.loads(run(capsys, "level", "show", "--redis", redis_url, "--json")[1])[
        "history"][0]["at"]
    assert lines(out) == [
        f"Đang áp dụng: cấp 0 — không có ca bệnh, từ {vi_time(at)}, do bob đặt (lý do: r)",
        "Cấp 0 nghĩa là không có ca bệnh trên địa bàn tỉnh: kế hoạch không lên lịch gửi tin nào, "
        "các đợt gửi của cấp độ trước (kể cả đợt đang gửi) bị huỷ.",
    ]
    status, out, _ = run(capsys, "level", "set", "--level", "0", "--user", "bob", "--reason", "r",
                         "--admin-direct", "--redis",
                         redis_url, "--lang", "en")
    assert lines(out) == [  # still level 0: in force since the first time
        f"In force: level 0 — no case, since {en_time(at)}, set by bob (reason: r)",
        "Level 0 means no case in the province: the plan schedules nothing, and the previous "
        "level's waves (those sending too) are cancelled.",
    ]


def test_level_show_names_the_level_and_prints_local_times(capsys: pytest.CaptureFixture[str],
                                                           redis_url: str) -> None:
    status, out, _ = run(capsys, "level", "show", "--redis", redis_url)
    assert (status, lines(out)) == (0, [
        "Chưa đặt cấp độ nào: cấp 0, không có ca bệnh; kế hoạch không lên lịch gửi tin nào."])
    first = set_level(capsys, redis_url, "--cases", "42", "--user", "alice", "--reason", "8h")
    second = set_level(capsys, redis_url, "--level", "4", "--user", "bob")
    status, out, _ = run(capsys, "level", "show", "--redis", redis_url)
    assert status == 0
    assert lines(out)[0] == (f"Đang áp dụng: cấp 4 — Cấp độ IV, từ {vi_time(second['since'])}, "
                             "do bob đặt (lý do: r)")
    assert rows(out) == [
        ["Thời điểm", "Cấp độ", "Số ca", "Người đặt", "Lý do"],
        [vi_time(second["at"]), "4 — Cấp độ IV", "", "bob", "r"],
        [vi_time(first["at"]), "3 — Cấp độ III", "42", "alice", "8h"],
    ]
    assert utc_clock(first["at"]) not in out
    status, out, _ = run(capsys, "level", "show", "--redis", redis_url, "--lang", "en")
    assert lines(out)[0] == (f"In force: level 4 — Cấp độ IV, since {en_time(second['since'])}, "
                             "set by bob (reason: r)")
    assert rows(out)[0] == ["When", "Level", "Cases", "Set by", "Reason"]
    assert rows(out)[2] == [en_time(first["at"]), "3 — Cấp độ III", "42", "alice", "8h"]


def test_plan_show_marks_the_level_in_force(capsys: pytest.CaptureFixture[str],
                                            redis_url: str) -> None:
    status, out, _ = run(capsys, "plan", "show", "--redis", redis_url, "--level", "3")
    assert lines(out)[5:7] == [
        "Chưa đặt cấp độ nào: cấp 0, không có ca bệnh; kế hoạch không lên lịch gửi tin nào.", ""]
    state = set_level(capsys, redis_url, "--cases", "42", "--user", "alice", "--reason",
                      "báo cáo 8h")
    status, out, _ = run(capsys, "plan", "show", "--redis", redis_url)
    assert status == 0
    assert lines(out)[5] == (f"Đang áp dụng: cấp 3 — Cấp độ III, từ {vi_time(state['since'])}, "
                             "do alice đặt (42 ca; lý do: báo cáo 8h)")
    assert [line for line in lines(out) if line.startswith("Cấp ")] == [
        "Cấp 1 — Cấp độ I: 1 ca", "Cấp 2 — Cấp độ II: từ 2 đến 10 ca",
        "Cấp 3 — Cấp độ III: từ 11 đến 150 ca — đang áp dụng", "Cấp 4 — Cấp độ IV: trên 150 ca"]
    status, out, _ = run(capsys, "plan", "show", "--redis", redis_url, "--lang", "en")
    assert lines(out)[5] == (f"In force: level 3 — Cấp độ III, since {en_time(state['since'])}, "
                             "set by alice (42 cases; reason: báo cáo 8h)")
    assert "Level 3 — Cấp độ III: 11 to 150 cases — in force" in lines(out)
    # another level shown alone: the level in force is still said, and nothing is marked
    status, out, _ = run(capsys, "plan", "show", "--redis", redis_url, "--level", "4")
    assert lines(out)[5].startswith("Đang áp dụng: cấp 3 — Cấp độ III")
    assert "đang áp dụng" not in out.split("Cấp 4", 1)[1]


def test_plan_show_finds_the_redis_as_the_other_commands_do(
        capsys: pytest.CaptureFixture[str], redis_url: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    set_level(capsys, redis_url, "--level", "0", "--user", "bob")
    config = tmp_path / "loa.toml"
    config.write_text(f'[redis]\nurl = "{redis_url}"\n', encoding="utf-8")
    status, out, _ = run(capsys, "plan", "show", "--config", str(config), "--level", "1")
    assert status == 0 and lines(out)[5].startswith("Đang áp dụng: cấp 0 — không có ca bệnh, từ ")
    assert lines(out)[6].startswith("Cấp 0 nghĩa là không có ca bệnh trên địa bàn tỉnh")
    assert "đang áp dụng" not in out.split("Cấp 1", 1)[1]
    monkeypatch.setenv("LOA_REDIS_URL", redis_url)
    status, out, _ = run(capsys, "plan", "show", "--level", "1", "--lang", "en")
    assert status == 0 and lines(out)[5].startswith("In force: level 0 — no case, since ")
    status, _, err = run(capsys, "plan", "show", "--redis", "redis://127.0.0.1:1/0")
    assert status == 3 and err.startswith("loa: error: Redis: ")


def test_plan_show_json_adds_the_level_in_force_only_with_a_redis(
        capsys: pytest.CaptureFixture[str], redis_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plan_cli, "now", lambda: MONDAY_NIGHT_UTC)
    plain = json.loads(run(capsys, "plan", "show", "--json")[1])
    assert "current_level" not in plain
    empty = json.loads(run(capsys, "plan", "show", "--json", "--redis", redis_url)[1])
    assert empty["current_level"] is None and empty["openings"] == []
    state = set_level(capsys, redis_url, "--cases", "200", "--user", "alice")
    doc = json.loads(run(capsys, "plan", "show", "--json", "--redis", redis_url,
                         "--lang", "en")[1])
    assert doc.pop("current_level") == state
    assert doc.pop("openings") == []  # no reconciler has run: nothing decided yet
    assert set(doc) == set(plain) and doc["levels"] == plain["levels"]
