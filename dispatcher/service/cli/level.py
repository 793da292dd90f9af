"""``loa level set|show``: the epidemic level in force, and how the commands describe it."""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

import msgspec
from rich.table import Table
from rich.text import Text

from dispatcher.domain.errors import InputError
from dispatcher.domain.model import LevelState, OpeningOutcome, PendingLevel
from dispatcher.domain.plan import Plan, load_plan
from dispatcher.engine import opening
from dispatcher.engine.level import confirm_level, set_level
from dispatcher.engine.opening import OpeningStatus
from dispatcher.service.api.schemas import LevelConfirm, LevelSet
from dispatcher.service.cli import gate, lang, storeopts
from dispatcher.service.cli.output import console, print_json
from dispatcher.service.cli.runtime import run_async
from dispatcher.store import open_store

HISTORY = 20  # entries `loa level show` prints


def register(sub: Any) -> None:
    level = sub.add_parser("level", help="set and show the epidemic level",
                           description="The current epidemic level is what the plan executes. "
                                       "Times are printed in the plan's time zone.")
    group = level.add_subparsers(dest="level_command", metavar="COMMAND", required=True)
    set_ = group.add_parser("set", help="set the level, by confirmed cases or directly",
                            description="Set the level from the number of confirmed cases "
                                        "(the plan's thresholds) or directly; history is kept. "
                                        "Level 0 means no case in the province: the plan "
                                        "schedules nothing, and the previous level's waves "
                                        "(those sending too) are cancelled.")
    how = set_.add_mutually_exclusive_group(required=True)
    how.add_argument("--cases", type=int, metavar="N", help="confirmed cases in the province")
    how.add_argument("--level", type=int, metavar="L", help="the level itself (0-4)")
    set_.add_argument("--reason", default="", help="why (required; kept in the history)")
    set_.add_argument("--json", action="store_true", help="one JSON object on stdout")
    gate.add_options(set_)
    lang.add_option(set_)
    storeopts.add_options(set_, without="--api, or --admin-direct with a Redis")
    set_.set_defaults(func=cmd_set)
    confirm = group.add_parser(
        "confirm", help="confirm the level raise waiting (an approver, not its proposer)",
        description="A raise of the level waits for a second user with the approver role: "
                    "this confirms the one waiting, and it takes effect.")
    confirm.add_argument("--reason", default="", help="why you confirm it (required)")
    confirm.add_argument("--id", default="", help="the change waiting (lvl-…): that one only")
    confirm.add_argument("--json", action="store_true", help="one JSON object on stdout")
    gate.add_options(confirm)
    lang.add_option(confirm)
    storeopts.add_options(confirm, without="--api, or --admin-direct with a Redis")
    confirm.set_defaults(func=cmd_confirm)
    show = group.add_parser("show", help="the level in force and its history",
                            description="The level in force (with the plan's name for it, since "
                                        f"when and who set it) and the last {HISTORY} changes, "
                                        "newest first.")
    show.add_argument("--json", action="store_true", help="one JSON object on stdout")
    lang.add_option(show)
    storeopts.add_options(show, need_redis=True)
    show.set_defaults(func=cmd_show)


def cmd_set(args: argparse.Namespace) -> int:
    if not args.reason.strip():
        raise InputError("--reason: say why the level changes (it is kept in the history and "
                         "the audit log)")
    via = gate.gate(args, "loa level set")
    plan = load_plan(args.plan)

    async def go() -> LevelState | PendingLevel:
        if isinstance(via, gate.Api):
            status, answer = await gate.call(via, "PUT", "/v1/level", LevelSet(
                cases=args.cases, level=args.level, reason=args.reason))
            if status == 202:
                return msgspec.convert(answer, PendingLevel)
            return msgspec.convert(answer, LevelState)
        _, url = storeopts.settings_and_url(args, need_redis=True)
        store = open_store(url)
        try:
            return await gate.audited(via, "level.set", "level", set_level(
                store, plan, now=dt.datetime.now(dt.UTC), cases=args.cases, level=args.level,
                reason=args.reason.strip(), user=via.user),
                {"cases": args.cases, "level": args.level, "reason": args.reason})
        finally:
            await store.aclose()

    return _print_state(args, plan, run_async(go()))


def cmd_confirm(args: argparse.Namespace) -> int:
    via = gate.gate(args, "loa level confirm")
    plan = load_plan(args.plan)

    async def go() -> LevelState:
        if isinstance(via, gate.Api):
            _, answer = await gate.call(via, "POST", "/v1/level/confirm",
                                        LevelConfirm(reason=args.reason, id=args.id))
            return msgspec.convert(answer, LevelState)
        _, url = storeopts.settings_and_url(args, need_redis=True)
        store = open_store(url)
        try:
            return await gate.audited(via, "level.confirm", "level", confirm_level(
                store, plan, now=dt.datetime.now(dt.UTC), user=via.user, reason=args.reason,
                pending_id=args.id), {"reason": args.reason, "id": args.id})
        finally:
            await store.aclose()

    return _print_state(args, plan, run_async(go()))


