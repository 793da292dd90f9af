"""``loa recipient NUMBER``: did this citizen get it? The number's audience row and what each
wave of the last days that targeted it did for it, read from the store (Redis) like ``loa
campaign show`` (:mod:`dispatcher.engine.recipients`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from dispatcher.domain.errors import InputError, NotFound, NumberError
from dispatcher.domain.model import VN
from dispatcher.domain.msisdn import load_numbering
from dispatcher.domain.textcheck import visible
from dispatcher.engine import recipients
from dispatcher.engine.recipients import RecipientView
from dispatcher.service.cli.output import console, print_json
from dispatcher.service.cli.runtime import run_async
from dispatcher.service.settings import load_settings
from dispatcher.store import open_store


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "recipient", help="did this citizen get it? what each recent wave did for a number",
        description="The number (as people write it) in the audience (district, kind, on Zalo) "
                    "and, for each wave of the last --days that targeted it, newest first: the "
                    "wave, its campaign, the channel, the text and the outcome: delivered, "
                    "sent, failed (with the reason), expired, pending (not yet sent or "
                    "retrying), not_sent (the wave completed without it: a repeat, the quota), "
                    "cancelled; and the SMS fallback's outcome of a Zalo wave. Reads Redis.")
    parser.add_argument("number", metavar="NUMBER")
    parser.add_argument("--days", type=int, default=recipients.DEFAULT_DAYS, metavar="N",
                        help=f"waves of the last N days (1-{recipients.MAX_DAYS}, default "
                             f"{recipients.DEFAULT_DAYS})")
    parser.add_argument("--redis", metavar="URL", help="Redis URL (default: LOA_REDIS_URL)")
    parser.add_argument("--config", type=Path, metavar="FILE", help="deployment settings")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.set_defaults(func=cmd_recipient)


def cmd_recipient(args: argparse.Namespace) -> int:
    if not 1 <= args.days <= recipients.MAX_DAYS:
        raise InputError(f"--days: {args.days} is not between 1 and {recipients.MAX_DAYS}")
    try:
        msisdn, _carrier = load_numbering().normalize(args.number)
    except NumberError as exc:
        raise InputError(exc.reason, field="NUMBER") from exc
    url: str = args.redis or load_settings(args.config).redis.url
    if not url:
        raise InputError("loa recipient needs a Redis: give --redis URL or set LOA_REDIS_URL")

    async def go() -> RecipientView | None:
        store = open_store(url)
        try:
            return await recipients.look_up(store, msisdn, days=args.days)
        finally:
            await store.aclose()

    view = run_async(go())
    if view is None:
        raise NotFound(f"number {msisdn} is in no audience")
    if args.json:
        print_json(view)
        return 0
    out = console()
    row = view.row
    out.print(f"{view.number}: {row.kind}, district {row.district or '-'}, {row.carrier}, "
              f"{'on Zalo' if row.zalo else 'not on Zalo'}"
              f"{', e-mail' if row.email else ''} (audience {row.audience_version})",
              markup=False)
    for e in view.suppressed:
        out.print(f"suppressed on {e.channel} ({e.source}): {visible(e.reason)}", markup=False)
    if not view.waves:
        out.print(f"no wave targeted it in the last {view.days} days", markup=False)
    for w in view.waves:
        when = w.created_at.astimezone(VN).strftime("%Y-%m-%d %H:%M")
        what = w.outcome + (f" ({visible(w.reason)})" if w.reason else "")
        if w.fallback:
            what += f"; SMS fallback: {w.fallback}"
        title = visible(w.campaign_title or w.campaign)
        out.print(f"{when}  {w.channel:<5} {what}  {visible(w.wave)}  {title}", markup=False)
        if w.text:
            out.print(f"    {visible(w.text)}", markup=False)
    return 0
