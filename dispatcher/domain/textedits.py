"""The plan's texts edited without a restart: a version of a (level, channel) text proposed by
an operator, approved (or rejected) by another user, and, once approved, in force over the plan
file's text from the next wave made. Pure: no I/O.

A proposed text is checked as the plan file's are when it loads
(:meth:`dispatcher.domain.plantext.Policy.resolve`: control characters, the situation record's
fields, the hotline and parts cap of an SMS) and refused in one line naming ``text`` or
``subject``; :func:`resolve` gives the plan's row with the version's text, as a wave renders it.
"""

from __future__ import annotations

import datetime as dt
import difflib
import enum

import msgspec

from dispatcher.domain import plantext, situation, textcheck
from dispatcher.domain.errors import ConfigError, InputError
from dispatcher.domain.model import Channel
from dispatcher.domain.plan import ChannelPlan, Plan, Rule

TEXT_MAX = 4000  # characters of a proposed text
SUBJECT_MAX = 200
REASON_MAX = 500
VERSION_ID = r"txt-[0-9]{14}-[0-9a-f]{6}"  # a version's id (dispatcher.engine.textedits.propose)
PAGE_LIMIT = 50  # versions in a page, unless asked otherwise
PAGE_LIMIT_MAX = 500
FILE = "file"  # where the text in force comes from when no version is approved
APPROVED_ORIGIN = "approved"


class TextState(enum.StrEnum):
    PROPOSED = "proposed"
    APPROVED = "approved"
    REJECTED = "rejected"


class TextVersion(msgspec.Struct, frozen=True, kw_only=True):
    """A version of the text of a level's channel: who proposed it and when, who approved or
    rejected it and when, and its diff against the text in force it replaces (as written)."""

    id: str
    level: int
    channel: Channel
    text: str  # as written, with its fields ({hotline}, {cases}, ...)
    subject: str = ""  # e-mail only
    reason: str = ""
    state: TextState = TextState.PROPOSED
    proposed_by: str
    proposed_at: dt.datetime
    decided_by: str = ""
    decided_at: dt.datetime | None = None
    decision_reason: str = ""
    replaces: str = ""  # the id of the version it replaces ("": the plan file's text)
    replaced_text: str = ""  # that text, as written
    diff: str = ""  # unified diff, replaced -> this one (subject lines included for e-mail)


def force_key(level: int, channel: Channel | str) -> str:
    return f"{level}:{channel}"


def rule_of(plan: Plan, level: int, channel: Channel) -> Rule:
    """The plan's rule a version is for, or an error naming ``level`` or ``channel``."""
    if level not in plan.levels:
        known = ", ".join(str(n) for n in sorted(plan.levels))
        raise InputError(f"{level} is not a level of the plan ({known})", field="level")
    rule = plan.levels[level].rules.get(channel)
    if rule is None:
        raise InputError(f"level {level} has no {channel} row in the plan", field="channel")
    return rule


def check_reason(reason: str, field: str = "reason") -> str:
    if len(reason) > REASON_MAX:
        raise InputError(f"at most {REASON_MAX} characters", field=field)
    found = textcheck.find(reason, lines=False)
    if found is not None:
        raise InputError(textcheck.describe(found), field=field)
    return reason.strip()


def resolve(plan: Plan, level: int, channel: Channel, text: str, subject: str) -> ChannelPlan:
    """The plan's row of ``level`` and ``channel`` with ``text`` (and, for e-mail, ``subject``)
    in place of the file's, checked and resolved as the file's are at load; an error names
    ``text`` or ``subject``."""
    rule = rule_of(plan, level, channel)
    if not text.strip():
        raise InputError("is empty", field="text")
    if len(text) > TEXT_MAX:
        raise InputError(f"{len(text)} characters is more than {TEXT_MAX}", field="text")
    if subject and channel is not Channel.EMAIL:
        raise InputError("only an e-mail text has a subject", field="subject")
    if len(subject) > SUBJECT_MAX:
        raise InputError(f"{len(subject)} characters is more than {SUBJECT_MAX}",
                         field="subject")
    entry = plan.levels[level]
    policy = plantext.Policy(plan.hotline, entry.sms_diacritics, plan.sms_max_parts,
                             plan.situation_fields)

    if plantext.FIELD in text + subject:
        situation.check_hotline(plan.hotline, lambda m: InputError(
            f"the plan gives no hotline for {plantext.FIELD}: {m}", field="text"))
    try:
        filled, filled_subject = policy.resolve(
            text, subject, sms=channel is Channel.SMS, key="",
            fail=lambda key, message: ConfigError(message, key=key))
    except ConfigError as exc:
        where = "subject" if (exc.key or "").endswith("subject") else "text"
        raise InputError(exc.reason, field=where) from None
    return msgspec.structs.replace(rule.row, template=filled, subject=filled_subject,
                                   written=text, written_subject=subject)


def with_version(plan: Plan, version: TextVersion) -> Rule:
    """The rule of ``version``'s level and channel with its text (checked again against the
    plan in force: an error when the plan changed under it)."""
    rule = rule_of(plan, version.level, version.channel)
    row = resolve(plan, version.level, version.channel, version.text, version.subject)
    return msgspec.structs.replace(rule, row=row)


def written(rule: Rule) -> tuple[str, str]:
    """A rule's text and subject as written."""
    return rule.row.written or rule.row.template, rule.row.written_subject or rule.row.subject


def diff(before: tuple[str, str], after: tuple[str, str], *, email: bool) -> str:
    """The unified diff of a text (and an e-mail's subject) from ``before`` to ``after``."""
    def lines(pair: tuple[str, str]) -> list[str]:
        text = pair[0].splitlines()
        return [f"Subject: {pair[1]}", *text] if email else text

    return "\n".join(difflib.unified_diff(lines(before), lines(after), "in force", "proposed",
                                          lineterm="", n=1))


def effective(plan: Plan, rules: dict[tuple[int, Channel], Rule]) -> Plan:
    """``plan`` with the rules of ``rules`` (the approved versions in force) in place."""
    levels = dict(plan.levels)
    for (level, channel), rule in rules.items():
        entry = levels[level]
        levels[level] = msgspec.structs.replace(entry, rules={**entry.rules, channel: rule})
    return msgspec.structs.replace(plan, levels=levels)
