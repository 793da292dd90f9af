"""The HTTP client of the Zalo adapter: Loa's own (:class:`adapters.http.client.HttpClient`),
one pool of keep-alive connections per adapter, through the proxy the ``[zalo]`` settings or the
environment give.

It answers ``(status, body)`` and raises :class:`TransportFailure` with a ``kind`` that tells the
adapter whether the request may have reached Zalo: ``connect`` (it did not: no connection could
be had, or a proxy refused to carry it), ``timeout`` (it may have: no answer in time) or
``broken`` (the connection failed mid-request). :class:`Client` is what the adapter needs of a
client: ``bench/test_zalo_bench.py`` gives it aiohttp and httpx to compare (docs/decisions.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from adapters.http.client import FailureKind, HttpClient, TransportFailure
from adapters.http.proxy import Proxies
from adapters.zalo.config import ZaloConfig

__all__ = ["Client", "FailureKind", "TransportFailure", "make_client", "proxies"]


class Client(Protocol):
    def url(self, url: str) -> Any: ...

    async def post(self, url: Any, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
        ...

    async def post_form(self, url: Any, form: Mapping[str, str],
                        headers: Mapping[str, str]) -> tuple[int, bytes]: ...

    async def aclose(self) -> None: ...


def proxies(config: ZaloConfig) -> Proxies:
    """The proxies of the Zalo channel: ``[zalo] proxy`` and ``no_proxy``, or the
    environment's."""
    return Proxies.configured(config.proxy, config.no_proxy)


def make_client(config: ZaloConfig) -> HttpClient:
    return HttpClient(config.concurrency, config.timeout, peer="Zalo", proxies=proxies(config))
