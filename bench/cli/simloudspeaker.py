"""``loa sim loudspeaker``: loudspeaker systems' HTTP API (the generic profile) until SIGINT or
SIGTERM."""

from __future__ import annotations

import argparse
from typing import Any

import msgspec

from adapters.loudspeaker.simulator import DEFAULT_SYSTEMS, LoudspeakerSim, LoudspeakerSimConfig
from bench.cli.simrun import until_stopped
from dispatcher.domain.errors import InputError
from dispatcher.service.cli import logopts
from dispatcher.service.cli.output import print_json
from dispatcher.service.cli.runtime import run_async


def register(group: Any) -> None:
    system, token = next(iter(DEFAULT_SYSTEMS.items()))
    sim = group.add_parser(
        "loudspeaker", help="IP loudspeaker systems (broadcast uploads, audio checks, faults)",
        description="Run loudspeaker systems' HTTP API until SIGINT or SIGTERM: broadcast "
                    "uploads (POST /<system>/broadcasts, multipart with a WAV) checked as a "
                    "vendor would (token, form, valid audio of the length it says and plausible "
                    "for its text), an id seen before answered 409, and injected faults. GET "
                    "/<system>/broadcasts lists what a system took. Prints one line when it "
                    "listens and its counters when it stops.")
    sim.add_argument("--host", default="127.0.0.1", help="address to listen on (default "
                                                         "127.0.0.1)")
    sim.add_argument("--port", type=int, default=8720, help="port (default 8720; 0: any free)")
    sim.add_argument("--system", action="append", metavar="ID=TOKEN",
                     help="a system and its bearer token (repeatable; default "
                          f"{system}={token} and the others of the simulator)")
    sim.add_argument("--expired", action="append", metavar="TOKEN",
                     help="a token answered 401, expired (repeatable)")
    sim.add_argument("--error-status", type=int, default=503, metavar="STATUS",
                     help="the status answered to --error-ratio of the uploads (default 503)")
    sim.add_argument("--error-ratio", type=float, default=0.0, metavar="R",
                     help="share of uploads answered --error-status (default 0)")
    sim.add_argument("--throttle-count", type=int, default=0, metavar="N",
                     help="the first N uploads are answered 429 (default 0)")
    sim.add_argument("--retry-after", type=int, default=2, metavar="S",
                     help="seconds in the 429's Retry-After (default 2)")
    sim.add_argument("--delay", type=float, default=0.0, metavar="S",
                     help="seconds before every answer (default 0)")
    sim.add_argument("--hang-after-accept", type=float, default=0.0, metavar="S",
                     help="keep each broadcast, then hold its answer S seconds (longer than "
                          "the client waits: an answer lost after the upload; default 0)")
    sim.add_argument("--seed", type=int, default=0, help="seed of the injected errors")
    sim.add_argument("--json", action="store_true", help="end with the counters as one JSON "
                                                         "line on stdout")
    logopts.add_options(sim)
    sim.set_defaults(func=cmd_loudspeaker)


def _systems(items: list[str] | None) -> dict[str, str]:
    found: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise InputError(f"--system: {item!r} is not ID=TOKEN")
        found[key.strip()] = value.strip()
    return found or dict(DEFAULT_SYSTEMS)


def _config(args: argparse.Namespace) -> LoudspeakerSimConfig:
    if not 0 <= args.port <= 65535:
        raise InputError(f"--port {args.port} is not a port number")
    if args.throttle_count < 0 or args.retry_after < 0:
        raise InputError("--throttle-count and --retry-after must be 0 or more")
    try:
        return LoudspeakerSimConfig(
            systems=_systems(args.system), expired=frozenset(args.expired or ()),
            error_status=args.error_status, error_ratio=args.error_ratio,
            throttle_count=args.throttle_count, retry_after=args.retry_after, delay=args.delay,
            hang_after_accept=args.hang_after_accept, seed=args.seed)
    except ValueError as exc:
        raise InputError(str(exc)) from None


async def serve_loudspeaker(config: LoudspeakerSimConfig, host: str,
                            port: int) -> LoudspeakerSim:
    """Run the simulator until SIGINT or SIGTERM; the simulator, for its counters."""
    sim = LoudspeakerSim(config)
    systems = ", ".join(config.systems)
    await until_stopped(sim.start(host, port), sim.stop, host, port,
                        lambda: f"loudspeaker simulator listening on {sim.url} (systems: "
                                f"{systems}, at {sim.url}/<system>)")
    return sim


def cmd_loudspeaker(args: argparse.Namespace) -> int:
    sim = run_async(serve_loudspeaker(_config(args), args.host, args.port))
    stats = sim.stats
    if args.json:
        print_json(stats)
    else:
        counters = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in
                             msgspec.structs.asdict(stats).items())
        print(f"loudspeaker simulator stopped: {counters}", flush=True)
    return 0
