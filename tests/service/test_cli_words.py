"""What `loa plan show` and `loa plan level` say to operators: Vietnamese by default, English
with `--lang en`, times in the plan's time zone (the level in force: test_cli_level.py)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from dispatcher.service.cli import main
from dispatcher.service.cli import plan as plan_cli

#: Monday 7 December 2026, 23:30 UTC: already Tuesday 8 December, 06:30, in Quảng Ninh.
MONDAY_NIGHT_UTC = dt.datetime(2026, 12, 7, 23, 30, tzinfo=dt.UTC)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def lines(out: str) -> list[str]:
    return [line.rstrip() for line in out.splitlines()]


def rows(out: str) -> list[list[str]]:
    """The cells of every line of a table: its headings and its rows."""
    return [[cell.strip() for cell in re.split("[│┃]", line)[1:-1]]
            for line in out.splitlines() if line.startswith(("│", "┃"))]


def bullets(out: str, heading: str) -> list[str]:
    """The items listed under ``heading``, one per line (a line longer than the terminal
    goes on, indented, on the next)."""
    found = lines(out)
    items: list[str] = []
    for line in found[found.index(heading) + 1:]:
        if line.startswith("  • "):
            items.append(line.removeprefix("  • "))
        elif line.startswith("    ") and items:
            items[-1] += " " + line.strip()
        else:
            break
    return items


@pytest.fixture(autouse=True)
def wide_and_without_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "320")
    monkeypatch.delenv("LOA_REDIS_URL", raising=False)


@pytest.fixture
def monday_night(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plan_cli, "now", lambda: MONDAY_NIGHT_UTC)


# -- loa plan show, without a Redis ------------------------------------------------------------


def test_plan_show_speaks_vietnamese_by_default(capsys: pytest.CaptureFixture[str],
                                                monday_night: None) -> None:
    status, out, err = run(capsys, "plan", "show")
    assert status == 0 and err == ""
    assert lines(out)[:3] == [
        "Kịch bản truyền thông phòng, chống dịch Covid-19 tỉnh Quảng Ninh",
        "Nguồn: Sở Thông tin và Truyền thông Quảng Ninh, Hướng dẫn truyền thông phòng, chống "
        "dịch Covid-19 (2021), mục V",
        "Múi giờ Asia/Ho_Chi_Minh (UTC+07:00); giờ gửi 07:00–21:00, tin khẩn gửi ngay; lần gửi "
        "bị lỡ được gửi bù trong 60 phút",
    ]
    titles = [line for line in lines(out) if line.startswith("Cấp ")]
    assert titles == ["Cấp 1 — Cấp độ I: 1 ca", "Cấp 2 — Cấp độ II: từ 2 đến 10 ca",
                      "Cấp 3 — Cấp độ III: từ 11 đến 150 ca", "Cấp 4 — Cấp độ IV: trên 150 ca"]
    assert rows(out).count(["Kênh", "Tần suất", "Lịch gửi", "Lần gửi tới", "Đơn vị chủ trì"]) == 4
    sms = [row for row in rows(out) if row[0] == "SMS"]
    assert sms == [
        ["SMS", "1 lần/tuần", "Thứ Ba hằng tuần lúc 09:30", "Thứ Ba 08/12/2026 09:30",
         "Các doanh nghiệp viễn thông"],
        ["SMS", "2 lần/tuần", "Thứ Hai và Thứ Năm hằng tuần lúc 09:30",
         "Thứ Năm 10/12/2026 09:30", "Các doanh nghiệp viễn thông"],
        ["SMS", "3 ngày/lần", "mỗi 3 ngày lúc 09:30", "Thứ Năm 10/12/2026 09:30",
         "Các doanh nghiệp viễn thông"],
        ["SMS", "1 lần/ngày", "hằng ngày lúc 09:30", "Thứ Ba 08/12/2026 09:30",
         "Các doanh nghiệp viễn thông"],
    ]
    assert ["", "theo văn bản: 03 ngày/lần", "", "", ""] in rows(out)
    assert ["Zalo", "5 lần/ngày", "hằng ngày lúc 07:30, 10:30, 13:30, 16:30, 19:30",
            "Thứ Ba 08/12/2026 07:30", "Trung tâm Công nghệ thông tin và Truyền thông"] in rows(out)
    assert ["Thư điện tử", "3 lần/ngày", "hằng ngày lúc 08:00, 12:00, 17:00",
            "Thứ Ba 08/12/2026 08:00", "Trung tâm Công nghệ thông tin và Truyền thông"] in rows(out)
    for english in ("Level", "cases", "Channel", "Next send", "daily", "Source", "characters"):
        assert english not in out


def test_plan_show_in_english(capsys: pytest.CaptureFixture[str], monday_night: None) -> None:
    status, out, _ = run(capsys, "plan", "show", "--lang", "en")
    assert status == 0
    assert lines(out)[2] == ("Time zone Asia/Ho_Chi_Minh (UTC+07:00); sending hours 07:00-21:00, "
                             "urgent notices at once; missed slots caught up for 60 minutes")
    titles = [line for line in lines(out) if line.startswith("Level ")]
    assert titles == ["Level 1 — Cấp độ I: 1 case", "Level 2 — Cấp độ II: 2 to 10 cases",
                      "Level 3 — Cấp độ III: 11 to 150 cases",
                      "Level 4 — Cấp độ IV: more than 150 cases"]
    assert [row for row in rows(out) if row[0] == "SMS"] == [
        ["SMS", "once a week", "every Tuesday at 09:30", "Tue 08 Dec 2026 09:30",
         "Các doanh nghiệp viễn thông"],
        ["SMS", "twice a week", "every Monday and Thursday at 09:30", "Thu 10 Dec 2026 09:30",
         "Các doanh nghiệp viễn thông"],
        ["SMS", "once every 3 days", "every 3 days at 09:30", "Thu 10 Dec 2026 09:30",
         "Các doanh nghiệp viễn thông"],
        ["SMS", "once a day", "daily at 09:30", "Tue 08 Dec 2026 09:30",
         "Các doanh nghiệp viễn thông"],
    ]
    assert ["", "source: 04-06 lần/ngày", "", "", ""] in rows(out)
    assert ["Zalo", "5 times a day", "daily at 07:30, 10:30, 13:30, 16:30, 19:30",
            "Tue 08 Dec 2026 07:30", "Trung tâm Công nghệ thông tin và Truyền thông"] in rows(out)
    for vietnamese in ("Cấp 1", "Kênh", "Lần gửi tới", "hằng ngày", "Nguồn", "ký tự"):
        assert vietnamese not in out
    assert run(capsys, "plan", "show", "--lang", "vi")[1] == run(capsys, "plan", "show")[1]


def test_next_sends_are_local_times_not_utc(capsys: pytest.CaptureFixture[str],
                                            monday_night: None) -> None:
    # 09:30 in Quảng Ninh is 02:30 UTC; the UTC date is still Monday the 7th at 23:30
    status, out, _ = run(capsys, "plan", "show", "--level", "1")
    assert status == 0
    sms = next(row for row in rows(out) if row[0] == "SMS")
    assert sms[3] == "Thứ Ba 08/12/2026 09:30"
    assert "02:30" not in out and "07/12/2026" not in out


def test_messages_as_sent_and_activities_one_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "plan", "show", "--level", "3")
    assert status == 0
    messages = bullets(out, "Nội dung tin, như khi gửi:")
    assert [m.split(" (")[0] for m in messages] == ["SMS", "Zalo", "Thư điện tử",
                                                    "Ứng dụng Smart Quảng Ninh", "Facebook",
                                                    "Cổng thông tin", "Loa thông minh",
                                                    "Tin nhắn quảng bá theo vùng"]
    # an outlet's message says where it is published: here nowhere, no [facebook] is given
    assert messages[4].startswith("Facebook (") and "; chưa cấu hình nơi đăng): " in messages[4]
    assert messages[0] == ("SMS (GSM7, 1 tin SMS, bỏ dấu; phối hợp: Phòng Bưu chính - Viễn "
                           "thông): Quang Ninh: dich Covid-19 dien bien phuc tap. Khong tu tap, "
                           "deo khau trang, khai bao y te. Sot, ho, kho tho: goi ngay y te xa, "
                           "phuong hoac 1900 9095.")
    assert messages[2].startswith("Thư điện tử (313 ký tự; phối hợp: Phòng Thông tin - Báo chí - "
                                  "Xuất bản): Kính gửi cán bộ")
    activities = bullets(out, "Việc do các đơn vị thực hiện (Loa không gửi; việc cần làm mỗi "
                              "ngày: loa checklist):")
    assert [a.split()[0] for a in activities] == [
        "L3-press-briefing", "L3-press-release", "L3-press-print", "L3-press-broadcast",
        "L3-press-conference", "L3-loudspeakers", "L3-village-reporters",
        # carried on from level 2
        "L3-press-monitoring", "L3-portal-section", "L3-social-media", "L3-facebook-pages",
        "L3-department-portals", "L3-hotline", "L3-youtube", "L3-documents", "L3-advice-channel"]
    assert activities[1] == (
        "L3-press-release Báo chí: Thông cáo báo chí về tình hình và các giải pháp phòng, chống "
        "dịch — 02 bản/ngày (hằng ngày). Chủ trì: Phòng Thông tin - Báo chí - Xuất bản; phối "
        "hợp: Sở Y tế, Trung tâm Truyền thông tỉnh.")
    assert f"  • {activities[1]}" in lines(out)  # on a line of its own
    assert "02 ngày/lần/thôn, tổ dân phố (2 ngày/lần)." in activities[6]
    assert "(khi cần)" in activities[4]
    assert activities[12].endswith("Tiếp tục từ cấp dưới (bảng của cấp này không nêu).")
    assert activities[10].endswith("Loa gửi qua kênh Facebook: không có trong việc cần làm.")
    assert "Loa gửi qua kênh Cổng thông tin: không có trong việc cần làm." in activities[8]
    status, out, _ = run(capsys, "plan", "show", "--level", "1", "--lang", "en")
    messages = bullets(out, "Messages, as sent:")
    assert messages[0].startswith("SMS (GSM7, 1 part, diacritics stripped; with Phòng Bưu chính "
                                  "- Viễn thông): Quang Ninh ghi nhan ca mac")
    assert messages[2].startswith("E-mail (344 characters): Kính gửi")  # no coordinating unit
    activities = bullets(out, "Done by people, on the daily checklist (Loa does not send these; "
                              "loa checklist):")
    assert len(activities) == 17
    assert activities[14] == ("L1-hotline Tổng đài: Tiếp nhận, giải đáp, chuyển xử lý và phản "
                              "hồi phản ánh của người dân về phòng, chống dịch — Hằng ngày "
                              "(daily). Lead: Tổng đài tiếp nhận và giải đáp dịch bệnh; with Sở "
                              "Y tế.")
    assert "(1 a week: Monday)" in activities[13]


def test_a_level_of_one_count_is_a_case_not_cases(capsys: pytest.CaptureFixture[str],
                                                  tmp_path: Path) -> None:
    text = Path("config/plan.toml").read_text(encoding="utf-8")
    plan = tmp_path / "plan.toml"
    plan.write_text(text.replace("min_cases = 2\nmax_cases = 10", "min_cases = 2\nmax_cases = 2")
                    .replace("min_cases = 11", "min_cases = 3"), encoding="utf-8")
    status, out, err = run(capsys, "plan", "show", "--plan", str(plan), "--lang", "en")
    assert status == 0, err
    titles = [line for line in lines(out) if line.startswith("Level ")]
    assert titles[:3] == ["Level 1 — Cấp độ I: 1 case", "Level 2 — Cấp độ II: 2 cases",
                          "Level 3 — Cấp độ III: 3 to 150 cases"]


# -- loa plan level ----------------------------------------------------------------------------


@pytest.mark.parametrize(("cases", "vi", "en"), [
    ("0", "0 ca: cấp 0 (không có ca bệnh trên địa bàn tỉnh; kế hoạch không lên lịch gửi tin nào)",
     "0 cases: level 0 (no case in the province; the plan schedules nothing)"),
    ("1", "1 ca: cấp 1 (Cấp độ I: Phát hiện trường hợp đầu tiên nhiễm Covid-19 trên địa bàn tỉnh)",
     "1 case: level 1 (Cấp độ I: Phát hiện trường hợp đầu tiên nhiễm Covid-19 trên địa bàn tỉnh)"),
    ("2", "2 ca: cấp 2 (Cấp độ II: Phát hiện đến 10 trường hợp mắc dịch bệnh tại Quảng Ninh)",
     "2 cases: level 2 (Cấp độ II: Phát hiện đến 10 trường hợp mắc dịch bệnh tại Quảng Ninh)"),
    ("1500", "1.500 ca: cấp 4 (Cấp độ IV: Dịch lây lan rộng trên địa bàn tỉnh với trên 150 "
             "trường hợp mắc)",
     "1,500 cases: level 4 (Cấp độ IV: Dịch lây lan rộng trên địa bàn tỉnh với trên 150 "
     "trường hợp mắc)"),
])
def test_plan_level_in_both_languages(capsys: pytest.CaptureFixture[str], cases: str, vi: str,
                                      en: str) -> None:
    assert run(capsys, "plan", "level", "--cases", cases) == (0, vi + "\n", "")
    assert run(capsys, "plan", "level", "--cases", cases, "--lang", "en") == (0, en + "\n", "")


def test_an_unknown_language_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["plan", "show", "--lang", "fr"])
    assert exc.value.code == 2
    assert "invalid choice: 'fr'" in capsys.readouterr().err


def test_other_cadences_in_words(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    text = Path("config/plan.toml").read_text(encoding="utf-8")
    plan = tmp_path / "plan.toml"
    plan.write_text(text.replace('slots = ["mon 09:30", "thu 09:30"]',
                                 'slots = ["mon 09:30", "thu 14:00"]')
                    .replace('period_days = 3\nslots = ["09:30"]',
                             'period_days = 3\nslots = ["09:30", "+2 14:00"]'), encoding="utf-8")
    sms = {}
    for lang in ("vi", "en"):
        status, out, err = run(capsys, "plan", "show", "--plan", str(plan), "--lang", lang)
        assert status == 0, err
        sms[lang] = [row[1:3] for row in rows(out) if row[0] == "SMS"][1:3]
    assert sms["vi"] == [["2 lần/tuần", "hằng tuần: Thứ Hai 09:30, Thứ Năm 14:00"],
                         ["2 lần/3 ngày", "mỗi 3 ngày: ngày thứ 1 lúc 09:30, ngày thứ 3 lúc 14:00"]]
    assert sms["en"] == [["twice a week", "weekly: Monday 09:30, Thursday 14:00"],
                         ["twice every 3 days", "every 3 days: day 1 at 09:30, day 3 at 14:00"]]
