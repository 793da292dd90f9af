"""Loa's HTTP client through an HTTP proxy: a small proxy on loopback (CONNECT tunnels and
absolute-form forwarding, Basic authentication, refusals) counts what goes through it; the
client, the Zalo adapter and the app push adapter send through it to their simulators."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from urllib.parse import urlsplit

import msgspec
import pytest

from adapters.base import Envelope
from adapters.http.client import HttpClient, ProxyRefused, TransportFailure
from adapters.http.codec import Request, RequestParser
from adapters.http.proxy import Proxies, Proxy
from adapters.http.server import HttpServer, Response
from adapters.webhook.adapter import WebhookAdapter, WebhookConfig
from adapters.webhook.simulator import WebhookSim
from adapters.zalo.adapter import ZaloAdapter
from adapters.zalo.config import ZaloConfig
from adapters.zalo.simulator import ZaloSim
from adapters.zalo.tokens import MemoryTokenStore
from bench.localredis import free_port
from dispatcher.domain.errors import ConfigError
from dispatcher.domain.model import Channel

TEXT = "Cấp độ dịch 3 tại Hạ Long: hạn chế tụ tập, đeo khẩu trang nơi công cộng."
SECRET = "s3cr3t-shared-with-the-app"


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
               seen: Callable[[bytes], None] | None = None) -> None:
    try:
        while data := await reader.read(65536):
            if seen is not None:
                seen(data)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def both_ways(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    up_reader: asyncio.StreamReader, up_writer: asyncio.StreamWriter,
                    seen: Callable[[bytes], None] | None = None) -> None:
    await asyncio.gather(pipe(reader, up_writer, seen), pipe(up_reader, writer))


@dataclass
class LoopbackProxy:
    """An HTTP proxy on 127.0.0.1: ``CONNECT host:port`` tunnels, and requests in absolute form
    forwarded to their origin. ``credentials`` (``user:password``): every request must carry
    them (Basic), else 407; ``refuse``: answer every request with this status."""

    credentials: str = ""
    refuse: int = 0

    def __post_init__(self) -> None:
        self.tunnels: list[str] = []  # the target of each tunnel opened
        self.targets: list[str] = []  # the target of each request forwarded (absolute form)
        self.refused = 0
        self.authorizations: list[str] = []  # Proxy-Authorization of every request seen
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()  # connections being served

    async def __aenter__(self) -> LoopbackProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.name = f"127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        auth = f"{self.credentials}@" if self.credentials else ""
        self.url = f"http://{auth}{self.name}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        if self._handlers:
            await asyncio.wait(self._handlers, timeout=2)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2):
                await self._server.wait_closed()

    def _allowed(self, authorization: str) -> bool:
        if not self.credentials:
            return True
        return authorization == "Basic " + base64.b64encode(self.credentials.encode()).decode()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        line, *fields = head.decode("latin-1").split("\r\n")
        method, target, _ = line.split(" ")
        headers = {k.strip().lower(): v.strip() for k, _, v in
                   (f.partition(":") for f in fields if f)}
        authorization = headers.get("proxy-authorization", "")
        status = self.refuse or (0 if self._allowed(authorization) else 407)
        if status or method == "CONNECT":  # a forwarded request is counted as it goes
            self.authorizations.append(authorization)
        if status:
            self.refused += 1
            phrase = HTTPStatus(status).phrase
            writer.write(f"HTTP/1.1 {status} {phrase}\r\nContent-Length: 0\r\n"
                         f"Connection: close\r\n\r\n".encode())
            await writer.drain()
            writer.close()
            return
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            up_reader, up_writer = await asyncio.open_connection(host, int(port))
            self.tunnels.append(target)
            self._writers.add(up_writer)
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await both_ways(reader, writer, up_reader, up_writer)
            return
        parts = urlsplit(target)
        assert parts.scheme == "http" and parts.hostname, line
        up_reader, up_writer = await asyncio.open_connection(parts.hostname, parts.port or 80)
        parser = RequestParser()

        def seen(data: bytes) -> None:
            for request in parser.feed(data):
                self.targets.append(f"http://{request.headers['host']}{request.target}")
                self.authorizations.append(request.headers.get("proxy-authorization", ""))

        up_writer.write(head)
        seen(head)  # counted once its body has come too
        self._writers.add(up_writer)
        await both_ways(reader, writer, up_reader, up_writer, seen)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost: (cert, key)."""
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "cert.pem", where / "key.pem"
    made = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
         "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout",
         str(key), "-out", str(cert)], capture_output=True, check=False)
    if made.returncode:
        pytest.skip("openssl cannot make a test certificate here")
    return cert, key


