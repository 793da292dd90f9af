"""A public Wi-Fi controller that takes Loa's pushed notices, for tests, demos and the lab
(``loa sim wifi``).

It checks the signature and the signed time of every push (401 when either is wrong), answers a
repeated ``Idempotency-Key`` with the answer it gave the first time without keeping the notice
again, keeps every notice it accepted, in order (what the far end counts), and can be told to
misbehave (:data:`FAULTS`): be ``down`` (its port closed: connections are refused), ``slow``
(answer after ``delay`` seconds), answer ``429`` (with ``Retry-After``), ``401``, ``403``,
``400`` or ``500``, or ``accept-timeout``: keep the notice, then answer only after ``delay``
seconds (longer than Loa waits: Loa tries again, with the same key). A fault applies to the
next ``count`` pushes (0: every push until it is changed).

Routes: ``POST /loa-notice`` (the pushes), ``GET /notices`` (the notices kept), ``GET /stats``
(the counters), ``POST /sim/fault`` (change the fault: ``{"fault", "count", "delay",
"retry_after", "down_seconds"}``; ``"fault": "none"`` clears it).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from typing import Any

import msgspec

from adapters.http.codec import Request
from adapters.http.server import HttpServer, Response
from adapters.http.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify

PATH = "/loa-notice"
FAULTS = ("none", "down", "slow", "429", "401", "403", "400", "500", "accept-timeout")
STATUS_FAULTS = {"429": 429, "401": 401, "403": 403, "400": 400, "500": 500}
_JSON = "application/json"


class Fault(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What the controller does wrong (``POST /sim/fault`` takes it as JSON)."""

    fault: str = "none"
    count: int = 0  # pushes it applies to (0: all until changed)
    delay: float = 2.0  # seconds: slow and accept-timeout
    retry_after: str = "1"  # the 429's Retry-After ("" none)
    down_seconds: float = 0.0  # down: back after this many seconds (0: until told)

    def __post_init__(self) -> None:
        if self.fault not in FAULTS:
            raise ValueError(f"fault must be one of {', '.join(FAULTS)}, not {self.fault!r}")
        if self.count < 0 or self.delay < 0 or self.down_seconds < 0:
            raise ValueError("count, delay and down_seconds must be 0 or more")


class WifiSimStats(msgspec.Struct):
    requests: int = 0  # pushes answered (any status)
    notices: int = 0  # notices kept: each accepted once
    replays: int = 0  # repeated idempotency keys answered without keeping the notice again
    bad_signatures: int = 0
    stale: int = 0  # refused for their signed time (a replay, or a wrong clock)
    faults: int = 0  # pushes answered by an injected fault
    malformed: int = 0  # bodies that are not a Loa notice (400)


class _Notice(msgspec.Struct):
    identifier: str
    msgType: str


_notice = msgspec.json.Decoder(_Notice)
_encode = msgspec.json.Encoder().encode


