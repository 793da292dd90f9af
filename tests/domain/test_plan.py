"""The plan from the source document: levels, cadences, due slots, and errors for broken files."""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import tomllib
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from dispatcher.domain import smstext, template
from dispatcher.domain.config import default_path
from dispatcher.domain.errors import ConfigError, InputError
from dispatcher.domain.model import PERSONAL, Channel
from dispatcher.domain.plan import (
    Plan,
    due_slots,
    level_for_cases,
    load_plan,
    next_slot,
    plan_from_dict,
)

VN = ZoneInfo("Asia/Ho_Chi_Minh")


def raw_plan() -> dict[str, Any]:
    with default_path("plan.toml").open("rb") as f:
        return tomllib.load(f)


@pytest.mark.parametrize(
    ("cases", "level"),
    [(0, 0), (1, 1), (2, 2), (10, 2), (11, 3), (150, 3), (151, 4), (1_000_000, 4)],
)
def test_level_for_cases_follows_section_v(plan: Plan, cases: int, level: int) -> None:
    assert level_for_cases(plan, cases) == level
    assert plan.level_for_cases(cases) == level


def test_negative_cases_are_refused(plan: Plan) -> None:
    with pytest.raises(InputError, match="negative"):
        plan.level_for_cases(-1)


def test_thresholds_cover_every_count(plan: Plan) -> None:
    bounds = [(lv.min_cases, lv.max_cases) for lv in plan.levels.values()]
    assert bounds == [(1, 1), (2, 10), (11, 150), (151, None)]


@pytest.mark.parametrize(
    ("channel", "per_week"),
    [
        (Channel.SMS, [1, 2, 7 / 3, 7]),
        (Channel.ZALO, [7, 14, 21, 35]),
        (Channel.EMAIL, [7, 14, 21, 35]),
        (Channel.APP, [7, 14, 21, 35]),
    ],
)
def test_cadence_per_level(plan: Plan, channel: Channel, per_week: list[float]) -> None:
    got = [plan.level(n).rules[channel].cadence.sends_per_week for n in (1, 2, 3, 4)]
    assert got == pytest.approx(per_week)


def test_level_four_zalo_is_within_the_source_range(plan: Plan) -> None:
    rule = plan.level(4).rules[Channel.ZALO]
    assert rule.row.sends_range == [4, 6]
    assert 4 <= len(rule.cadence.slots) <= 6


def test_every_row_names_its_lead_and_every_slot_is_in_sending_hours(plan: Plan) -> None:
    start, end = plan.sending_hours
    assert (start, end) == (dt.time(7), dt.time(21))
    for level in plan.levels.values():
        assert set(level.rules) == {*PERSONAL, Channel.FACEBOOK, Channel.LOUDSPEAKER,
                                    Channel.PORTAL, Channel.CELL_BROADCAST}
        for rule in level.rules.values():
            assert rule.row.lead
            assert rule.row.template.strip()
            for _, time in rule.cadence.slots:
                assert start <= time < end


def test_the_loudspeakers_speak_as_often_as_the_source_says(plan: Plan) -> None:
    """The grassroots radio's row of section V: 2 a day at level 1, 2-4 at level 2, at least 3
    at level 3, 4 at level 4, each bulletin giving the hotline."""
    sends = {n: len(plan.level(n).rules[Channel.LOUDSPEAKER].cadence.slots) for n in (1, 2, 3, 4)}
    assert sends == {1: 2, 2: 3, 3: 3, 4: 4}
    for n in (1, 2, 3, 4):
        row = plan.level(n).rules[Channel.LOUDSPEAKER].row
        assert "{hotline}" not in row.template and "1900 9095" in row.template
        assert row.lead.startswith("Trung tâm TT&VH")


def test_unknown_level_is_an_input_error(plan: Plan) -> None:
    with pytest.raises(InputError, match="level 7 is not in the plan"):
        plan.level(7)


def test_daily_sms_at_level_four(plan: Plan) -> None:
    start = dt.datetime(2026, 11, 26, 0, 0, tzinfo=VN)
    slots = due_slots(plan, 4, Channel.SMS, start, start + dt.timedelta(days=1))
    assert [s.at for s in slots] == [dt.datetime(2026, 11, 26, 9, 30, tzinfo=VN)]
    assert slots[0].id == "L4-sms-20261126T0930"
    assert slots[0].level == 4 and slots[0].channel is Channel.SMS


