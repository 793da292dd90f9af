"""Texts with named fields from the situation record, rendered once when a wave is made.

A plan or campaign text may name ``{cases}`` (cases in total), ``{new_cases}`` (cases today),
``{areas}`` (the districts with cases), ``{hotline}``, ``{date}`` (the day of the figures,
dd/mm/yyyy), ``{district}`` (the recipient's district, its name in config/province.toml) and
the record's free fields; any other name, or a lone brace, is refused. The wave keeps the
rendered text, so retries and replays send the same words, and nothing is rendered per message:
a text naming ``{district}`` is rendered once per district when the wave is made
(:func:`per_district`), and once with :data:`NEUTRAL` (the province's name) for recipients
without a district (visitors). Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

import msgspec

from dispatcher.domain import smstext
from dispatcher.domain.errors import TextError
from dispatcher.domain.situation import FIXED, Situation

FIELD = re.compile(r"\{([^{}]*)\}")
#: What a field the record does not give is rendered as (no record yet, a free field removed).
MISSING = "chưa cập nhật"
NO_AREAS = "không có"
#: What ``{district}`` renders as for a recipient without a district (visitors), and in a text
#: shown without a recipient: the whole province ("toàn tỉnh").
NEUTRAL = "toàn tỉnh"
Fail = Callable[[str], Exception]


def names(text: str) -> list[str]:
    """The fields ``text`` names, in order, once each."""
    return list(dict.fromkeys(FIELD.findall(text)))


def check(text: str, free: Iterable[str], fail: Fail) -> list[str]:
    """The fields ``text`` names; an unknown one (not fixed, not in ``free``) or a brace
    without its pair is refused with ``fail(message)``."""
    known = set(free)
    found = names(text)
    for name in found:
        if name not in FIXED and name not in known:
            allowed = ", ".join(f"{{{n}}}" for n in [*FIXED, *sorted(known)])
            raise fail(f"unknown field {{{name}}}: a text may name {allowed}")
    rest = FIELD.sub("", text)
    if "{" in rest or "}" in rest:
        raise fail("a brace without its pair: fields are written {name}")
    return found


class Values(msgspec.Struct, frozen=True):
    """What the fields render as, from the record in force (None: none set yet)."""

    fields: dict[str, str]
    areas: list[str]
    missing: bool = False  # no record: its fields render as MISSING

    def get(self, name: str) -> str | None:
        return self.fields.get(name)


def values(situation: Situation | None, hotline: str, district: str = NEUTRAL) -> Values:
    """The fields' texts; ``hotline`` when the record gives none (the plan file's);
    ``{district}`` as ``district``."""
    if situation is None:
        fixed = {"cases": MISSING, "new_cases": MISSING, "areas": MISSING, "date": MISSING,
                 "hotline": hotline or MISSING, "district": district}
        return Values(fixed, [], missing=True)
    fixed = {"cases": str(situation.cases_total), "new_cases": str(situation.cases_today),
             "areas": ", ".join(situation.areas) or NO_AREAS,
             "date": f"{situation.date:%d/%m/%Y}", "hotline": situation.hotline or hotline,
             "district": district}
    return Values({**situation.fields, **fixed}, list(situation.areas))


def in_district(given: Values, name: str) -> Values:
    """``given`` with ``{district}`` rendered as ``name``."""
    return msgspec.structs.replace(given, fields={**given.fields, "district": name})


def names_district(*texts: str) -> bool:
    """Whether one of ``texts`` names ``{district}`` (its waves carry a text per district)."""
    return any("district" in names(text) for text in texts)


def per_district(text: str, given: Values, districts: dict[str, str]) -> dict[str, str]:
    """``text`` rendered for each of ``districts`` (id -> name): id -> text; empty when
    ``text`` does not name ``{district}`` (every recipient gets the same words)."""
    if not names_district(text):
        return {}
    return {id_: render(text, in_district(given, name))[0] for id_, name in districts.items()}


def longest(districts: dict[str, str]) -> tuple[str, str]:
    """The district (id, name) with the longest name, which decides an SMS's parts; the
    neutral value's ("", NEUTRAL) when it is longer."""
    found = max(districts.items(), key=lambda item: len(item[1]), default=("", NEUTRAL))
    return found if len(found[1]) >= len(NEUTRAL) else ("", NEUTRAL)


def render(text: str, given: Values) -> tuple[str, list[str]]:
    """``text`` with its fields filled in, and the names the record did not give (rendered as
    :data:`MISSING`)."""
    missing: list[str] = []

    def field(match: re.Match[str]) -> str:
        value = given.get(match.group(1))
        if value is None:
            missing.append(match.group(1))
            return MISSING
        return value

    rendered = FIELD.sub(field, text)
    if given.missing:
        missing = [n for n in names(text) if n not in ("hotline", "district")] + missing
    return rendered, missing


def render_sms(text: str, given: Values, *, strip: bool,
               max_parts: int) -> tuple[str, list[str], str]:
    """``text`` rendered as an SMS of at most ``max_parts`` parts: when the full text is longer,
    ``{areas}`` lists fewer districts ("A, B và 3 nơi khác"); the missing names, and why it
    still does not fit ("" when it does)."""
    rendered, missing = render(text, given)
    over = _over(rendered, strip, max_parts)
    if not over or "{areas}" not in text or not given.areas:
        return rendered, missing, over
    total = len(given.areas)
    for keep in range(total - 1, -1, -1):
        listed = ", ".join(given.areas[:keep])
        rest = f"{total - keep} nơi khác" if keep else f"{total} huyện, thị xã, thành phố"
        shorter = Values({**given.fields, "areas": f"{listed} và {rest}" if keep else rest},
                         given.areas)
        candidate, _ = render(text, shorter)
        if not _over(candidate, strip, max_parts):
            return candidate, missing, ""
    return rendered, missing, over


def _over(text: str, strip: bool, max_parts: int) -> str:
    """Why ``text`` does not go as one SMS of at most ``max_parts`` parts ("" if it does)."""
    try:
        seg = smstext.segment(text, strip=strip)
    except TextError as exc:
        return str(exc)
    if len(seg.parts) > max_parts:
        return f"{seg.summary} is more than {max_parts} parts"
    return ""
