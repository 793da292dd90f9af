"""``loa incoming list``: what citizens sent (SMS replies, Zalo messages, follows and
unfollows), newest first, read from the store (Redis) like ``loa dead-letters list``
(:mod:`dispatcher.store.incoming`)."""

from __future__ import annotations

import argparse
import re
from typing import Any

from dispatcher.domain.errors import InputError
from dispatcher.domain.model import VN, Channel
from dispatcher.domain.textcheck import visible
from dispatcher.service.api.incoming import CURSOR, LIMIT_MAX, IncomingList, view
from dispatcher.service.cli import storeopts
from dispatcher.service.cli.output import console, print_json
from dispatcher.service.cli.runtime import run_async
from dispatcher.store import open_store
from dispatcher.store.incoming import Retention


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "incoming", help="list what citizens sent: replies, Zalo messages, follows, opt-outs",
        description="Messages and events from citizens, kept [incoming] retention_days: SMS "
                    "replies (deliver_sm and data_sm, any encoding; unreadable and binary ones "
                    "as hex), Zalo messages, follows and unfollows. A reply whose first words "
                    "are an opt-out keyword and an unfollow are marked OPT-OUT. Reads Redis.")
    group = parser.add_subparsers(dest="incoming_command", metavar="COMMAND", required=True)
    listing = group.add_parser("list", help="a page of what citizens sent, newest first")
    listing.add_argument("--channel", choices=[c.value for c in Channel],
                         help="one channel only (sms, zalo)")
    listing.add_argument("--limit", type=int, default=50, metavar="N",
                         help=f"items on the page (1-{LIMIT_MAX}, default 50)")
    listing.add_argument("--cursor", default="", metavar="CURSOR",
                         help="where the page begins: the next cursor the page before printed")
    storeopts.add_record_options(listing)
    listing.set_defaults(func=cmd_list)


def cmd_list(args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= LIMIT_MAX:
        raise InputError(f"--limit: {args.limit} is not between 1 and {LIMIT_MAX}")
    if not re.fullmatch(CURSOR, args.cursor):
        raise InputError(f"--cursor: {args.cursor!r} is not a cursor this command printed")
    settings, url = storeopts.settings_and_url(args)
    if not url:
        raise InputError("loa incoming list needs a Redis: give --redis URL or set "
                         "LOA_REDIS_URL")
    channel = Channel(args.channel) if args.channel else None

    async def go() -> IncomingList:
        store = open_store(url)
        store.incoming.retention = Retention(settings.incoming.retention_days,
                                             settings.incoming.max_items)
        try:
            page = await store.incoming.page(channel, args.cursor, args.limit)
        finally:
            await store.aclose()
        return IncomingList([view(i) for i in page.items], page.cursor,
                            settings.incoming.retention_days)

    found = run_async(go())
    if args.json:
        print_json(found)
        return 0
    out = console()
    if not found.items:
        out.print(f"nothing came in the last {found.retention_days:g} days"
                  + (f" on {channel}" if channel else ""), markup=False)
    for i in found.items:
        when = i.at.astimezone(VN).strftime("%Y-%m-%d %H:%M:%S")
        flag = f"OPT-OUT ({i.keyword or 'unfollow'})" if i.opt_out else i.kind
        part = f"(part {i.part}) " if i.part else ""
        out.print(f"{when}  {i.channel:<5} {visible(i.number) or '-':<20} {flag:<10} "
                  f"{part}{visible(i.text)}", markup=False)
    if found.next_cursor:
        out.print(f"more: --cursor {found.next_cursor}", markup=False)
    return 0
