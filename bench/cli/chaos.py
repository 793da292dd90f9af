"""``loa chaos SCENARIO``: a wave under a fault, and what reached the handsets."""

from __future__ import annotations

import argparse
from typing import Any

from bench.cli import options
from bench.scenarios import SCENARIOS, run
from dispatcher.domain.errors import InputError, LoaError
from dispatcher.domain.msisdn import load_numbering
from dispatcher.domain.province import load_province
from dispatcher.service.cli.output import console, print_json
from dispatcher.service.cli.runtime import run_async


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "chaos", help="a wave under a fault: kill a worker, drop the SMSC, restart Redis, ...",
        description="Start a private Redis (AOF, appendfsync everysec), the SMSC and Zalo "
                    "simulators and `loa worker` processes, send one SMS and one Zalo wave to a "
                    "generated audience, inject the scenario's fault mid-wave, and count at the "
                    "simulators what reached the recipients. Scenarios: "
                    + ", ".join(SCENARIOS) + " (docs/guarantees.md). Exits 1 if a message was "
                    "lost or duplicates exceed the scenario's bound.")
    parser.add_argument("scenario", choices=sorted(SCENARIOS), metavar="SCENARIO",
                        help=", ".join(sorted(SCENARIOS)))
    parser.add_argument("--recipients", type=int, default=20_000, metavar="N",
                        help="audience size (default 20000; 90%% of them on Zalo)")
    parser.add_argument("--fault-seconds", type=float, default=10.0, metavar="S",
                        help="how long a lasting fault lasts (zalo-outage: the 5xx answers; "
                             "default 10)")
    options.lab_ending(parser, cmd_chaos)


def cmd_chaos(args: argparse.Namespace) -> int:
    if not 0 < args.fault_seconds <= 3600:
        raise InputError("--fault-seconds must be between 0 and 3600")
    result = run_async(run(args.scenario, recipients=args.recipients,
                           numbering=load_numbering(), province=load_province(),
                           fault_seconds=args.fault_seconds))
    console().print(
        f"{result.scenario}: {result.delivered:,} of {result.expected:,} messages delivered "
        f"in {result.seconds:.1f} s; lost {result.lost}; duplicates {result.duplicates} "
        f"(bound {result.duplicate_bound}); dead letters {result.dead_letters}; "
        + ", ".join(f"{k} {v}" for k, v in result.details.items()), markup=False)
    if args.json:
        print_json(result)
    if result.lost or result.duplicates > result.duplicate_bound:
        raise LoaError(f"{result.scenario}: {result.lost} lost, {result.duplicates} "
                       f"duplicates (bound {result.duplicate_bound})")
    if result.failures:
        raise LoaError(f"{result.scenario}: " + "; ".join(result.failures))
    return 0
