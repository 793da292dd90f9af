"""``loa plan show`` and ``loa plan level``: what the plan says, and which level a count sets;
``loa plan texts`` (:mod:`dispatcher.service.cli.plantexts`): its texts edited without a restart."""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec
from rich.console import Console
from rich.table import Table
from rich.text import Text

from dispatcher.domain import smstext
from dispatcher.domain.model import OUTLETS, Channel
from dispatcher.domain.outlet import Target
from dispatcher.domain.plan import Activity, Level, Plan, Rule, load_plan, next_slot
from dispatcher.domain.province import load_province
from dispatcher.domain.textcheck import visible
from dispatcher.engine import textedits
from dispatcher.service.api.planview import plan_view
from dispatcher.service.cli import lang, plantexts, storeopts
from dispatcher.service.cli.level import describe, describe_openings, opening_rule, read_openings
from dispatcher.service.cli.output import console, print_json
from dispatcher.service.cli.runtime import run_async
from dispatcher.store import open_store


def register(sub: Any) -> None:
    parser = sub.add_parser("plan", help="show the communication plan and compute levels",
                            description="The communication plan Loa executes (config/plan.toml).")
    group = parser.add_subparsers(dest="plan_command", metavar="COMMAND", required=True)

    show = group.add_parser("show", help="print the plan: levels, channels, cadences, templates",
                            description="Print every level of the plan (or one), with each "
                                        "channel's cadence, next send (in the plan's time "
                                        "zone), lead and coordinating units and message, and "
                                        "the work done by people. With a Redis, the level in "
                                        "force is marked, with since when and who set it.")
    show.add_argument("--level", type=int, metavar="N", help="only this level (1-4)")
    show.add_argument("--json", action="store_true",
                      help="one JSON object on stdout (GET /v1/plan's view; with a Redis, "
                           "and current_level: the level in force, null if none was set)")
    lang.add_option(show)
    storeopts.add_options(show, without="the plan alone, without the level in force")
    show.set_defaults(func=cmd_show)

    level = group.add_parser("level", help="the level the plan sets for a number of cases",
                             description="Print the epidemic level for N confirmed cases in "
                                         "the province (0 when there is no case).")
    level.add_argument("--cases", type=int, required=True, metavar="N",
                       help="confirmed cases in the province")
    level.add_argument("--json", action="store_true", help="one JSON object on stdout")
    lang.add_option(level)
    level.add_argument("--plan", type=Path, metavar="FILE",
                       help="plan file (default: shipped)")
    level.set_defaults(func=cmd_level)
    plantexts.register(group)


def now() -> dt.datetime:
    """The time the next sends are counted from."""
    return dt.datetime.now(dt.UTC)