def test_twice_weekly_sms_falls_on_monday_and_thursday(plan: Plan) -> None:
    start = dt.datetime(2026, 11, 23, tzinfo=VN)  # a Monday
    slots = due_slots(plan, 2, Channel.SMS, start, start + dt.timedelta(days=14))
    assert [s.at.strftime("%a %d %H:%M") for s in slots] == [
        "Mon 23 09:30", "Thu 26 09:30", "Mon 30 09:30", "Thu 03 09:30"]


def test_every_three_days_is_evenly_spaced_and_anchored(plan: Plan) -> None:
    start = dt.datetime(2026, 1, 1, tzinfo=VN)
    slots = due_slots(plan, 3, Channel.SMS, start, start + dt.timedelta(days=30))
    assert len(slots) == 10
    gaps = {b.at - a.at for a, b in itertools.pairwise(slots)}
    assert gaps == {dt.timedelta(days=3)}
    assert all((s.at.date() - plan.anchor).days % 3 == 0 for s in slots)


def test_range_is_half_open_and_ids_are_stable(plan: Plan) -> None:
    at = dt.datetime(2026, 11, 26, 9, 30, tzinfo=VN)
    assert [s.at for s in due_slots(plan, 4, Channel.SMS, at, at + dt.timedelta(minutes=1))] == [at]
    assert due_slots(plan, 4, Channel.SMS, at - dt.timedelta(hours=1), at) == []
    utc = at.astimezone(dt.UTC)
    again = due_slots(plan, 4, Channel.SMS, utc, utc + dt.timedelta(minutes=1))
    assert [s.id for s in again] == ["L4-sms-20261126T0930"]


def test_five_zalo_sends_a_day_at_level_four(plan: Plan) -> None:
    start = dt.datetime(2026, 11, 26, tzinfo=VN)
    slots = due_slots(plan, 4, Channel.ZALO, start, start + dt.timedelta(days=2))
    assert len(slots) == 10
    assert len({s.id for s in slots}) == 10
    assert slots == sorted(slots)
    assert all(plan.in_sending_hours(s.at) for s in slots)


def test_next_slot_and_naive_times(plan: Plan) -> None:
    after = dt.datetime(2026, 11, 26, 9, 31, tzinfo=VN)
    nxt = next_slot(plan, 4, Channel.SMS, after)
    assert nxt is not None and nxt.at == dt.datetime(2026, 11, 27, 9, 30, tzinfo=VN)
    with pytest.raises(ValueError, match="timezone-aware"):
        due_slots(plan, 4, Channel.SMS, dt.datetime(2026, 1, 1), dt.datetime(2026, 1, 2))


def test_app_follows_zalo_cadence(plan: Plan) -> None:
    for level in plan.levels.values():
        assert level.rules[Channel.APP].cadence == level.rules[Channel.ZALO].cadence
        assert level.rules[Channel.APP].row.follows is Channel.ZALO


def _broken(change: Any) -> ConfigError:
    data = copy.deepcopy(raw_plan())
    change(data)
    with pytest.raises(ConfigError) as info:
        plan_from_dict(data, source="plan.toml")
    return info.value


def _set(path: list[Any], value: Any) -> Any:
    def change(data: Any) -> None:
        target = data
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value
    return change


