"""``loa situation``: the record of the day's figures the texts name. ``set`` goes through the
API with a token (:mod:`dispatcher.service.cli.gate`; ``--admin-direct``: Redis directly,
audited); ``show`` and ``history`` read the store (Redis)."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any

import msgspec

from dispatcher.domain.errors import InputError, NotFound
from dispatcher.domain.model import VN
from dispatcher.domain.plan import load_plan
from dispatcher.domain.province import load_province
from dispatcher.domain.situation import HISTORY_KEPT, Situation, SituationVersion
from dispatcher.domain.textcheck import visible
from dispatcher.engine.situation import set_situation
from dispatcher.service.cli import gate, storeopts
from dispatcher.service.cli.output import console, print_json
from dispatcher.service.cli.runtime import run_async
from dispatcher.service.settings import load_settings
from dispatcher.store import Store, open_store


def register(sub: Any) -> None:
    parser = sub.add_parser("situation", help="the day's figures the texts name: show, set, "
                                              "history",
                            description="The situation record (cases, areas with cases, "
                                        "hotline, date, free fields) that plan and campaign "
                                        "texts name as {cases}, {new_cases}, {areas}, "
                                        "{hotline}, {date}, {<free field>}. set goes through "
                                        "the API (--api URL, a token in LOA_TOKEN or "
                                        "--token-file); --admin-direct writes to Redis directly "
                                        "(audited). show and history read Redis.")
    group = parser.add_subparsers(dest="situation_command", metavar="COMMAND", required=True)
    setter = group.add_parser("set", help="set the record (the waves made from now on use it)")
    setter.add_argument("--cases-today", type=int, required=True, metavar="N")
    setter.add_argument("--cases-total", type=int, required=True, metavar="N")
    setter.add_argument("--hotline", required=True, help='the number citizens call, "1900 9095"')
    setter.add_argument("--areas", default="",
                        help="comma-separated districts with cases (ids or names)")
    setter.add_argument("--date", default=None, metavar="YYYY-MM-DD",
                        help="the day of the figures (default: today in Vietnam)")
    setter.add_argument("--field", action="append", default=[], metavar="NAME=TEXT",
                        help="a free field the texts name as {NAME} (repeatable)")
    setter.add_argument("--plan", type=Path, metavar="FILE",
                        help="with --admin-direct: the plan file whose texts the record must "
                             "fit (default: shipped)")
    storeopts.add_record_options(setter, changes=True)
    setter.set_defaults(func=cmd_set)
    show = group.add_parser("show", help="the record in force")
    storeopts.add_record_options(show)
    show.set_defaults(func=cmd_show)
    history = group.add_parser("history", help="the versions of the record, newest first")
    history.add_argument("--limit", type=int, default=20, metavar="N",
                         help=f"at most N versions (1-{HISTORY_KEPT}, default 20)")
    storeopts.add_record_options(history)
    history.set_defaults(func=cmd_history)



def _store(args: argparse.Namespace) -> Store:
    url = args.redis or load_settings(args.config).redis.url
    if not url:
        raise InputError("this command needs a Redis: give --redis URL or set LOA_REDIS_URL")
    return open_store(url)


def _record(args: argparse.Namespace) -> Situation:
    try:
        day = (dt.date.fromisoformat(args.date) if args.date
               else dt.datetime.now(VN).date())
    except ValueError:
        raise InputError(f"--date: {args.date!r} is not a date (YYYY-MM-DD)") from None
    fields: dict[str, str] = {}
    for item in args.field:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            raise InputError(f'--field: {item!r} is not NAME=TEXT (advice="Đeo khẩu trang")')
        fields[name.strip()] = text.strip()
    areas = [a.strip() for a in args.areas.split(",") if a.strip()]
    return Situation(cases_today=args.cases_today, cases_total=args.cases_total, date=day,
                     hotline=args.hotline.strip(), areas=areas, fields=fields)


def cmd_set(args: argparse.Namespace) -> int:
    record = _record(args)
    via = gate.gate(args, "loa situation set")

    async def go() -> SituationVersion:
        if isinstance(via, gate.Api):
            _, answer = await gate.call(via, "PUT", "/v1/situation", record)
            return msgspec.convert(answer, SituationVersion)
        store = _store(args)
        try:
            return await gate.audited(via, "situation.set", "situation", set_situation(
                store, record, province=load_province(), plan=load_plan(args.plan),
                by=via.user, now=dt.datetime.now(dt.UTC)), msgspec.to_builtins(record))
        finally:
            await store.aclose()

    return _print([run_async(go())], args)


def cmd_show(args: argparse.Namespace) -> int:
    async def go() -> SituationVersion | None:
        store = _store(args)
        try:
            return await store.situation.get()
        finally:
            await store.aclose()

    found = run_async(go())
    if found is None:
        raise NotFound("no situation has been set yet: loa situation set")
    return _print([found], args)


def cmd_history(args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= HISTORY_KEPT:
        raise InputError(f"--limit: must be 1 to {HISTORY_KEPT}, not {args.limit}")

    async def go() -> list[SituationVersion]:
        store = _store(args)
        try:
            return await store.situation.history(args.limit)
        finally:
            await store.aclose()

    return _print(run_async(go()), args, history=True)


def _print(versions: list[SituationVersion], args: argparse.Namespace, *,
           history: bool = False) -> int:
    if args.json:
        print_json({"versions": versions} if history else versions[0])
        return 0
    out = console()
    for v in versions:
        s = v.situation
        out.print(f"{v.at.astimezone(VN):%Y-%m-%d %H:%M} by {visible(v.by) or '-'}: "
                  f"{s.date:%d/%m/%Y} {s.cases_today:,} new, {s.cases_total:,} in total; "
                  f"hotline {visible(s.hotline)}", markup=False)
        out.print(f"  areas: {visible(', '.join(s.areas)) or '-'}", markup=False)
        for name, text in s.fields.items():
            out.print(f"  {{{name}}}: {visible(text)}", markup=False)
    return 0
