"""``loa stop``: the emergency stop, set, lifted or shown on the store (Redis)."""

from __future__ import annotations

import argparse
import datetime as dt
import os
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from dispatcher.cli.output import console, print_json
from dispatcher.cli.runtime import run_async
from dispatcher.errors import InputError
from dispatcher.model import StopState
from dispatcher.settings import load_settings
from dispatcher.stop import lift, stop_all
from dispatcher.store import open_store

LOCAL = ZoneInfo("Asia/Ho_Chi_Minh")


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "stop", help="emergency stop: every worker sends nothing more until it is lifted",
        description="Stop every send of every worker now (each watches the stop and obeys "
                    "at once; what is already on the wire still leaves), until "
                    "`loa stop --lift`. Kept in Redis: it survives restarts. With --show, print "
                    "whether it is on and its history.")
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--lift", action="store_true", help="lift the stop: sending goes on")
    how.add_argument("--show", action="store_true", help="whether it is on, and its history")
    parser.add_argument("--reason", default="", help="why (required to stop; kept in the "
                                                     "history)")
    parser.add_argument("--user", default=os.environ.get("USER", ""),
                        help="who acts (default $USER)")
    parser.add_argument("--redis", metavar="URL", help="Redis URL (default: LOA_REDIS_URL)")
    parser.add_argument("--config", type=Path, metavar="FILE", help="deployment settings")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.set_defaults(func=cmd_stop)


def _line(state: StopState) -> str:
    at = state.at.astimezone(LOCAL)
    what = "STOPPED" if state.active else "lifted"
    why = f": {state.reason}" if state.reason else ""
    return f"{at:%Y-%m-%d %H:%M:%S} (+07)  {what} by {state.by or '?'}{why}"


def cmd_stop(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    url = args.redis or settings.redis.url
    if not url:
        raise InputError("loa stop needs a Redis: give --redis URL or set LOA_REDIS_URL")
    if not (args.lift or args.show) and not args.reason.strip():
        raise InputError("--reason: say why everything is stopped (it is kept in the history)")

    async def go() -> tuple[StopState | None, list[StopState]]:
        store = open_store(url)
        try:
            now = dt.datetime.now(dt.UTC)
            if args.show:
                return await store.stop.get(), await store.stop.history(20)
            if args.lift:
                return await lift(store, now=now, user=args.user, reason=args.reason), []
            return await stop_all(store, now=now, user=args.user, reason=args.reason), []
        finally:
            await store.aclose()

    current, history = run_async(go())
    active = current is not None and current.active
    if args.json:
        print_json({"active": active, "stop": current, "history": history} if args.show
                   else current)
        return 0
    out = console()
    if args.show:
        out.print("emergency stop: ON, nothing is sent" if active else "emergency stop: off",
                  markup=False)
        for state in history:
            out.print("  " + _line(state), markup=False)
    elif active:
        out.print("emergency stop ON: every worker sends nothing more until `loa stop --lift`",
                  markup=False)
    else:
        out.print("emergency stop lifted: sending goes on where it was", markup=False)
    return 0
