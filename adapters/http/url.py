"""A URL that Loa's HTTP client sends to, parsed once (:class:`Url`)."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from adapters.http.codec import request_head
from adapters.http.connection import Origin
from adapters.http.proxy import Proxy


class Url:
    """An ``http`` or ``https`` URL parsed once; it keeps the heads of the requests made to it.
    ``via``: the proxy that carries them (an ``http`` request then has the absolute form)."""

    __slots__ = ("_extra", "_heads", "host", "host_header", "origin", "port", "scheme", "target",
                 "text", "via")

    def __init__(self, url: str, via: Proxy | None = None) -> None:
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
        self.via = via
        self._extra: dict[str, str] = {}
        if via is not None and self.scheme == "http":
            self.target = f"http://{self.host_header}{self.target}"
            if via.authorization:
                self._extra["Proxy-Authorization"] = via.authorization
        self._heads: dict[tuple[str, tuple[tuple[str, str], ...]], bytes] = {}

    def head(self, method: str, headers: Mapping[str, str]) -> bytes:
        """The request's bytes up to ``Content-Length: ``."""
        key = (method, tuple(headers.items()))
        head = self._heads.get(key)
        if head is None:
            if len(self._heads) >= 64:
                self._heads.clear()
            fields = {**headers, **self._extra} if self._extra else headers
            head = self._heads[key] = request_head(method, self.target, self.host_header,
                                                   fields)
        return head

    def __str__(self) -> str:
        return self.text
