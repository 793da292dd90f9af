"""The plan's work for people: the activities' cadences, the checklist of a day, the marks, the
reminder's text, and the plan file's activities (ids, cadences, carried on, sent by a channel)."""

from __future__ import annotations

import copy
import datetime as dt
import re
from pathlib import Path
from typing import Any

import msgspec
import pytest

from dispatcher.domain import checklist, reminder
from dispatcher.domain.activity import Cadence, cadence_of, parse, spread
from dispatcher.domain.checklist import Done
from dispatcher.domain.errors import ConfigError, InputError, NotFound
from dispatcher.domain.model import Channel
from dispatcher.domain.plan import Plan, plan_from_dict
from tests.domain.test_plan import raw_plan

ANCHOR = dt.date(2021, 1, 4)  # the shipped cycle_anchor, a Monday
MONDAY = dt.date(2021, 7, 26)
AT = dt.datetime(2021, 7, 26, 2, 15, tzinfo=dt.UTC)  # 09:15 in Quảng Ninh


def fail(key: str, message: str) -> ConfigError:
    return ConfigError(message, key=key)


@pytest.mark.parametrize(("n", "weekdays"), [
    (1, (0,)), (2, (0, 3)), (3, (0, 2, 4)), (4, (0, 1, 3, 5)), (5, (0, 1, 2, 4, 5)),
    (6, (0, 1, 2, 3, 4, 5)),
])
def test_n_a_week_is_spread_over_the_week_from_monday(n: int, weekdays: tuple[int, ...]) -> None:
    assert spread(n) == weekdays
    cadence = parse(f"{n}/week", [], fail)
    week = [MONDAY + dt.timedelta(days=d) for d in range(7)]
    assert tuple(d.weekday() for d in week if cadence.due_on(d, ANCHOR)) == weekdays


def test_the_days_given_win_over_the_spread() -> None:
    cadence = parse("2/week", ["fri", "tue"], fail)
    assert cadence.weekdays == (1, 4)
    assert cadence.text() == "2/week (tue, fri)"
    assert cadence.next_due(MONDAY, ANCHOR) == MONDAY + dt.timedelta(days=1)
    assert cadence.next_due(MONDAY + dt.timedelta(days=5), ANCHOR) == MONDAY + dt.timedelta(8)


def test_every_n_days_is_counted_from_the_anchor_as_the_channels_periods() -> None:
    cadence = parse("every 2 days", [], fail)
    due = [d for d in range(10) if cadence.due_on(ANCHOR + dt.timedelta(days=d), ANCHOR)]
    assert due == [0, 2, 4, 6, 8]
    # 26/07/2021 is 203 days after the anchor: odd, so the next due day is the 27th
    assert not cadence.due_on(MONDAY, ANCHOR)
    assert cadence.next_due(MONDAY, ANCHOR) == dt.date(2021, 7, 27)


def test_daily_and_as_needed() -> None:
    daily, needed = parse("Daily", [], fail), parse(" as  needed ", [], fail)
    assert daily == Cadence(kind="daily") and daily.due_on(MONDAY, ANCHOR)
    assert daily.next_due(MONDAY, ANCHOR) == MONDAY
    assert not needed.due_on(MONDAY, ANCHOR) and needed.next_due(MONDAY, ANCHOR) is None


@pytest.mark.parametrize(("cadence", "days", "key", "words"), [
    ("", [], "cadence", "required"),
    ("weekly", [], "cadence", "is not a cadence"),
    ("7/week", [], "cadence", 'write "daily"'),
    ("every 1 days", [], "cadence", "N must be 2 to 366"),
    ("every 400 days", [], "cadence", "N must be 2 to 366"),
    ("daily", ["mon"], "days", 'goes with cadence = "N/week" only'),
    ("2/week", ["mon"], "days", "2/week needs 2 weekdays, not 1"),
    ("2/week", ["mon", "mon"], "days", "'mon' is listed twice"),
    ("1/week", ["monday"], "days", "'monday' is not a weekday"),
])
def test_a_wrong_cadence_is_refused_naming_the_key(cadence: str, days: list[str], key: str,
                                                  words: str) -> None:
    with pytest.raises(ConfigError, match=words) as caught:
        parse(cadence, days, fail)
    assert caught.value.key == key


