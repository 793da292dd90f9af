"""``loa bench``: a full provincial wave through worker processes; ``loa bench engine`` and
``loa bench smpp``: the engine and the ESME alone."""

from __future__ import annotations

import argparse
from typing import Any

from bench import profiler
from bench.cli import options
from bench.enginebench import engine_bench, smpp_bench
from bench.wavebench import ALERT, BenchResult, Options, wave_bench
from dispatcher.domain.errors import InputError
from dispatcher.domain.model import Channel
from dispatcher.domain.msisdn import load_numbering
from dispatcher.domain.province import load_province
from dispatcher.service.cli.output import console, print_json, progress_bar
from dispatcher.service.cli.runtime import run_async
from dispatcher.service.settings import load_settings


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "bench", help="a full provincial wave through worker processes, measured",
        description="Without a COMMAND: start Redis (or use --redis), the SMSC and Zalo "
                    "simulators and N `loa worker` processes, import a generated audience and "
                    "send one level-4 wave (SMS over SMPP with a Vietnamese UCS-2 alert, Zalo "
                    "over HTTP) with dedup, bind leases, retries of a small injected error "
                    "rate, receipts and metrics on. Reports messages per second, CPU per "
                    "message, latency, duplicates and losses at the simulators, peak RSS and "
                    "Redis memory; exits 1 if any message was lost or sent twice.")
    parser.add_argument("--recipients", type=int, default=1_000_000, metavar="N",
                        help="mobile subscribers (default 1000000)")
    parser.add_argument("--zalo", type=int, default=981_901, metavar="N",
                        help="of them, Zalo accounts (default 981901)")
    parser.add_argument("--workers", default="1", metavar="N[,N...]",
                        help="worker processes; several counts (e.g. 1,2) run the wave once "
                             "each and report them side by side (default 1)")
    parser.add_argument("--redis", metavar="URL",
                        help="use this Redis (ALL ITS DATA IS DELETED) instead of a private one")
    parser.add_argument("--redis-cluster", action="store_true",
                        help="run on a private local Redis Cluster of three masters")
    parser.add_argument("--error-ratio", type=float, default=0.001, metavar="R",
                        help="share of submits and requests the simulators answer with a "
                             "transient error, each retried (default 0.001)")
    parser.add_argument("--binds", type=int, default=2, metavar="B",
                        help="SMPP binds of the link, shared by the workers (default 2)")
    parser.add_argument("--window", type=int, default=512, metavar="W",
                        help="SMPP window per bind (default 512)")
    parser.add_argument("--text", default=ALERT, help="the SMS text (default: a one-part "
                                                      "Vietnamese alert, UCS-2); one naming "
                                                      "{district} is rendered per district "
                                                      "and the Zalo text names it too")
    parser.add_argument("--routine", action="store_true",
                        help="send the full wave as routine (priority normal) instead of urgent, "
                             "as --urgent-at does: the run to compare --urgent-at with")
    parser.add_argument("--urgent-at", type=float, metavar="SECONDS",
                        help="SECONDS into the (then routine) full wave, create and approve an "
                             "urgent SMS+Zalo campaign and report urgent.first_message_ms "
                             "(approval to its first submit_sm at the SMSC simulator) and "
                             "urgent.complete_s (approval to its waves completed)")
    parser.add_argument("--urgent-recipients", type=int, default=10_000, metavar="N",
                        help="recipients of the urgent campaign: the first N of the audience "
                             "(default 10000)")
    parser.add_argument("--profile", metavar="DIR",
                        help="sample every process of the wave with py-spy (a dev dependency) "
                             "into DIR/workers-N/<process>.txt (collapsed stacks) and draw "
                             "DIR/workers-N/<process>.svg (a flame graph); the report gives "
                             "each process's CPU per message by part (bench/attribution.py)")
    options.lab_ending(parser, cmd_wave)
    group = parser.add_subparsers(dest="bench_command", metavar="[COMMAND]")
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
    options.lab_ending(engine, cmd_engine)

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
    smpp.add_argument("--tps", type=float, default=0.0, metavar="T",
                      help="each bind's agreed TPS (default 0: no limit); the SMSC simulator "
                           "counts the submit_sm per second it received")
    options.lab_ending(smpp, cmd_smpp)


def _counts(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(n) for n in text.split(","))
    except ValueError:
        raise InputError(f"--workers: {text!r} is not a count or a list like 1,2") from None
    if not counts or min(counts) < 1:
        raise InputError("--workers: every count must be at least 1")
    return counts


