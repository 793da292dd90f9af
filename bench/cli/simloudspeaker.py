"""``loa sim loudspeaker``: loudspeaker systems' HTTP API (the generic profile) until SIGINT or
SIGTERM."""

from __future__ import annotations

import argparse
from typing import Any

from adapters.loudspeaker.simulator import DEFAULT_SYSTEMS, LoudspeakerSim, LoudspeakerSimConfig
from bench.cli import options, simrun


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
    options.listen(sim, 8720)
    sim.add_argument("--system", action="append", metavar="ID=TOKEN",
                     help="a system and its bearer token (repeatable; default "
                          f"{system}={token} and the others of the simulator)")
    sim.add_argument("--expired", action="append", metavar="TOKEN",
                     help="a token answered 401, expired (repeatable)")
    sim.add_argument("--error-status", type=int, default=503, metavar="STATUS",
                     help="the status answered to --error-ratio of the uploads (default 503)")
    sim.add_argument("--error-ratio", type=float, default=0.0, metavar="R",
                     help="share of uploads answered --error-status (default 0)")
    options.throttle(sim, "the first N uploads are answered 429", 2,
                     retry="seconds in the 429's Retry-After")
    options.answers(sim, "--hang-after-accept", "keep each broadcast",
                    "an answer lost after the upload")
    options.seed(sim)
    options.ending(sim, cmd_loudspeaker)


def _config(args: argparse.Namespace) -> LoudspeakerSimConfig:
    options.check_port(args.port)
    options.at_least_zero((("--throttle-count", args.throttle_count),
                           ("--retry-after", args.retry_after)))
    systems = options.pairs(args.system, "--system", "ID=TOKEN") or dict(DEFAULT_SYSTEMS)
    return options.config(
        LoudspeakerSimConfig,
        systems=systems, expired=frozenset(args.expired or ()),
        error_status=args.error_status, error_ratio=args.error_ratio,
        throttle_count=args.throttle_count, retry_after=args.retry_after, delay=args.delay,
        hang_after_accept=args.hang_after_accept, seed=args.seed)


def cmd_loudspeaker(args: argparse.Namespace) -> int:
    config = _config(args)
    systems = ", ".join(config.systems)
    return simrun.run(args, "loudspeaker simulator", lambda: LoudspeakerSim(config),
                      lambda sim: f"loudspeaker simulator listening on {sim.url} (systems: "
                                  f"{systems}, at {sim.url}/<system>)",
                      lambda sim: sim.stats)
