"""The plan's texts and the situation record: what a plan wave sends, and whether a record
lets every text of the plan be sent. Pure: no I/O."""

from __future__ import annotations

import msgspec

from dispatcher.domain import template
from dispatcher.domain.errors import InputError
from dispatcher.domain.model import Channel
from dispatcher.domain.plan import ChannelPlan, Plan
from dispatcher.domain.situation import Situation


class Rendered(msgspec.Struct, frozen=True):
    """A row's text and subject as a wave sends them, and what went wrong rendering them."""

    text: str
    subject: str
    missing: list[str] = []  # fields the record did not give (rendered as template.MISSING)
    over: str = ""  # why the SMS is still over the plan's cap on parts ("" when it fits)


def values(situation: Situation | None, plan: Plan) -> template.Values:
    """The fields' texts for the plan's waves: the record's hotline, or the plan file's."""
    return template.values(situation, plan.hotline)


def render_row(row: ChannelPlan, sms: bool, given: template.Values, plan: Plan) -> Rendered:
    """``row`` rendered (from its text as written) with ``given``; an SMS lists fewer areas to
    fit ``sms_max_parts`` (:func:`dispatcher.domain.template.render_sms`)."""
    written = row.written or row.template
    subject, missing_subject = template.render(row.written_subject or row.subject, given)
    if sms:
        text, missing, over = template.render_sms(written, given, strip=row.strip_diacritics,
                                                  max_parts=plan.sms_max_parts)
    else:
        (text, missing), over = template.render(written, given), ""
    return Rendered(text, subject, list(dict.fromkeys([*missing, *missing_subject])), over)


def per_district(row: ChannelPlan, sms: bool, given: template.Values, plan: Plan,
                 districts: dict[str, str]) -> dict[str, Rendered]:
    """``row`` rendered for each of ``districts`` (id -> name), as :func:`render_row`."""
    return {id_: render_row(row, sms, template.in_district(given, name), plan)
            for id_, name in districts.items()}


def check(situation: Situation, plan: Plan, districts: dict[str, str] | None = None) -> None:
    """Refuse a record with which a text of the plan could not be sent: a free field the plan's
    texts name is missing, or an SMS renders past ``sms_max_parts`` even with fewer areas (in
    the district of ``districts``, id -> name, with the longest name when it names
    ``{district}``)."""
    given = values(situation, plan)
    _, longest = template.longest(districts or {})
    for number, level in sorted(plan.levels.items()):
        for channel, rule in level.rules.items():
            where = f"the level {number} {channel} text"
            row = rule.row
            sms = channel is Channel.SMS
            if sms and template.names_district(row.written or row.template):
                where += f" in {longest}"
                found = render_row(row, sms, template.in_district(given, longest), plan)
            else:
                found = render_row(row, sms, given, plan)
            if found.missing:
                name = found.missing[0]
                raise InputError(f"{where} names {{{name}}}: give it", field=f"fields.{name}")
            if found.over:
                raise InputError(f"{where} would be {found.over} (sms_max_parts): shorten the "
                                 "free fields or the areas", field="situation")
