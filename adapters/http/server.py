"""A small HTTP/1.1 server over asyncio protocols, for Loa's simulators only.

It serves the Zalo simulator (``loa sim zalo`` and the benchmarks through it); the product's API
is Litestar. It follows RFC 9112 in what it reads (the rules are in :mod:`adapters.http.codec`):
``Content-Length`` or ``chunked`` framing, no other transfer coding (501), ``Transfer-Encoding``
refused on HTTP/1.0 and ``chunked`` required last (400), a request with both
``Transfer-Encoding`` and ``Content-Length`` answered and its connection closed; control bytes in
header values, folded header lines, a space before the colon, a malformed or conflicting
``Content-Length``, more than one ``Host``: 400. Limits: a head of 64 KiB and trailers of 8 KiB
(431), a body of 16 MiB (400); every refusal closes the connection. Not supported: HTTP/2,
upgrades, chunked answers (every answer has a ``Content-Length``), HEAD as such (a method like any
other), trailers for the handler (they are checked and dropped).

Routes map ``(method, path)`` to a handler that takes the :class:`~adapters.http.codec.Request`
and answers a :class:`Response`, or an awaitable of one (an ``async def`` handler, or a plain
function that answers at once when it can and returns a coroutine when it must wait: answering
at once costs no task). Requests on one connection are answered in order, one at a time; those
that arrive meanwhile (pipelined) wait their turn. Keep-alive unless the client asks
``Connection: close`` or speaks HTTP/1.0 without ``keep-alive``; ``100 Continue`` when a client
expects it; 400 (and the connection closed) for bytes that are not HTTP, 404 for an unknown
path, 405 (with ``Allow``) for a known path and another method, 500 when a handler raises.
Idle connections are closed after ``idle_timeout`` seconds (up to twice that: one timer sweeps
them). :meth:`HttpServer.close` stops
listening, closes idle connections, lets answers under way finish for ``grace`` seconds, then
cancels what is left.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from ssl import SSLContext
from typing import Any, cast

from adapters.http.codec import HttpError, Request, RequestParser, encode_response

log = logging.getLogger(__name__)

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
MAX_PENDING = 64  # pipelined requests waiting on one connection before it stops reading


class Response:
    """A handler's answer: status, body and content type (and headers, rarely needed)."""

    __slots__ = ("body", "content_type", "headers", "status")

    def __init__(self, body: bytes = b"", status: int = 200,
                 content_type: str = "application/json",
                 headers: Mapping[str, str] | None = None) -> None:
        self.body = body
        self.status = status
        self.content_type = content_type
        self.headers = headers

    @classmethod
    def text(cls, text: str, status: int = 200) -> Response:
        return cls(text.encode(), status, "text/plain; charset=utf-8")


Handler = Callable[[Request], "Response | Awaitable[Response]"]


