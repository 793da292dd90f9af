"""The plan's texts: the hotline and the ``{hotline}`` field, SMS diacritics, and SMS parts.

One policy for every SMS of the plan: ``sms_diacritics`` at the top of the plan file ("strip",
the default, or "keep"), overridden by a level's own ``sms_diacritics``; every SMS template must
give the hotline (``{hotline}``), and must fit ``sms_max_parts`` parts as sent. ``{hotline}`` is
filled in when the plan is loaded, with the plan file's hotline (a row's ``template``); the
situation record's fields (``{cases}``, ``{areas}``, ... and the plan's ``situation_fields``) are
left for the wave to render (:mod:`dispatcher.domain.template`), from the row as written
(``written``), where the record's hotline, when it gives one, comes first. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any, Literal

import msgspec

from dispatcher.domain import situation, smstext, template, textcheck
from dispatcher.domain.errors import ConfigError, TextError
from dispatcher.domain.model import MAX_PARTS_LIMIT

Fail = Callable[[str, str], ConfigError]  # (key, message) -> error naming the key
FailAt = Callable[[str], ConfigError]  # message -> error at a key already chosen

Diacritics = Literal["strip", "keep"]  # SMS without diacritics (GSM-7), or with them (UCS-2)
DEFAULT_DIACRITICS: Diacritics = "strip"
FIELD = "{hotline}"
_FIELD = re.compile(r"\{([^{}]*)\}")


class Policy(msgspec.Struct, frozen=True):
    """What a level's texts are checked and resolved with."""

    hotline: str
    diacritics: Diacritics  # of SMS
    max_parts: int  # of SMS, as sent
    fields: tuple[str, ...] = ()  # free fields of the situation record the texts may name

    @property
    def strip(self) -> bool:
        return self.diacritics == "strip"

    def for_level(self, diacritics: str | None, key: str, fail: Fail) -> Policy:
        """The policy of a level that writes ``sms_diacritics = diacritics`` (None: none)."""
        if diacritics is None:
            return self
        return msgspec.structs.replace(
            self, diacritics=check_diacritics(diacritics, partial(fail, key)))

    def resolve(self, template: str, subject: str, *, sms: bool, key: str,
                fail: Fail) -> tuple[str, str]:
        """A row's template and subject with the hotline filled in; an SMS template must give
        the hotline and fit ``max_parts`` parts as sent."""
        for name, written in (("template", template), ("subject", subject)):
            found = textcheck.find(written, lines=name == "template")
            if found is not None:
                raise fail(f"{key}.{name}", textcheck.describe(found))
        filled = fill(template, self.hotline, partial(fail, f"{key}.template"), self.fields)
        if sms:
            check_sms(template, filled, strip=self.strip, max_parts=self.max_parts,
                      fail=partial(fail, f"{key}.template"))
        return filled, fill(subject, self.hotline, partial(fail, f"{key}.subject"), self.fields)


def plan_policy(hotline: str, diacritics: str, max_parts: int, texts: Iterable[str],
                fail: Fail, fields: Iterable[str] = ()) -> Policy:
    """The plan's top-level settings, checked; the hotline is needed once a text gives it."""
    policy = Policy(hotline, check_diacritics(diacritics, partial(fail, "sms_diacritics")),
                    check_max_parts(max_parts, partial(fail, "sms_max_parts")),
                    check_fields(list(fields), partial(fail, "situation_fields")))
    if hotline or any(FIELD in text for text in texts):
        situation.check_hotline(hotline, partial(fail, "hotline"))
    return policy


def check_diacritics(value: str, fail: FailAt) -> Diacritics:
    if value == "strip":
        return "strip"
    if value == "keep":
        return "keep"
    raise fail(f'must be "strip" or "keep", not {value!r}')


def check_max_parts(value: int, fail: FailAt) -> int:
    if not 1 <= value <= MAX_PARTS_LIMIT:
        raise fail(f"must be 1 to {MAX_PARTS_LIMIT}, not {value}")
    return value


def check_fields(names: list[str], fail: FailAt) -> tuple[str, ...]:
    """The free fields of the situation record the plan's texts may name."""
    for name in names:
        if name in situation.FIXED:
            raise fail(f"{{{name}}} is a field of every record: leave it out of this list")
        if not situation.FIELD_NAME.fullmatch(name):
            raise fail(f"{name!r} is not a field name (lower-case letters, digits and "
                       "underscores, a letter first, at most 32)")
    return tuple(dict.fromkeys(names))


def fill(text: str, hotline: str, fail: FailAt, fields: Iterable[str] = ()) -> str:
    """``text`` with ``{hotline}`` filled in; the situation record's fields (those of every
    record and the plan's ``situation_fields``) are left for the wave to render
    (:mod:`dispatcher.domain.template`); any other ``{name}``, or a lone brace, is refused."""
    template.check(text, fields, fail)
    return _FIELD.sub(lambda m: hotline if m.group(1) == "hotline" else m.group(), text)


def check_sms(template: str, text: str, *, strip: bool, max_parts: int, fail: FailAt) -> None:
    """An SMS template (as written) gives the hotline, and its text (filled in) fits
    ``max_parts`` parts as sent."""
    if FIELD not in template:
        raise fail(f"must give the hotline: write {FIELD}")
    try:
        seg = smstext.segment(text, strip=strip)
    except TextError as exc:
        raise fail(str(exc)) from None
    if len(seg.parts) > max_parts:
        raise fail(f"{seg.summary} is more than sms_max_parts {max_parts}")


def refuse_removed_keys(data: Any, source: str) -> None:
    """Refuse the per-row ``strip_diacritics`` of earlier plan files, saying what replaced it."""
    levels = data.get("levels") if isinstance(data, dict) else None
    if not isinstance(levels, list):
        return
    for index, level in enumerate(levels):
        channels = level.get("channels") if isinstance(level, dict) else None
        if not isinstance(channels, dict):
            continue
        for name, row in channels.items():
            if isinstance(row, dict) and "strip_diacritics" in row:
                raise ConfigError(
                    'is no longer a key of a row: SMS diacritics are set for the whole plan '
                    'with sms_diacritics = "strip" or "keep" at the top of the file, or for '
                    f'one level with levels[{index}].sms_diacritics',
                    source=source, key=f"levels[{index}].channels.{name}.strip_diacritics")
