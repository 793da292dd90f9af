"""How a simulator command runs: started, announced, stopped at the first signal."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from dispatcher.domain.errors import InputError
from dispatcher.service.cli.runtime import until_signal


async def until_stopped(start: Awaitable[None], stop: Callable[[], Awaitable[None]],
                        host: str, port: int, listening: Callable[[], str]) -> None:
    """Start a simulator (``start`` listens on ``host:port``), say it is ``listening()`` once
    SIGINT and SIGTERM are taken, and ``stop`` it at the first of them."""
    try:
        await start
    except OSError as exc:
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    try:
        await until_signal(lambda: print(listening(), flush=True))
    finally:
        await stop()