class _Connection(asyncio.Protocol):
    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.parser = RequestParser()
        self.pending: deque[Request] = deque()
        self.task: asyncio.Task[None] | None = None  # an awaitable answer under way
        self.continued = False  # 100 Continue sent for the request being read
        self.closing = False
        self.paused = False
        self.active = True  # bytes came or an answer went since the last sweep

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.server._connections.add(self)
        self.server.accepted += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.server._connections.discard(self)  # an answer under way still runs to its end

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        self.active = True
        try:
            requests = self.parser.feed(data)
        except HttpError as exc:
            self.pending.clear()
            self._write(encode_response(exc.status, f"bad request: {exc}".encode(),
                                        "text/plain; charset=utf-8", keep_alive=False))
            self.close()
            return
        if requests:
            self.continued = False
            self.pending.extend(requests)
            if self.task is None:
                self.answer()
            elif len(self.pending) > MAX_PENDING and self.transport is not None:
                self.paused = True  # until the queue is answered
                self.transport.pause_reading()
        if self.parser.continue_expected and not self.continued and self.task is None:
            self.continued = True
            self._write(CONTINUE)

    def answer(self) -> None:
        """Answer the waiting requests in order until one must be awaited."""
        server = self.server
        out: list[bytes] = []
        pending = self.pending
        while pending and not self.closing:
            request = pending.popleft()
            result = server._dispatch(request)
            if not isinstance(result, Response):
                self.task = server._own(self._later(request, result))
                break
            keep = request.keep_alive and not server.closing
            out.append(encode_response(result.status, result.body, result.content_type,
                                       keep_alive=keep, headers=result.headers))
            if not keep:
                self.closing = True
        if out:
            self._write(out[0] if len(out) == 1 else b"".join(out))
        if self.paused and not pending and self.transport is not None and not self.closing:
            self.paused = False
            self.transport.resume_reading()
        if self.closing and self.task is None:
            self.close()

    async def _later(self, request: Request, result: Awaitable[Response]) -> None:
        server = self.server
        try:
            response = await result
        except HttpError as exc:
            response = Response.text(f"bad request: {exc}", 400)
        except Exception:  # a handler's bug: answer 500, keep serving
            log.exception("HTTP handler for %s %s failed", request.method, request.path)
            response = Response.text("internal server error", 500)
        self.task = None
        keep = request.keep_alive and not server.closing
        self._write(encode_response(response.status, response.body, response.content_type,
                                    keep_alive=keep, headers=response.headers))
        self.active = True
        if not keep:
            self.closing = True
        self.answer()

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    @property
    def idle(self) -> bool:
        return self.task is None and not self.pending and self.parser.idle

    def close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.close()


class HttpServer:
    """``route()`` the handlers, ``await start(host, port)``, then ``port``; ``await close()``."""

    def __init__(self, *, idle_timeout: float = 75.0) -> None:
        if idle_timeout <= 0:
            raise ValueError("idle_timeout must be positive")
        self.routes: dict[tuple[str, str], Handler] = {}
        self.idle_timeout = idle_timeout
        self.host = ""
        self.port = 0
        self.closing = False
        self.scheme = "http"
        self.accepted = 0  # connections accepted since start
        self._methods: dict[str, list[str]] = {}
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def route(self, method: str, path: str, handler: Handler) -> None:
        self.routes[(method.upper(), path)] = handler
        self._methods.setdefault(path, []).append(method.upper())

    async def start(self, host: str = "127.0.0.1", port: int = 0, *, backlog: int = 1024,
                    ssl: SSLContext | None = None) -> None:
        self._loop = loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), host, port,
                                                backlog=backlog, reuse_address=True, ssl=ssl)
        self.scheme = "https" if ssl is not None else "http"
        self.host = host
        self.port = int(self._server.sockets[0].getsockname()[1])
        self._sweeper = loop.call_later(self.idle_timeout, self._sweep)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    async def close(self, grace: float = 5.0) -> None:
        """Stop listening; answer what is under way (up to ``grace`` seconds); close."""
        self.closing = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        if self._server is not None:
            self._server.close()
        for conn in list(self._connections):
            if conn.idle:
                conn.close()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=grace)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for conn in list(self._connections):
            conn.close()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    # -- for the connections ---------------------------------------------------------------

    def _dispatch(self, request: Request) -> Response | Awaitable[Response]:
        handler = self.routes.get((request.method, request.path))
        if handler is None:
            methods = self._methods.get(request.path)
            if methods is None:
                return Response.text("not found", 404)
            return Response(b"method not allowed\n", 405, "text/plain; charset=utf-8",
                            {"Allow": ", ".join(methods)})
        try:
            return handler(request)
        except HttpError as exc:
            return Response.text(f"bad request: {exc}", 400)
        except Exception:  # a handler's bug: answer 500, keep serving
            log.exception("HTTP handler for %s %s failed", request.method, request.path)
            return Response.text("internal server error", 500)

    def _own(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        assert self._loop is not None
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _sweep(self) -> None:
        for conn in list(self._connections):
            if conn.idle and not conn.active:
                conn.close()
            conn.active = False
        assert self._loop is not None
        self._sweeper = self._loop.call_later(self.idle_timeout, self._sweep)