@pytest.mark.parametrize(
    ("path", "value", "key", "words"),
    [
        (["levels", 0, "min_cases"], "one", "levels[0].min_cases", "Expected `int`"),
        (["levels", 1, "min_cases"], 3, "levels[1].min_cases", "without gaps"),
        (["levels", 3, "max_cases"], 500, "levels[3].max_cases", "no upper bound"),
        (["levels", 0, "level"], 2, "levels[0].level", "expected level 1"),
        (["levels", 3, "channels", "sms", "slots"], ["23:00"], "levels[3].channels.sms.slots[0]",
         "outside the sending hours"),
        (["levels", 3, "channels", "sms", "slots"], ["25:00"], "levels[3].channels.sms.slots[0]",
         "not a time"),
        (["levels", 2, "channels", "sms", "slots"], ["mon 09:30"],
         "levels[2].channels.sms.slots[0]", "period_days = 7"),
        (["levels", 3, "channels", "zalo", "slots"], ["08:00", "12:00", "16:00"],
         "levels[3].channels.zalo.sends_range", "4-6"),
        (["levels", 3, "channels", "zalo", "period_days"], 0,
         "levels[3].channels.zalo.period_days", "between 1 and 366"),
        (["levels", 0, "channels", "sms", "colour"], "red", "levels[0].channels.sms",
         "unknown field `colour`"),
        (["levels", 0, "channels", "sms", "template"], "{hotline} " + "Khẩn " * 10000,
         "levels[0].channels.sms.template", "more than the limit of 255"),
        (["levels", 0, "channels", "sms", "template"], "Gọi trạm y tế.",
         "levels[0].channels.sms.template", "must give the hotline: write {hotline}"),
        (["levels", 1, "channels", "zalo", "template"], "Gọi {hotline} hoặc {tram_y_te}.",
         "levels[1].channels.zalo.template",
         "unknown field {tram_y_te}: a text may name {cases}, {new_cases}, {areas}, {hotline}, "
         "{date}"),
        (["levels", 1, "channels", "sms", "template"], "Gọi {hotline} {}",
         "levels[1].channels.sms.template", "unknown field {}"),
        (["levels", 2, "channels", "app", "template"], "Gọi {hotline} {",
         "levels[2].channels.app.template", "a brace without its pair"),
        (["levels", 3, "channels", "email", "subject"], "[Cấp độ IV] {level}",
         "levels[3].channels.email.subject", "unknown field {level}"),
        (["levels", 3, "channels", "sms", "template"], "Goi {hotline}\u200b ngay",
         "levels[3].channels.sms.template", "U+200B ZERO WIDTH SPACE at character 14"),
        (["levels", 1, "channels", "zalo", "template"], "Gọi \u202e{hotline}",
         "levels[1].channels.zalo.template", "U+202E RIGHT-TO-LEFT OVERRIDE at character 5"),
        (["levels", 3, "channels", "email", "subject"], "Khẩn\x1b[2J",
         "levels[3].channels.email.subject", "U+001B at character 5 is a control character"),
        (["levels", 1, "channels", "sms", "template"], "Tại {town}: gọi {hotline}",
         "levels[1].channels.sms.template", "unknown field {town}: a text may name"),
        (["situation_fields"], ["cases"], "situation_fields", "{cases} is a field of every"),
        (["situation_fields"], ["Khuyen-cao"], "situation_fields", "is not a field name"),
        (["hotline"], "", "hotline", "is empty"),
        (["hotline"], "gọi 115", "hotline", "is not a telephone number"),
        (["sms_diacritics"], "none", "sms_diacritics", 'must be "strip" or "keep", not \'none\''),
        (["levels", 2, "sms_diacritics"], "yes", "levels[2].sms_diacritics",
         'must be "strip" or "keep"'),
        (["sms_max_parts"], 0, "sms_max_parts", "must be 1 to 10, not 0"),
        (["sms_max_parts"], 11, "sms_max_parts", "must be 1 to 10, not 11"),
        (["timezone"], "Asia/Hanoi_Nowhere", "timezone", "unknown time zone"),
        (["sending_hours"], ["21:00", "07:00"], "sending_hours", "before end"),
        (["sending_hours"], ["24:00", "24:00"], "sending_hours[0]", "not a time (HH:MM, 24-hour)"),
        (["sending_hours"], ["07:00", "24:01"], "sending_hours[1]", "or 24:00 for the end"),
    ],
)
def test_broken_plan_names_the_key(path: list[Any], value: Any, key: str, words: str) -> None:
    error = _broken(_set(path, value))
    assert error.key == key
    assert words in str(error)
    assert str(error).startswith(f"plan.toml: {key}: ")


def test_texts_may_name_the_situation_fields_rendered_when_the_wave_is_made() -> None:
    data = copy.deepcopy(raw_plan())
    data["situation_fields"] = ["advice"]
    written = "{date}: {new_cases} ca moi, tong {cases}, tai {areas}. {advice}. Goi {hotline}."
    data["levels"][1]["channels"]["sms"]["template"] = written
    plan = plan_from_dict(data, source="plan.toml")
    row = plan.level(2).rules[Channel.SMS].row
    assert row.written == written
    assert row.template == written.replace("{hotline}", "1900 9095")
    assert plan.situation_fields == ("advice",)


