"""Typed ZNS templates: what Zalo approved, and the checks a message passes before it is sent.

A template (``[zalo.templates.<name>]``) is Zalo's ``template_id`` and its parameters, each with
a name, a type and a maximum length, as approved by Zalo. The limits of each type follow Zalo
Cloud's page on parameter data formats (docs/channels.md): a customer name 30 characters, a
string up to 200 (30, 100 or 200 as the template was approved), a number 20, a date
``dd/mm/yyyy``, a phone number 15, a code 30. A message gives a value to every parameter; a value
over its limit, of the wrong type, or with a link or a phone number where Zalo forbids one is
refused with an error naming the parameter (``zns_params.area: 240 characters, the template
allows 200``), before any wave is made, never found out by -1121 in the middle of one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal

import msgspec

from dispatcher.domain.zns import DATE_FIELD

ParamType = Literal["customer_name", "string", "number", "date", "phone", "code"]

#: The longest value each type of parameter takes (Zalo Cloud's parameter settings).
TYPE_LIMITS: dict[str, int] = {"customer_name": 30, "string": 200, "number": 20, "date": 20,
                               "phone": 15, "code": 30}
#: The length a parameter takes when the template does not say (a string: Zalo's shortest).
DEFAULT_LENGTH: dict[str, int] = {**TYPE_LIMITS, "string": 30}

_NAME = re.compile(r"[a-z][a-z0-9_]{0,49}")
_URL = re.compile(r"https?://|www\.|\b[\w-]+\.(?:vn|com|net|org|gov|edu|info|io|me|ly|link)\b",
                  re.IGNORECASE)
_PHONE = re.compile(r"\+?\d[\d .\-]{6,}\d")
_DATE = re.compile(r"(?:\d{2}:\d{2}(?::\d{2})? )?\d{2}/\d{2}/\d{4}")
_NUMBER = re.compile(r"-?\d[\d.,]*")
_PHONE_VALUE = re.compile(r"\+?\d{3,14}")


class TemplateParam(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One parameter of a template as Zalo approved it."""

    name: str
    type: ParamType = "string"
    max_length: int = 0  # 0: the type's default (DEFAULT_LENGTH)

    @property
    def limit(self) -> int:
        return self.max_length or DEFAULT_LENGTH[self.type]


class ZnsTemplate(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A ZNS template approved by Zalo: its id and its typed parameters."""

    template_id: str
    params: list[TemplateParam]

    def __post_init__(self) -> None:
        if not self.template_id.strip():
            raise ValueError("template_id is empty")
        if not self.params:
            raise ValueError("params: a template has at least one parameter")
        seen: set[str] = set()
        for i, param in enumerate(self.params):
            if _NAME.fullmatch(param.name) is None:
                raise ValueError(f"params[{i}].name: {param.name!r} is not a parameter name "
                                 "(lower-case letters, digits and _, as Zalo writes them)")
            if param.name in seen:
                raise ValueError(f"params[{i}].name: {param.name!r} is listed twice")
            seen.add(param.name)
            if param.type not in TYPE_LIMITS:
                raise ValueError(f"params[{i}].type: must be one of {', '.join(TYPE_LIMITS)}")
            if not 0 <= param.max_length <= TYPE_LIMITS[param.type]:
                raise ValueError(f"params[{i}].max_length: a {param.type} parameter takes at "
                                 f"most {TYPE_LIMITS[param.type]} characters")

    def data(self, values: Mapping[str, str]) -> dict[str, str]:
        """The request's ``template_data``: every parameter, in the template's order."""
        return {param.name: values[param.name] for param in self.params}


def problem(template: ZnsTemplate, values: Mapping[str, str],
            field: str = "zns_params") -> tuple[str, str] | None:
    """The first reason Zalo would refuse these values, as (field, message), or None.

    Each value must be given, fit its limit, read as its type, and hold no link; a phone number
    only in a ``phone`` parameter (Zalo forbids them in the body). ``{date}`` counts as a date."""
    names = {param.name for param in template.params}
    for name in values:
        if name not in names:
            return (f"{field}.{name}", "the template has no such parameter (it has "
                    f"{', '.join(p.name for p in template.params)})")
    for param in template.params:
        key = f"{field}.{param.name}"
        raw = values.get(param.name)
        if raw is None or not raw.strip():
            return key, f"missing: the template needs a {param.type} value"
        value = raw.replace(DATE_FIELD, "01/01/2000")
        if "{" in value or "}" in value:
            return key, "the only field a value may hold is {date}"
        if len(value) > param.limit:
            return key, f"{len(value)} characters, the template allows {param.limit}"
        why = _type_problem(param.type, value)
        if why:
            return key, why
    return None


def _type_problem(kind: str, value: str) -> str:
    if _URL.search(value):
        return "no link may be sent in a ZNS parameter (Zalo's template rules)"
    if kind == "phone":
        plain = value.replace(" ", "").replace(".", "").replace("-", "")
        return "" if _PHONE_VALUE.fullmatch(plain) else "not a phone number (digits, + first)"
    if kind == "number":
        return "" if _NUMBER.fullmatch(value) else "not a number"
    if kind == "date":
        return "" if _DATE.fullmatch(value) else "not a date (dd/mm/yyyy, or {date})"
    if _PHONE.search(value):
        return ("a phone number may only be sent in a phone parameter (Zalo forbids them in "
                "the body)")
    return ""
