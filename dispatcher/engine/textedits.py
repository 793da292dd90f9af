"""Editing the plan's texts without a restart (:mod:`dispatcher.domain.textedits`): an operator
proposes a text for a level and channel (:func:`propose`), a user with the approver role who is
not its proposer approves it (:func:`approve`) or anyone with that role rejects it
(:func:`reject`). The approved text is in force from the next wave the reconciler makes
(:func:`rule_in_force`; waves already made keep their words) and survives restarts: it is kept
in the store, the plan file's text staying the default. An approved text a restarted plan no
longer accepts (:func:`checked`) is not sent: the file's text is, the reconciler logs it for
each wave so made and ``GET /v1/plan`` shows it with the reason.
"""

from __future__ import annotations

import datetime as dt
import secrets

import msgspec

from dispatcher.domain import plantemplate, template, textedits
from dispatcher.domain.errors import InputError, LoaError, NotFound, PermissionDenied, StateError
from dispatcher.domain.model import Channel
from dispatcher.domain.plan import ChannelPlan, Plan, Rule
from dispatcher.domain.province import Province, load_province
from dispatcher.domain.textedits import TextState, TextVersion
from dispatcher.store.base import Store


class Refused(msgspec.Struct, frozen=True):
    """An approved version in force the plan no longer accepts (a restart with its level or
    row gone, another hotline or cap, ...): its id and why; the plan file's text goes."""

    version: str
    reason: str


class Checked(msgspec.Struct, frozen=True):
    """The approved versions in force, per level and channel: those that fit the plan (the
    rule with the version's text, and the version's id) and those it refuses."""

    rules: dict[tuple[int, Channel], tuple[Rule, str]]
    refused: dict[tuple[int, Channel], Refused]


async def checked(store: Store, plan: Plan) -> Checked:
    """The approved versions in force checked against ``plan`` as a proposal is."""
    rules: dict[tuple[int, Channel], tuple[Rule, str]] = {}
    refused: dict[tuple[int, Channel], Refused] = {}
    for version in await store.plan_texts.in_force():
        key = (version.level, version.channel)
        try:
            rules[key] = (textedits.with_version(plan, version), version.id)
        except LoaError as exc:
            refused[key] = Refused(version.id, str(exc))
    return Checked(rules, refused)


async def in_force(store: Store, plan: Plan) -> dict[tuple[int, Channel], tuple[Rule, str]]:
    """The approved versions in force that still fit ``plan``: per level and channel, the
    rule with the version's text and the version's id. One the plan no longer accepts is
    left out (:func:`checked` says which and why): the file's text goes."""
    return (await checked(store, plan)).rules


async def effective_plan(
        store: Store, plan: Plan,
) -> tuple[Plan, dict[tuple[int, Channel], str], dict[tuple[int, Channel], Refused]]:
    """``plan`` with the approved texts in force, the id of each (level, channel)'s, and the
    approved versions it refuses (their rows keep the file's text)."""
    found = await checked(store, plan)
    return (textedits.effective(plan, {key: rule for key, (rule, _) in found.rules.items()}),
            {key: version for key, (_, version) in found.rules.items()}, found.refused)


async def rule_in_force(store: Store, plan: Plan, level: int, rule: Rule) -> Rule:
    """``rule`` of ``level`` with the approved text in force, if any (the reconciler, once per
    wave made)."""
    found = (await in_force(store, plan)).get((level, rule.channel))
    return found[0] if found is not None else rule


async def propose(store: Store, plan: Plan, *, level: int, channel: Channel, text: str,
                  subject: str = "", reason: str = "", by: str, now: dt.datetime,
                  province: Province | None = None) -> TextVersion:
    """Keep a proposed version (checked as the plan file's texts are); an e-mail's subject
    left empty keeps the one in force."""
    reason = textedits.check_reason(reason)
    current = await _current(store, plan, level, channel)
    if channel is Channel.EMAIL and not subject:
        subject = textedits.written(current[0])[1]
    await _fits_record(store, plan, channel,
                       textedits.resolve(plan, level, channel, text, subject), province)
    version = TextVersion(
        id=f"txt-{now:%Y%m%d%H%M%S}-{secrets.token_hex(3)}", level=level, channel=channel,
        text=text, subject=subject, reason=reason, proposed_by=by, proposed_at=now)
    version = _against(version, current)
    await store.plan_texts.add(version)
    return version


