"""Zalo ZNS messages checked against the deployment's templates (``[zalo.templates]``).

A typed message is checked against its template (:func:`adapters.zalo.templates.problem`: every
parameter, its length, its type, no link or phone number where Zalo forbids them) when a process
that sends loads the plan, when a campaign is created and when one is previewed. Where Zalo is not
configured (simulated, or absent) there is nothing to check against.
"""

from __future__ import annotations

import datetime as dt

import msgspec

from adapters.zalo.config import ZaloConfig
from adapters.zalo.templates import ZnsTemplate, problem
from dispatcher.domain.errors import ConfigError, InputError
from dispatcher.domain.model import Channel, ZnsMessage
from dispatcher.domain.plan import Plan
from dispatcher.domain.zns import check_channels, fill_date

#: A date of the right length for checks made before the wave's own date is known.
_SAMPLE_DAY = dt.date(2000, 1, 1)


class ZnsParamView(msgspec.Struct, frozen=True):
    """One parameter of a previewed ZNS message."""

    name: str
    type: str
    value: str
    length: int
    limit: int


class ZnsPreview(msgspec.Struct, frozen=True):
    """What a ZNS message sends: the template's name and Zalo id, each parameter's value."""

    template: str
    template_id: str
    params: list[ZnsParamView]


def _template(zalo: ZaloConfig, name: str) -> ZnsTemplate | None:
    return zalo.templates.get(name)


def check(zalo: ZaloConfig | None, zns: ZnsMessage | None, channels: list[Channel]) -> None:
    """Refuse (InputError naming the field) a campaign's typed message Zalo would refuse."""
    if zns is None:
        if zalo is not None and Channel.ZALO in channels and zalo.mode != "oa" \
                and not zalo.template_id:
            raise InputError("required: [zalo] sends ZNS by typed templates only (names: "
                             f"{', '.join(sorted(zalo.templates))})", field="zns_template")
        return
    check_channels(zns, channels)
    if zalo is None:
        return
    template = _template(zalo, zns.template)
    if template is None:
        known = ", ".join(sorted(zalo.templates)) or "none"
        raise InputError(f"{zns.template!r} is not in [zalo.templates] (configured: {known})",
                         field="zns_template")
    found = problem(template, zns.params)
    if found is not None:
        raise InputError(found[1], field=found[0])


def check_plan(plan: Plan, zalo: ZaloConfig | None, source: str) -> None:
    """Refuse (ConfigError naming the key) a plan whose Zalo rows Zalo would refuse."""
    if zalo is None:
        return
    for number, level in sorted(plan.levels.items()):
        rule = level.rules.get(Channel.ZALO)
        if rule is None:
            continue
        row = rule.row
        key = f"levels[{number - 1}].channels.zalo"
        if not row.zns_template:
            if zalo.mode != "oa" and not zalo.template_id:
                raise ConfigError("required: [zalo] has no template_id for a text, only typed "
                                  f"templates ({', '.join(sorted(zalo.templates))})",
                                  source=source, key=f"{key}.zns_template")
            continue
        template = _template(zalo, row.zns_template)
        if template is None:
            known = ", ".join(sorted(zalo.templates)) or "none"
            raise ConfigError(f"{row.zns_template!r} is not in [zalo.templates] (configured: "
                              f"{known})", source=source, key=f"{key}.zns_template")
        found = problem(template, row.zns_params, f"{key}.zns_params")
        if found is not None:
            raise ConfigError(found[1], source=source, key=found[0])


def preview(zalo: ZaloConfig | None, zns: ZnsMessage, day: dt.date = _SAMPLE_DAY) -> ZnsPreview:
    """The template and each parameter as it would be sent on ``day`` (checked first)."""
    template = None if zalo is None else _template(zalo, zns.template)
    filled = fill_date(zns.params, day)
    if template is None:
        views = [ZnsParamView(name, "", value, len(value), 0) for name, value in filled.items()]
        return ZnsPreview(zns.template, "", views)
    return ZnsPreview(zns.template, template.template_id, [
        ZnsParamView(p.name, p.type, filled.get(p.name, ""), len(filled.get(p.name, "")),
                     p.limit) for p in template.params])
