"""Running the engine's coroutines from a command: on uvloop, installed here and only here."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on a new uvloop event loop."""
    return uvloop.run(coro)


async def until_signal(ready: Callable[[], None] | None = None) -> None:
    """Wait until SIGINT or SIGTERM (a service's main loop). ``ready`` is called once the
    signals are taken: a supervisor that signals as soon as it is told may do so at once."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        if ready is not None:
            ready()
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
