"""The situation record's checks and the texts that name its fields."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest

from dispatcher.domain import template
from dispatcher.domain.errors import InputError
from dispatcher.domain.province import load_province
from dispatcher.domain.situation import Situation, check

PROVINCE = load_province()
ALL = [d.name for d in PROVINCE.districts.values()]


def record(**changes: object) -> Situation:
    base = Situation(cases_today=3, cases_total=42, date=dt.date(2026, 12, 7),
                     hotline="1900 9095", areas=["ha-long", "cam pha"],
                     fields={"advice": "Đeo khẩu trang"})
    return msgspec.structs.replace(base, **changes)


def test_areas_are_written_as_the_districts_names() -> None:
    assert check(record(), PROVINCE).areas == ["Hạ Long", "Cẩm Phả"]


@pytest.mark.parametrize(("changes", "message"), [
    ({"cases_today": -1}, "cases_today: must be 0 or more"),
    ({"cases_total": -5, "cases_today": 0}, "cases_total: must be 0 or more"),
    ({"cases_today": 50}, "cases_today: 50 is more than cases_total 42"),
    ({"hotline": "gọi 115"}, "hotline: 'gọi 115' is not a telephone number"),
    ({"hotline": ""}, "hotline: is empty"),
    ({"areas": ["Hạ Long", "Hà Nội"]}, "areas[1]: 'Hà Nội' is not a district of Quảng Ninh"),
    ({"areas": ["ha-long", "Hạ Long"]}, "areas[1]: Hạ Long is given twice"),
    ({"fields": {"Advice": "x"}}, "fields.Advice: a free field's name is lower-case"),
    ({"fields": {"cases": "x"}}, "fields.cases: {cases} is a field of the record"),
    ({"fields": {"advice": "x\u202e"}}, "fields.advice: U+202E"),
    ({"fields": {"advice": "{hotline}"}}, "fields.advice: may not hold a brace"),
    ({"fields": {"advice": "x" * 301}}, "fields.advice: at most 300 characters"),
])
def test_a_wrong_record_is_refused_in_one_line_naming_the_field(
        changes: dict[str, object], message: str) -> None:
    with pytest.raises(InputError) as caught:
        check(record(**changes), PROVINCE)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_a_text_renders_the_record_fields() -> None:
    given = template.values(check(record(), PROVINCE), "1900 0000")
    text, missing = template.render(
        "{date}: {new_cases} ca mới, tổng {cases}, tại {areas}. {advice}. Gọi {hotline}.", given)
    assert text == ("07/12/2026: 3 ca mới, tổng 42, tại Hạ Long, Cẩm Phả. Đeo khẩu trang. "
                    "Gọi 1900 9095.")
    assert missing == []


def test_without_a_record_the_fields_say_not_updated_and_are_reported() -> None:
    given = template.values(None, "1900 9095")
    text, missing = template.render("{new_cases} ca mới. Gọi {hotline}.", given)
    assert text == f"{template.MISSING} ca mới. Gọi 1900 9095."
    assert missing == ["new_cases"]


def test_a_free_field_the_record_no_longer_gives_is_reported() -> None:
    given = template.values(check(record(fields={}), PROVINCE), "")
    text, missing = template.render("{advice}", given)
    assert (text, missing) == (template.MISSING, ["advice"])


@pytest.mark.parametrize(("text", "message"), [
    ("{case}", "unknown field {case}: a text may name {cases}, {new_cases}, {areas}, "
               "{hotline}, {date}, {district}, {advice}"),
    ("Tại {district} {town}", "unknown field {town}"),
    ("{cases", "a brace without its pair"),
])
def test_a_text_naming_an_unknown_field_is_refused(text: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        template.check(text, ["advice"], lambda m: InputError(m, field="texts.sms"))
    assert str(caught.value).startswith(f"texts.sms: {message}")


def test_an_sms_over_the_cap_lists_fewer_areas_until_it_fits() -> None:
    given = template.values(check(record(areas=ALL), PROVINCE), "")
    text = "Covid-19 {date}: {new_cases} ca mới tại {areas}. Gọi {hotline}." + " Khẩu trang." * 4
    full, _ = template.render(text, given)
    assert template._over(full, True, 1)
    rendered, missing, over = template.render_sms(text, given, strip=True, max_parts=1)
    assert over == "" and missing == []
    assert "nơi khác" in rendered and "Hạ Long" in rendered
    assert not template._over(rendered, True, 1)


def test_an_sms_that_cannot_fit_says_by_how_much() -> None:
    given = template.values(check(record(), PROVINCE), "")
    rendered, _, over = template.render_sms("{hotline} " + "x" * 400, given, strip=True,
                                            max_parts=1)
    assert rendered.startswith("1900 9095 ")
    assert over == "3 parts (GSM-7, 410 characters) is more than 1 parts"


# -- {district}: the recipient's --------------------------------------------------------------


def test_a_text_naming_district_is_rendered_once_per_district() -> None:
    districts = {d.id: d.name for d in PROVINCE.districts.values()}
    given = template.values(check(record(), PROVINCE), "")
    text = "Người dân {district}: {new_cases} ca mới. {advice}."
    assert template.check(text, ["advice"], InputError) == [
        "district", "new_cases", "advice"]
    texts = template.per_district(text, given, districts)
    assert set(texts) == set(districts)
    assert texts["ha-long"] == "Người dân Hạ Long: 3 ca mới. Đeo khẩu trang."
    assert texts["cam-pha"] == "Người dân Cẩm Phả: 3 ca mới. Đeo khẩu trang."
    # without a district (visitors), and with no recipient at all: the whole province
    assert template.render(text, given) == ("Người dân toàn tỉnh: 3 ca mới. Đeo khẩu trang.", [])
    assert template.per_district("{new_cases} ca mới.", given, districts) == {}
    # no record: {district} is still the recipient's, never reported missing
    assert template.render("Tại {district}", template.values(None, "")) == ("Tại toàn tỉnh", [])


def test_the_longest_district_name_decides_an_sms_parts() -> None:
    districts = {d.id: d.name for d in PROVINCE.districts.values()}
    found, name = template.longest(districts)
    assert name == max(districts.values(), key=len) and districts[found] == name
    assert template.longest({"a": "Ba"}) == ("", template.NEUTRAL)  # the neutral is longer
    given = template.values(check(record(), PROVINCE), "")
    text = "Tai {district}: " + "x" * (160 - len("Tai : ") - len(name) + 1)
    shortest = min(districts.values(), key=len)
    assert not template._over(template.render(text, template.in_district(given, shortest))[0],
                              True, 1)
    over = template._over(template.render(text, template.in_district(given, name))[0], True, 1)
    assert over == "2 parts (GSM-7, 161 characters) is more than 1 parts"