async def approve(store: Store, plan: Plan, version_id: str, *, by: str, now: dt.datetime,
                  reason: str = "", province: Province | None = None) -> TextVersion:
    """Make a proposed version the text in force of its level and channel (from the next wave
    made); ``by`` is not its proposer."""
    version = await _proposed(store, version_id)
    if by == version.proposed_by:
        raise PermissionDenied("a plan text must be approved by another user than the one who "
                               "proposed it")
    # the plan, or the situation record, may have changed since it was proposed
    await _fits_record(store, plan, version.channel, textedits.with_version(plan, version).row,
                       province)
    current = await _current(store, plan, version.level, version.channel)
    decided = msgspec.structs.replace(
        _against(version, current), state=TextState.APPROVED, decided_by=by, decided_at=now,
        decision_reason=textedits.check_reason(reason))
    if not await store.plan_texts.decide(decided):
        raise StateError(f"plan text {version_id} was approved or rejected meanwhile")
    return decided


async def reject(store: Store, version_id: str, *, by: str, now: dt.datetime,
                 reason: str = "") -> TextVersion:
    """Refuse a proposed version (its proposer may withdraw it); it is kept, never in force."""
    version = await _proposed(store, version_id)
    decided = msgspec.structs.replace(
        version, state=TextState.REJECTED, decided_by=by, decided_at=now,
        decision_reason=textedits.check_reason(reason))
    if not await store.plan_texts.decide(decided):
        raise StateError(f"plan text {version_id} was approved or rejected meanwhile")
    return decided


async def _fits_record(store: Store, plan: Plan, channel: Channel, row: ChannelPlan,
                       province: Province | None) -> None:
    """Refuse a text with which the situation record in force could not be sent, as a record
    is refused with which a text of the plan could not (:func:`plantemplate.check`): a free
    field it names is not given, or an SMS renders past ``sms_max_parts`` even with fewer
    areas (naming ``{district}``: in the district of ``province``, config/province.toml when
    None, with the longest name). Without a record the text goes as the file's would (fields
    not yet updated)."""
    current = await store.situation.get()
    if current is None:
        return
    given = plantemplate.values(current.situation, plan)
    where = ""
    if channel is Channel.SMS and template.names_district(row.written or row.template):
        found_in = province or load_province()
        where = template.longest({d.id: d.name for d in found_in.districts.values()})[1]
        given = template.in_district(given, where)
        where = f" in {where}"
    found = plantemplate.render_row(row, channel is Channel.SMS, given, plan)
    if found.missing:
        raise InputError(f"names {{{found.missing[0]}}}, which the situation record in force "
                         "does not give: set it there first", field="text")
    if found.over:
        raise InputError(f"rendered with the situation in force{where}, {found.over} "
                         "(sms_max_parts)", field="text")


async def _proposed(store: Store, version_id: str) -> TextVersion:
    version = await store.plan_texts.get(version_id)
    if version is None:
        raise NotFound(f"no plan text {version_id}")
    if version.state is not TextState.PROPOSED:
        raise StateError(f"plan text {version_id} is {version.state}, not proposed")
    return version


async def _current(store: Store, plan: Plan, level: int,
                   channel: Channel) -> tuple[Rule, str]:
    """The rule in force of ``level`` and ``channel`` and its version's id ("": the file)."""
    rule = textedits.rule_of(plan, level, channel)
    return (await in_force(store, plan)).get((level, channel), (rule, ""))


def _against(version: TextVersion, current: tuple[Rule, str]) -> TextVersion:
    """``version`` with what it replaces (``current``) and the diff against it."""
    rule, replaces = current
    before = textedits.written(rule)
    return msgspec.structs.replace(
        version, replaces=replaces, replaced_text=before[0],
        diff=textedits.diff(before, (version.text, version.subject),
                            email=version.channel is Channel.EMAIL))