class WifiControllerSim:
    """The controller on ``host``, a free port unless given: ``await start()``, then POST to
    ``url``. ``secret``: the key it checks signatures with."""

    def __init__(self, *, secret: str, max_age_seconds: float = 300.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.secret = secret
        self.max_age_seconds = max_age_seconds
        self.clock = clock
        self.stats = WifiSimStats()
        self.notices: list[dict[str, Any]] = []  # every notice kept, in the order accepted
        self.headers: list[dict[str, str]] = []  # the headers of each, in the same order
        self.answers: dict[str, bytes] = {}  # idempotency key -> the 2xx answer given
        self._fault = Fault()
        self._left = 0  # pushes the fault still applies to (with count)
        self._server: HttpServer | None = None
        self._downtimes: set[asyncio.Task[None]] = set()  # down, and back after a while
        self.host = "127.0.0.1"
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{PATH}"

    @property
    def identifiers(self) -> list[str]:
        return [str(n["identifier"]) for n in self.notices]

    @property
    def down(self) -> bool:
        return self._server is None and self.port != 0

    def set_fault(self, fault: Fault) -> None:
        """Misbehave as ``fault`` says from the next push on (``down`` closes the port at once,
        and opens it again after ``down_seconds`` unless that is 0)."""
        self._fault, self._left = fault, fault.count
        if fault.fault == "down":
            self._replace_downtime(self._down_for(fault.down_seconds))

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        server = HttpServer()
        server.route("POST", PATH, self._push)
        server.route("GET", "/notices", self._notices)
        server.route("GET", "/stats", self._stats)
        server.route("POST", "/sim/fault", self._set_fault)
        await server.start(host, port)
        self._server, self.host, self.port = server, host, server.port

    async def go_down(self) -> None:
        """Close the port: connections are refused until :meth:`come_up`."""
        server, self._server = self._server, None
        if server is not None:
            await server.close(grace=0.0)

    async def come_up(self) -> None:
        """Open the port again, the same one; the notices kept are kept."""
        if self._fault.fault == "down":
            self._fault = Fault()
        if self._server is None:
            await self.start(self.host, self.port)

    async def _down_for(self, seconds: float) -> None:
        await self.go_down()
        if seconds > 0:
            await asyncio.sleep(seconds)
            await self.come_up()

    def _replace_downtime(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` as the one downtime under way (one before it is cancelled); each is
        awaited by :meth:`stop`."""
        for task in self._downtimes:
            task.cancel()
        task = asyncio.get_running_loop().create_task(work)
        self._downtimes.add(task)
        task.add_done_callback(self._downtimes.discard)

    async def stop(self) -> None:
        for task in list(self._downtimes):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        server, self._server = self._server, None
        if server is not None:
            await server.close(grace=0.5)

    async def __aenter__(self) -> WifiControllerSim:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- the routes -------------------------------------------------------------------------

    def _injected(self) -> str:
        """The fault this push meets ("none": none)."""
        kind = self._fault.fault
        if kind in ("none", "down"):
            return "none"
        if self._fault.count:
            if self._left <= 0:
                return "none"
            self._left -= 1
        self.stats.faults += 1
        return kind

    async def _push(self, request: Request) -> Response:
        self.stats.requests += 1
        fault = self._injected()
        if fault in STATUS_FAULTS:
            headers = ({"Retry-After": self._fault.retry_after}
                       if fault == "429" and self._fault.retry_after else None)
            return Response(_encode({"error": f"injected {fault}"}), STATUS_FAULTS[fault],
                            _JSON, headers)
        if fault == "slow":
            await asyncio.sleep(self._fault.delay)
        raw = request.body
        why = verify(self.secret, raw, request.headers.get(TIMESTAMP_HEADER.lower(), ""),
                     request.headers.get(SIGNATURE_HEADER.lower(), ""), now=self.clock(),
                     max_age=self.max_age_seconds)
        if why is not None:
            if why == "bad signature":
                self.stats.bad_signatures += 1
            else:
                self.stats.stale += 1
            return Response(_encode({"error": why}), 401, _JSON)
        key = request.headers.get("idempotency-key", "")
        if key and key in self.answers:
            self.stats.replays += 1
            return Response(self.answers[key], 200, _JSON)
        try:
            found = _notice.decode(raw)
            body = msgspec.json.decode(raw)
        except msgspec.MsgspecError:
            self.stats.malformed += 1
            return Response(_encode({"error": "not a Loa notice"}), 400, _JSON)
        answer = _encode({"accepted": True, "identifier": found.identifier})
        if key:
            self.answers[key] = answer
        self.notices.append(body)
        self.headers.append(dict(request.headers))
        self.stats.notices += 1
        if fault == "accept-timeout":
            await asyncio.sleep(self._fault.delay)
        return Response(answer, 200, _JSON)

    def _notices(self, request: Request) -> Response:
        return Response(_encode(self.notices), 200, _JSON)

    def _stats(self, request: Request) -> Response:
        return Response(_encode(self.stats), 200, _JSON)

    def _set_fault(self, request: Request) -> Response:
        try:
            fault = msgspec.json.decode(request.body, type=Fault)
        except (msgspec.MsgspecError, ValueError) as exc:
            return Response(_encode({"error": str(exc)}), 400, _JSON)
        self.set_fault(fault)
        return Response(_encode(fault), 200, _JSON)
