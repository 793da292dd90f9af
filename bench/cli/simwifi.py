"""``loa sim wifi``: a public Wi-Fi controller taking Loa's pushed notices
(:mod:`adapters.wifi.simulator`), until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
from typing import Any

import msgspec

from adapters.wifi.simulator import FAULTS, PATH, Fault, WifiControllerSim, WifiSimStats
from bench.cli.simrun import until_stopped
from dispatcher.domain.errors import InputError
from dispatcher.service.cli import logopts
from dispatcher.service.cli.output import print_json
from dispatcher.service.cli.runtime import run_async


def register(group: Any) -> None:
    wifi = group.add_parser(
        "wifi", help="a public Wi-Fi controller taking the pushed notices (signed JSON)",
        description=f"Run a public Wi-Fi controller simulator until SIGINT or SIGTERM: it takes "
                    f"Loa's notices at POST {PATH}, checks their signature and signed time, "
                    "keeps each once per Idempotency-Key, and can fail on demand. GET /notices "
                    "lists what it kept, GET /stats its counters; POST /sim/fault with "
                    '{"fault", "count", "delay", "retry_after", "down_seconds"} changes the '
                    "fault while it runs. Prints one line when it listens and its counters "
                    "when it stops.")
    wifi.add_argument("--host", default="127.0.0.1", help="address to listen on (default "
                                                          "127.0.0.1)")
    wifi.add_argument("--port", type=int, default=8710, help="port (default 8710; 0: any free)")
    wifi.add_argument("--secret", default="sim-wifi-secret",
                      help="the key the pushes must be signed with (default sim-wifi-secret: "
                           "the controller's secret_env holds the same)")
    wifi.add_argument("--max-age", type=float, default=300.0, metavar="S",
                      help="pushes signed more than S seconds from its clock are refused 401 "
                           "(default 300)")
    wifi.add_argument("--fault", choices=FAULTS, default="none",
                      help="misbehave from the start: down (the port closed for "
                           "--down-seconds), slow (answer after --delay), 429 (with "
                           "--retry-after), 401, 403, 400, 500, or accept-timeout (keep the "
                           "notice, answer after --delay); default none")
    wifi.add_argument("--fault-count", type=int, default=0, metavar="N",
                      help="the fault applies to the first N pushes (default 0: to all)")
    wifi.add_argument("--delay", type=float, default=15.0, metavar="S",
                      help="seconds of slow and accept-timeout (default 15: longer than Loa "
                           "waits)")
    wifi.add_argument("--retry-after", default="5", metavar="V",
                      help="the 429's Retry-After, seconds or an HTTP date (default 5; '' none)")
    wifi.add_argument("--down-seconds", type=float, default=30.0, metavar="S",
                      help="with --fault down: the port opens after S seconds (default 30; 0: "
                           "never)")
    wifi.add_argument("--json", action="store_true", help="end with the counters as one JSON "
                                                          "line on stdout")
    logopts.add_options(wifi)
    wifi.set_defaults(func=cmd_wifi)


def fault_of(args: argparse.Namespace) -> Fault:
    if not 0 <= args.port <= 65535:
        raise InputError(f"--port {args.port} is not a port number")
    if not args.secret:
        raise InputError("--secret: give the key the pushes are signed with")
    if not args.max_age > 0:
        raise InputError("--max-age: must be more than 0 seconds")
    for option, value in (("--fault-count", args.fault_count), ("--delay", args.delay),
                          ("--down-seconds", args.down_seconds)):
        if value < 0:
            raise InputError(f"{option}: must be 0 or more")
    return Fault(fault=args.fault, count=args.fault_count, delay=args.delay,
                 retry_after=args.retry_after, down_seconds=args.down_seconds)


async def serve_wifi(fault: Fault, secret: str, max_age: float, host: str,
                     port: int) -> WifiSimStats:
    """Run the controller until SIGINT or SIGTERM; its counters at the end."""
    sim = WifiControllerSim(secret=secret, max_age_seconds=max_age)

    async def start() -> None:
        await sim.start(host, port)
        sim.set_fault(fault)

    await until_stopped(start(), sim.stop, host, port,
                        lambda: f"Wi-Fi controller simulator listening on {sim.url}")
    return sim.stats


def cmd_wifi(args: argparse.Namespace) -> int:
    fault = fault_of(args)
    stats = run_async(serve_wifi(fault, args.secret, args.max_age, args.host, args.port))
    if args.json:
        print_json(stats)
    else:
        counters = ", ".join(f"{k.replace('_', ' ')} {v:,}"
                             for k, v in msgspec.structs.asdict(stats).items())
        print(f"Wi-Fi controller simulator stopped: {counters}", flush=True)
    return 0
