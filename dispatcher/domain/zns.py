"""Zalo ZNS messages by typed template: what a plan row or a campaign sends, and its date.

A plan's Zalo row (``zns_template``, ``zns_params``) and a campaign (the same two fields) name a
template of ``[zalo.templates]`` and give each parameter a value. ``{date}`` in a value is filled
in (``dd/mm/yyyy``, Zalo's date format, the plan's day) when the wave is made. The checks
against the configured templates are :mod:`dispatcher.service.zns_check`'s.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from dispatcher.domain.errors import InputError
from dispatcher.domain.model import Channel, ZnsMessage

#: Placeholders a value may hold, filled in when the wave is made.
DATE_FIELD = "{date}"
DATE_FORMAT = "%d/%m/%Y"


def message(template: str, params: Mapping[str, str]) -> ZnsMessage | None:
    """The typed message of a request's ``zns_template`` and ``zns_params`` (None: neither)."""
    if not template and not params:
        return None
    if not template:
        raise InputError("zns_params need the template they fill (zns_template)",
                         field="zns_template")
    return ZnsMessage(template=template, params=dict(params))


def check_channels(zns: ZnsMessage | None, channels: list[Channel]) -> None:
    """Refuse a typed message on a campaign that does not send on Zalo."""
    if zns is not None and Channel.ZALO not in channels:
        raise InputError("only a campaign on zalo sends by a ZNS template", field="zns_template")


def fill_date(values: Mapping[str, str], day: dt.date) -> dict[str, str]:
    """``values`` with ``{date}`` written as ``dd/mm/yyyy`` (Zalo's date format)."""
    text = day.strftime(DATE_FORMAT)
    return {name: value.replace(DATE_FIELD, text) for name, value in values.items()}


def for_wave(zns: ZnsMessage | None, day: dt.date) -> ZnsMessage | None:
    """What a wave made on ``day`` sends: ``{date}`` filled in."""
    if zns is None or not any(DATE_FIELD in v for v in zns.params.values()):
        return zns
    return ZnsMessage(template=zns.template, params=fill_date(zns.params, day))
