"""``loa stop``: the emergency stop, set or lifted through the API with a token
(:mod:`dispatcher.service.cli.gate`; ``--admin-direct``: on Redis directly, audited), or shown from
the store (Redis)."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from dispatcher.domain.errors import InputError
from dispatcher.domain.model import StopState
from dispatcher.engine.stop import lift, stop_all
from dispatcher.service.api.schemas import LiftBody, StopBody
from dispatcher.service.cli import gate
from dispatcher.service.cli.output import console, print_json
from dispatcher.service.cli.runtime import run_async
from dispatcher.service.settings import load_settings
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
    gate.add_options(parser)
    parser.add_argument("--redis", metavar="URL", help="Redis URL (default: LOA_REDIS_URL)")
    parser.add_argument("--config", type=Path, metavar="FILE", help="deployment settings")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.set_defaults(func=cmd_stop)


def _line(state: StopState) -> str:
    at = state.at.astimezone(LOCAL)
    what = "STOPPED" if state.active else "lifted"
    why = f": {state.reason}" if state.reason else ""
    return f"{at:%Y-%m-%d %H:%M:%S} (+07)  {what} by {state.by or '?'}{why}"


async def _through_api(api: gate.Api, args: argparse.Namespace) -> StopState:
    if args.lift:
        _, answer = await gate.call(api, "DELETE", "/v1/stop", LiftBody(reason=args.reason))
    else:
        _, answer = await gate.call(api, "POST", "/v1/stop", StopBody(reason=args.reason))
    return msgspec.convert(answer, StopState)


def cmd_stop(args: argparse.Namespace) -> int:
    if not (args.lift or args.show) and not args.reason.strip():
        raise InputError("--reason: say why everything is stopped (it is kept in the history)")
    via = None if args.show else gate.gate(args, "loa stop")
    url = ""
    if not isinstance(via, gate.Api):
        url = args.redis or load_settings(args.config).redis.url
        if not url:
            raise InputError("loa stop needs a Redis: give --redis URL or set LOA_REDIS_URL")

    async def go() -> tuple[StopState | None, list[StopState]]:
        if isinstance(via, gate.Api):
            return await _through_api(via, args), []
        store = open_store(url)
        try:
            now = dt.datetime.now(dt.UTC)
            if via is None:
                return await store.stop.get(), await store.stop.history(20)
            if args.lift:
                return await gate.audited(via, "stop.lift", "everything", lift(
                    store, now=now, user=via.user, reason=args.reason),
                    {"reason": args.reason}), []
            return await gate.audited(via, "stop", "everything", stop_all(
                store, now=now, user=via.user, reason=args.reason), {"reason": args.reason}), []
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