@contextlib.asynccontextmanager
async def tls_front(origin: str, certificate: tuple[Path, Path]) -> AsyncIterator[str]:
    """TLS on 127.0.0.1 in front of a plain ``http`` origin: the ``https`` URL of ``origin``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    parts = urlsplit(origin)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(parts.hostname, parts.port)
        await both_ways(reader, writer, up_reader, up_writer)

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
    try:
        port = server.sockets[0].getsockname()[1]
        yield origin.replace(f"http://{parts.netloc}", f"https://127.0.0.1:{port}")
    finally:
        server.close()


def echo(request: Request) -> Response:
    return Response(request.method.encode() + b" " + request.body, 200, "text/plain")


@pytest.fixture
async def server() -> AsyncIterator[HttpServer]:
    srv = HttpServer()
    srv.route("POST", "/echo", echo)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.close()


async def post(client: HttpClient, url: str) -> tuple[int, bytes]:
    return await client.post(client.url(url), b"hi", {"Content-Type": "text/plain"})


# -- which proxy ---------------------------------------------------------------------------------


def test_the_environment_names_the_proxy_of_each_scheme_lower_case_first() -> None:
    env = {"HTTP_PROXY": "http://UPPER:3128", "http_proxy": "http://lower:3128",
           "HTTPS_PROXY": "proxy.gov.vn:8080", "NO_PROXY": "internal.gov.vn"}
    proxies = Proxies.from_env(env)
    http, https = proxies.for_origin("http", "a.vn", 80), proxies.for_origin("https", "a.vn", 443)
    assert http is not None and http.name == "lower:3128"
    assert https is not None and https.name == "proxy.gov.vn:8080" and not https.authorization
    assert proxies.for_origin("https", "api.internal.gov.vn", 443) is None
    assert Proxies.from_env({}).for_origin("https", "a.vn", 443) is None


@pytest.mark.parametrize(("no_proxy", "host", "port", "bypassed"), [
    ("*", "openapi.zalo.me", 443, True),
    ("zalo.me", "openapi.zalo.me", 443, True),
    (".zalo.me", "zalo.me", 443, True),
    ("zalo.me", "notzalo.me", 443, False),
    ("ZALO.ME", "OpenAPI.zalo.me", 443, True),
    ("10.0.0.0/8, 127.0.0.1", "10.20.30.40", 80, True),
    ("10.0.0.0/8,127.0.0.1", "127.0.0.1", 80, True),
    ("10.0.0.0/8", "11.0.0.1", 80, False),
    ("::1", "::1", 80, True),
    ("push.gov.vn:8443", "push.gov.vn", 8443, True),
    ("push.gov.vn:8443", "push.gov.vn", 443, False),
    ("", "push.gov.vn", 443, False),
])
def test_no_proxy_entries(no_proxy: str, host: str, port: int, bypassed: bool) -> None:
    proxies = Proxies("http://p:3128", "http://p:3128", no_proxy)
    assert (proxies.for_origin("https", host, port) is None) is bypassed


def test_a_configured_proxy_replaces_the_environment_and_direct_means_none() -> None:
    env = {"HTTPS_PROXY": "http://from-env:3128"}
    chosen = Proxies.configured("http://cfg:8080", "", env).for_origin("https", "a.vn", 443)
    assert chosen is not None and chosen.name == "cfg:8080"
    assert Proxies.configured("direct", "", env).for_origin("https", "a.vn", 443) is None
    env_one = Proxies.configured("", "a.vn", env)
    assert env_one.for_origin("https", "a.vn", 443) is None
    assert env_one.for_origin("https", "b.vn", 443) is not None


def test_proxy_urls_credentials_and_refusals_of_bad_ones() -> None:
    proxy = Proxy("http://loa%40so:p%3Ass@proxy.gov.vn:3128")
    assert proxy.name == "proxy.gov.vn:3128" and "p:ss" not in repr(proxy)
    assert base64.b64decode(proxy.authorization.removeprefix("Basic ")) == b"loa@so:p:ss"
    assert Proxy("proxy.gov.vn").port == 80
    with pytest.raises(ValueError, match="not an http:// proxy URL") as caught:
        Proxy("https://loa:hunter2@proxy.gov.vn:3128")
    assert "hunter2" not in str(caught.value)


# -- the client ----------------------------------------------------------------------------------


async def test_an_http_target_is_requested_in_absolute_form_on_one_kept_connection(
        server: HttpServer) -> None:
    async with LoopbackProxy() as proxy, \
            HttpClient(4, 2.0, proxies=Proxies(http=proxy.url)) as client:
        for _ in range(3):
            assert await post(client, server.url + "/echo") == (200, b"POST hi")
    assert proxy.targets == [server.url + "/echo"] * 3 and not proxy.tunnels
    assert server.accepted == 1  # one connection from the proxy, kept alive


async def test_an_https_target_is_reached_in_one_connect_tunnel(
        certificate: tuple[Path, Path], server: HttpServer) -> None:
    trusting = ssl.create_default_context(cafile=str(certificate[0]))
    async with LoopbackProxy() as proxy, tls_front(server.url, certificate) as https, \
            HttpClient(4, 2.0, ssl_context=trusting, proxies=Proxies(https=proxy.url)) as client:
        for _ in range(3):
            assert await post(client, https + "/echo") == (200, b"POST hi")
    assert proxy.tunnels == [https.removeprefix("https://")] and not proxy.targets


async def test_credentials_in_the_proxy_url_go_as_basic_authorization(
        certificate: tuple[Path, Path], server: HttpServer) -> None:
    trusting = ssl.create_default_context(cafile=str(certificate[0]))
    async with LoopbackProxy(credentials="loa:s3cret") as proxy, \
            tls_front(server.url, certificate) as https:
        proxies = Proxies(proxy.url, proxy.url)
        async with HttpClient(4, 2.0, ssl_context=trusting, proxies=proxies) as client:
            assert await post(client, https + "/echo") == (200, b"POST hi")
            assert await post(client, server.url + "/echo") == (200, b"POST hi")
            assert await post(client, server.url + "/echo") == (200, b"POST hi")
    expected = "Basic " + base64.b64encode(b"loa:s3cret").decode()
    assert proxy.authorizations == [expected] * 3 and proxy.refused == 0


@pytest.mark.parametrize(("status", "retryable"), [(407, False), (403, False), (502, True)])
async def test_a_refused_connect_is_one_line_naming_the_proxy_and_the_status(
        server: HttpServer, status: int, retryable: bool) -> None:
    async with LoopbackProxy(refuse=status) as proxy, \
            HttpClient(4, 2.0, proxies=Proxies(https=proxy.url)) as client:
        with pytest.raises(ProxyRefused) as caught:
            await post(client, f"https://127.0.0.1:{server.port}/echo")
    error = caught.value
    assert str(error) == (f"proxy {proxy.name} refused CONNECT to 127.0.0.1:{server.port}: "
                          f"HTTP {status} {HTTPStatus(status).phrase}")
    assert error.kind == "connect" and error.retryable is retryable and error.status == status
    assert server.accepted == 0


async def test_a_forwarding_proxy_that_wants_credentials_is_a_refusal(
        server: HttpServer) -> None:
    async with LoopbackProxy(credentials="loa:s3cret") as proxy:
        bare = proxy.url.replace("loa:s3cret@", "")
        async with HttpClient(4, 2.0, proxies=Proxies(http=bare)) as client:
            with pytest.raises(ProxyRefused) as caught:
                await post(client, server.url + "/echo")
    assert str(caught.value) == (f"proxy {proxy.name} refused the request: "
                                 "HTTP 407 Proxy Authentication Required")
    assert not caught.value.retryable and server.accepted == 0


async def test_a_407_from_the_server_inside_a_tunnel_is_its_answer(
        certificate: tuple[Path, Path]) -> None:
    srv = HttpServer()
    srv.route("POST", "/auth", lambda _: Response(b"login first", 407, "text/plain"))
    await srv.start()
    trusting = ssl.create_default_context(cafile=str(certificate[0]))
    try:
        async with LoopbackProxy() as proxy, tls_front(srv.url, certificate) as https, \
                HttpClient(2, 2.0, ssl_context=trusting,
                           proxies=Proxies(https=proxy.url)) as client:
            assert await post(client, https + "/auth") == (407, b"login first")
    finally:
        await srv.close()
    assert len(proxy.tunnels) == 1 and proxy.refused == 0


async def test_a_proxy_that_cannot_be_reached_is_named(server: HttpServer) -> None:
    port = free_port()
    async with HttpClient(4, 2.0, proxies=Proxies(http=f"http://127.0.0.1:{port}")) as client:
        with pytest.raises(TransportFailure) as caught:
            await post(client, server.url + "/echo")
    assert caught.value.kind == "connect" and caught.value.reason.startswith(
        f"cannot connect to 127.0.0.1:{server.port} through proxy 127.0.0.1:{port}: ")


async def test_no_proxy_hosts_are_reached_directly(
        server: HttpServer, monkeypatch: pytest.MonkeyPatch) -> None:
    async with LoopbackProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("no_proxy", "localhost,127.0.0.0/8")
        async with HttpClient(4, 2.0) as client:
            assert await post(client, server.url + "/echo") == (200, b"POST hi")
    assert not proxy.targets and not proxy.tunnels and not proxy.authorizations


# -- the channels --------------------------------------------------------------------------------


def zalo_config(url: str, **changes: object) -> ZaloConfig:
    return msgspec.structs.replace(
        ZaloConfig(base_url=url, oa_url=url, oauth_url=url, template_id="loa-alert",
                   timeout=2.0), **changes)


def phones(n: int) -> list[str]:
    return [f"8491{i:07d}" for i in range(n)]


async def test_zalo_goes_through_the_environments_https_proxy(
        sim: ZaloSim, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))  # trust the test certificate
    async with LoopbackProxy(credentials="zalo:pw") as proxy, \
            tls_front(sim.url, certificate) as https:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        adapter = ZaloAdapter(zalo_config(https, concurrency=4),
                              MemoryTokenStore("sim-access-token", "sim-refresh-token"))
        try:
            envelope = Envelope(wave="w1", channel=Channel.ZALO, text=TEXT, addrs=phones(20),
                                route="zalo")
            results = await adapter.send(envelope)
        finally:
            await adapter.aclose()
    assert len(results.sent) == 20 and sim.received == dict.fromkeys(phones(20), 1)
    assert 1 <= len(proxy.tunnels) <= 4 and proxy.refused == 0


async def test_zalo_goes_through_its_configured_http_proxy(sim: ZaloSim) -> None:
    async with LoopbackProxy() as proxy:
        adapter = ZaloAdapter(zalo_config(sim.url, proxy=proxy.url),
                              MemoryTokenStore("sim-access-token", "sim-refresh-token"))
        try:
            envelope = Envelope(wave="w1", channel=Channel.ZALO, text=TEXT, addrs=phones(12),
                                route="zalo")
            results = await adapter.send(envelope)
        finally:
            await adapter.aclose()
    assert len(results.sent) == 12 and sim.received == dict.fromkeys(phones(12), 1)
    assert len(proxy.targets) == 12 and all(t.startswith(sim.url) for t in proxy.targets)


async def test_zalo_refused_by_its_proxy_requeues_with_the_proxys_reason(sim: ZaloSim) -> None:
    async with LoopbackProxy(refuse=403) as proxy:
        adapter = ZaloAdapter(zalo_config(f"https://127.0.0.1:{sim.port}", proxy=proxy.url),
                              MemoryTokenStore("sim-access-token", "sim-refresh-token"))
        try:
            envelope = Envelope(wave="w1", channel=Channel.ZALO, text=TEXT, addrs=phones(3),
                                route="zalo")
            results = await adapter.send(envelope)
        finally:
            await adapter.aclose()
    assert not results.sent and not results.retry and len(results.requeue) == 3
    assert all(f"proxy {proxy.name} refused CONNECT" in r and "HTTP 403 Forbidden" in r
               for _, r in results.requeue)
    assert sim.received == {}


def test_zalo_client_setting_is_refused_naming_the_key() -> None:
    with pytest.raises(ValueError, match=r"^client is no longer a setting") as caught:
        zalo_config("https://business.openapi.zalo.me", client="aiohttp")
    assert "\n" not in str(caught.value)


def app_envelope(n: int) -> Envelope:
    return Envelope(wave="w-1", channel=Channel.APP, text=TEXT, subject="Thông báo khẩn",
                    addrs=[f"u{k}" for k in range(n)], route="app")


@pytest.mark.parametrize("mode", ["message", "batch"])
async def test_app_push_goes_through_the_environments_http_proxy_with_credentials(
        mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    async with WebhookSim(secret=SECRET) as sim, LoopbackProxy(credentials="app:pw") as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        adapter = WebhookAdapter(WebhookConfig(url=sim.url, secret=SECRET, mode=mode,
                                               batch_size=5))
        try:
            results = await adapter.send(app_envelope(10))
        finally:
            await adapter.aclose()
    assert sorted(results.sent) == list(range(10)) and sim.messages == 10
    assert len(proxy.targets) == sim.requests == (10 if mode == "message" else 2)
    assert proxy.refused == 0


async def test_app_push_goes_through_the_environments_proxy_in_a_tunnel(
        certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    async with WebhookSim(secret=SECRET) as sim, LoopbackProxy() as proxy, \
            tls_front(sim.url, certificate) as https:
        monkeypatch.setenv("https_proxy", proxy.url)
        adapter = WebhookAdapter(WebhookConfig(url=https, secret=SECRET, mode="message",
                                               concurrency=2, ca_file=str(certificate[0])))
        try:
            results = await adapter.send(app_envelope(6))
        finally:
            await adapter.aclose()
    assert sorted(results.sent) == list(range(6)) and sim.requests == 6
    assert 1 <= len(proxy.tunnels) <= 2 and not proxy.targets


async def test_app_push_refused_by_its_proxy_requeues_with_the_proxys_reason() -> None:
    async with WebhookSim(secret=SECRET) as sim, LoopbackProxy(credentials="app:pw") as proxy:
        bare = proxy.url.replace("app:pw@", "")
        adapter = WebhookAdapter(WebhookConfig(url=sim.url.replace("http:", "https:"),
                                               secret=SECRET, proxy=bare))
        try:
            results = await adapter.send(app_envelope(4))
        finally:
            await adapter.aclose()
    assert not results.sent and sorted(i for i, _ in results.requeue) == [0, 1, 2, 3]
    assert all(r == f"proxy {proxy.name} refused CONNECT to 127.0.0.1:{sim.port}: "
                    "HTTP 407 Proxy Authentication Required" for _, r in results.requeue)
    assert sim.requests == 0


def test_app_push_proxy_that_is_not_a_url_is_refused_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"^proxy: not an http:// proxy URL"):
        WebhookAdapter(WebhookConfig(url="https://push.gov.vn/v1", proxy="socks5://p:1080"))


def test_a_proxy_password_in_the_settings_is_refused_and_not_shown() -> None:
    with pytest.raises(ConfigError, match=r"^proxy: a password is not written") as caught:
        WebhookAdapter(WebhookConfig(url="https://push.gov.vn/v1",
                                     proxy="http://loa:hunter2@10.1.2.3:3128"))
    assert "hunter2" not in str(caught.value) and "HTTPS_PROXY" in str(caught.value)
    with pytest.raises(ValueError, match=r"a password is not written") as refused:
        zalo_config("https://business.openapi.zalo.me", proxy="http://loa:hunter2@p:3128")
    assert "hunter2" not in str(refused.value)
