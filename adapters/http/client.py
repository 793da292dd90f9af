"""A keep-alive HTTP/1.1 client over asyncio protocols, for many small requests.

:class:`HttpClient` keeps at most ``concurrency`` connections (all origins together), one
request in flight on each (no pipelining); TLS (``ssl.create_default_context()``, or the
context given) for ``https`` URLs. A request that gets no HTTP answer raises
:class:`TransportFailure` with a ``kind`` that says whether it may have reached the server:

* ``connect``: it did not. No connection could be had (refused, unreachable, TLS handshake
  failed, none free before the deadline); nothing of the request was written.
* ``timeout``: no complete answer before the deadline (``timeout`` seconds from the call,
  connecting included). It may have been processed; the connection is closed so that a late
  answer is never read as another request's.
* ``broken``: the connection failed after the request was written to it (closed, reset, or an
  answer that is not HTTP). It may have been processed.

An idle connection the server closed is noticed when it is taken from the pool, before anything
is written to it, and replaced by another: that is the only retry. A request written to a
reused connection that turns out to be closed is ``broken``, never sent again: the server may
have read it before closing (POSTs are not idempotent). A connection idle for more than
``keepalive`` seconds is not reused (servers often close theirs soon after). Timeouts are
checked by one timer per client, every ``timeout / 10`` seconds (at least 5 ms, at most 250 ms),
not one per request.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Mapping
from urllib.parse import urlencode, urlsplit

from adapters.http.codec import Response, request_head
from adapters.http.connection import Connection, FailureKind, Origin, TransportFailure, why


class Url:
    """An ``http`` or ``https`` URL parsed once; it keeps the heads of the requests made to it."""

    __slots__ = ("_heads", "host", "host_header", "origin", "port", "scheme", "target", "text")

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.text = url
        self.scheme = parts.scheme
        self.host = parts.hostname
        default = 443 if parts.scheme == "https" else 80
        self.port = parts.port or default
        self.origin: Origin = (self.scheme, self.host, self.port)
        name = f"[{self.host}]" if ":" in self.host else self.host
        self.host_header = name if self.port == default else f"{name}:{self.port}"
        self.target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._heads: dict[tuple[str, tuple[tuple[str, str], ...]], bytes] = {}

    def head(self, method: str, headers: Mapping[str, str]) -> bytes:
        """The request's bytes up to ``Content-Length: ``."""
        key = (method, tuple(headers.items()))
        head = self._heads.get(key)
        if head is None:
            if len(self._heads) >= 64:
                self._heads.clear()
            head = self._heads[key] = request_head(method, self.target, self.host_header,
                                                   headers)
        return head

    def __str__(self) -> str:
        return self.text


