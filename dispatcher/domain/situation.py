"""The situation record: what the department tells people each day (cases today and in total,
the districts with cases, the hotline, the date of the figures, and free fields it adds).

Set through the API (``PUT /v1/situation``) and kept with its history by the store; the plan's
and the campaigns' texts name its fields (:mod:`dispatcher.domain.template`). Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

import msgspec

from dispatcher.domain import textcheck
from dispatcher.domain.errors import InputError
from dispatcher.domain.province import Province

HISTORY_KEPT = 365  # versions of the record the store keeps
FIELDS_MAX = 20  # free fields
FIELD_TEXT_MAX = 300  # characters of a free field's text
CASES_MAX = 100_000_000
#: The fields every text may name, besides the free ones; ``{district}`` is the recipient's.
FIXED = ("cases", "new_cases", "areas", "hotline", "date", "district")
#: A free field's name: lower-case letters, digits and underscores, a letter first.
FIELD_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
# A telephone number as people write it: digits, with spaces, dots or dashes between groups.
_HOTLINE = re.compile(r"\+?[0-9]+(?:[ .-][0-9]+)*")
_HOTLINE_MAX = 20


class Situation(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The figures and facts in force, as the department sets them."""

    cases_today: int
    cases_total: int
    date: dt.date  # the day the figures are of
    hotline: str  # the number citizens call
    areas: list[str] = []  # districts with cases, by name (config/province.toml)
    fields: dict[str, str] = {}  # free fields the department adds: name -> text


class SituationVersion(msgspec.Struct, frozen=True):
    """One version of the record: who set it, when, and what."""

    situation: Situation
    at: dt.datetime
    by: str = ""


def check_hotline(value: str, fail: Callable[[str], Exception]) -> str:
    if not value.strip():
        raise fail("is empty: give the number citizens call (e.g. \"1900 9095\")")
    if len(value) > _HOTLINE_MAX or not _HOTLINE.fullmatch(value):
        raise fail(f"{value!r} is not a telephone number (digits, with spaces, dots or dashes "
                   f"between groups; at most {_HOTLINE_MAX} characters)")
    return value



def check(situation: Situation, province: Province) -> Situation:
    """``situation`` validated, its areas written as the province's district names (ids, names
    without diacritics and any case are accepted); each error is one line naming the field."""
    for name, value in (("cases_today", situation.cases_today),
                        ("cases_total", situation.cases_total)):
        if value < 0:
            raise InputError("must be 0 or more", field=name)
        if value > CASES_MAX:
            raise InputError(f"must be at most {CASES_MAX}", field=name)
    if situation.cases_today > situation.cases_total:
        raise InputError(f"{situation.cases_today} is more than cases_total "
                         f"{situation.cases_total}", field="cases_today")
    check_hotline(situation.hotline, lambda message: InputError(message, field="hotline"))
    areas: list[str] = []
    for index, area in enumerate(situation.areas):
        district = province.district_id(area)
        if district is None:
            raise InputError(f"{area!r} is not a district of {province.name}",
                             field=f"areas[{index}]")
        name = province.districts[district].name
        if name in areas:
            raise InputError(f"{name} is given twice", field=f"areas[{index}]")
        areas.append(name)
    if len(situation.fields) > FIELDS_MAX:
        raise InputError(f"at most {FIELDS_MAX} free fields", field="fields")
    for name, text in situation.fields.items():
        if name in FIXED:
            raise InputError(f"{{{name}}} is a field of the record: set it there",
                             field=f"fields.{name}")
        if not FIELD_NAME.fullmatch(name):
            raise InputError("a free field's name is lower-case letters, digits and "
                             "underscores, a letter first, at most 32", field=f"fields.{name}")
        if len(text) > FIELD_TEXT_MAX:
            raise InputError(f"at most {FIELD_TEXT_MAX} characters", field=f"fields.{name}")
        textcheck.check_title(text, f"fields.{name}")
        if "{" in text or "}" in text:
            raise InputError("may not hold a brace", field=f"fields.{name}")
    return msgspec.structs.replace(situation, areas=areas)
