"""A keep-alive HTTP/1.1 client over asyncio protocols, for many small requests.

:class:`HttpClient` keeps at most ``concurrency`` connections (all origins together), one
request in flight on each (no pipelining); TLS (``ssl.create_default_context()``, or the
context given) for ``https`` URLs; through an HTTP proxy when the environment or the caller
names one (:mod:`adapters.http.proxy`: ``CONNECT`` tunnels for ``https``, absolute-form
requests for ``http``). A request that gets no HTTP answer raises
:class:`TransportFailure` with a ``kind`` that says whether it may have reached the server:

* ``connect``: it did not. No connection could be had (refused, unreachable, TLS handshake
  failed, none free before the deadline, a proxy refused it: :class:`ProxyRefused`); nothing
  of the request reached the server.
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
from urllib.parse import urlencode

from adapters.http.codec import Response
from adapters.http.connection import Connection, FailureKind, Origin, TransportFailure, why
from adapters.http.proxy import Proxies, ProxyRefused, open_tunnel
from adapters.http.url import Url


class HttpClient:
    """A pool of keep-alive connections (see the module's documentation). ``peer`` names the
    server in the reasons of failures ("cannot connect to <peer>: ..."). ``proxies``: which
    proxy carries the requests to each origin (:mod:`adapters.http.proxy`); by default the
    environment's (``HTTPS_PROXY``, ``HTTP_PROXY``, ``NO_PROXY``), read once. A proxy applies
    to the URLs made by :meth:`url`."""

    def __init__(self, concurrency: int = 64, timeout: float = 10.0, *,
                 connect_timeout: float | None = None, keepalive: float = 15.0,
                 ssl_context: ssl.SSLContext | None = None, peer: str = "",
                 proxies: Proxies | None = None) -> None:
        if concurrency < 1 or timeout <= 0:
            raise ValueError("concurrency must be at least 1 and timeout positive")
        self.concurrency = concurrency
        self.timeout = timeout
        self.connect_timeout = connect_timeout or timeout
        self.keepalive = keepalive
        self.peer = peer
        self._ssl = ssl_context
        self.proxies = Proxies.from_env() if proxies is None else proxies
        self._idle: dict[Origin, list[Connection]] = {}
        self._conns: set[Connection] = set()  # open, or opening and counted
        self._opened = 0  # places taken: connections open or being opened
        self._waiters: deque[tuple[Origin, asyncio.Future[Connection | None]]] = deque()
        self._tick = min(max(timeout / 10, 0.005), 0.25)
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False

    def url(self, url: str) -> Url:
        parsed = Url(url)
        via = self.proxies.for_origin(parsed.scheme, parsed.host, parsed.port)
        return parsed if via is None else Url(url, via)

    async def post(self, url: Url, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
        sent = self._begin("POST", url, body, headers)
        conn, waiter = sent if sent is not None else await self._begin_new("POST", url, body,
                                                                           headers)
        try:
            response = await waiter
        except asyncio.CancelledError:
            conn.fail("broken", "cancelled")  # the answer may still come: not reusable
            raise
        if response.status == 407 and url.via is not None and url.scheme == "http":
            raise ProxyRefused(url.via, "", 407, response.reason)
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
            response = await waiter
        except asyncio.CancelledError:
            conn.fail("broken", "cancelled")
            raise
        if response.status == 407 and url.via is not None and url.scheme == "http":
            raise ProxyRefused(url.via, "", 407, response.reason)
        return response

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
        name = self._name(url) if url.via is None else (
            f"{self._name(url)} through proxy {url.via.name}")
        try:
            async with asyncio.timeout(wait):
                conn = await self._open(url, context)
        except TimeoutError:
            self._opened -= 1
            self._wake()
            raise TransportFailure("connect", f"cannot connect to {name}: no "
                                              f"connection in {wait:g} s") from None
        except TransportFailure:  # the proxy refused
            self._opened -= 1
            self._wake()
            raise
        except (OSError, ssl.SSLError) as exc:  # SSLError is an OSError; named for clarity
            self._opened -= 1
            self._wake()
            raise TransportFailure("connect", f"cannot connect to {name}: "
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

    async def _open(self, url: Url, context: ssl.SSLContext | None) -> Connection:
        """A new connection to the URL's origin: straight, to its proxy, or in a tunnel."""
        loop = asyncio.get_running_loop()
        via = url.via
        if via is None:
            _, conn = await loop.create_connection(
                lambda: Connection(self, url.origin), url.host, url.port, ssl=context,
                server_hostname=url.host if context else None)
            return conn
        if context is None:  # http: absolute-form requests on a connection to the proxy
            _, conn = await loop.create_connection(
                lambda: Connection(self, url.origin), via.host, via.port)
            return conn
        conn = Connection(self, url.origin)
        await open_tunnel(via, url.host, url.port, conn, context)
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


__all__ = ["FailureKind", "HttpClient", "ProxyRefused", "TransportFailure", "Url"]