def _print_state(args: argparse.Namespace, plan: Plan, state: LevelState | PendingLevel) -> int:
    if args.json:
        print_json(state)
        return 0
    out = console()
    if isinstance(state, PendingLevel):
        out.print(f"level {state.level} proposed ({state.id}; level {state.current} stays in "
                  f"force): it takes effect when another user with the approver role confirms "
                  f"it (`loa level confirm`) before {state.expires_at:%Y-%m-%d %H:%M:%S} UTC",
                  markup=False)
        return 0
    for line in describe(lang.texts(args), plan, state):
        out.print(line, markup=False)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    _, url = storeopts.settings_and_url(args, need_redis=True)

    async def go() -> tuple[LevelState | None, list[LevelState]]:
        store = open_store(url)
        try:
            return await store.level.get(), await store.level.history(HISTORY)
        finally:
            await store.aclose()

    current, history = run_async(go())
    if args.json:
        print_json({"level": current.level if current else 0, "history": history})
        return 0
    tx, plan = lang.texts(args), load_plan(args.plan)
    out = console()
    for line in describe(tx, plan, current):
        out.print(line, markup=False)
    if history:
        out.print()
        out.print(_history(tx, plan, history))
    return 0


def read_openings(url: str) -> tuple[LevelState | None, list[OpeningStatus]]:
    """The level in force and its opening messages so far."""

    async def go() -> tuple[LevelState | None, list[OpeningStatus]]:
        store = open_store(url)
        try:
            level = await store.level.get()
            return level, await opening.statuses(store, level)
        finally:
            await store.aclose()

    return run_async(go())


def describe_openings(tx: lang.Texts, plan: Plan, state: LevelState | None,
                      openings: list[OpeningStatus]) -> list[str]:
    """What the level in force sent on each channel when it came into force, and when: a
    heading, then one item per channel."""
    if state is None or state.level not in plan.levels:
        return []
    hours = int(plan.opening_damping.total_seconds() // 3600)
    by_channel = {o.channel: o for o in openings}
    lines = [tx.openings.format(level=state.level)]
    for channel in plan.level(state.level).rules:
        name = tx.channels[channel]
        found = by_channel.get(channel)
        if found is None:
            line = tx.opening_pending.format(channel=name)
        elif found.outcome is OpeningOutcome.SENT:
            line = tx.opening_sent.format(
                channel=name, wave=found.wave, at=tx.when(found.decided_at, plan.tz),
                urgent=tx.opening_urgent_mark if found.urgent else "",
                state=tx.wave_states.get(found.state or "", "-"), sent=tx.count(found.sent),
                total=tx.count(found.total))
        elif found.outcome is OpeningOutcome.DAMPED and found.last_sent is not None:
            line = tx.opening_damped.format(channel=name, level=state.level, hours=hours,
                                            last=tx.when(found.last_sent, plan.tz))
        else:
            line = tx.opening_missed.format(
                channel=name, minutes=int(plan.catch_up.total_seconds() // 60))
        lines.append(line)
    return lines


def opening_rule(tx: lang.Texts, plan: Plan) -> str:
    """The plan's rule for opening messages, in words."""
    urgent = [str(n) for n, level in plan.levels.items() if level.urgent]
    return tx.opening_rule.format(
        hours=int(plan.opening_damping.total_seconds() // 3600),
        urgent=tx.opening_urgent.format(levels=", ".join(urgent)) if urgent else "")


def describe(tx: lang.Texts, plan: Plan, state: LevelState | None) -> list[str]:
    """The level in force in words: level, name, since when, who set it (and who confirmed a
    raise), cases and reason; for
    level 0 (or none set) what that means."""
    if state is None:
        return [tx.never_set]
    since = state.since or state.at
    line = tx.in_force.format(level=state.level, name=level_name(tx, plan, state.level),
                              since=tx.stamp(since, plan.tz))
    if state.set_by:
        line += tx.set_by.format(user=state.set_by)
    if state.confirmed_by:
        line += tx.confirmed_by.format(user=state.confirmed_by)
    details = [tx.cases(state.cases)] if state.cases is not None else []
    if state.reason:
        details.append(tx.reason.format(reason=state.reason))
    if details:
        line += f" ({'; '.join(details)})"
    return [line, tx.level_zero] if state.level == 0 else [line]


def level_name(tx: lang.Texts, plan: Plan, level: int) -> str:
    """The plan's name of ``level`` ("Cấp độ III"); level 0 is "no case"."""
    if level == 0:
        return tx.no_case
    info = plan.levels.get(level)
    return info.name if info else tx.not_in_plan


def _history(tx: lang.Texts, plan: Plan, history: list[LevelState]) -> Table:
    table = Table(title=Text(tx.history), title_justify="left", expand=False)
    for column in tx.history_columns:
        table.add_column(column)
    for state in history:
        table.add_row(
            Text(tx.stamp(state.at, plan.tz)),
            Text(tx.history_level.format(level=state.level,
                                         name=level_name(tx, plan, state.level))),
            Text(tx.count(state.cases) if state.cases is not None else ""),
            Text(state.set_by), Text(state.reason))
    return table
