"""``loa plan texts list|propose|approve|reject``: the plan's texts edited without a restart
(:mod:`dispatcher.engine.textedits`). ``propose``, ``approve`` and ``reject`` go through the API
with a token (:mod:`dispatcher.service.cli.gate`; ``--admin-direct``: Redis directly, audited);
``list`` reads the store (Redis), a page at a time."""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import msgspec

from dispatcher.domain.errors import InputError
from dispatcher.domain.model import VN, Channel
from dispatcher.domain.plan import Plan, load_plan
from dispatcher.domain.textcheck import visible
from dispatcher.domain.textedits import PAGE_LIMIT, PAGE_LIMIT_MAX, TextState, TextVersion
from dispatcher.engine import textedits
from dispatcher.service.api.plantexts import TextVersionList
from dispatcher.service.cli import gate, storeopts
from dispatcher.service.cli.output import console, print_json
from dispatcher.service.cli.runtime import run_async
from dispatcher.service.settings import load_settings
from dispatcher.store import Store, open_store
from dispatcher.store.base import TextPage


def register(group: Any) -> None:
    parser = group.add_parser(
        "texts", help="the plan's texts edited without a restart: list, propose, approve, "
                      "reject",
        description="Versions of a level's channel text: an operator proposes one, an approver "
                    "who is not its proposer approves it, and it is in force from the next "
                    "wave over the plan file's. propose, approve and reject go through the API "
                    "(--api URL, a token in LOA_TOKEN or --token-file); --admin-direct writes "
                    "to Redis directly (audited). list reads Redis.")
    verbs = parser.add_subparsers(dest="texts_command", metavar="COMMAND", required=True)
    listing = verbs.add_parser("list", help="the versions, newest first, a page at a time")
    listing.add_argument("--level", type=int, metavar="N", help="of this level only")
    listing.add_argument("--channel", choices=[c.value for c in Channel],
                         help="of this channel only")
    listing.add_argument("--state", choices=[s.value for s in TextState],
                         help="in this state only")
    listing.add_argument("--limit", type=int, default=PAGE_LIMIT, metavar="N",
                         help=f"versions in the page (1-{PAGE_LIMIT_MAX}, default {PAGE_LIMIT})")
    listing.add_argument("--cursor", default="", metavar="CURSOR",
                         help="where the page begins: the next cursor the page before printed")
    listing.add_argument("--diff", action="store_true", help="print each version's diff")
    _common(listing)
    listing.set_defaults(func=cmd_list)
    propose = verbs.add_parser("propose", help="propose a text for a level's channel")
    propose.add_argument("--level", type=int, required=True, metavar="N")
    propose.add_argument("--channel", choices=[c.value for c in Channel], required=True)
    propose.add_argument("--text", required=True,
                         help="the text, with its fields ({hotline}, {cases}, ...)")
    propose.add_argument("--subject", default="", help="e-mail only (default: the one in force)")
    propose.add_argument("--reason", default="", help="why (kept with the version)")
    _common(propose, changes=True)
    propose.set_defaults(func=cmd_propose)
    for verb, what in (("approve", "approve a proposed text (not your own): in force from the "
                                   "next wave"),
                       ("reject", "reject a proposed text (kept, never in force)")):
        decide = verbs.add_parser(verb, help=what)
        decide.add_argument("id", help="the version's id (txt-...)")
        decide.add_argument("--reason", default="", help="why (kept with the version)")
        _common(decide, changes=True)
        decide.set_defaults(func=cmd_decide, verb=verb)


def _common(parser: argparse.ArgumentParser, *, changes: bool = False) -> None:
    storeopts.add_record_options(parser, changes=changes)
    if changes:
        parser.add_argument("--plan", type=Path, metavar="FILE",
                            help="with --admin-direct: the plan file (default: shipped)")


def _store(args: argparse.Namespace) -> Store:
    url = args.redis or load_settings(args.config).redis.url
    if not url:
        raise InputError("this command needs a Redis: give --redis URL or set LOA_REDIS_URL")
    return open_store(url)


