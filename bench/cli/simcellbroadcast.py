"""``loa sim cellbroadcast``: carriers' cell broadcast centres (CAP over HTTP) until SIGINT or
SIGTERM."""

from __future__ import annotations

import argparse
from typing import Any

import msgspec

from adapters.cellbroadcast.simulator import DEFAULT_CARRIERS, CbcSim, CbcSimConfig
from bench.cli.simrun import until_stopped
from dispatcher.domain.errors import InputError
from dispatcher.service.cli import logopts
from dispatcher.service.cli.output import print_json
from dispatcher.service.cli.runtime import run_async


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
    cbc.add_argument("--host", default="127.0.0.1", help="address to listen on (default "
                                                         "127.0.0.1)")
    cbc.add_argument("--port", type=int, default=8730, help="port (default 8730; 0: any free)")
    cbc.add_argument("--carrier", action="append", metavar="ID=CREDENTIAL",
                     help="a carrier and its credential: user:password (HTTP Basic) or a "
                          f"Bearer token (repeatable; default {carrier}={credential})")
    cbc.add_argument("--expired", action="append", metavar="ID",
                     help="a carrier whose credentials are answered 401, expired (repeatable)")
    cbc.add_argument("--throttle-count", type=int, default=0, metavar="N",
                     help="the next N requests are answered 429 (default 0)")
    cbc.add_argument("--retry-after", type=int, default=1, metavar="S",
                     help="the Retry-After of those answers, seconds (default 1)")
    cbc.add_argument("--reject-count", type=int, default=0, metavar="N",
                     help="the next N alerts are refused with 400 (default 0)")
    cbc.add_argument("--http-5xx-ratio", type=float, default=0.0, metavar="R",
                     help="share of requests answered HTTP 500 (default 0)")
    cbc.add_argument("--delay", type=float, default=0.0, metavar="S",
                     help="seconds before every answer (default 0)")
    cbc.add_argument("--hang-after-accept", type=float, default=0.0, metavar="S",
                     help="take each alert, then hold its answer S seconds (longer than the "
                          "client waits: an acceptance whose answer is lost; default 0)")
    cbc.add_argument("--broadcast-after", type=float, default=0.0, metavar="S",
                     help="an alert taken is broadcasting S seconds later (default 0)")
    cbc.add_argument("--seed", type=int, default=0, help="seed of the injected errors")
    cbc.add_argument("--json", action="store_true", help="end with the counters as one JSON "
                                                         "line on stdout")
    logopts.add_options(cbc)
    cbc.set_defaults(func=cmd_cellbroadcast)


def _carriers(items: list[str] | None) -> dict[str, str]:
    found: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise InputError(f"--carrier: {item!r} is not ID=CREDENTIAL")
        found[key.strip()] = value.strip()
    return found or dict(DEFAULT_CARRIERS)


def _config(args: argparse.Namespace) -> CbcSimConfig:
    if not 0 <= args.port <= 65535:
        raise InputError(f"--port {args.port} is not a port number")
    carriers = _carriers(args.carrier)
    unknown = [c for c in args.expired or () if c not in carriers]
    if unknown:
        raise InputError(f"--expired: {unknown[0]!r} is not one of the carriers "
                         f"({', '.join(carriers)})")
    try:
        return CbcSimConfig(
            carriers=carriers, expired=frozenset(args.expired or ()),
            throttle_count=args.throttle_count, retry_after=args.retry_after,
            reject_count=args.reject_count, http_5xx_ratio=args.http_5xx_ratio,
            delay=args.delay, hang_after_accept=args.hang_after_accept,
            broadcast_after=args.broadcast_after, seed=args.seed)
    except ValueError as exc:
        raise InputError(str(exc)) from None


async def serve_cellbroadcast(config: CbcSimConfig, host: str, port: int) -> CbcSim:
    """Run the simulator until SIGINT or SIGTERM; the simulator, for its counters."""
    sim = CbcSim(config)
    await until_stopped(sim.start(host, port), sim.stop, host, port,
                        lambda: f"cell broadcast centre simulator listening on {sim.url} "
                                f"({', '.join(f'{c}: {sim.url_of(c)}' for c in sim.broadcasts)})")
    return sim


def cmd_cellbroadcast(args: argparse.Namespace) -> int:
    sim = run_async(serve_cellbroadcast(_config(args), args.host, args.port))
    stats = sim.snapshot()
    if args.json:
        print_json(stats)
    else:
        counters = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in
                             msgspec.structs.asdict(stats).items() if isinstance(v, int))
        print(f"cell broadcast centre simulator stopped: {counters}", flush=True)
    return 0
