"""``loa plan show`` and ``loa plan level``: what the plan says, and which level a count sets."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any

from rich.table import Table

from dispatcher import smstext
from dispatcher.api.planview import plan_view
from dispatcher.cli.output import console, print_json
from dispatcher.model import Channel
from dispatcher.plan import Level, Plan, Rule, load_plan, next_slot, slot_texts
from dispatcher.province import load_province


def register(sub: Any) -> None:
    parser = sub.add_parser("plan", help="show the communication plan and compute levels",
                            description="The communication plan Loa executes (config/plan.toml).")
    group = parser.add_subparsers(dest="plan_command", metavar="COMMAND", required=True)

    show = group.add_parser("show", help="print the plan: levels, channels, cadences, templates",
                            description="Print every level of the plan (or one), with each "
                                        "channel's cadence, next send, lead unit and message.")
    show.add_argument("--level", type=int, metavar="N", help="only this level (1-4)")
    show.add_argument("--json", action="store_true", help="one JSON object on stdout")
    show.add_argument("--plan", type=Path, metavar="FILE", help="plan file (default: shipped)")
    show.set_defaults(func=cmd_show)

    level = group.add_parser("level", help="the level the plan sets for a number of cases",
                             description="Print the epidemic level for N confirmed cases in "
                                         "the province (0 when there is no case).")
    level.add_argument("--cases", type=int, required=True, metavar="N",
                       help="confirmed cases in the province")
    level.add_argument("--json", action="store_true", help="one JSON object on stdout")
    level.add_argument("--plan", type=Path, metavar="FILE", help="plan file (default: shipped)")
    level.set_defaults(func=cmd_level)


def cmd_level(args: argparse.Namespace) -> int:
    plan = load_plan(args.plan)
    level = plan.level_for_cases(args.cases)
    if args.json:
        print_json({"cases": args.cases, "level": level})
        return 0
    if level == 0:
        console().print(f"{args.cases} cases: level 0 (no case in the province; nothing is sent)")
    else:
        info = plan.level(level)
        console().print(f"{args.cases} cases: level {level} ({info.name}: {info.trigger})")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    plan = load_plan(args.plan)
    levels = [plan.level(args.level)] if args.level is not None else list(plan.levels.values())
    now = dt.datetime.now(dt.UTC)
    if args.json:
        print_json(plan_view(plan, load_province(), now, levels))
        return 0
    out = console()
    start, end = plan.hours_text
    out.print(f"[bold]{plan.name}[/bold]")
    if plan.source:
        out.print(f"Source: {plan.source}")
    out.print(f"Time zone {plan.tz.key}; sending hours {start}-{end}; "
              f"missed slots caught up for {int(plan.catch_up.total_seconds() // 60)} minutes")
    for level in levels:
        out.print()
        out.print(_level_table(plan, level, now))
        for rule in level.rules.values():
            info, text = _message_info(rule)
            with_units = ", ".join(rule.row.coordinating)
            if with_units:
                info += f"; with {with_units}"
            out.print(f"  {rule.channel} ({info}): {text}", markup=False)
        if level.activities:
            out.print("  Done by people, recorded only: " + "; ".join(
                f"{a.what} ({a.quantity}, {a.lead})" for a in level.activities))
    return 0


def _level_table(plan: Plan, level: Level, now: dt.datetime) -> Table:
    if level.max_cases is None:
        cases = f"more than {level.min_cases - 1} cases"
    elif level.max_cases == level.min_cases:
        cases = f"{level.min_cases} case" if level.min_cases == 1 else f"{level.min_cases} cases"
    else:
        cases = f"{level.min_cases} to {level.max_cases} cases"
    table = Table(title=f"Level {level.level} — {level.name}: {cases}",
                  title_justify="left", expand=False)
    for column in ("channel", "per week", "cadence", "next send", "lead unit"):
        table.add_column(column)
    for rule in level.rules.values():
        upcoming = next_slot(plan, level.level, rule.channel, now)
        table.add_row(
            rule.channel.value,
            f"{rule.cadence.sends_per_week:.3g}",
            f"{rule.row.quantity} ({', '.join(slot_texts(rule))})",
            f"{upcoming.at:%a %d %b %H:%M}" if upcoming else "-",
            rule.row.lead,
        )
    return table


def _message_info(rule: Rule) -> tuple[str, str]:
    """A short description of the message and the text as it is sent."""
    if rule.channel is not Channel.SMS:
        return f"{len(rule.row.template)} characters", rule.row.template
    seg = smstext.segment(rule.row.template, strip=rule.row.strip_diacritics)
    parts = "part" if len(seg.parts) == 1 else "parts"
    stripped = ", diacritics stripped" if rule.row.strip_diacritics else ""
    return f"{seg.encoding.value.upper()}, {len(seg.parts)} {parts}{stripped}", seg.text
