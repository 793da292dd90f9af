"""``loa sim wifi``: a public Wi-Fi controller taking Loa's pushed notices
(:mod:`adapters.wifi.simulator`), until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
from typing import Any

from adapters.wifi.simulator import FAULTS, PATH, Fault, WifiControllerSim
from bench.cli import options, simrun
from dispatcher.domain.errors import InputError


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
    options.listen(wifi, 8710)
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
    options.ending(wifi, cmd_wifi)


def fault_of(args: argparse.Namespace) -> Fault:
    options.check_port(args.port)
    if not args.secret:
        raise InputError("--secret: give the key the pushes are signed with")
    if not args.max_age > 0:
        raise InputError("--max-age: must be more than 0 seconds")
    options.at_least_zero((("--fault-count", args.fault_count), ("--delay", args.delay),
                           ("--down-seconds", args.down_seconds)))
    return Fault(fault=args.fault, count=args.fault_count, delay=args.delay,
                 retry_after=args.retry_after, down_seconds=args.down_seconds)


def cmd_wifi(args: argparse.Namespace) -> int:
    fault = fault_of(args)
    return simrun.run(args, "Wi-Fi controller simulator",
                      lambda: WifiControllerSim(secret=args.secret, max_age_seconds=args.max_age),
                      lambda sim: f"Wi-Fi controller simulator listening on {sim.url}",
                      lambda sim: sim.stats, started=lambda sim: sim.set_fault(fault))
