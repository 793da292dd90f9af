"""A Loa process: the engine (reconciler, fan-out, workers) with the configured channels,
running until SIGINT or SIGTERM and then stopping cleanly (batches in hand are finished or left
to be reclaimed; nothing is lost)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from dispatcher import channels
from dispatcher.engine import Engine
from dispatcher.errors import LoaError
from dispatcher.msisdn import Numbering
from dispatcher.plan import Plan
from dispatcher.province import Province
from dispatcher.receipts import ReceiptMatcher
from dispatcher.settings import Settings
from dispatcher.store import Store

log = logging.getLogger(__name__)


def build_engine(store: Store, settings: Settings, plan: Plan, province: Province,
                 numbering: Numbering, *, reconcile: bool, name: str | None = None) -> Engine:
    """The engine of a process, with the adapters the settings configure."""
    matcher = ReceiptMatcher(store)
    adapters = channels.build(settings, on_receipt=matcher.add)
    return Engine(store, plan, settings, province, adapters, numbering.carriers, name=name,
                  reconcile=reconcile, receipts=matcher, numbering=numbering)


async def run_engine(engine: Engine, stop: asyncio.Event) -> None:
    """Run until ``stop``; then close every channel."""
    try:
        await engine.run(stop)
    finally:
        for adapter in engine.adapters.values():
            with contextlib.suppress(LoaError, OSError):  # closing is best effort at shutdown
                await adapter.aclose()
