"""What Loa's HTTP simulators of the outlet channels share: their server on loopback, started
and stopped (or ``async with``), and the draws and waits of the faults they inject.

A simulator routes its handlers in :meth:`SimServer._route`; each start makes a new server, so a
simulator stopped (its peer down: connection refused) may start again. Its faults are
attributes changed between (and during) requests: a share of the requests answered with an
error (:meth:`SimServer._chance`, drawn from a seeded generator, so that a seed gives the same
faults every run) and answers held back, before (``delay``) or after the peer keeps what it was
sent (a hang longer than the client waits: the answer lost) (:meth:`SimServer._wait`).
"""

from __future__ import annotations

import asyncio
import random
from typing import ClassVar, Self

from adapters.http.server import HttpServer


class SimServer:
    """A simulated peer on ``127.0.0.1`` (unless told): ``await start()``, then requests to
    ``url``; ``await stop()``. ``seed`` seeds the draws of its faults."""

    GRACE: ClassVar[float] = 0.5  # seconds the answers under way may take when it stops

    def __init__(self, seed: int = 0) -> None:
        self._server = HttpServer()
        self._rng = random.Random(seed)

    def _route(self, server: HttpServer) -> None:
        """Route the simulator's handlers on ``server``."""
        raise NotImplementedError

    @property
    def url(self) -> str:
        return self._server.url

    @property
    def port(self) -> int:
        return self._server.port

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        server = HttpServer()
        self._route(server)
        await server.start(host, port)
        self._server = server

    async def stop(self) -> None:
        await self._server.close(grace=self.GRACE)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _chance(self, ratio: float) -> bool:
        """Whether a fault of a share ``ratio`` of the requests strikes this one (nothing is
        drawn for a ratio of 0: the other faults' draws stay those of the seed)."""
        return bool(ratio) and self._rng.random() < ratio

    @staticmethod
    async def _wait(seconds: float) -> None:
        """Hold an answer back ``seconds`` (0: not at all)."""
        if seconds:
            await asyncio.sleep(seconds)
