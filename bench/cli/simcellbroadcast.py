"""``loa sim cellbroadcast``: carriers' cell broadcast centres (CAP over HTTP) until SIGINT or
SIGTERM."""

from __future__ import annotations

import argparse
from typing import Any

from adapters.cellbroadcast.simulator import DEFAULT_CARRIERS, CbcSim, CbcSimConfig
from bench.cli import options, simrun
from dispatcher.domain.errors import InputError


def register(group: Any) -> None:
    carrier, credential = next(iter(DEFAULT_CARRIERS.items()))
    cbc = group.add_parser(
        "cellbroadcast", help="carriers' cell broadcast centres (CAP 1.2 over HTTP)",
        description="Run cell broadcast centres until SIGINT or SIGTERM, one per carrier: "
                    "POST /{carrier}/cap takes a CAP 1.2 alert (checked: identifier, sender, "
                    "msgType, an area with a polygon or a geocode, a Cancel's references; 409 "
                    "for an identifier it has), GET /{carrier}/cap/status?identifier= answers "
                    "its state. Credentials, rate limits, refusals, outages and lost answers "
                    "can be injected. Prints one line when it listens and its counters when it "
                    "stops.")
    options.listen(cbc, 8730)
    cbc.add_argument("--carrier", action="append", metavar="ID=CREDENTIAL",
                     help="a carrier and its credential: user:password (HTTP Basic) or a "
                          f"Bearer token (repeatable; default {carrier}={credential})")
    cbc.add_argument("--expired", action="append", metavar="ID",
                     help="a carrier whose credentials are answered 401, expired (repeatable)")
    options.throttle(cbc, "the next N requests are answered 429", 1)
    cbc.add_argument("--reject-count", type=int, default=0, metavar="N",
                     help="the next N alerts are refused with 400 (default 0)")
    options.http_5xx(cbc)
    options.answers(cbc, "--hang-after-accept", "take each alert",
                    "an acceptance whose answer is lost")
    cbc.add_argument("--broadcast-after", type=float, default=0.0, metavar="S",
                     help="an alert taken is broadcasting S seconds later (default 0)")
    options.seed(cbc)
    options.ending(cbc, cmd_cellbroadcast)


def _config(args: argparse.Namespace) -> CbcSimConfig:
    options.check_port(args.port)
    carriers = options.pairs(args.carrier, "--carrier", "ID=CREDENTIAL") or dict(DEFAULT_CARRIERS)
    unknown = [c for c in args.expired or () if c not in carriers]
    if unknown:
        raise InputError(f"--expired: {unknown[0]!r} is not one of the carriers "
                         f"({', '.join(carriers)})")
    return options.config(
        CbcSimConfig,
        carriers=carriers, expired=frozenset(args.expired or ()),
        throttle_count=args.throttle_count, retry_after=args.retry_after,
        reject_count=args.reject_count, http_5xx_ratio=args.http_5xx_ratio,
        delay=args.delay, hang_after_accept=args.hang_after_accept,
        broadcast_after=args.broadcast_after, seed=args.seed)


def cmd_cellbroadcast(args: argparse.Namespace) -> int:
    config = _config(args)
    return simrun.run(
        args, "cell broadcast centre simulator", lambda: CbcSim(config),
        lambda sim: f"cell broadcast centre simulator listening on {sim.url} "
                    f"({', '.join(f'{c}: {sim.url_of(c)}' for c in sim.broadcasts)})",
        CbcSim.snapshot)
