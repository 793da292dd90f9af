"""``loa demo``: a level-4 wave of every channel through the engine, in one command."""

from __future__ import annotations

import argparse
import contextlib
import os
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from bench.cli import options
from bench.demo import SmscTarget, run_demo
from dispatcher.domain.errors import InputError
from dispatcher.domain.msisdn import load_numbering
from dispatcher.domain.plan import load_plan
from dispatcher.domain.province import load_province
from dispatcher.engine.process import Progress as WaveProgress
from dispatcher.service.cli import metricsopts
from dispatcher.service.cli.output import console, print_json
from dispatcher.service.cli.runtime import run_async
from dispatcher.service.settings import load_settings


def register(sub: Any) -> None:
    demo = sub.add_parser(
        "demo", help="run a level-4 wave of every channel through the engine",
        description="Generate an audience, set the level to 4, and send the next wave of every "
                    "channel of the level-4 plan at once through the reconciler, fan-out and "
                    "workers, to in-process channels, on a private redis-server it starts and "
                    "stops: never the Redis of --config or LOA_REDIS_URL.")
    demo.add_argument("--recipients", type=int, default=100_000, metavar="N",
                      help="audience size (default 100000)")
    demo.add_argument("--smsc", metavar="HOST:PORT",
                      help="send SMS to this SMSC (all SMS routes on one link) instead of the "
                           "in-process simulator")
    demo.add_argument("--smsc-system-id", default="loa", metavar="ID",
                      help="system_id for --smsc (default loa)")
    demo.add_argument("--smsc-password", default="", metavar="PW",
                      help="password for --smsc (default: LOA_SMSC_PASSWORD or empty)")
    metricsopts.add_options(demo, "the demo's (while it runs)")
    demo.add_argument("--zalo-url", metavar="URL",
                      help="send Zalo to this server (e.g. a `loa sim zalo`, with its default "
                           "credentials) instead of the in-process simulator")
    demo.add_argument("--redis", metavar="URL",
                      help="run on this Redis database instead of a private redis-server; "
                           "refused unless the database is empty (LOA_REDIS_URL and the "
                           "config's Redis are never used)")
    demo.add_argument("--config", type=Path, metavar="FILE",
                      help="deployment settings (TOML; see docs/configuration.md); its Redis "
                           "is not used")
    demo.add_argument("--plan", type=Path, metavar="FILE", help="plan file (default: shipped)")
    options.lab_ending(demo, cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    if args.recipients < 1:
        raise InputError("--recipients must be at least 1")
    settings = load_settings(args.config)
    plan, numbering, province = load_plan(args.plan), load_numbering(), load_province()
    smsc = _smsc(args.smsc, args.smsc_system_id,
                 args.smsc_password or os.environ.get("LOA_SMSC_PASSWORD", ""))
    err = Console(stderr=True)
    bars = Progress(TextColumn("{task.description:>24}"), BarColumn(), MofNCompleteColumn(),
                    console=err, transient=True, disable=not err.is_terminal)
    tasks: dict[str, Any] = {}

    def show(snapshot: dict[str, WaveProgress]) -> None:
        for wave_id, p in snapshot.items():
            if wave_id not in tasks:
                tasks[wave_id] = bars.add_task(wave_id, total=p.total or 1)
            bars.update(tasks[wave_id], completed=p.sent + p.failed + p.expired + p.cancelled)

    exporter = metricsopts.serve_metrics(args)
    with bars, contextlib.ExitStack() as cleanup:
        if exporter is not None:
            cleanup.callback(exporter.close)
        result = run_async(run_demo(recipients=args.recipients, redis_url=args.redis or None,
                                    plan=plan, numbering=numbering, province=province,
                                    settings=settings, smsc=smsc, zalo_url=_url(args.zalo_url),
                                    on_progress=show))
    out = console()
    by_channel = ", ".join(f"{c} {n:,}" for c, n in result.messages.items())
    if result.simulated:
        out.print(f"simulated channels (the demo's own simulators, no one receives them): "
                  f"{', '.join(result.simulated)}", markup=False)
    out.print(f"{result.recipients:,} recipients; waves {', '.join(result.waves)}", markup=False)
    out.print(f"sent {result.sent:,} messages ({by_channel}) in {result.seconds:.1f} s = "
              f"{result.msgs_per_s:,.0f}/s; permanent failures {result.failed:,} (of which "
              f"{result.sms_fallback:,} not on Zalo got an SMS instead); dead letters "
              f"{result.dead_letters:,}; duplicates {result.duplicates}; delivered "
              f"(SMS receipts and Zalo webhooks): {result.delivered:,}; published on the "
              f"portal simulator: {result.published:,}; CAP messages published: "
              f"{result.cap_messages:,}; public notices pushed to the Wi-Fi simulator: "
              f"{result.wifi_notices:,}", markup=False)
    if args.json:
        print_json(result)
    return 0


def _url(value: str | None) -> str | None:
    if value is not None and not value.startswith(("http://", "https://")):
        raise InputError(f"--zalo-url: expected http://HOST:PORT, got {value!r}")
    return value.rstrip("/") if value else None


def _smsc(target: str | None, system_id: str, password: str) -> SmscTarget | None:
    if target is None:
        return None
    host, sep, port = target.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(f"--smsc: expected HOST:PORT, got {target!r}")
    return SmscTarget(host=host, port=int(port), system_id=system_id, password=password)
