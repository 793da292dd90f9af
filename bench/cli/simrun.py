"""How a simulator command runs: started, announced, stopped at the first signal, and its
counters printed."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Protocol, TypeVar

import msgspec

from dispatcher.domain.errors import InputError
from dispatcher.service.cli.output import print_json
from dispatcher.service.cli.runtime import run_async, until_signal


class Simulator(Protocol):
    async def start(self, host: str, port: int) -> None: ...

    async def stop(self) -> None: ...


S = TypeVar("S", bound=Simulator)


def run(args: argparse.Namespace, name: str, make: Callable[[], S],
        listening: Callable[[S], str], stats: Callable[[S], msgspec.Struct], *,
        started: Callable[[S], None] | None = None) -> int:
    """Run the simulator ``make()`` builds on ``--host:--port`` until SIGINT or SIGTERM: say it
    is ``listening(sim)`` once the signals are taken (``started(sim)`` first), then print
    ``stats(sim)``: one JSON line with ``--json``, else ``{name} stopped: ...`` with its
    counters."""

    async def serve() -> S:
        sim = make()
        try:
            await sim.start(args.host, args.port)
        except OSError as exc:
            raise InputError(f"cannot listen on {args.host}:{args.port}: "
                             f"{exc.strerror or exc}") from None
        try:
            if started is not None:
                started(sim)
            await until_signal(lambda: print(listening(sim), flush=True))
        finally:
            await sim.stop()
        return sim

    counters = stats(run_async(serve()))
    if args.json:
        print_json(counters)
    else:
        print(f"{name} stopped: " + ", ".join(
            f"{k.replace('_', ' ')} {v:,}" for k, v in msgspec.structs.asdict(counters).items()
            if isinstance(v, int | float)), flush=True)
    return 0
