"""``loa checklist``: the plan's work for people on a day, at the level in force. Without a
command it prints the day's checklist (read from the store, Redis); ``done`` marks an item done
with a note and ``undo`` takes a mark back, through the API with a token
(:mod:`dispatcher.service.cli.gate`; ``--admin-direct``: Redis directly, audited)."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from dispatcher.domain.checklist import Checklist, Done, Item
from dispatcher.domain.errors import InputError
from dispatcher.domain.plan import Plan, load_plan
from dispatcher.domain.reminder import day_text
from dispatcher.domain.textcheck import visible
from dispatcher.engine import checklist
from dispatcher.service.cli import gate, storeopts
from dispatcher.service.cli.output import console, print_json
from dispatcher.service.cli.runtime import run_async
from dispatcher.store import Store, open_store


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "checklist", help="the plan's work for people today: show, done, undo",
        description="The day's checklist: the activities of the plan at the level in force "
                    "that people do (press releases, press conferences, loudspeakers, village "
                    "reporters, the hotline ...), each due or not by its cadence, and what the "
                    "units marked done. Without a command: show it (reads Redis). done and "
                    "undo go through the API (--api URL, a token in LOA_TOKEN or --token-file); "
                    "--admin-direct writes to Redis directly (audited).")
    _day_option(parser)
    parser.add_argument("--unit", default="", help="only the items this unit leads")
    parser.add_argument("--plan", type=Path, metavar="FILE", help="plan file (default: shipped)")
    storeopts.add_record_options(parser)
    parser.set_defaults(func=cmd_show)
    group = parser.add_subparsers(dest="checklist_command", metavar="COMMAND")
    done = group.add_parser("done", help="mark an item done, with a note",
                            description="Mark an item of the day's checklist done (audited).")
    done.add_argument("item", help="the item's id, e.g. L2-press-release (loa checklist)")
    done.add_argument("--note", required=True, help="what was done (required)")
    done.add_argument("--unit", default="", help="the unit that did it (default: the lead)")
    _day_option(done)
    done.add_argument("--plan", type=Path, metavar="FILE",
                      help="with --admin-direct: the plan file (default: shipped)")
    storeopts.add_record_options(done, changes=True)
    done.set_defaults(func=cmd_done)
    undo = group.add_parser("undo", help="take back an item's mark, with the reason",
                            description="Take back the mark of an item (audited).")
    undo.add_argument("item", help="the item's id, e.g. L2-press-release")
    undo.add_argument("--reason", required=True, help="why (required)")
    _day_option(undo)
    undo.add_argument("--plan", type=Path, metavar="FILE",
                      help="with --admin-direct: the plan file (default: shipped)")
    storeopts.add_record_options(undo, changes=True)
    undo.set_defaults(func=cmd_undo)


def _day_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--date", default=None, metavar="YYYY-MM-DD",
                        help="the day (default: today in the plan's time zone)")


def _day(args: argparse.Namespace, plan: Plan, now: dt.datetime) -> dt.date:
    if not args.date:
        return checklist.today(plan, now)
    try:
        return dt.date.fromisoformat(args.date)
    except ValueError:
        raise InputError(f"--date: {args.date!r} is not a date (YYYY-MM-DD)") from None


def _store(args: argparse.Namespace) -> Store:
    _, url = storeopts.settings_and_url(args, need_redis=True)
    return open_store(url)


def cmd_show(args: argparse.Namespace) -> int:
    plan = load_plan(args.plan)
    now = dt.datetime.now(dt.UTC)
    day = _day(args, plan, now)

    async def go() -> Checklist:
        store = _store(args)
        try:
            return await checklist.day_checklist(store, plan, day, now)
        finally:
            await store.aclose()

    found = run_async(go())
    unit = " ".join(args.unit.split())
    if unit:
        items = [i for i in found.items if i.lead == unit]
        if not items and not any(i.lead == unit for i in found.items):
            leads = sorted({i.lead for i in found.items})
            raise InputError(f"--unit: {unit!r} leads no item of this checklist "
                             f"({'; '.join(leads) or 'it has none'})")
        due = [i for i in items if i.in_force and i.due]
        found = msgspec.structs.replace(found, items=items, due=len(due),
                                        done=sum(1 for i in due if i.done is not None))
    if args.json:
        print_json(found)
        return 0
    _print(found)
    return 0


def _print(found: Checklist) -> None:
    out = console()
    if not found.level:
        out.print(f"Việc cần làm {day_text(found.date)}: không có cấp độ dịch nào đang áp dụng "
                  "(cấp 0), không có việc.", markup=False)
        return
    out.print(f"Việc cần làm {day_text(found.date)} — cấp {found.level}, {found.level_name}: "
              f"{found.done}/{found.due} việc đến hạn đã xong", markup=False)
    groups = [("Đến hạn trong ngày:", [i for i in found.items if i.due]),
              ("Khi cần (không theo lịch):", [i for i in found.items
                                              if i.in_force and i.next_due is None]),
              ("Chưa đến hạn:", [i for i in found.items
                                 if i.in_force and not i.due and i.next_due is not None]),
              ("Đã xong, của cấp độ khác trong ngày:", [i for i in found.items
                                                        if not i.in_force])]
    for title, items in groups:
        if items:
            out.print(title, markup=False)
            for item in items:
                for line in _lines(item, ZoneInfo(found.timezone)):
                    out.print(line, markup=False)


def _lines(item: Item, tz: dt.tzinfo) -> list[str]:
    mark = "[x]" if item.done is not None else "[ ]"
    lines = [f"  {mark} {item.id}  {visible(item.field)}: {visible(item.what)} — "
             f"{visible(item.quantity)}"]
    units = f"      Chủ trì: {visible(item.lead)}"
    if item.coordinating:
        units += f"; phối hợp: {visible(', '.join(item.coordinating))}"
    lines.append(units)
    if not item.due and item.next_due is not None and item.in_force:
        lines.append(f"      Lần tới: {day_text(item.next_due)}")
    if item.done is not None:
        lines.append(_done_line(item.done, tz))
    return lines


def _done_line(done: Done, tz: dt.tzinfo) -> str:
    return (f"      Đã xong: {visible(done.unit)}, {visible(done.by)} đánh dấu lúc "
            f"{done.at.astimezone(tz):%H:%M %d/%m} — {visible(done.note)}")


def cmd_done(args: argparse.Namespace) -> int:
    via = gate.gate(args, "loa checklist done")
    body: dict[str, Any] = {"note": args.note, "unit": args.unit}
    if args.date:
        body["date"] = args.date

    async def go() -> Done:
        if isinstance(via, gate.Api):
            _, answer = await gate.call(via, "POST", f"/v1/checklist/{args.item}/done", body)
            return msgspec.convert(answer, Done)
        plan = load_plan(args.plan)
        now = dt.datetime.now(dt.UTC)
        store = _store(args)
        try:
            return await gate.audited(via, "checklist.done", args.item, checklist.mark_done(
                store, plan, args.item, day=_day(args, plan, now), by=via.user, unit=args.unit,
                note=args.note, now=now), body)
        finally:
            await store.aclose()

    return _answer(run_async(go()), args, "marked done")


def cmd_undo(args: argparse.Namespace) -> int:
    via = gate.gate(args, "loa checklist undo")
    body: dict[str, Any] = {"reason": args.reason}
    if args.date:
        body["date"] = args.date

    async def go() -> Done:
        if isinstance(via, gate.Api):
            _, answer = await gate.call(via, "DELETE", f"/v1/checklist/{args.item}/done", body)
            return msgspec.convert(answer, Done)
        if not args.reason.strip():
            raise InputError("--reason: required")
        plan = load_plan(args.plan)
        now = dt.datetime.now(dt.UTC)
        store = _store(args)
        try:
            return await gate.audited(via, "checklist.undo", args.item, checklist.undo(
                store, plan, args.item, day=_day(args, plan, now), now=now), body)
        finally:
            await store.aclose()

    return _answer(run_async(go()), args, "mark taken back")


def _answer(done: Done, args: argparse.Namespace, what: str) -> int:
    if args.json:
        print_json(done)
        return 0
    console().print(f"{done.item} {what} ({done.date.isoformat()}): {visible(done.unit)}, "
                    f"{visible(done.by)} — {visible(done.note)}", markup=False)
    return 0
