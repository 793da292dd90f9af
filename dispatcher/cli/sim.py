"""``loa sim smsc``: run the SMSC simulator until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

import msgspec

from adapters.smpp.simulator import Smsc, SmscConfig, SmscStats
from dispatcher.cli.output import print_json
from dispatcher.cli.runtime import run_async
from dispatcher.errors import InputError


def register(sub: Any) -> None:
    parser = sub.add_parser("sim", help="protocol simulators for demos, tests and benchmarks",
                            description="Real-protocol simulators of the channels Loa sends to.")
    group = parser.add_subparsers(dest="sim_command", metavar="COMMAND", required=True)
    smsc = group.add_parser(
        "smsc", help="an SMPP 3.4 SMSC (any bind type, receipts, throttling, errors)",
        description="Run an SMPP 3.4 SMSC simulator until SIGINT or SIGTERM: it answers "
                    "submit_sm with message ids and sends delivery receipts, and can throttle "
                    "and inject errors. Prints one line when it listens and its counters when "
                    "it stops.")
    smsc.add_argument("--host", default="127.0.0.1", help="address to listen on (default "
                                                          "127.0.0.1)")
    smsc.add_argument("--port", type=int, default=2775, help="port (default 2775; 0: any free)")
    smsc.add_argument("--system-id", metavar="ID",
                      help="accept only this system_id (with --password); default: any")
    smsc.add_argument("--password", metavar="PW", help="its password")
    smsc.add_argument("--receipt-delay", type=float, default=0.0, metavar="S",
                      help="seconds from the response to the receipt (default 0)")
    smsc.add_argument("--response-delay", type=float, default=0.0, metavar="S",
                      help="seconds before each submit_sm_resp (default 0)")
    smsc.add_argument("--receipt-format", choices=("text", "tlv", "both"), default="both",
                      help="receipt text, TLVs only, or both (default)")
    smsc.add_argument("--receipt-before-response", action="store_true",
                      help="send each receipt before its submit_sm_resp")
    smsc.add_argument("--no-receipts", action="store_true", help="never send receipts")
    smsc.add_argument("--twelve-digit-dates", action="store_true",
                      help="YYMMDDhhmmss dates in the receipt text")
    smsc.add_argument("--stat-mix", default="DELIVRD=1", metavar="STATE=W,...",
                      help="receipt states and weights, e.g. DELIVRD=0.95,UNDELIV=0.05")
    smsc.add_argument("--tps", type=float, default=0.0, metavar="N",
                      help="submits per second per bind; above it 0x58 (default 0: no cap)")
    smsc.add_argument("--error-ratio", type=float, default=0.0, metavar="R",
                      help="share of submits answered --error-status (default 0)")
    smsc.add_argument("--error-status", type=lambda v: int(v, 0), default=0x08, metavar="S",
                      help="status of injected errors (default 0x08)")
    smsc.add_argument("--disconnect-after", type=int, default=0, metavar="N",
                      help="close each connection after N submits (default 0: never)")
    smsc.add_argument("--seed", type=int, default=0, help="seed of the stat mix and errors")
    smsc.add_argument("--json", action="store_true", help="end with the counters as one JSON "
                                                          "line on stdout")
    smsc.set_defaults(func=cmd_smsc)


def _stat_mix(text: str) -> dict[str, float]:
    mix: dict[str, float] = {}
    for item in filter(None, (i.strip() for i in text.split(","))):
        state, sep, weight = item.partition("=")
        try:
            mix[state.strip().upper()] = float(weight) if sep else 1.0
        except ValueError:
            raise InputError(f"--stat-mix: {item!r} is not STATE=WEIGHT") from None
    return mix


def _config(args: argparse.Namespace) -> SmscConfig:
    if (args.system_id is None) != (args.password is None):
        raise InputError("give --system-id and --password together")
    if not 0 <= args.port <= 65535:
        raise InputError(f"--port {args.port} is not a port number")
    try:
        return SmscConfig(
            credentials={args.system_id: args.password} if args.system_id is not None else {},
            receipts=not args.no_receipts, receipt_delay=args.receipt_delay,
            response_delay=args.response_delay, receipt_format=args.receipt_format,
            receipt_before_response=args.receipt_before_response,
            twelve_digit_dates=args.twelve_digit_dates, stat_mix=_stat_mix(args.stat_mix),
            tps_per_bind=args.tps, error_ratio=args.error_ratio, error_status=args.error_status,
            disconnect_after=args.disconnect_after, seed=args.seed)
    except ValueError as exc:
        raise InputError(str(exc)) from None


async def serve(config: SmscConfig, host: str, port: int) -> SmscStats:
    """Run the simulator until SIGINT or SIGTERM; its counters at the end."""
    smsc = Smsc(config)
    try:
        await smsc.start(host, port)
    except OSError as exc:
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    print(f"SMSC simulator listening on {smsc.host}:{smsc.port}", flush=True)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await smsc.stop()
    return smsc.stats


def cmd_smsc(args: argparse.Namespace) -> int:
    config = _config(args)
    stats = run_async(serve(config, args.host, args.port))
    if args.json:
        print_json(stats)
    else:
        counters = ", ".join(f"{k.replace('_', ' ')} {v:,}"
                             for k, v in msgspec.structs.asdict(stats).items())
        print(f"SMSC simulator stopped: {counters}", flush=True)
    return 0
