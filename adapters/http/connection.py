"""One keep-alive HTTP/1.1 connection of :class:`~adapters.http.client.HttpClient`, and the
failures of a request (:class:`TransportFailure`, whose ``kind`` the client's documentation
explains).

A connection carries at most one request at a time. Its answer completes the request's future;
a connection that fails fails it with ``broken`` (or ``timeout``, from the client's sweep) and is
never used again; bytes that come while no request is in flight end the connection.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Literal, cast

from adapters.http.codec import HttpError, Response, ResponseParser
from dispatcher.domain.errors import LoaError

if TYPE_CHECKING:
    from adapters.http.client import HttpClient

FailureKind = Literal["connect", "timeout", "broken"]
Origin = tuple[str, str, int]  # scheme, host, port


class TransportFailure(LoaError):
    """A request that got no HTTP answer (retryable: another try may get one)."""

    retryable = True

    def __init__(self, kind: FailureKind, reason: str) -> None:
        super().__init__(reason)
        self.kind: FailureKind = kind
        self.reason = reason


def why(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Connection(asyncio.Protocol):
    """One keep-alive connection: at most one request in flight."""

    def __init__(self, client: HttpClient, origin: Origin) -> None:
        self.client = client
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.parser = ResponseParser()
        self.waiter: asyncio.Future[Response] | None = None
        self.deadline = 0.0  # of the request in flight
        self.limit = 0.0  # its timeout
        self.idle_since = 0.0
        self.closed = False
        self.counted = False  # it holds one of the client's ``concurrency`` places

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def send(self, data: bytes, waiter: asyncio.Future[Response], deadline: float,
             limit: float) -> None:
        assert self.transport is not None
        self.waiter = waiter
        self.deadline = deadline
        self.limit = limit
        self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        waiter = self.waiter
        if waiter is None:  # bytes nobody asked for (a server's 408 before it closes, say)
            self.close()
            return
        try:
            responses = self.parser.feed(data)
        except HttpError as exc:
            self.fail("broken", f"connection failed: not an HTTP answer: {exc}")
            return
        if not responses:
            return
        self.waiter = None
        response = responses[0]
        if len(responses) > 1 or not response.keep_alive or not self.parser.idle:
            self.close()  # an answer too many, or the server ends it: never reused
        else:
            self.client._release(self)
        if not waiter.done():
            waiter.set_result(response)

    def eof_received(self) -> bool:
        waiter = self.waiter
        if waiter is not None:
            try:
                response = self.parser.feed_eof()
            except HttpError:
                response = None
            if response is not None:  # a body that ends with the connection
                self.waiter = None
                if not waiter.done():
                    waiter.set_result(response)
        self.close()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        reason = why(exc) if exc is not None else "the server closed the connection"
        self.fail("broken", f"connection failed: {reason}")

    def fail(self, kind: FailureKind, reason: str) -> None:
        """Close, and fail the request in flight (if any) with ``kind``."""
        waiter = self.waiter
        self.waiter = None
        self.close(abort=True)
        if waiter is not None and not waiter.done():
            waiter.set_exception(TransportFailure(kind, reason))

    def close(self, *, abort: bool = False) -> None:
        if not self.closed:
            self.closed = True
            self.client._forget(self)
        transport = self.transport
        if transport is not None and not transport.is_closing():
            if abort:
                transport.abort()
            else:
                transport.close()
