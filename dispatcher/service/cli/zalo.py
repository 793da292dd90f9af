"""``loa zalo refresh-token``: renew the Zalo OA's token pair now, where the workers keep it."""

from __future__ import annotations

import argparse
import datetime as dt
import os
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from adapters.zalo.adapter import ZaloAdapter
from dispatcher.domain.errors import InputError
from dispatcher.domain.model import Channel
from dispatcher.engine.process import default_name
from dispatcher.service import channels
from dispatcher.service import zalo_tokens as zalotokens
from dispatcher.service.cli import logopts
from dispatcher.service.cli.output import console, print_json
from dispatcher.service.cli.runtime import run_async
from dispatcher.service.settings import load_settings
from dispatcher.store import open_store

LOCAL = ZoneInfo("Asia/Ho_Chi_Minh")


class Renewal(msgspec.Struct):
    """What ``loa zalo refresh-token`` did (never the tokens themselves)."""

    renewed: bool  # False: another process renewed the pair while this one waited for it
    issued_at: str  # ISO 8601, Asia/Ho_Chi_Minh
    expires_in: float  # the access token's lifetime Zalo answered (seconds; 0: not said)
    store: str  # redis, or the tokens file


def register(sub: Any) -> None:
    parser = sub.add_parser("zalo", help="the Zalo OA's tokens",
                            description="Operate the Zalo channel's OA tokens.")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    renew = verbs.add_parser(
        "refresh-token", help="renew the Zalo access and refresh tokens now",
        description="Exchange the refresh token for a new pair now and keep it where the "
                    "workers read it (Redis with a Redis URL, else zalo_tokens_file), under "
                    "the renewal lease: a worker renewing at the same moment is waited for and "
                    "its pair kept. The workers renew on their own schedule too ([zalo] "
                    "refresh_every_days); this is for an operator who wants it done now. "
                    "Prints when the pair was issued, never the tokens.")
    renew.add_argument("--config", type=Path, metavar="FILE",
                       help="deployment settings (TOML) with the [zalo] table")
    renew.add_argument("--redis", metavar="URL",
                       help="Redis URL (default: LOA_REDIS_URL or the settings; none: the "
                            "tokens file)")
    renew.add_argument("--json", action="store_true", help="one JSON object on stdout")
    logopts.add_options(renew, default_level="warning")
    renew.set_defaults(func=cmd_refresh_token)


def cmd_refresh_token(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    if settings.zalo is None:
        raise InputError(f"{args.config or 'settings'}: no [zalo] table: Zalo is not "
                         "configured, there is no token to renew")
    url = args.redis or settings.redis.url

    async def go() -> Renewal:
        store = open_store(url or None)
        try:
            tokens = zalotokens.token_store(store, settings, os.environ,
                                            owner=f"cli-{default_name()}")
            adapter = channels.build(settings, channels=[Channel.ZALO],
                                     zalo_tokens=tokens)[Channel.ZALO]
            assert isinstance(adapter, ZaloAdapter)
            try:
                renewed = await adapter.schedule.renew_now()
                issued = adapter.tokens.issued
            finally:
                await adapter.aclose()
        finally:
            await store.aclose()
        at = dt.datetime.fromtimestamp(issued.at, LOCAL).isoformat(timespec="seconds")
        return Renewal(renewed=renewed, issued_at=at, expires_in=issued.expires_in,
                       store="redis" if url else settings.zalo_tokens_file)

    done = run_async(go())
    if args.json:
        print_json(done)
        return 0
    what = "renewed" if done.renewed else "already renewed by another process just now"
    life = f"; the access token lives {done.expires_in / 3600:.1f} h" if done.expires_in else ""
    console().print(f"Zalo tokens {what}: issued {done.issued_at}{life}; kept in {done.store}",
                    markup=False)
    return 0
