"""An HTTP endpoint that behaves like an app-push gateway, for tests, demos and benchmarks.

It checks the signature and the signed time of every request (401 when the signature is wrong
or missing, or the time more than ``max_age_seconds`` off its clock), answers a repeated
idempotency key with the answer it gave the first time without counting the messages again,
counts what every address received, and can be told to answer an error status (for given
addresses, or for a share of requests), to be slow, and to give per-message results to batches.
Its attributes may be changed between (and during) sends.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from aiohttp import web

from adapters.http.signature import verify


class WebhookSim:
    """The endpoint on ``127.0.0.1``, a free port: ``await start()``, then POST to ``url``.

    * ``status_by_addr``: a request with one of these addresses answers that status;
    * ``error_ratio`` of the other requests answer ``error_status``;
    * ``delay`` (seconds, every request) or ``delays`` by address: the answer comes that late;
      the messages are counted before the wait, as an endpoint that is slow to answer would;
    * ``item_results``: a batch is answered with ``{"results": [...]}``; ``item_status`` gives
      an address ``"retry"`` or ``"failed"`` (the others are ``"sent"``).
    """

    def __init__(self, *, secret: str = "", signature_header: str = "X-Loa-Signature",
                 timestamp_header: str = "X-Loa-Timestamp",
                 idempotency_header: str = "Idempotency-Key", item_results: bool = False,
                 keep: bool = False, seed: int = 0, max_age_seconds: float = 300.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.secret = secret
        self.signature_header = signature_header
        self.timestamp_header = timestamp_header
        self.max_age_seconds = max_age_seconds
        self.clock = clock
        self.stale = 0  # requests refused for their time (a replay, or a wrong clock)
        self.idempotency_header = idempotency_header
        self.item_results = item_results
        self.item_status: dict[str, str] = {}
        self.status_by_addr: dict[str, int] = {}
        self.error_ratio = 0.0
        self.error_status = 503
        self.delay = 0.0
        self.delays: dict[str, float] = {}
        self.keep = keep  # keep every request's headers and body in ``log``
        self.log: list[tuple[dict[str, str], Any]] = []
        self.received: Counter[str] = Counter()  # address -> messages counted
        self.requests = 0
        self.replays = 0  # repeated idempotency keys answered without counting
        self.bad_signatures = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.connections: set[tuple[str, int]] = set()  # client (host, port) of every request
        self.answers: dict[str, bytes] = {}  # idempotency key -> the 2xx answer given
        self._rng = random.Random(seed)
        self._ids = 0
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/push"

    @property
    def messages(self) -> int:
        return self.received.total()

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/push", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None,
                                     shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> WebhookSim:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        peer = request.transport.get_extra_info("peername") if request.transport else None
        if peer:
            self.connections.add((peer[0], peer[1]))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._answer(request)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: web.Request) -> web.Response:
        raw = await request.read()
        if self.secret:
            why = verify(self.secret, raw, request.headers.get(self.timestamp_header, ""),
                         request.headers.get(self.signature_header, ""), now=self.clock(),
                         max_age=self.max_age_seconds)
            if why is not None:
                if why == "bad signature":
                    self.bad_signatures += 1
                else:
                    self.stale += 1
                return web.json_response({"error": why}, status=401)
        key = request.headers.get(self.idempotency_header, "")
        if key and key in self.answers:
            self.replays += 1
            return web.Response(body=self.answers[key], content_type="application/json")
        try:
            body = json.loads(raw)
            batch = "messages" in body
            addrs = [m["to"] for m in body["messages"]] if batch else [body["to"]]
        except (ValueError, TypeError, KeyError):
            return web.json_response({"error": "not a Loa message"}, status=400)
        if self.keep:
            self.log.append((dict(request.headers), body))
        delay = max([self.delay, *(self.delays.get(a, 0.0) for a in addrs)])
        status = next((self.status_by_addr[a] for a in addrs if a in self.status_by_addr), 200)
        if status == 200 and self.error_ratio and self._rng.random() < self.error_ratio:
            status = self.error_status
        if status // 100 != 2:
            if delay:
                await asyncio.sleep(delay)
            return web.json_response({"error": f"injected {status}"}, status=status)
        answer: dict[str, Any]
        if batch and self.item_results:
            results = []
            for addr in addrs:
                state = self.item_status.get(addr, "sent")
                item = {"to": addr, "status": state}
                if state == "sent":
                    self.received[addr] += 1
                    item["id"] = self._next_id()
                else:
                    item["reason"] = f"injected {state}"
                results.append(item)
            answer = {"results": results}
        elif batch:
            self.received.update(addrs)
            answer = {"accepted": len(addrs)}
        else:
            self.received[addrs[0]] += 1
            answer = {"id": self._next_id()}
        encoded = json.dumps(answer).encode()
        if key:
            self.answers[key] = encoded
        if delay:
            await asyncio.sleep(delay)
        return web.Response(body=encoded, content_type="application/json")

    def _next_id(self) -> str:
        self._ids += 1
        return f"sim-{self._ids}"