class HttpClient:
    """A pool of keep-alive connections (see the module's documentation). ``peer`` names the
    server in the reasons of failures ("cannot connect to <peer>: ...")."""

    def __init__(self, concurrency: int = 64, timeout: float = 10.0, *,
                 connect_timeout: float | None = None, keepalive: float = 15.0,
                 ssl_context: ssl.SSLContext | None = None, peer: str = "") -> None:
        if concurrency < 1 or timeout <= 0:
            raise ValueError("concurrency must be at least 1 and timeout positive")
        self.concurrency = concurrency
        self.timeout = timeout
        self.connect_timeout = connect_timeout or timeout
        self.keepalive = keepalive
        self.peer = peer
        self._ssl = ssl_context
        self._idle: dict[Origin, list[Connection]] = {}
        self._conns: set[Connection] = set()  # open, or opening and counted
        self._opened = 0  # places taken: connections open or being opened
        self._waiters: deque[tuple[Origin, asyncio.Future[Connection | None]]] = deque()
        self._tick = min(max(timeout / 10, 0.005), 0.25)
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False

    def url(self, url: str) -> Url:
        return Url(url)

    async def post(self, url: Url, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
        sent = self._begin("POST", url, body, headers)
        conn, waiter = sent if sent is not None else await self._begin_new("POST", url, body,
                                                                           headers)
        try:
            response = await waiter
        except asyncio.CancelledError:
            conn.fail("broken", "cancelled")  # the answer may still come: not reusable
            raise
        return response.status, response.body

    async def post_form(self, url: Url, form: Mapping[str, str],
                        headers: Mapping[str, str]) -> tuple[int, bytes]:
        fields = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
        response = await self.request("POST", url, urlencode(form).encode(), fields)
        return response.status, response.body

    async def request(self, method: str, url: Url, body: bytes, headers: Mapping[str, str],
                      timeout: float | None = None) -> Response:
        """Send a request with a ``Content-Length`` body (maybe empty); its response.
        ``timeout`` replaces the client's for this request. Not for HEAD: its answers say a
        length they do not carry."""
        if method == "HEAD":
            raise ValueError("HEAD requests are not supported")
        limit = timeout or self.timeout
        sent = self._begin(method, url, body, headers, limit=limit)
        conn, waiter = sent if sent is not None else await self._begin_new(
            method, url, body, headers, limit)
        try:
            return await waiter
        except asyncio.CancelledError:
            conn.fail("broken", "cancelled")
            raise

    def _begin(self, method: str, url: Url, body: bytes, headers: Mapping[str, str],
               conn: Connection | None = None, deadline: float = 0.0, limit: float = 0.0,
               ) -> tuple[Connection, asyncio.Future[Response]] | None:
        """Send on ``conn``, or on an idle connection to the URL's origin: the connection and
        the future of its answer; None if no connection is idle."""
        data = b"%s%d\r\n\r\n%s" % (url.head(method, headers), len(body), body)
        loop = asyncio.get_running_loop()
        now = loop.time()
        if conn is None:
            idle = self._idle.get(url.origin)
            while idle:
                conn = idle.pop()
                if not conn.closed and now - conn.idle_since < self.keepalive:
                    break
                conn.close()
                conn = None
            if conn is None:
                return None
            deadline = now + (limit or self.timeout)
        waiter: asyncio.Future[Response] = loop.create_future()
        conn.send(data, waiter, deadline, limit or self.timeout)
        if self._sweeper is None:
            self._sweeper = loop.call_later(self._tick, self._sweep)
        return conn, waiter

    async def _begin_new(self, method: str, url: Url, body: bytes, headers: Mapping[str, str],
                         limit: float = 0.0) -> tuple[Connection, asyncio.Future[Response]]:
        """Wait for a connection (a new one, or one freed), then send on it."""
        limit = limit or self.timeout
        deadline = asyncio.get_running_loop().time() + limit
        url.head(method, headers)  # a header that cannot be sent fails before a connection
        conn = await self._acquire(url, deadline, limit)
        sent = self._begin(method, url, body, headers, conn, deadline, limit)
        assert sent is not None
        return sent

    async def aclose(self) -> None:
        """Close every connection; requests in flight fail as ``broken``."""
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        while self._waiters:
            _, fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
        for conn in list(self._conns):
            conn.fail("broken", "connection failed: the client was closed")
        self._idle.clear()
        await asyncio.sleep(0)  # the transports' connection_lost

    # -- the pool --------------------------------------------------------------------------

    def _release(self, conn: Connection) -> None:
        """A connection whose answer is complete: to a waiter, else idle."""
        while self._waiters:
            origin, fut = self._waiters.popleft()
            if fut.done():
                continue
            if origin == conn.origin:
                fut.set_result(conn)
                return
            self._waiters.appendleft((origin, fut))
            conn.close()  # its place goes to that request, for another origin (_forget wakes it)
            return
        conn.idle_since = asyncio.get_running_loop().time()
        self._idle.setdefault(conn.origin, []).append(conn)

    def _forget(self, conn: Connection) -> None:
        """A connection closed: its place is free."""
        idle = self._idle.get(conn.origin)
        if idle and conn in idle:
            idle.remove(conn)
        if conn.counted:
            conn.counted = False
            self._conns.discard(conn)
            self._opened -= 1
            self._wake()

    def _wake(self) -> None:
        while self._waiters:
            _, fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return

    async def _acquire(self, url: Url, deadline: float, limit: float) -> Connection:
        loop = asyncio.get_running_loop()
        while True:
            if self._closed:
                raise TransportFailure("connect", "the client is closed")
            idle = self._idle.get(url.origin)
            while idle:
                conn = idle.pop()
                if not conn.closed:
                    return conn
            if self._opened < self.concurrency:
                return await self._connect(url, deadline)
            victim = next((c for conns in self._idle.values() for c in conns), None)
            if victim is not None:  # an idle connection elsewhere makes room
                victim.close()
                continue
            fut: asyncio.Future[Connection | None] = loop.create_future()
            self._waiters.append((url.origin, fut))
            try:
                async with asyncio.timeout_at(deadline):
                    conn_or_none = await fut
            except BaseException as exc:
                if fut.done() and not fut.cancelled() and (given := fut.result()) is not None:
                    self._release(given)  # handed over as this request gave up: pass it on
                if isinstance(exc, TimeoutError):
                    raise TransportFailure(
                        "connect", f"no free connection to {self._name(url)} in "
                                   f"{limit:g} s") from None
                raise
            if conn_or_none is not None:
                return conn_or_none

    def _name(self, url: Url) -> str:
        return self.peer or f"{url.host}:{url.port}"

    async def _connect(self, url: Url, deadline: float) -> Connection:
        loop = asyncio.get_running_loop()
        context = None
        if url.scheme == "https":
            context = self._ssl = self._ssl or ssl.create_default_context()
        self._opened += 1
        wait = min(deadline - loop.time(), self.connect_timeout)
        try:
            async with asyncio.timeout(wait):
                _, conn = await loop.create_connection(
                    lambda: Connection(self, url.origin), url.host, url.port, ssl=context,
                    server_hostname=url.host if context else None)
        except TimeoutError:
            self._opened -= 1
            self._wake()
            raise TransportFailure("connect", f"cannot connect to {self._name(url)}: no "
                                              f"connection in {wait:g} s") from None
        except (OSError, ssl.SSLError) as exc:  # SSLError is an OSError; named for clarity
            self._opened -= 1
            self._wake()
            raise TransportFailure("connect", f"cannot connect to {self._name(url)}: "
                                              f"{why(exc)}") from None
        except BaseException:
            self._opened -= 1
            self._wake()
            raise
        conn.counted = True
        self._conns.add(conn)
        if conn.closed or self._closed:  # lost before it was handed over
            self._forget(conn)
            conn.close()
            raise TransportFailure("connect", f"cannot connect to {self._name(url)}: the "
                                              f"connection closed at once")
        return conn

    def _sweep(self) -> None:
        """Fail the requests past their deadline; run again while any is in flight."""
        self._sweeper = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        busy = False
        for conn in list(self._conns):
            if conn.waiter is not None:
                if conn.deadline <= now:
                    conn.fail("timeout", f"no answer in {conn.limit:g} s")
                else:
                    busy = True
        if busy:
            self._sweeper = loop.call_later(self._tick, self._sweep)

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


__all__ = ["FailureKind", "HttpClient", "TransportFailure", "Url"]