def test_sending_hours_may_run_to_the_end_of_the_day() -> None:
    data = copy.deepcopy(raw_plan())
    data["sending_hours"] = ["00:00", "24:00"]
    data["levels"][3]["channels"]["sms"]["slots"] = ["23:59"]
    plan = plan_from_dict(data, source="plan.toml")
    assert plan.hours_text == ("00:00", "24:00")
    tz = plan.tz
    assert plan.in_sending_hours(dt.datetime(2026, 11, 26, 23, 59, 30, tzinfo=tz))
    assert plan.in_sending_hours(dt.datetime(2026, 11, 27, 0, 0, tzinfo=tz))
    slot = next_slot(plan, 4, Channel.SMS, dt.datetime(2026, 11, 26, 12, 0, tzinfo=tz))
    assert slot is not None and slot.at == dt.datetime(2026, 11, 26, 23, 59, tzinfo=tz)
    assert load_plan().hours_text == ("07:00", "21:00")


def test_follows_a_missing_channel() -> None:
    def change(data: Any) -> None:
        del data["levels"][0]["channels"]["zalo"]
    error = _broken(change)
    assert error.key in {"levels[0].channels.email.follows", "levels[0].channels.app.follows"}
    assert "no zalo channel" in str(error)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_plan(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("levels = [\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_plan(bad)
    latin = tmp_path / "latin.toml"
    latin.write_bytes("name = 'Qu\u1ea3ng'".encode("utf-16"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_plan(latin)


# -- the texts: hotline, SMS diacritics, parts ------------------------------------------------

HOTLINE = "1900 9095"


def _sms(plan: Plan, level: int) -> smstext.Segmented:
    row = plan.level(level).rules[Channel.SMS].row
    return smstext.segment(row.template, strip=row.strip_diacritics)


def test_sms_diacritics_are_stripped_for_the_whole_plan_by_default(plan: Plan) -> None:
    assert plan.sms_diacritics == "strip" and plan.sms_max_parts == 3
    for level in plan.levels.values():
        assert level.sms_diacritics == "strip"
        for channel, rule in level.rules.items():
            assert rule.row.strip_diacritics is (channel is Channel.SMS), (level.level, channel)
    data = copy.deepcopy(raw_plan())
    del data["sms_diacritics"], data["sms_max_parts"]
    assert plan_from_dict(data).levels == plan.levels  # the defaults are what the file says


def test_a_level_may_keep_diacritics_and_the_plan_may_keep_them_all() -> None:
    data = copy.deepcopy(raw_plan())
    data["levels"][3]["sms_diacritics"] = "keep"
    plan = plan_from_dict(data)
    assert [plan.level(n).sms_diacritics for n in (1, 2, 3, 4)] == ["strip"] * 3 + ["keep"]
    assert [plan.level(n).rules[Channel.SMS].row.strip_diacritics for n in (1, 2, 3, 4)] == [
        True, True, True, False]
    kept = _sms(plan, 4)
    assert kept.encoding is smstext.Encoding.UCS2 and kept.text.startswith("KHẨN:")
    assert len(kept.parts) == 3

    data["sms_diacritics"] = "keep"
    data["levels"][0]["sms_diacritics"] = "strip"
    plan = plan_from_dict(data)
    assert plan.sms_diacritics == "keep"
    assert [plan.level(n).sms_diacritics for n in (1, 2, 3, 4)] == ["strip"] + ["keep"] * 3
    assert [_sms(plan, n).encoding.value for n in (1, 2, 3, 4)] == [
        "gsm7", "ucs2", "ucs2", "ucs2"]


@pytest.mark.parametrize(("level", "channel"), [(0, "sms"), (1, "sms"), (3, "zalo")])
def test_the_old_row_key_is_refused_naming_what_replaced_it(level: int, channel: str) -> None:
    error = _broken(_set(["levels", level, "channels", channel, "strip_diacritics"], True))
    assert error.key == f"levels[{level}].channels.{channel}.strip_diacritics"
    assert str(error) == (
        f"plan.toml: levels[{level}].channels.{channel}.strip_diacritics: is no longer a key of "
        'a row: SMS diacritics are set for the whole plan with sms_diacritics = "strip" or '
        f'"keep" at the top of the file, or for one level with levels[{level}].sms_diacritics')


def test_the_old_row_key_is_refused_in_a_file(tmp_path: Path) -> None:
    text = default_path("plan.toml").read_text(encoding="utf-8")
    old = tmp_path / "plan.toml"
    old.write_text(text.replace("slots = [\"09:30\"]\n", "slots = [\"09:30\"]\n"
                                "strip_diacritics = false\n", 1), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_plan(old)
    assert str(info.value).startswith(
        f"{old}: levels[2].channels.sms.strip_diacritics: is no longer a key of a row")


def test_the_hotline_is_filled_in_when_the_plan_is_loaded(plan: Plan) -> None:
    assert plan.hotline == HOTLINE
    for level in plan.levels.values():
        for channel, rule in level.rules.items():
            # every field filled in but {district}, which each wave renders per district
            shown = rule.row.template + rule.row.subject
            assert set(template.names(shown)) <= {"district"}, (level.level, channel)
        assert HOTLINE in level.rules[Channel.SMS].row.template
        assert HOTLINE in level.rules[Channel.ZALO].row.template
        assert HOTLINE in level.rules[Channel.APP].row.template
        assert HOTLINE in _sms(plan, level.level).text  # stripping keeps the number
    data = copy.deepcopy(raw_plan())
    data["hotline"] = "0203.3825.555"
    other = plan_from_dict(data)
    assert all("0203.3825.555" in lv.rules[Channel.SMS].row.template
               for lv in other.levels.values())
    assert HOTLINE not in other.level(4).rules[Channel.SMS].row.template


def test_every_shipped_sms_is_one_gsm7_part(plan: Plan) -> None:
    for level in plan.levels.values():
        seg = _sms(plan, level.level)
        assert seg.encoding is smstext.Encoding.GSM7, level.level
        assert len(seg.parts) == 1 and seg.units <= 160, (level.level, seg.units)
    assert _sms(plan, 4).text.startswith("KHAN: ")
    assert plan.level(4).rules[Channel.SMS].row.template.startswith("KHẨN: ")


def test_the_texts_say_what_is_known_and_what_to_do(plan: Plan) -> None:
    for channel, rule in plan.level(4).rules.items():
        text = rule.row.template.lower()
        assert "ở nhà khi không" not in text, channel
        if channel is not Channel.EMAIL:
            assert "chỉ ra ngoài khi thật cần thiết" in text, channel
    for channel, rule in plan.level(2).rules.items():
        text = rule.row.template
        assert "cộng đồng" not in text and "đến 10 ca" not in text, channel
    assert "ghi nhận thêm ca mắc Covid-19" in plan.level(2).rules[Channel.EMAIL].row.template


def test_an_sms_over_sms_max_parts_is_refused() -> None:
    data = copy.deepcopy(raw_plan())
    data["levels"][3]["sms_diacritics"] = "keep"  # 151 characters of UCS-2: 3 parts
    data["sms_max_parts"] = 2
    with pytest.raises(ConfigError) as info:
        plan_from_dict(data, source="plan.toml")
    assert str(info.value) == ("plan.toml: levels[3].channels.sms.template: 3 parts (UCS-2, "
                               "151 characters) is more than sms_max_parts 2")
    data["sms_max_parts"] = 3
    assert plan_from_dict(data).sms_max_parts == 3
    data["levels"][0]["channels"]["sms"]["template"] += " Khai báo y tế tại tokhaiyte.vn." * 10
    with pytest.raises(ConfigError) as info:
        plan_from_dict(data)
    assert info.value.key == "levels[0].channels.sms.template"
    assert "4 parts (GSM-7" in str(info.value)
    assert str(info.value).endswith("is more than sms_max_parts 3")


def test_the_hotline_is_needed_only_when_a_text_gives_it() -> None:
    data = copy.deepcopy(raw_plan())
    del data["hotline"]
    with pytest.raises(ConfigError) as info:
        plan_from_dict(data)
    assert info.value.key == "hotline" and "is empty" in str(info.value)
    for level in data["levels"]:
        level["channels"] = {c: row for c, row in level["channels"].items()
                             if c not in ("sms", "email", "app", "facebook", "portal",
                                          "loudspeaker", "cell_broadcast")}
        level["channels"]["zalo"]["template"] = "Đeo khẩu trang."
    assert plan_from_dict(data).hotline == ""


def test_docs_show_every_shipped_text_as_the_plan_has_it(plan: Plan) -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "plan.md").read_text("utf-8")
    for level in plan.levels.values():
        for channel, rule in level.rules.items():
            assert f"> {rule.row.template}\n" in docs, (level.level, channel)
            assert rule.row.subject in docs, (level.level, channel)
        seg = _sms(plan, level.level)
        assert f"> as sent: `{seg.text}`\n" in docs, level.level
        assert (f"| {level.level} | GSM-7, {len(seg.text)} characters, 1 part | UCS-2, 3 parts |"
                in docs), level.level
