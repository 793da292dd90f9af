"""``loa sim smsc``, ``loa sim zalo`` (:mod:`bench.cli.simzalo`), ``loa sim facebook``
(:mod:`bench.cli.simfacebook`), ``loa sim loudspeaker`` (:mod:`bench.cli.simloudspeaker`), ``loa
sim portal`` (:mod:`bench.cli.simportal`), ``loa sim wifi`` (:mod:`bench.cli.simwifi`) and ``loa
sim cellbroadcast`` (:mod:`bench.cli.simcellbroadcast`): run a simulator until SIGINT or
SIGTERM."""

from __future__ import annotations

import argparse
from typing import Any

from adapters.smpp.simulator import HOSTILE_KINDS, Smsc, SmscConfig
from bench.cli import (
    options,
    simcellbroadcast,
    simfacebook,
    simloudspeaker,
    simportal,
    simrun,
    simwifi,
    simzalo,
)
from dispatcher.domain.errors import InputError


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
    options.listen(smsc, 2775)
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
    smsc.add_argument("--hostile", nargs="?", const="all", metavar="KIND,...",
                      help="send, between the answers, PDUs an ESME must survive: "
                           f"{', '.join(HOSTILE_KINDS)} (default with the flag alone: all)")
    smsc.add_argument("--hostile-every", type=int, default=50, metavar="N",
                      help="one hostile PDU after every N submits (default 50)")
    options.seed(smsc, "the stat mix and errors")
    smsc.add_argument("--mark", default="", metavar="TEXT",
                      help="count messages whose text contains TEXT (letters, digits, spaces, "
                           "-.:/) apart: marked_messages, first_marked_at, ... (loa bench "
                           "--urgent-at)")
    options.ending(smsc, cmd_smsc)
    simzalo.register(group)
    simfacebook.register(group)
    simloudspeaker.register(group)
    simportal.register(group)
    simwifi.register(group)
    simcellbroadcast.register(group)


def _stat_mix(text: str) -> dict[str, float]:
    mix: dict[str, float] = {}
    for item in filter(None, (i.strip() for i in text.split(","))):
        state, sep, weight = item.partition("=")
        try:
            mix[state.strip().upper()] = float(weight) if sep else 1.0
        except ValueError:
            raise InputError(f"--stat-mix: {item!r} is not STATE=WEIGHT") from None
    return mix


def _hostile(text: str | None) -> frozenset[str]:
    if text is None:
        return frozenset()
    kinds = {k.strip().replace("-", "_") for k in text.split(",") if k.strip()}
    if "all" in kinds:
        return frozenset(HOSTILE_KINDS)
    if not kinds:
        raise InputError(f"--hostile: name some of {', '.join(HOSTILE_KINDS)}, or all")
    return frozenset(kinds)


def _config(args: argparse.Namespace) -> SmscConfig:
    if (args.system_id is None) != (args.password is None):
        raise InputError("give --system-id and --password together")
    options.check_port(args.port)
    return options.config(
        SmscConfig,
        credentials={args.system_id: args.password} if args.system_id is not None else {},
        receipts=not args.no_receipts, receipt_delay=args.receipt_delay,
        response_delay=args.response_delay, receipt_format=args.receipt_format,
        receipt_before_response=args.receipt_before_response,
        twelve_digit_dates=args.twelve_digit_dates, stat_mix=_stat_mix(args.stat_mix),
        tps_per_bind=args.tps, error_ratio=args.error_ratio, error_status=args.error_status,
        disconnect_after=args.disconnect_after, hostile=_hostile(args.hostile),
        hostile_every=args.hostile_every, seed=args.seed, mark=args.mark)


def cmd_smsc(args: argparse.Namespace) -> int:
    config = _config(args)
    return simrun.run(args, "SMSC simulator", lambda: Smsc(config),
                      lambda smsc: f"SMSC simulator listening on {smsc.host}:{smsc.port}",
                      lambda smsc: smsc.stats)
