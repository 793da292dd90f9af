"""``loa bench engine``: measure fan-out and workers on a real Redis."""

from __future__ import annotations

import argparse
from typing import Any

from dispatcher.benchmark import engine_bench
from dispatcher.cli.output import console, print_json, progress_bar
from dispatcher.cli.runtime import run_async
from dispatcher.errors import InputError
from dispatcher.model import Channel
from dispatcher.msisdn import load_numbering
from dispatcher.province import load_province
from dispatcher.settings import load_settings


def register(sub: Any) -> None:
    parser = sub.add_parser("bench", help="benchmarks", description="Benchmarks of Loa.")
    group = parser.add_subparsers(dest="bench_command", metavar="COMMAND", required=True)
    engine = group.add_parser(
        "engine", help="fan-out and one worker process on Redis, with in-process channels",
        description="Import a generated audience, fan one wave per channel out and send it "
                    "with one worker through in-process channels, on a private redis-server "
                    "(or --redis URL, whose database is emptied). Prints messages per second, "
                    "CPU per message and Redis memory.")
    engine.add_argument("--recipients", type=int, default=1_000_000, metavar="N",
                        help="audience size (default 1000000)")
    engine.add_argument("--channels", default="sms,zalo",
                        help="comma-separated channels, one wave each (default sms,zalo)")
    engine.add_argument("--redis", metavar="URL",
                        help="use this Redis (its database is EMPTIED) instead of a private one")
    engine.add_argument("--json", action="store_true", help="end with one JSON line on stdout")
    engine.set_defaults(func=cmd_engine)


def cmd_engine(args: argparse.Namespace) -> int:
    if args.recipients < 1:
        raise InputError("--recipients must be at least 1")
    try:
        channels = [Channel(c.strip()) for c in args.channels.split(",") if c.strip()]
    except ValueError:
        raise InputError(f"--channels: use some of {', '.join(c.value for c in Channel)}") from None
    if not channels:
        raise InputError("--channels: give at least one channel")
    with progress_bar("sending", None) as update:
        result = run_async(engine_bench(
            recipients=args.recipients, channels=channels, redis_url=args.redis,
            numbering=load_numbering(), province=load_province(), settings=load_settings(),
            on_progress=lambda done, _total: update(done)))
    console().print(
        f"{result.messages:,} messages ({', '.join(result.channels)}) to {result.recipients:,} "
        f"recipients in {result.seconds:.2f} s = {result.msgs_per_s:,.0f} msg/s; "
        f"{result.cpu_us_per_msg} µs CPU per message; duplicates {result.duplicates}; "
        f"dedup {result.dedup_bytes_per_recipient} bytes per recipient per wave; "
        f"Redis {result.redis_used_mb} MB; peak RSS {result.peak_rss_mb} MB", markup=False)
    if args.json:
        print_json(result)
    return 0
