"""Which HTTP proxy, if any, carries a request, and how to ask a proxy for a tunnel.

A proxy is an ``http://[user:password@]host[:port]`` URL (port 80 by default; ``user:password``
goes in a ``Proxy-Authorization: Basic`` header). :class:`Proxies` says which proxy serves an
origin: ``https`` targets get ``HTTPS_PROXY``, ``http`` targets ``HTTP_PROXY`` (upper- or
lower-case, lower-case first as curl does), except the hosts listed in ``NO_PROXY``:

* ``*``: no host uses a proxy;
* ``example.org`` or ``.example.org``: that host and every host under it;
* ``10.0.0.0/8``: the IP addresses in that network (a bare address is a /32 or /128);
* any entry may end in ``:port``: it then matches that port only.

Through a proxy, ``http`` requests are sent in absolute form (``POST http://host/path``) on a
connection to the proxy; ``https`` requests go in a ``CONNECT host:port`` tunnel, and TLS to
the target runs inside it. A proxy that refuses the tunnel (or, for ``http``, answers 407)
raises :class:`ProxyRefused`, whose ``retryable`` comes from :data:`REFUSAL_RETRYABLE`.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import os
import ssl
from collections.abc import Mapping
from typing import cast
from urllib.parse import unquote, urlsplit

from adapters.http.connection import TransportFailure
from adapters.http.message import MAX_HEAD, HttpError, parse_status_line

# a proxy's answer to CONNECT (or 407 to a forwarded request): may a later try succeed?
REFUSAL_RETRYABLE: dict[int, bool] = {
    403: False,  # the proxy's policy forbids this target: the network's administrators decide
    407: False,  # no or wrong credentials in the proxy URL
    429: True,
    502: True,  # the proxy could not reach the target
    503: True,
    504: True,
}
DIRECT = "direct"  # a configured proxy of "direct": none, whatever the environment says


class ProxyRefused(TransportFailure):
    """A proxy answered with an error instead of carrying the request (it never reached the
    target)."""

    def __init__(self, proxy: Proxy, target: str, status: int, text: str) -> None:
        what = "CONNECT to " if target else ""
        super().__init__("connect", f"proxy {proxy.name} refused {what}{target or 'the request'}"
                                    f": HTTP {status} {text}".rstrip())
        self.status = status
        self.retryable = REFUSAL_RETRYABLE.get(status, status >= 500)


class Proxy:
    """One proxy: where it listens and the header that authenticates to it."""

    __slots__ = ("authorization", "host", "name", "port")

    def __init__(self, url: str) -> None:
        parts = urlsplit(url if "://" in url else "http://" + url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"not an http:// proxy URL: {_hidden(url)!r}")
        try:
            port = parts.port or 80
        except ValueError:
            raise ValueError(f"bad port in the proxy URL {_hidden(url)!r}") from None
        self.host = parts.hostname
        self.port = port
        self.name = f"{self.host}:{self.port}"  # never the credentials
        self.authorization = ""
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            self.authorization = "Basic " + base64.b64encode(pair.encode()).decode()

    def __repr__(self) -> str:
        return f"Proxy({self.name!r})"


class Proxies:
    """The proxy of each scheme and the hosts that bypass them."""

    __slots__ = ("_by_scheme", "_bypass")

    def __init__(self, http: str = "", https: str = "", no_proxy: str = "") -> None:
        self._by_scheme = {"http": Proxy(http) if http else None,
                           "https": Proxy(https) if https else None}
        self._bypass = [_rule(entry) for entry in no_proxy.replace(" ", ",").split(",")
                        if entry.strip()]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, no_proxy: str = "") -> Proxies:
        """From ``HTTP_PROXY``, ``HTTPS_PROXY`` and ``NO_PROXY`` (lower-case first), plus the
        hosts in ``no_proxy``."""
        env = os.environ if env is None else env

        def get(name: str) -> str:
            return (env.get(name.lower()) or env.get(name) or "").strip()

        return cls(get("HTTP_PROXY"), get("HTTPS_PROXY"), ",".join(
            x for x in (get("NO_PROXY"), no_proxy) if x))

    @classmethod
    def configured(cls, proxy: str = "", no_proxy: str = "",
                   env: Mapping[str, str] | None = None) -> Proxies:
        """A channel's ``proxy`` setting: "" takes the environment's, ``direct`` none, a URL
        that proxy for both schemes; ``no_proxy`` adds hosts that bypass it. A URL with a
        password is refused: a settings file holds no secret (the environment's may)."""
        if proxy and proxy != DIRECT and urlsplit(
                proxy if "://" in proxy else "http://" + proxy).password is not None:
            raise ValueError(f"a password is not written in this file ({_hidden(proxy)!r}): "
                             "leave proxy empty and give the URL in HTTPS_PROXY / HTTP_PROXY")
        if not proxy:
            return cls.from_env(env, no_proxy)
        if proxy == DIRECT:
            return cls()
        return cls(proxy, proxy, no_proxy)

    def for_origin(self, scheme: str, host: str, port: int) -> Proxy | None:
        proxy = self._by_scheme.get(scheme)
        if proxy is None or any(_matches(rule, host.lower(), port) for rule in self._bypass):
            return None
        return proxy


_Rule = tuple[str, "ipaddress.IPv4Network | ipaddress.IPv6Network | None", int]


def _rule(entry: str) -> _Rule:
    """A NO_PROXY entry: (domain suffix, or "*"; network, if an address; port, or 0)."""
    entry = entry.strip().lower()
    port = 0
    host = entry
    if entry.startswith("["):  # [v6]:port
        host, _, rest = entry[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else 0
    elif entry.count(":") == 1:
        host, _, text = entry.partition(":")
        port = int(text) if text.isdigit() else 0
    try:
        return "", ipaddress.ip_network(host, strict=False), port
    except ValueError:
        return host.lstrip("*").lstrip("."), None, port


def _matches(rule: _Rule, host: str, port: int) -> bool:
    domain, network, rule_port = rule
    if rule_port and rule_port != port:
        return False
    if network is not None:
        try:
            return ipaddress.ip_address(host.strip("[]")) in network
        except ValueError:
            return False
    if not domain:  # "*"
        return True
    return host == domain or host.endswith("." + domain)


def _hidden(url: str) -> str:
    """A proxy URL with its password replaced, for error messages."""
    head, at, tail = url.rpartition("@")
    if not at:
        return url
    scheme, sep, user = head.rpartition("://")
    return f"{scheme}{sep}{user.split(':', 1)[0]}:***@{tail}"


def connect_request(host: str, port: int, proxy: Proxy) -> bytes:
    """The ``CONNECT`` request that opens a tunnel to ``host:port``."""
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
    if proxy.authorization:
        lines.append(f"Proxy-Authorization: {proxy.authorization}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


class Tunnel(asyncio.Protocol):
    """A connection to a proxy until its answer to ``CONNECT``: ``answer`` gets the status
    line and headers (the bytes up to the blank line)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._buffer = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if self.answer.done():
            return
        if end >= 0:
            if self.transport is not None:
                self.transport.pause_reading()  # the rest is TLS: for the TLS protocol
            self.answer.set_result(bytes(self._buffer[:end]))
        elif len(self._buffer) > MAX_HEAD:
            self.answer.set_exception(ConnectionError("the proxy's answer has no end"))

    def eof_received(self) -> bool:
        self.connection_lost(None)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc or ConnectionError("the proxy closed the connection"))


async def open_tunnel(proxy: Proxy, host: str, port: int, protocol: asyncio.Protocol,
                      context: ssl.SSLContext) -> asyncio.Transport:
    """A TLS transport to ``host:port`` through ``proxy``, delivering to ``protocol`` (whose
    ``connection_made`` is called). Raises :class:`ProxyRefused`, or ``OSError`` when the proxy
    cannot be reached or breaks off."""
    loop = asyncio.get_running_loop()
    transport, tunnel = await loop.create_connection(Tunnel, proxy.host, proxy.port)
    try:
        transport.write(connect_request(host, port, proxy))
        head = await tunnel.answer
        try:
            _, status, text = parse_status_line(head.split(b"\r\n", 1)[0])
        except HttpError as exc:
            raise ConnectionError(f"the proxy's answer is not HTTP: {exc}") from None
        if not 200 <= status < 300:
            raise ProxyRefused(proxy, f"{host}:{port}", status, text)
        secure = await loop.start_tls(transport, protocol, context, server_hostname=host)
    except BaseException:
        transport.abort()
        raise
    assert secure is not None
    protocol.connection_made(secure)
    return secure
