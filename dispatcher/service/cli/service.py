"""``loa worker``: the engine as a long-running process."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

from dispatcher.domain.errors import InputError
from dispatcher.domain.msisdn import load_numbering
from dispatcher.domain.plan import load_plan
from dispatcher.domain.province import load_province
from dispatcher.service import channels, failclosed
from dispatcher.service.cli import logopts, metricsopts
from dispatcher.service.cli.runtime import run_async, until_signal
from dispatcher.service.process import build_engine, run_engine
from dispatcher.service.settings import check_rates, load_settings
from dispatcher.store import open_store

log = logging.getLogger(__name__)

#: After SIGTERM, how long the batches in hand may take to finish before the engine is
#: cancelled (what it still held is then reclaimed by another worker after the lease).
STOP_SECONDS = 20.0


def register(sub: Any) -> None:
    worker = sub.add_parser(
        "worker", help="run the engine: reconciler, fan-out and workers, until SIGTERM",
        description="Run Loa's engine with the channels of the deployment settings: the "
                    "reconciler (unless --no-reconcile), fan-out and workers, on Redis. Any "
                    "number of workers may share one Redis. Stops cleanly on SIGINT or SIGTERM.")
    worker.add_argument("--config", type=Path, metavar="FILE", help="deployment settings (TOML)")
    worker.add_argument("--redis", metavar="URL", help="Redis URL (default: LOA_REDIS_URL or "
                                                       "the settings)")
    worker.add_argument("--plan", type=Path, metavar="FILE", help="plan file (default: shipped)")
    worker.add_argument("--name", help="this worker's name in the consumer groups "
                                       "(default: host-pid)")
    worker.add_argument("--no-reconcile", action="store_true",
                        help="do not run the reconciler in this process")
    metricsopts.add_options(worker, "this worker's (docs/operations.md: one scrape target per "
                                    "worker)")
    logopts.add_options(worker)
    worker.set_defaults(func=cmd_worker)


def cmd_worker(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    url = args.redis or settings.redis.url
    if not url:
        raise InputError("loa worker needs a Redis: give --redis URL or set LOA_REDIS_URL")
    plan, province, numbering = load_plan(args.plan), load_province(), load_numbering()
    check_rates(settings, numbering.carriers, str(args.config or "settings"))

    async def go() -> None:
        # the signals are taken first: a SIGTERM while the worker starts (its metrics port
        # already answering, the store being checked) stops it cleanly, as later
        taken = asyncio.Event()
        signalled = asyncio.create_task(until_signal(taken.set))
        await taken.wait()
        exporter, store = None, None
        try:
            exporter = metricsopts.serve_metrics(args)
            store = open_store(url)
            await failclosed.check(store, plan, channels.modes(settings),
                                   source=str(args.config or "defaults"))
            if signalled.done():
                return
            engine = build_engine(store, settings, plan, province, numbering,
                                  reconcile=not args.no_reconcile, name=args.name)
            stop = asyncio.Event()
            running = asyncio.create_task(run_engine(engine, stop))
            await asyncio.wait({running, signalled}, return_when=asyncio.FIRST_COMPLETED)
            stop.set()
            done, _ = await asyncio.wait({running}, timeout=STOP_SECONDS)
            if not done:
                log.warning("not stopped %.0f s after the signal: cancelling; the batches in "
                            "hand are left to be reclaimed", STOP_SECONDS)
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await running
                return
            await running
        finally:
            signalled.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await signalled
            if store is not None:
                await store.aclose()
            if exporter is not None:
                exporter.close()

    run_async(go())
    return 0