def cmd_wave(args: argparse.Namespace) -> int:
    if args.redis and args.redis_cluster:
        raise InputError("give --redis or --redis-cluster, not both")
    if not 0 <= args.error_ratio < 0.5:
        raise InputError("--error-ratio must be between 0 and 0.5")
    if args.binds < 1 or args.window < 1:
        raise InputError("--binds and --window must be at least 1")
    if not args.text.strip():
        raise InputError("--text must not be empty")
    opts = Options(recipients=args.recipients, zalo=args.zalo, workers=_counts(args.workers),
                   redis_url=args.redis, redis_cluster=args.redis_cluster,
                   error_ratio=args.error_ratio, binds=args.binds, window=args.window,
                   text=args.text, routine=args.routine, urgent_at=args.urgent_at,
                   urgent_recipients=args.urgent_recipients, profile=args.profile)
    if args.profile:
        profiler.py_spy()  # refused at once, not after the import
    with progress_bar("bench", None) as update:
        result = run_async(wave_bench(opts, numbering=load_numbering(),
                                      province=load_province(), settings=load_settings(),
                                      on_progress=update))
    _report(result)
    if args.json:
        print_json(result)
    if result.lost or result.duplicates:
        raise InputError(f"{result.lost:,} messages lost and {result.duplicates:,} duplicates")
    if result.urgent is not None and (result.urgent.lost or result.urgent.duplicates):
        raise InputError(f"the urgent campaign: {result.urgent.lost:,} messages lost and "
                         f"{result.urgent.duplicates:,} duplicates")
    return 0


def _report(result: BenchResult) -> None:
    out = console()
    for run in result.runs:
        channels = "; ".join(
            f"{name} {f.sent:,} sent ({f.pdus:,} PDUs/requests, {f.msgs_per_s:,.0f}/s), "
            f"{f.reached:,} reached, {f.duplicates} duplicates, {f.lost} lost, "
            f"{f.errors_injected:,} injected errors retried"
            for name, f in run.per_channel.items())
        procs = ", ".join(f"{n} {p.cpu_seconds:.1f} s CPU / {p.peak_rss_mb:.0f} MB"
                          for n, p in run.processes.items())
        out.print(
            f"{run.workers} worker(s){' on Redis Cluster' if run.redis_cluster else ''}: "
            f"{run.messages:,} messages in {run.seconds:.1f} s = {run.msgs_per_s:,.0f} msg/s; "
            f"{channels}; {run.receipts_matched:,} SMS receipts matched; workers "
            f"{run.cpu_us_per_msg} µs CPU per message, peak RSS {run.peak_rss_mb:.0f} MB; "
            f"batch latency {run.submit_latency_ms}; Redis {run.redis_used_mb} MB; dedup "
            f"{run.dedup_bytes_per_recipient} bytes per recipient per wave; SMS "
            f"{run.sms_encoding}, {run.sms_parts} part(s); the wave {run.priority}; "
            f"processes: {procs}", markup=False)
        if run.urgent is not None:
            u = run.urgent
            channels = "; ".join(
                f"{name} {f.sent:,} sent, {f.reached:,} reached, {f.duplicates} duplicates, "
                f"{f.lost} lost" for name, f in u.per_channel.items())
            out.print(
                f"  urgent campaign to {u.recipients:,} recipients, approved {u.at_s:.1f} s "
                f"into the wave with {u.routine_pending:,} routine messages still to send: "
                f"first SMS at the SMSC {_ms(u.first_message_ms)} (first Zalo "
                f"{_ms(u.first_zalo_ms)}, last message {_ms(u.last_message_ms)}); "
                f"{u.messages:,} messages completed in {u.complete_s:.2f} s; {channels}",
                markup=False)
        for name, parts in run.profile.items():
            out.print(f"  {name}, µs CPU per message by part: " + ", ".join(
                f"{part} {us:.2f}" for part, us in parts.items()), markup=False)
    if len(result.runs) > 1:
        out.print("scaling (msg/s by workers): " + ", ".join(
            f"{n}: {r:,.0f}" for n, r in result.scaling.items()), markup=False)


def _ms(value: float | None) -> str:
    return "never" if value is None else f"{value:,.0f} ms"


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
    if args.tps < 0:
        raise InputError(f"--tps: {args.tps} is below 0 (0: no limit)")
    with progress_bar("sending", args.messages) as update:
        result = run_async(smpp_bench(messages=args.messages, binds=args.binds,
                                      window=args.window, tps=args.tps,
                                      on_progress=lambda done, _total: update(done)))
    console().print(
        f"{result.messages:,} messages over {result.binds} binds (window {result.window}) in "
        f"{result.seconds:.2f} s: {result.submits_per_s:,.0f} submits/s, "
        f"{result.submit_receipt_per_s:,.0f} submit+receipt/s; {result.receipts:,} receipts; "
        f"ESME {result.esme_cpu_us_per_msg} µs CPU per message"
        + (f"; at the SMSC {result.smsc_submits_per_s:,.2f} submit_sm/s for "
           f"{result.tps * result.binds:,g} agreed" if result.tps else ""), markup=False)
    if args.json:
        print_json(result)
    return 0
