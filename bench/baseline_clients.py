"""aiohttp and httpx as the Zalo adapter's HTTP client, for the comparison in
``bench/test_zalo_bench.py`` only: the product sends with Loa's own client
(:mod:`adapters.http.client`; docs/decisions.md). Both satisfy
:class:`adapters.zalo.client.Client` and raise its :class:`TransportFailure` kinds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import aiohttp
import yarl

from adapters.http.client import TransportFailure
from adapters.zalo.client import Client

if TYPE_CHECKING:
    import httpx

BASELINES = ("aiohttp", "httpx")


def _why(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class AiohttpClient:
    """aiohttp: one session, one connector of ``concurrency`` keep-alive connections."""

    def __init__(self, concurrency: int, timeout: float) -> None:
        self.concurrency = concurrency
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def url(self, url: str) -> yarl.URL:
        return yarl.URL(url)  # parsed once, not per request

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=self.concurrency, limit_per_host=0,
                                         keepalive_timeout=30.0, ttl_dns_cache=300)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=self.timeout),
            cookie_jar=aiohttp.DummyCookieJar(),  # Zalo's APIs set none; filtering costs
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"))
        return self._session

    async def post(self, url: Any, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
        session = self._session or self._open()
        try:
            payload = aiohttp.BytesPayload(body, content_type="application/json")
            async with session.post(url, data=payload, headers=headers) as resp:
                return resp.status, await resp.read()
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            raise TransportFailure("connect", f"cannot connect to Zalo: {_why(exc)}") from None
        except TimeoutError:
            raise TransportFailure("timeout", f"no answer in {self.timeout:g} s") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise TransportFailure("broken", f"connection failed: {_why(exc)}") from None

    async def post_form(self, url: Any, form: Mapping[str, str],
                        headers: Mapping[str, str]) -> tuple[int, bytes]:
        session = self._session or self._open()
        try:
            async with session.post(url, data=dict(form), headers=headers) as resp:
                return resp.status, await resp.read()
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            raise TransportFailure("connect", f"cannot connect: {_why(exc)}") from None
        except TimeoutError:
            raise TransportFailure("timeout", f"no answer in {self.timeout:g} s") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise TransportFailure("broken", f"connection failed: {_why(exc)}") from None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class HttpxClient:
    """httpx: one AsyncClient with a pool of ``concurrency`` keep-alive connections (httpx is a
    development dependency, for the comparison: install it to use this client)."""

    def __init__(self, concurrency: int, timeout: float) -> None:
        import httpx  # noqa: PLC0415 (optional: only the comparison needs it)

        self._httpx = httpx
        self.timeout = timeout
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=concurrency,
                                max_keepalive_connections=concurrency, keepalive_expiry=30.0),
            trust_env=False)

    def url(self, url: str) -> httpx.URL:
        return self._httpx.URL(url)

    async def _post(self, url: Any, **kwargs: Any) -> tuple[int, bytes]:
        httpx = self._httpx
        try:
            resp = await self._client.post(url, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise TransportFailure("connect", f"cannot connect to Zalo: {_why(exc)}") from None
        except httpx.TimeoutException:
            raise TransportFailure("timeout", f"no answer in {self.timeout:g} s") from None
        except (httpx.HTTPError, OSError) as exc:
            raise TransportFailure("broken", f"connection failed: {_why(exc)}") from None
        return resp.status_code, resp.content

    async def post(self, url: Any, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
        return await self._post(url, content=body, headers=headers)

    async def post_form(self, url: Any, form: Mapping[str, str],
                        headers: Mapping[str, str]) -> tuple[int, bytes]:
        return await self._post(url, data=dict(form), headers=headers)

    async def aclose(self) -> None:
        await self._client.aclose()


def baseline_client(name: str, concurrency: int, timeout: float) -> Client | None:
    """The comparison client called ``name``; None for ``loa`` (the adapter's own)."""
    if name == "httpx":
        return HttpxClient(concurrency, timeout)
    if name == "aiohttp":
        return AiohttpClient(concurrency, timeout)
    if name == "loa":
        return None
    raise ValueError(f"no such client: {name!r}")
