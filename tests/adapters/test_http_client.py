"""Loa's HTTP/1.1 client against its server (and against misbehaving raw servers) over loopback:
keep-alive reuse, the concurrency cap, the kinds of failure, idle connections the server
closes, TLS; and the server's own behaviour."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from adapters.http.client import HttpClient, TransportFailure
from adapters.http.codec import Request, encode_response
from adapters.http.server import HttpServer, Response

RawHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def echo(request: Request) -> Response:
    return Response(request.method.encode() + b" " + request.body, 200, "text/plain")


@pytest.fixture
async def server() -> AsyncIterator[HttpServer]:
    srv = HttpServer()
    srv.route("POST", "/echo", echo)
    srv.route("GET", "/echo", echo)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.close()


async def raw_server(handler: RawHandler) -> tuple[asyncio.Server, str]:
    srv = await asyncio.start_server(handler, "127.0.0.1", 0)
    return srv, f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}/x"


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    return head + await reader.readexactly(length)


async def post(client: HttpClient, url: str, body: bytes = b"hi") -> tuple[int, bytes]:
    return await client.post(client.url(url), body, {"Content-Type": "text/plain"})


async def failure(client: HttpClient, url: str) -> TransportFailure:
    with pytest.raises(TransportFailure) as caught:
        await post(client, url)
    return caught.value


# -- the pool ------------------------------------------------------------------------------------


async def test_keep_alive_reuses_one_connection(server: HttpServer) -> None:
    async with HttpClient(8, 2.0) as client:
        for n in range(50):
            assert await post(client, server.url + "/echo", b"%d" % n) == (200, b"POST %d" % n)
    assert server.accepted == 1


async def test_concurrency_caps_connections_and_requests_in_flight() -> None:
    in_flight = peak = 0

    async def slow(request: Request) -> Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1
        return Response(request.body)

    srv = HttpServer()
    srv.route("POST", "/slow", slow)
    await srv.start()
    try:
        async with HttpClient(4, 5.0) as client:
            answers = await asyncio.gather(*(post(client, srv.url + "/slow", b"%d" % n)
                                             for n in range(40)))
    finally:
        await srv.close()
    assert answers == [(200, b"%d" % n) for n in range(40)]
    assert peak == 4 and srv.accepted == 4


async def test_the_cap_counts_the_connections_to_every_origin() -> None:
    async def slow(request: Request) -> Response:
        await asyncio.sleep(0.02)
        return Response(request.body)

    servers = [HttpServer(), HttpServer()]
    for srv in servers:
        srv.route("POST", "/slow", slow)
        await srv.start()
    a, b = (srv.url + "/slow" for srv in servers)
    try:
        async with HttpClient(1, 2.0) as client:
            assert await post(client, a, b"a") == (200, b"a")
            assert await post(client, b, b"b") == (200, b"b")  # a's idle connection made room
            answers = await asyncio.gather(*(post(client, (a, b)[n % 2], b"%d" % n)
                                             for n in range(6)))
    finally:
        for srv in servers:
            await srv.close()
    assert answers == [(200, b"%d" % n) for n in range(6)]
    assert servers[0].accepted + servers[1].accepted >= 4  # one at a time, switching origins


async def test_a_slow_answer_is_a_timeout_and_the_connection_is_not_reused() -> None:
    delay = {"s": 1.0}

    async def slow(request: Request) -> Response:
        await asyncio.sleep(delay["s"])
        return Response(b"late" if delay["s"] else b"fresh")

    srv = HttpServer()
    srv.route("POST", "/slow", slow)
    await srv.start()
    try:
        async with HttpClient(1, 0.1) as client:
            started = time.monotonic()
            timed_out = await failure(client, srv.url + "/slow")
            assert timed_out.kind == "timeout" and timed_out.reason == "no answer in 0.1 s"
            assert time.monotonic() - started < 0.5
            delay["s"] = 0.0
            assert await post(client, srv.url + "/slow") == (200, b"fresh")  # not "late"
    finally:
        await srv.close(grace=0.0)
    assert srv.accepted == 2


async def test_nothing_listening_is_a_connect_failure() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with HttpClient(2, 1.0, peer="Zalo") as client:
        refused = await failure(client, f"http://127.0.0.1:{port}/x")
    assert refused.kind == "connect" and refused.reason.startswith("cannot connect to Zalo: ")


async def test_a_connection_closed_without_an_answer_is_broken() -> None:
    seen: list[bytes] = []

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_request(reader))
        writer.close()

    srv, url = await raw_server(hang_up)
    async with srv, HttpClient(2, 2.0) as client:
        broken = await failure(client, url)
    assert broken.kind == "broken" and len(seen) == 1


async def test_half_an_answer_or_garbage_is_broken() -> None:
    async def half(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort")
        await writer.drain()
        writer.close()

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        await writer.drain()

    for handler in (half, garbage):
        srv, url = await raw_server(handler)
        async with srv, HttpClient(2, 2.0) as client:
            broken = await failure(client, url)
        assert broken.kind == "broken", handler


async def test_idle_connections_closed_by_the_server_are_replaced_unnoticed() -> None:
    srv = HttpServer(idle_timeout=0.05)
    srv.route("POST", "/echo", echo)
    await srv.start()
    try:
        async with HttpClient(4, 2.0) as client:
            await asyncio.gather(*(post(client, srv.url + "/echo") for _ in range(4)))
            await asyncio.sleep(0.2)  # the server closes all four while they are idle
            answers = await asyncio.gather(*(post(client, srv.url + "/echo") for _ in range(4)))
    finally:
        await srv.close()
    assert answers == [(200, b"POST hi")] * 4 and srv.accepted == 8


async def test_a_request_written_to_a_connection_the_server_then_closes_is_not_sent_again(
) -> None:
    """The server answers one request and then closes without answering the next: the client
    cannot know whether the second was processed, so it says ``broken`` and does not resend."""
    seen: list[bytes] = []

    async def one_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_request(reader))
        writer.write(encode_response(200, b"first"))
        await writer.drain()
        seen.append(await read_request(reader))
        writer.close()

    srv, url = await raw_server(one_then_close)
    async with srv, HttpClient(1, 2.0) as client:
        assert await post(client, url) == (200, b"first")
        broken = await failure(client, url)
    assert broken.kind == "broken" and len(seen) == 2


async def test_connection_close_and_extra_answers_end_the_connection() -> None:
    connections = 0

    async def odd(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        n = connections
        await read_request(reader)
        if n == 1:  # an answer, then one nobody asked for, in one write
            writer.write(encode_response(200, b"one") + encode_response(200, b"stale"))
        else:
            writer.write(encode_response(200, b"%d" % n, keep_alive=False))
        await writer.drain()
        await reader.read()  # until the client closes

    srv, url = await raw_server(odd)
    async with srv, HttpClient(1, 2.0) as client:
        assert await post(client, url) == (200, b"one")
        assert await post(client, url) == (200, b"2")  # never the stale answer
        assert await post(client, url) == (200, b"3")  # Connection: close was honoured
    assert connections == 3


async def test_chunked_answers_and_answers_ended_by_close() -> None:
    async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n")
        await writer.drain()
        writer.write(b"1\r\nc\r\n0\r\n\r\n")
        await read_request(reader)
        writer.write(b"HTTP/1.1 201 Created\r\n\r\nuntil close")
        writer.close()

    srv, url = await raw_server(chunked)
    async with srv, HttpClient(1, 2.0) as client:
        assert await post(client, url) == (200, b"abc")
        assert await post(client, url) == (201, b"until close")


async def test_a_cancelled_request_does_not_leave_its_answer_behind(server: HttpServer) -> None:
    async def slow(request: Request) -> Response:
        await asyncio.sleep(0.1)
        return Response(b"slow")

    server.route("POST", "/slow", slow)
    async with HttpClient(1, 2.0) as client:
        task = asyncio.create_task(post(client, server.url + "/slow"))
        await asyncio.sleep(0.03)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await post(client, server.url + "/echo") == (200, b"POST hi")


async def test_a_request_waiting_for_a_connection_gets_one_freed() -> None:
    async def slow(request: Request) -> Response:
        await asyncio.sleep(0.05)
        return Response(request.body)

    srv = HttpServer()
    srv.route("POST", "/slow", slow)
    await srv.start()
    try:
        async with HttpClient(1, 0.5) as client:
            answers = await asyncio.gather(*(post(client, srv.url + "/slow", b"%d" % n)
                                             for n in range(3)))
            assert answers == [(200, b"0"), (200, b"1"), (200, b"2")]
        async with HttpClient(1, 0.03) as client:  # none free in time: never sent at all
            first = asyncio.create_task(client.request("POST", client.url(srv.url + "/slow"),
                                                       b"first", {}, timeout=2.0))
            await asyncio.sleep(0.01)
            waited = await failure(client, srv.url + "/slow")
            assert waited.kind == "connect" and "no free connection" in waited.reason
            assert (await first).body == b"first"
    finally:
        await srv.close()


async def test_forms_and_close_with_requests_in_flight(server: HttpServer) -> None:
    server.route("POST", "/form", lambda r: Response(repr(sorted(r.form().items())).encode()))
    client = HttpClient(2, 2.0)
    url = client.url(server.url + "/form")
    form = {"a": "1 2", "b": "ế"}
    assert await client.post_form(url, form, {}) == (200, repr(sorted(form.items())).encode())

    async def slow(request: Request) -> Response:
        await asyncio.sleep(0.3)
        return Response()

    server.route("POST", "/slow", slow)
    pending = asyncio.create_task(post(client, server.url + "/slow"))
    await asyncio.sleep(0.05)
    await client.aclose()
    with pytest.raises(TransportFailure) as caught:
        await pending
    assert caught.value.kind == "broken"
    after = await failure(client, server.url + "/echo")
    assert after.kind == "connect"


async def test_tls(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    made = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
         "/CN=localhost", "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key),
         "-out", str(cert)], capture_output=True, check=False)
    if made.returncode:
        pytest.skip("openssl cannot make a test certificate here")
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(cert, key)
    srv = HttpServer()
    srv.route("POST", "/echo", echo)
    await srv.start("127.0.0.1", ssl=server_side)
    url = f"https://localhost:{srv.port}/echo"
    try:
        async with HttpClient(2, 2.0) as untrusting:  # the system's CAs: refused
            refused = await failure(untrusting, url)
            assert refused.kind == "connect" and "CERTIFICATE_VERIFY_FAILED" in refused.reason
        trusting = ssl.create_default_context(cafile=str(cert))
        async with HttpClient(2, 2.0, ssl_context=trusting) as client:
            assert await post(client, url) == (200, b"POST hi")
            assert await post(client, url) == (200, b"POST hi")
    finally:
        await srv.close()
    assert srv.accepted == 1  # the refused handshake never became a connection


# -- the server ----------------------------------------------------------------------------------


async def exchange(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(), 2.0)
    finally:
        writer.close()


async def test_server_answers_pipelined_requests_in_order(server: HttpServer) -> None:
    async def slow(request: Request) -> Response:
        await asyncio.sleep(0.05)
        return Response(b"slow " + request.query.get("n", "").encode())

    server.route("GET", "/slow", slow)
    data = (b"GET /slow?n=1 HTTP/1.1\r\nHost: h\r\n\r\n"
            b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\n2"
            b"GET /slow?n=3 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    out = await exchange(server.port, data)
    bodies = [part.split(b"\r\n\r\n", 1)[1] for part in out.split(b"HTTP/1.1 ")[1:]]
    assert bodies == [b"slow 1", b"POST 2", b"slow 3"]
    assert out.count(b"Connection: close") == 1


async def test_server_errors(server: HttpServer) -> None:
    def broken(request: Request) -> Response:
        raise RuntimeError("bug")

    server.route("GET", "/bug", broken)
    assert (await exchange(server.port, b"GET /nope HTTP/1.1\r\nHost: h\r\nConnection: close"
                                        b"\r\n\r\n")).startswith(b"HTTP/1.1 404 ")
    not_allowed = await exchange(server.port, b"PUT /echo HTTP/1.1\r\nHost: h\r\n"
                                              b"Connection: close\r\n\r\n")
    assert not_allowed.startswith(b"HTTP/1.1 405 ") and b"Allow: POST, GET\r\n" in not_allowed
    assert (await exchange(server.port, b"GET /bug HTTP/1.1\r\nHost: h\r\nConnection: close"
                                        b"\r\n\r\n")).startswith(b"HTTP/1.1 500 ")
    bad = await exchange(server.port, b"GET /echo HTTP/1.1\r\nno colon\r\n\r\n")
    assert bad.startswith(b"HTTP/1.1 400 ") and b"Connection: close" in bad


async def test_server_sends_100_continue(server: HttpServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"POST /echo HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
                 b"Content-Length: 3\r\n\r\n")
    assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2.0) == (
        b"HTTP/1.1 100 Continue\r\n\r\n")
    writer.write(b"abc")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2.0)
    assert head.startswith(b"HTTP/1.1 200 ") and await reader.readexactly(8) == b"POST abc"
    writer.close()


async def test_server_close_lets_answers_under_way_finish() -> None:
    async def slow(request: Request) -> Response:
        await asyncio.sleep(0.1)
        return Response(b"done")

    srv = HttpServer()
    srv.route("POST", "/slow", slow)
    await srv.start()
    async with HttpClient(2, 2.0) as client:
        pending = asyncio.create_task(post(client, srv.url + "/slow"))
        await asyncio.sleep(0.03)
        await srv.close(grace=1.0)
        assert await pending == (200, b"done")
        refused = await failure(client, srv.url + "/slow")  # no longer listening
        assert refused.kind == "connect"
