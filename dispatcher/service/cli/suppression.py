"""``loa suppression``: each channel's suppression list, listed and exported (CSV) from the
store (Redis), and changed (add, remove, with a reason) through the API with a token
(:mod:`dispatcher.service.cli.gate`; ``--admin-direct``: on Redis directly, audited). What the
lists do: :mod:`dispatcher.domain.suppression`."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import msgspec

from dispatcher.domain.errors import InputError
from dispatcher.domain.model import PERSONAL, Channel
from dispatcher.domain.msisdn import load_numbering
from dispatcher.domain.suppression import Suppression, check_reason, normalise
from dispatcher.domain.textcheck import visible
from dispatcher.engine import suppressions
from dispatcher.service.api.suppressions import (
    LIMIT_MAX,
    SuppressionAdd,
    SuppressionList,
    SuppressionRemove,
    csv_rows,
)
from dispatcher.service.cli import gate, storeopts
from dispatcher.service.cli.output import console, print_json
from dispatcher.service.cli.runtime import run_async
from dispatcher.store import Store, open_store

CHANNELS = [c.value for c in PERSONAL]


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "suppression", help="each channel's suppression list: list, export, add, remove",
        description="The suppression lists: per channel, the numbers routine waves and "
                    "campaigns skip (opt-outs, numbers the channel refused for good, an "
                    "operator's entries); a public-safety campaign reaches them. list and "
                    "export read Redis; add and remove go through the API (--api URL, a token "
                    "in LOA_TOKEN or --token-file) with its roles and audit log, or with "
                    "--admin-direct on Redis directly (audited).")
    group = parser.add_subparsers(dest="suppression_command", metavar="COMMAND", required=True)
    listing = group.add_parser("list", help="a page of a channel's list, in number order")
    listing.add_argument("--channel", choices=CHANNELS, default="sms")
    listing.add_argument("--limit", type=int, default=100, metavar="N",
                         help=f"entries on the page (1-{LIMIT_MAX}, default 100)")
    listing.add_argument("--cursor", default="", metavar="CURSOR",
                         help="where the page begins: the next cursor the page before printed")
    storeopts.add_record_options(listing)
    listing.set_defaults(func=cmd_list)
    export = group.add_parser("export", help="a channel's list (or every channel's) as CSV")
    export.add_argument("--channel", choices=CHANNELS, default=None,
                        help="one channel (default: every channel)")
    export.add_argument("--output", "-o", type=Path, metavar="FILE",
                        help="write the CSV there (default: stdout)")
    export.add_argument("--redis", metavar="URL", help="Redis URL (default: LOA_REDIS_URL)")
    export.add_argument("--config", type=Path, metavar="FILE", help="deployment settings")
    export.set_defaults(func=cmd_export)
    for verb, what in (("add", "put a number on a channel's list"),
                       ("remove", "take a number off a channel's list")):
        p = group.add_parser(verb, help=what)
        p.add_argument("number", metavar="NUMBER",
                       help="as people write it (0912 345 678), a Zalo user id, an e-mail")
        p.add_argument("--channel", choices=CHANNELS, required=True)
        p.add_argument("--reason", required=True, help="why (kept with the entry and audited)")
        storeopts.add_record_options(p, changes=True)
        p.set_defaults(func=cmd_add if verb == "add" else cmd_remove)


def _store(args: argparse.Namespace) -> Store:
    _, url = storeopts.settings_and_url(args, need_redis=True)
    return open_store(url)


def cmd_list(args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= LIMIT_MAX:
        raise InputError(f"--limit: {args.limit} is not between 1 and {LIMIT_MAX}")
    channel = Channel(args.channel)

    async def go() -> SuppressionList:
        store = _store(args)
        try:
            page = await store.suppressions.page(channel, args.cursor, args.limit)
            return SuppressionList(channel, await store.suppressions.count(channel),
                                   page.entries, page.cursor)
        finally:
            await store.aclose()

    found = run_async(go())
    if args.json:
        print_json(found)
        return 0
    out = console()
    out.print(f"{channel}: {found.total:,} numbers on the suppression list", markup=False)
    for e in found.entries:
        out.print(f"  {_line(e)}", markup=False)
    if found.next_cursor:
        out.print(f"more: --cursor {found.next_cursor}", markup=False)
    return 0


def _line(e: Suppression) -> str:
    at = dt.datetime.fromtimestamp(e.at, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    who = f" by {visible(e.by)}" if e.by else (f" (wave {visible(e.wave)})" if e.wave else "")
    return f"{visible(e.number):<16} {at}  {e.source:<11} {visible(e.reason)}{who}"


def cmd_export(args: argparse.Namespace) -> int:
    channels = [Channel(args.channel)] if args.channel else list(PERSONAL)

    async def go() -> None:
        store = _store(args)
        try:
            with (args.output.open("wb") if args.output else _stdout()) as out:
                async for chunk in csv_rows(store, channels):
                    out.write(chunk)
        finally:
            await store.aclose()

    try:
        run_async(go())
    except OSError as exc:
        raise InputError(f"--output: {exc.strerror or exc}") from None
    return 0


class _stdout:
    def __enter__(self) -> Any:
        return sys.stdout.buffer

    def __exit__(self, *_: object) -> None:
        sys.stdout.buffer.flush()


def _checked(args: argparse.Namespace) -> tuple[Channel, str, str]:
    channel = Channel(args.channel)
    try:
        number = normalise(channel, args.number, load_numbering())
        reason = check_reason(args.reason)
    except InputError as exc:
        raise InputError(f"{exc.field}: {exc}" if exc.field else str(exc)) from None
    return channel, number, reason


def cmd_add(args: argparse.Namespace) -> int:
    channel, number, reason = _checked(args)
    via = gate.gate(args, "loa suppression add")

    async def go() -> Suppression:
        if isinstance(via, gate.Api):
            _, answer = await gate.call(via, "POST", "/v1/suppressions", SuppressionAdd(
                channel=channel, number=number, reason=reason))
            return msgspec.convert(answer, Suppression)
        store = _store(args)
        try:
            return await gate.audited(
                via, "suppression.add", f"{channel}:{number}",
                suppressions.add(store, channel, number, reason, via.user),
                {"channel": channel.value, "number": number, "reason": reason})
        finally:
            await store.aclose()

    return _done(args, run_async(go()), "on")


def cmd_remove(args: argparse.Namespace) -> int:
    channel, number, reason = _checked(args)
    via = gate.gate(args, "loa suppression remove")

    async def go() -> Suppression:
        if isinstance(via, gate.Api):
            path = f"/v1/suppressions/{channel}/{quote(number, safe='')}"
            _, answer = await gate.call(via, "DELETE", path, SuppressionRemove(reason=reason))
            return msgspec.convert(answer, Suppression)
        store = _store(args)
        try:
            return await gate.audited(
                via, "suppression.remove", f"{channel}:{number}",
                suppressions.remove(store, channel, number),
                {"channel": channel.value, "number": number, "reason": reason})
        finally:
            await store.aclose()

    return _done(args, run_async(go()), "off")


def _done(args: argparse.Namespace, entry: Suppression, where: str) -> int:
    if args.json:
        print_json(entry)
        return 0
    console().print(f"{visible(entry.number)} {where} the {entry.channel} suppression list: "
                    f"{visible(entry.reason)}", markup=False)
    return 0
