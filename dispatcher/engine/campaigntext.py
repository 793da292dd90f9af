"""A campaign's texts and the situation record: checked when the campaign is created (every
field it names is known, and the record in force gives it), rendered once when it starts
(:mod:`dispatcher.domain.template`); its waves keep the rendered texts."""

from __future__ import annotations

import msgspec

from dispatcher.domain import template
from dispatcher.domain.errors import InputError
from dispatcher.domain.model import Campaign, Channel
from dispatcher.domain.situation import Situation
from dispatcher.store.base import Store


def _fail(field: str) -> template.Fail:
    return lambda message: InputError(message, field=field)


def named(texts: dict[Channel, str], subject: str) -> bool:
    """Whether a text (or the subject) names a field."""
    return any(template.names(t) for t in [*texts.values(), subject])


def check(texts: dict[Channel, str], subject: str, record: Situation | None) -> None:
    """Refuse a text naming an unknown field (with its name), or naming fields while no record
    is set."""
    fields = [(f"texts.{c}", t) for c, t in texts.items()] + [("subject", subject)]
    for field, text in fields:
        render_one(text, field, record)


def render_one(text: str, field: str, record: Situation | None) -> str:
    """``text`` rendered from ``record`` (the preview's), refused as :func:`check` says."""
    free = list(record.fields) if record is not None else []
    found = template.check(text, free, _fail(field))
    if not found:
        return text
    needed = [name for name in found if name != "district"]  # the recipient's, not the record's
    if record is None and needed:
        raise InputError(f"names {{{needed[0]}}} but no situation is set: set it first "
                         "(PUT /v1/situation, loa situation set)", field=field)
    return template.render(text, template.values(record, ""))[0]


def district_texts(text: str, record: Situation | None,
                   districts: dict[str, str]) -> dict[str, str]:
    """``text`` (as written) rendered from ``record`` for each of ``districts`` (id -> name);
    empty when it does not name ``{district}``."""
    if not template.names_district(text):
        return {}
    return template.per_district(text, template.values(record, ""), districts)


def longest(text: str, record: Situation | None, districts: dict[str, str]) -> tuple[str, str]:
    """``text`` rendered for the district with the longest name (the most SMS parts) and that
    name; ``("", "")`` when it does not name ``{district}``."""
    if not template.names_district(text):
        return "", ""
    name = template.longest(districts)[1]
    return template.render(text, template.in_district(template.values(record, ""), name))[0], name


async def current(store: Store) -> Situation | None:
    version = await store.situation.get()
    return version.situation if version is not None else None


def render(campaign: Campaign, record: Situation | None) -> tuple[Campaign, str]:
    """``campaign`` with its texts and subject rendered from ``record``, and why it cannot be
    sent ("" when it can): a field the record does not (or no longer) give."""
    if not named(campaign.texts, campaign.subject):
        return campaign, ""
    given = template.values(record, "")
    texts: dict[Channel, str] = {}
    for channel, text in campaign.texts.items():
        texts[channel], missing = template.render(text, given)
        if missing:
            return campaign, (f"texts.{channel}: names {{{missing[0]}}}, which the situation "
                              "record in force does not give")
    subject, missing = template.render(campaign.subject, given)
    if missing:
        return campaign, (f"subject: names {{{missing[0]}}}, which the situation record in "
                          "force does not give")
    return msgspec.structs.replace(campaign, texts=texts, subject=subject), ""