def cmd_level(args: argparse.Namespace) -> int:
    plan = load_plan(args.plan)
    level = plan.level_for_cases(args.cases)
    if args.json:
        print_json({"cases": args.cases, "level": level})
        return 0
    tx = lang.texts(args)
    cases = tx.cases(args.cases)
    if level == 0:
        line = tx.cases_level_zero.format(cases=cases)
    else:
        info = plan.level(level)
        line = tx.cases_level.format(cases=cases, level=level, name=info.name,
                                     trigger=info.trigger)
    console().print(line, markup=False)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    plan = load_plan(args.plan)
    settings, url = storeopts.settings_and_url(args)
    targets = {c: settings.targets(c) for c in OUTLETS}
    current, openings = read_openings(url) if url else (None, [])
    versions: dict[tuple[int, Channel], str] = {}
    refused: dict[tuple[int, Channel], textedits.Refused] = {}
    if url:  # the texts in force: an approved version's over the file's
        plan, versions, refused = read_texts(url, plan)
    levels = [plan.level(args.level)] if args.level is not None else list(plan.levels.values())
    at = now()
    if args.json:
        view = plan_view(plan, load_province(), at, levels, versions=versions, refused=refused,
                         targets=targets)
        if not url:
            print_json(view)
            return 0
        doc = msgspec.to_builtins(view)
        doc["current_level"] = msgspec.to_builtins(current)
        doc["openings"] = msgspec.to_builtins(openings)
        print_json(doc)
        return 0
    tx = lang.texts(args)
    out = console()
    start, end = plan.hours_text
    out.print(Text(plan.name, style="bold"))
    if plan.source:
        out.print(tx.source.format(source=plan.source), markup=False)
    out.print(tx.hours.format(tz=plan.tz.key, offset=lang.utc_offset(at, plan.tz), start=start,
                              end=end, minutes=int(plan.catch_up.total_seconds() // 60)),
              markup=False)
    out.print(tx.policy.format(hotline=plan.hotline or "-",
                               diacritics=tx.diacritics.get(plan.sms_diacritics,
                                                            plan.sms_diacritics),
                               parts=plan.sms_max_parts), markup=False)
    out.print(opening_rule(tx, plan), markup=False)
    if url:
        for line in describe(tx, plan, current):
            out.print(line, markup=False)
        opened = describe_openings(tx, plan, current, openings)
        if opened:
            out.print(opened[0], markup=False)
            out.print(_items(opened[1:]))
    for (n, channel), why in sorted(refused.items()):
        if n in {level.level for level in levels}:
            out.print(tx.refused_text.format(level=n, channel=tx.channels[channel],
                                             version=why.version, reason=visible(why.reason)),
                      markup=False)
    in_force = current.level if current else None
    for level in levels:
        out.print()
        _print_level(out, tx, plan, level, at, targets, in_force=level.level == in_force)
    return 0


InForceTexts = tuple[Plan, dict[tuple[int, Channel], str],
                     dict[tuple[int, Channel], textedits.Refused]]


def read_texts(url: str, plan: Plan) -> InForceTexts:
    """``plan`` with the approved texts in force, their ids, and the approved ones it refuses
    (:mod:`dispatcher.engine.textedits`)."""

    async def go() -> InForceTexts:
        store = open_store(url)
        try:
            return await textedits.effective_plan(store, plan)
        finally:
            await store.aclose()

    return run_async(go())


def _print_level(out: Console, tx: lang.Texts, plan: Plan, level: Level, at: dt.datetime,
                 targets: dict[Channel, list[Target]], *, in_force: bool) -> None:
    out.print(_level_table(tx, plan, level, at, in_force=in_force))
    out.print(tx.messages, markup=False)
    out.print(_items(_message(tx, rule, targets.get(rule.channel, []))
                     for rule in level.rules.values()))
    if level.activities:
        out.print(tx.activities, markup=False)
        out.print(_items(_activity(tx, a) for a in level.activities))


def _level_table(tx: lang.Texts, plan: Plan, level: Level, at: dt.datetime, *,
                 in_force: bool) -> Table:
    title = tx.level_title.format(level=level.level, name=level.name, cases=_cases(tx, level))
    if in_force:
        title = tx.in_force_mark.format(title=title)
    table = Table(title=Text(title, style="bold" if in_force else ""), title_justify="left",
                  expand=False)
    for column in tx.columns:
        table.add_column(column)
    for rule in level.rules.values():
        upcoming = next_slot(plan, level.level, rule.channel, at)
        table.add_row(
            Text(tx.channels[rule.channel]),
            Text(f"{tx.frequency(rule.cadence)}\n"
                 f"{tx.source_says.format(quantity=rule.row.quantity)}"),
            Text(tx.schedule(rule.cadence)),
            Text(tx.when(upcoming.at, plan.tz) if upcoming else "-"),
            Text(rule.row.lead),
        )
    return table


def _cases(tx: lang.Texts, level: Level) -> str:
    """The confirmed cases of a level: "1 ca", "từ 11 đến 150 ca", "more than 150 cases"."""
    if level.max_cases is None:
        return tx.cases_above.format(cases=tx.cases(level.min_cases - 1))
    if level.max_cases == level.min_cases:
        return tx.cases(level.min_cases)
    return tx.cases_range.format(low=tx.count(level.min_cases), high=tx.count(level.max_cases))


def _message(tx: lang.Texts, rule: Rule, targets: list[Target]) -> str:
    """A channel's message as it is sent, after its encoding and parts (SMS) or length, the
    units coordinating the channel and, for an outlet, the targets it is published to."""
    text = rule.row.template
    if rule.channel is Channel.SMS:
        seg = smstext.segment(rule.row.template, strip=rule.row.strip_diacritics)
        info = tx.sms_info.format(encoding=seg.encoding.value.upper(),
                                  parts=tx.parts(len(seg.parts)))
        if rule.row.strip_diacritics:
            info += tx.stripped
        text = seg.text
    else:
        info = tx.chars_info.format(n=tx.count(len(text)))
    if rule.row.coordinating:
        info += "; " + tx.with_units.format(units=", ".join(rule.row.coordinating))
    if rule.channel.outlet:
        info += "; " + (tx.targets.format(names=", ".join(visible(t.name or t.id)
                                                          for t in targets))
                        if targets else tx.no_targets)
    return f"{tx.channels[rule.channel]} ({info}): {text}"


def _activity(tx: lang.Texts, activity: Activity) -> str:
    """Work done by people: field, what, quantity, lead unit and coordinating units."""
    text = (tx.activity.format(field=activity.field, what=activity.what,
                               quantity=activity.quantity)
            + " " + tx.lead.format(lead=activity.lead))
    if activity.coordinating:
        text += "; " + tx.with_units.format(units=", ".join(activity.coordinating))
    return text


def _items(lines: Iterable[str]) -> Table:
    """One bulleted item per line; a long item wraps under its own start."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column()
    for line in lines:
        grid.add_row(Text("  •"), Text(line))
    return grid
