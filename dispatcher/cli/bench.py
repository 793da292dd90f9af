"""``loa bench engine``: measure fan-out and workers on a real Redis."""

from __future__ import annotations

import argparse
from typing import Any

from dispatcher.benchmark import engine_bench, smpp_bench
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
    engine.add_argument("--smpp", action="store_true",
                        help="send SMS over SMPP to `loa sim smsc` in its own process, with "
                             "receipts matched back (default: the in-process channel)")
    engine.add_argument("--zalo", action="store_true",
                        help="send Zalo over HTTP to `loa sim zalo` in its own process "
                             "(default: the in-process channel)")
    engine.add_argument("--json", action="store_true", help="end with one JSON line on stdout")
    engine.set_defaults(func=cmd_engine)

    smpp = group.add_parser(
        "smpp", help="the ESME against the SMSC simulator in its own process",
        description="Send single-part Vietnamese SMS through Loa's ESME (this process) to "
                    "`loa sim smsc` (another process) over loopback, a receipt for each; prints "
                    "submit+receipt per second and the ESME's CPU per message.")
    smpp.add_argument("--messages", type=int, default=200_000, metavar="N",
                      help="messages to send (default 200000)")
    smpp.add_argument("--binds", type=int, default=2, metavar="B", help="binds (default 2)")
    smpp.add_argument("--window", type=int, default=512, metavar="W",
                      help="window per bind (default 512)")
    smpp.add_argument("--json", action="store_true", help="end with one JSON line on stdout")
    smpp.set_defaults(func=cmd_smpp)


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
            on_progress=lambda done, _total: update(done), smpp=args.smpp,
            zalo=args.zalo))
    console().print(
        f"{result.messages:,} messages ({', '.join(result.channels)}) to {result.recipients:,} "
        f"recipients in {result.seconds:.2f} s = {result.msgs_per_s:,.0f} msg/s; "
        f"{result.cpu_us_per_msg} µs CPU per message; duplicates {result.duplicates}; "
        f"dedup {result.dedup_bytes_per_recipient} bytes per recipient per wave; "
        f"Redis {result.redis_used_mb} MB; peak RSS {result.peak_rss_mb} MB"
        + (f"; SMS over SMPP, {result.delivered:,} receipts matched" if result.sms_over_smpp
           else ""), markup=False)
    if args.json:
        print_json(result)
    return 0


def cmd_smpp(args: argparse.Namespace) -> int:
    if args.messages < 1 or args.binds < 1 or args.window < 1:
        raise InputError("--messages, --binds and --window must be at least 1")
    with progress_bar("sending", args.messages) as update:
        result = run_async(smpp_bench(messages=args.messages, binds=args.binds,
                                      window=args.window,
                                      on_progress=lambda done, _total: update(done)))
    console().print(
        f"{result.messages:,} messages over {result.binds} binds (window {result.window}) in "
        f"{result.seconds:.2f} s: {result.submits_per_s:,.0f} submits/s, "
        f"{result.submit_receipt_per_s:,.0f} submit+receipt/s; {result.receipts:,} receipts; "
        f"ESME {result.esme_cpu_us_per_msg} µs CPU per message", markup=False)
    if args.json:
        print_json(result)
    return 0