def _direct(args: argparse.Namespace, via: gate.Direct, action: str, target: str,
            work: Callable[[Store, Plan], Awaitable[TextVersion]],
            detail: dict[str, Any]) -> TextVersion:
    async def go() -> TextVersion:
        store = _store(args)
        try:
            return await gate.audited(via, action, target, work(store, load_plan(args.plan)),
                                      detail)
        finally:
            await store.aclose()

    return run_async(go())


def cmd_propose(args: argparse.Namespace) -> int:
    channel = Channel(args.channel)
    body = {"level": args.level, "channel": channel.value, "text": args.text,
            "subject": args.subject, "reason": args.reason}
    via = gate.gate(args, "loa plan texts propose")
    if isinstance(via, gate.Api):
        _, answer = run_async(gate.call(via, "POST", "/v1/plan/texts", body))
        return _print([msgspec.convert(answer, TextVersion)], args)
    now = dt.datetime.now(dt.UTC)
    return _print([_direct(args, via, "plan_text.propose", f"L{args.level}-{channel}",
                           lambda store, plan: textedits.propose(
                               store, plan, level=args.level, channel=channel, text=args.text,
                               subject=args.subject, reason=args.reason, by=via.user, now=now),
                           body)], args)


def cmd_decide(args: argparse.Namespace) -> int:
    via = gate.gate(args, f"loa plan texts {args.verb}")
    if isinstance(via, gate.Api):
        _, answer = run_async(gate.call(
            via, "POST", f"/v1/plan/texts/{quote(args.id, safe='')}/{args.verb}",
            {"reason": args.reason}))
        return _print([msgspec.convert(answer, TextVersion)], args)
    now = dt.datetime.now(dt.UTC)

    def work(store: Store, plan: Plan) -> Awaitable[TextVersion]:
        if args.verb == "approve":
            return textedits.approve(store, plan, args.id, by=via.user, now=now,
                                     reason=args.reason)
        return textedits.reject(store, args.id, by=via.user, now=now, reason=args.reason)

    return _print([_direct(args, via, f"plan_text.{args.verb}", args.id, work,
                           {"reason": args.reason})], args)


def cmd_list(args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= PAGE_LIMIT_MAX:
        raise InputError(f"--limit: {args.limit} is not between 1 and {PAGE_LIMIT_MAX}")

    async def go() -> TextPage:
        store = _store(args)
        try:
            return await store.plan_texts.versions(
                args.level, Channel(args.channel) if args.channel else None,
                TextState(args.state) if args.state else None, cursor=args.cursor,
                limit=args.limit)
        finally:
            await store.aclose()

    page = run_async(go())
    if args.json:
        print_json(TextVersionList(page.versions, page.cursor))
        return 0
    _print(page.versions, args, listing=True)
    if page.cursor:
        console().print(f"more: --cursor {page.cursor}", markup=False)
    return 0


def _print(versions: list[TextVersion], args: argparse.Namespace, *,
           listing: bool = False) -> int:
    if args.json:
        print_json(versions[0])
        return 0
    out = console()
    if listing and not versions:
        out.print("no version of the plan's texts yet: the plan file's are in force"
                  if not (args.cursor or args.level or args.channel or args.state)
                  else "no version", markup=False)
    for v in versions:
        decided = (f"; {v.state} by {visible(v.decided_by)} "
                   f"{v.decided_at.astimezone(VN):%Y-%m-%d %H:%M}" if v.decided_at else "")
        out.print(f"{v.id} level {v.level} {v.channel} {v.state}: proposed by "
                  f"{visible(v.proposed_by)} {v.proposed_at.astimezone(VN):%Y-%m-%d %H:%M}"
                  f"{decided}", markup=False)
        out.print(f"  {visible(v.text)}", markup=False)
        if v.reason:
            out.print(f"  reason: {visible(v.reason)}", markup=False)
        if v.decision_reason:
            out.print(f"  {v.state} because: {visible(v.decision_reason)}", markup=False)
        if not listing or args.diff:
            for line in v.diff.splitlines():
                out.print(f"  {visible(line)}", markup=False)
    return 0