def _set(data: dict[str, Any], path: list[Any], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(data)
    node: Any = data
    for step in path[:-1]:
        node = node[step]
    if value is None:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return data


@pytest.mark.parametrize(("path", "value", "key", "words"), [
    (["levels", 0, "activities", 1, "id"], None, "levels[0].activities[1].id", "required"),
    (["levels", 0, "activities", 1, "id"], "Press Release", "levels[0].activities[1].id",
     "is not an id"),
    (["levels", 0, "activities", 1, "id"], "press-briefing", "levels[0].activities[1].id",
     "is the id of another activity of the level"),
    (["levels", 1, "activities", 0, "cadence"], None, "levels[1].activities[0].cadence",
     "required"),
    (["levels", 1, "activities", 7, "cadence"], "twice a week",
     "levels[1].activities[7].cadence", "is not a cadence"),
    (["levels", 2, "activities", 0, "lead"], " ", "levels[2].activities[0].lead", "is empty"),
    (["levels", 0, "activities", 9, "channel"], "youtube", "levels[0].activities[9].channel",
     "Invalid enum value 'youtube'"),
    (["levels", 2, "carry", 0], "mobile-propaganda", "levels[2].carry[0]",
     "'mobile-propaganda' is not an activity of the level below"),
    (["levels", 1, "carry", 1], "press-release", "levels[1].carry[1]",
     "'press-release' is an activity of this level"),
    (["levels", 2, "carry", 1], "press-monitoring", "levels[2].carry[1]", "is listed twice"),
])
def test_a_broken_activity_is_refused_naming_the_key(path: list[Any], value: Any, key: str,
                                                     words: str) -> None:
    with pytest.raises(ConfigError, match=words) as caught:
        plan_from_dict(_set(raw_plan(), path, value), source="plan.toml")
    assert str(caught.value).startswith(f"plan.toml: {key}: ")


def test_the_shipped_plan_has_the_work_of_every_level(plan: Plan) -> None:
    ids = {n: [a.id for a in level.activities] for n, level in plan.levels.items()}
    assert ids[1][:3] == ["press-briefing", "press-release", "press-print"]
    assert "press-conference" in ids[2] and "press-conference" in ids[3]
    assert "mobile-propaganda" in ids[1] and "advice-channel" in ids[2]
    for n in (1, 2, 3, 4):  # the hotline and the monitoring at every level
        assert {"hotline", "press-monitoring", "facebook-pages", "portal-section"} <= set(ids[n])
    assert plan.levels[1].carried == ()
    assert "advice-channel" in plan.levels[3].carried and "hotline" in plan.levels[2].carried
    assert cadence_of(plan.levels[2].activities[7]).weekdays == (0, 3)  # village reporters
    assert cadence_of(plan.levels[3].activities[6]).text() == "every 2 days"


def test_a_day_s_checklist_lists_what_is_due_and_what_is_done(plan: Plan) -> None:
    mark = Done(item="L2-press-release", date=MONDAY, at=AT, by="olga",
                unit="Sở Y tế", note="Thông cáo số 12")
    found = checklist.build(plan, 2, MONDAY, [mark])
    items = {i.id: i for i in found.items}
    assert found.level == 2 and found.level_name == "Cấp độ II"
    assert items["L2-press-release"].done == mark and items["L2-press-release"].due
    assert items["L2-village-reporters"].due  # Monday: 2/week is Monday and Thursday
    assert not items["L2-press-conference"].due
    assert items["L2-press-conference"].next_due is None  # as needed
    assert items["L2-hotline"].carried and not items["L2-press-release"].carried
    assert found.due == sum(1 for i in found.items if i.due) and found.done == 1
    tuesday = checklist.build(plan, 2, MONDAY + dt.timedelta(days=1), [])
    village = next(i for i in tuesday.items if i.id == "L2-village-reporters")
    assert not village.due and village.next_due == dt.date(2021, 7, 29)


def test_a_mark_of_another_level_that_day_is_listed_after_the_level_s_items(plan: Plan) -> None:
    earlier = Done(item="L1-mobile-propaganda", date=MONDAY, at=AT, by="olga",
                   unit="Trung tâm TT&VH huyện, thị xã, thành phố", note="2 buổi")
    found = checklist.build(plan, 2, MONDAY, [earlier])
    assert found.items[-1].id == "L1-mobile-propaganda"
    assert not found.items[-1].in_force and not found.items[-1].due
    assert found.done == 0
    assert checklist.build(plan, 0, MONDAY, []).items == []


def test_an_activity_a_channel_of_the_level_sends_is_not_on_the_checklist(plan: Plan) -> None:
    ids = {i.activity for i in checklist.build(plan, 1, MONDAY, []).items}
    assert "facebook-pages" not in ids  # the level's facebook row posts it
    assert "portal-section" not in ids  # the level's portal row posts it
    assert "hotline" in ids
    with pytest.raises(NotFound, match="no checklist item L1-facebook-pages"):
        checklist.find(plan, "L1-facebook-pages")
    level = plan.levels[1]
    for channel, activity in ((Channel.FACEBOOK, "facebook-pages"),
                              (Channel.PORTAL, "portal-section")):
        without = msgspec.structs.replace(level, rules={c: r for c, r in level.rules.items()
                                                        if c is not channel})
        by_hand = msgspec.structs.replace(plan, levels={**plan.levels, 1: without})
        assert activity in {i.activity for i in checklist.build(by_hand, 1, MONDAY, []).items}


@pytest.mark.parametrize(("item", "error", "words"), [
    ("press-release", InputError, "not an item id: L<level>-<activity>"),
    ("L9-press-release", NotFound, "no checklist item L9-press-release"),
    ("L1-press-conference", NotFound, "no checklist item L1-press-conference"),
])
def test_an_unknown_item_is_refused(plan: Plan, item: str, error: type[Exception],
                                    words: str) -> None:
    with pytest.raises(error, match=words):
        checklist.find(plan, item)


def test_the_note_and_the_unit_of_a_mark(plan: Plan) -> None:
    _, activity = checklist.find(plan, "L2-press-release")
    assert checklist.note("  Thông cáo số 12\nđã gửi  ") == "Thông cáo số 12\nđã gửi"
    with pytest.raises(InputError, match="note: required"):
        checklist.note("   ")
    with pytest.raises(InputError, match="note: at most 1000 characters"):
        checklist.note("x" * 1001)
    with pytest.raises(InputError, match="note: U\\+202E"):
        checklist.note("xong \u202e")
    assert checklist.unit(activity, "L2-press-release", "") == activity.lead
    assert checklist.unit(activity, "L2-press-release", " Sở  Y tế ") == "Sở Y tế"
    with pytest.raises(InputError, match="unit: 'Sở Tài chính' is neither the lead nor"):
        checklist.unit(activity, "L2-press-release", "Sở Tài chính")


def test_the_reminder_lists_a_unit_s_items_due_and_not_done(plan: Plan) -> None:
    unit = "UBND các xã, phường, thị trấn"
    found = checklist.build(plan, 2, MONDAY, [])
    written = reminder.message(found, unit)
    assert written is not None
    subject, text = written
    assert subject == "Việc cần làm Thứ Hai 26/07/2021 — Cấp độ II (cấp 2): 1 việc"
    assert text.startswith(f"Kính gửi {unit},\n")
    assert "1. Thông tin cơ sở: Tăng tần suất tuyên truyền tại thôn" in text
    assert "Số lượng: 02 lần/tuần/thôn, tổ dân phố" in text
    assert "Mã việc: L2-village-reporters" in text
    assert "loa checklist done" in text
    # Tuesday nothing is due for the communes; a unit that leads nothing gets nothing
    assert reminder.message(checklist.build(plan, 2, MONDAY + dt.timedelta(1), []), unit) is None
    assert reminder.message(found, "Sở Tài chính") is None
    done = Done(item="L2-village-reporters", date=MONDAY, at=AT, by="an", unit=unit, note="xong")
    assert reminder.message(checklist.build(plan, 2, MONDAY, [done]), unit) is None


def test_docs_account_for_every_cell_of_section_v_and_every_activity(plan: Plan) -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "plan.md").read_text("utf-8")
    table = text[text.index("## Section V, cell by cell"):]
    table = table[:table.index("\n## ", 10)]
    cells: dict[int, int] = {}
    named: set[str] = set()
    for level, head, body in re.findall(r"^### Level (\d) (.*?)\n(.*?)(?=^### |\Z)", table,
                                        flags=re.M | re.S):
        rows = [line for line in body.splitlines() if re.match(r"^\| \d+ \|", line)]
        cells[int(level)] = len(rows)
        assert head.endswith(f": {len(rows)} cells"), head
        named |= set(re.findall(r"`(L\d-[a-z0-9-]+)`", body))
    assert cells == {1: 21, 2: 12, 3: 11, 4: 12} and sum(cells.values()) == 56
    items = {checklist.item_id(n, a.id) for n, level in plan.levels.items()
             for a in level.activities}
    assert named <= items, named - items
    own = {checklist.item_id(n, a.id) for n, level in plan.levels.items()
           for a in level.activities if a.id not in level.carried}
    assert own - {"L1-youtube", "L1-documents"} <= named, own - named  # section IV's: L<n>-
    assert "`L<n>-youtube`" in table and "`L<n>-documents`" in table
