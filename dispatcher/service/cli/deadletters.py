"""``loa dead-letters``: a wave's dead letters, listed from the store (Redis), and replayed onto
the same wave through the API with a token (:mod:`dispatcher.service.cli.gate`;
``--admin-direct``: on Redis directly, audited). What a replay does by the wave's state:
:mod:`dispatcher.engine.deadletters`."""

from __future__ import annotations

import argparse
from typing import Any
from urllib.parse import quote

import msgspec

from dispatcher.domain.errors import InputError
from dispatcher.domain.textcheck import visible
from dispatcher.engine import deadletters
from dispatcher.engine.deadletters import Replay
from dispatcher.service.api.deadletters import LIMIT_MAX, DeadLetterList, DeadLetterView
from dispatcher.service.api.schemas import ActionBody
from dispatcher.service.cli import gate, storeopts
from dispatcher.service.cli.output import console, print_json
from dispatcher.service.cli.runtime import run_async
from dispatcher.service.settings import load_settings
from dispatcher.store import open_store


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "dead-letters", help="list a wave's dead letters, and replay them onto the wave",
        description="Dead letters: the messages of a wave given up on (refused for good, or "
                    "retried until the retries ran out). list reads Redis; replay sends them "
                    "again on the same wave (never to a recipient it was sent), through the API "
                    "(--api URL, a token in LOA_TOKEN or --token-file) with its roles and audit "
                    "log, or with --admin-direct on Redis directly (audited). A cancelled wave "
                    "is refused; a completed one sends again until they have an outcome.")
    group = parser.add_subparsers(dest="dead_command", metavar="COMMAND", required=True)
    listing = group.add_parser("list", help="a page of the wave's dead letters not replayed")
    listing.add_argument("wave", metavar="WAVE")
    listing.add_argument("--limit", type=int, default=100, metavar="N",
                         help=f"letters on the page (1-{LIMIT_MAX}, default 100)")
    listing.add_argument("--cursor", default="", metavar="CURSOR",
                         help="where the page begins: the next cursor the page before printed")
    storeopts.add_record_options(listing)
    listing.set_defaults(func=cmd_list)
    replay = group.add_parser("replay", help="send the wave's dead letters again, on the wave")
    replay.add_argument("wave", metavar="WAVE")
    replay.add_argument("--reason", default="", help="why (kept in the audit log)")
    gate.add_options(replay)
    storeopts.add_record_options(replay)
    replay.set_defaults(func=cmd_replay)



def _url(args: argparse.Namespace, verb: str) -> str:
    url: str = args.redis or load_settings(args.config).redis.url
    if not url:
        raise InputError(f"loa dead-letters {verb} needs a Redis: give --redis URL or set "
                         "LOA_REDIS_URL")
    return url


def cmd_list(args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= LIMIT_MAX:
        raise InputError(f"--limit: {args.limit} is not between 1 and {LIMIT_MAX}")
    url = _url(args, "list")

    async def go() -> DeadLetterList:
        store = open_store(url)
        try:
            page, total = await deadletters.dead_letters(store, args.wave, cursor=args.cursor,
                                                         limit=args.limit)
        finally:
            await store.aclose()
        return DeadLetterList(args.wave, total, [
            DeadLetterView(d.id, d.addr, d.channel, route, d.attempts, d.reason, d.expired)
            for route, d in page.letters], page.cursor)

    found = run_async(go())
    if args.json:
        print_json(found)
        return 0
    out = console()
    out.print(f"wave {visible(found.wave)}: {found.total:,} dead letters not replayed",
              markup=False)
    for d in found.letters:
        out.print(f"  {d.route:<14} #{d.id:<8} {visible(d.addr):<14} "
                  f"{d.attempts} attempt{'s' if d.attempts != 1 else ''}  {visible(d.reason)}",
                  markup=False)
    if found.next_cursor:
        out.print(f"more: --cursor {found.next_cursor}", markup=False)
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    via = gate.gate(args, "loa dead-letters replay")

    async def go() -> Replay:
        if isinstance(via, gate.Api):
            path = f"/v1/waves/{quote(args.wave, safe='')}/dead-letters/replay"
            _, answer = await gate.call(via, "POST", path, ActionBody(reason=args.reason))
            return msgspec.convert(answer, Replay)
        store = open_store(_url(args, "replay"))
        try:
            return await gate.audited(via, "dead_letters.replay", args.wave,
                                      deadletters.replay(store, args.wave),
                                      {"reason": args.reason})
        finally:
            await store.aclose()

    done = run_async(go())
    if args.json:
        print_json(done)
        return 0
    again = ", sending again until they have an outcome" if done.reopened else ""
    covered = (f", {done.covered:,} left (their SMS fallback reached them)" if done.covered
               else "")
    console().print(f"wave {visible(done.wave)}: {done.requeued:,} dead letters sent again, "
                    f"{done.skipped:,} skipped (already sent){covered}; {done.state}{again}",
                    markup=False)
    return 0
