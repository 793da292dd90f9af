"""Loa's HTTP/1.1 server against raw request bytes over a loopback socket (RFC 9112): how a
message is framed, what is refused with which status, and when the connection is closed.

Every exchange writes the request under test followed by a probe request (``GET /probe`` with
``Connection: close``) and reads until the server closes: the probe is answered only if the
server kept the connection open after the request under test.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from adapters.http.codec import MAX_HEAD, MAX_TRAILERS, Request
from adapters.http.server import HttpServer, Response

PROBE = b"GET /probe HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"


def echo(request: Request) -> Response:
    return Response(b"echo " + request.body, 200, "text/plain")


@pytest.fixture
async def server() -> AsyncIterator[HttpServer]:
    srv = HttpServer()
    srv.route("POST", "/echo", echo)
    srv.route("GET", "/probe", lambda request: Response(b"probe", 200, "text/plain"))
    await srv.start()
    try:
        yield srv
    finally:
        await srv.close()


async def exchange(server: HttpServer, request: bytes) -> tuple[bytes, bytes, bool]:
    """The first response's status line and body, and whether the connection was closed after
    it (the probe was not answered)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(request + PROBE)
    out = bytearray()
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), 5.0):
            out += chunk
    except ConnectionResetError:  # closed with the probe unread: the answer came before
        pass
    finally:
        writer.close()
    status, _, rest = bytes(out).partition(b"\r\n")
    head, _, rest = rest.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    return status, rest[:length], b"probe" not in rest[length:]


def post(headers: bytes, body: bytes, version: bytes = b"HTTP/1.1") -> bytes:
    return b"POST /echo " + version + b"\r\nHost: h\r\n" + headers + b"\r\n" + body


async def test_a_valid_request_keeps_the_connection(server: HttpServer) -> None:
    status, body, closed = await exchange(server, post(b"Content-Length: 2\r\n", b"hi"))
    assert (status, body, closed) == (b"HTTP/1.1 200 OK", b"echo hi", False)
    chunked = post(b"Transfer-Encoding: chunked\r\n", b"2\r\nhi\r\n0\r\nX-T: 1\r\n\r\n")
    assert await exchange(server, chunked) == (b"HTTP/1.1 200 OK", b"echo hi", False)


async def test_transfer_encoding_and_content_length_is_answered_then_closed(
        server: HttpServer) -> None:
    """RFC 9112 §6.1: the chunked framing wins, and the connection ends after the answer, so
    what a front end framed by the length cannot be read as a request of its own."""
    smuggled = post(b"Content-Length: 40\r\nTransfer-Encoding: chunked\r\n",
                    b"2\r\nhi\r\n0\r\n\r\n")
    status, body, closed = await exchange(server, smuggled)
    assert (status, body, closed) == (b"HTTP/1.1 200 OK", b"echo hi", True)


async def test_a_coding_other_than_chunked_is_not_implemented(server: HttpServer) -> None:
    status, _, closed = await exchange(
        server, post(b"Transfer-Encoding: gzip, chunked\r\n", b"0\r\n\r\n"))
    assert (status, closed) == (b"HTTP/1.1 501 Not Implemented", True)


async def test_two_transfer_encoding_lines_are_one_list(server: HttpServer) -> None:
    """Two lines are read as their values joined by a comma: gzip then chunked is a coding
    this server does not implement; chunked twice is a framing error."""
    status, _, closed = await exchange(
        server, post(b"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n"))
    assert (status, closed) == (b"HTTP/1.1 501 Not Implemented", True)
    status, _, closed = await exchange(
        server, post(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                     b"0\r\n\r\n"))
    assert (status, closed) == (b"HTTP/1.1 400 Bad Request", True)


async def test_chunked_not_last_is_a_bad_request(server: HttpServer) -> None:
    status, _, closed = await exchange(
        server, post(b"Transfer-Encoding: chunked, gzip\r\n", b"0\r\n\r\n"))
    assert (status, closed) == (b"HTTP/1.1 400 Bad Request", True)


async def test_transfer_encoding_on_http_1_0_is_a_bad_request(server: HttpServer) -> None:
    status, _, closed = await exchange(
        server, post(b"Connection: keep-alive\r\nTransfer-Encoding: chunked\r\n",
                     b"2\r\nhi\r\n0\r\n\r\n", b"HTTP/1.0"))
    assert (status, closed) == (b"HTTP/1.1 400 Bad Request", True)


@pytest.mark.parametrize("value", [b"a\x01b", b"a\x1fb", b"a\x7fb", b"\x0b", b"a\x00b"])
async def test_control_bytes_in_a_header_value_are_a_bad_request(
        server: HttpServer, value: bytes) -> None:
    status, _, closed = await exchange(
        server, post(b"X-A: " + value + b"\r\nContent-Length: 2\r\n", b"hi"))
    assert (status, closed) == (b"HTTP/1.1 400 Bad Request", True)


async def test_tab_and_bytes_above_ascii_in_a_header_value_are_accepted(
        server: HttpServer) -> None:
    status, _, closed = await exchange(
        server, post(b"X-A: a\tb \xe1\r\nContent-Length: 2\r\n", b"hi"))
    assert (status, closed) == (b"HTTP/1.1 200 OK", False)


async def test_trailers_are_bounded(server: HttpServer) -> None:
    line = b"X-T: " + b"t" * 1000 + b"\r\n"
    trailers = line * (MAX_TRAILERS // len(line) + 1)
    status, _, closed = await exchange(
        server, post(b"Transfer-Encoding: chunked\r\n", b"2\r\nhi\r\n0\r\n" + trailers + b"\r\n"))
    assert (status, closed) == (b"HTTP/1.1 431 Request Header Fields Too Large", True)


async def test_a_malformed_trailer_is_a_bad_request(server: HttpServer) -> None:
    status, _, closed = await exchange(
        server, post(b"Transfer-Encoding: chunked\r\n", b"2\r\nhi\r\n0\r\nno colon\r\n\r\n"))
    assert (status, closed) == (b"HTTP/1.1 400 Bad Request", True)


async def test_the_header_section_is_bounded(server: HttpServer) -> None:
    big = b"X-A: " + b"a" * MAX_HEAD + b"\r\n"
    status, _, closed = await exchange(server, post(big + b"Content-Length: 2\r\n", b"hi"))
    assert (status, closed) == (b"HTTP/1.1 431 Request Header Fields Too Large", True)


@pytest.mark.parametrize("headers", [
    b"Content-Length: 2x\r\n",
    b"Content-Length: -2\r\n",
    b"Content-Length: +2\r\n",
    b"Content-Length: 2, 3\r\n",
    b"Content-Length: 2\r\nContent-Length: 3\r\n",
    b"X-A: 1\r\n folded\r\nContent-Length: 2\r\n",  # obs-fold
    b"X-A : 1\r\nContent-Length: 2\r\n",  # space before the colon
    b"Host: other\r\nContent-Length: 2\r\n",  # a second Host
])
async def test_request_smuggling_basics_are_bad_requests(
        server: HttpServer, headers: bytes) -> None:
    status, _, closed = await exchange(server, post(headers, b"hi"))
    assert (status, closed) == (b"HTTP/1.1 400 Bad Request", True)
