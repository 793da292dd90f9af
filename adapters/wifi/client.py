"""Pushing a notice to a public Wi-Fi controller: one signed JSON POST (:class:`WifiClient`).

A push carries the notice as UTF-8 JSON (:class:`~dispatcher.domain.wifi.PushedNotice`) and:

* ``X-Loa-Timestamp: <unix seconds>`` and ``X-Loa-Signature: sha256=<hex>``, the HMAC-SHA256
  with the controller's secret of the timestamp, a dot and the raw body
  (:mod:`adapters.http.signature`, as the app push signs): the controller checks that the body
  came from Loa, and refuses one captured and sent again later;
* ``Idempotency-Key: <CAP identifier>:<controller id>``: the same on every try of one notice to
  one controller, so that a controller can drop a repeat (after a timeout, or a crash of Loa
  between the controller's 2xx and the cursor's write).

The answer is mapped by the table of :mod:`adapters.wifi.status`; a push never raises for what
the controller or the network does. One request at a time per controller; every controller
shares one pool of keep-alive connections.
"""

from __future__ import annotations

import datetime as dt
import re
import ssl
import time
from collections.abc import Callable

from adapters.http.client import HttpClient, TransportFailure, Url
from adapters.http.proxy import Proxies
from adapters.http.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from adapters.wifi.status import outcome, retry_after
from dispatcher.domain.errors import ConfigError
from dispatcher.domain.wifi import PushOutcome, PushResult, WifiController, WifiSettings

IDEMPOTENCY_HEADER = "Idempotency-Key"
REASON_CHARS = 200  # of an answer's body quoted in a reason
_SPACES = re.compile(r"\s+")


class WifiClient:
    """Pushes to the controllers of ``settings`` (:meth:`push`); ``aclose()`` at the end."""

    def __init__(self, settings: WifiSettings, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        try:
            proxies = Proxies.configured(settings.proxy, "")
        except ValueError as exc:
            raise ConfigError(str(exc), key="wifi.proxy") from None
        self._http = HttpClient(max(1, len(settings.controllers)), settings.timeout,
                                connect_timeout=settings.connect_timeout,
                                ssl_context=_tls(settings), proxies=proxies)
        self._urls: dict[str, Url] = {}
        for index, controller in enumerate(settings.controllers):
            try:
                self._urls[controller.id] = self._http.url(controller.url)
            except ValueError:
                raise ConfigError("must be an http:// or https:// URL",
                                  key=f"wifi.controllers[{index}].url") from None

    async def push(self, controller: WifiController, body: bytes, key: str) -> PushResult:
        """POST ``body`` to ``controller``, signed, with ``key`` as its idempotency key."""
        url = self._urls.get(controller.id) or self._http.url(controller.url)
        now = int(self.clock())
        headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "Loa",
                   IDEMPOTENCY_HEADER: key, TIMESTAMP_HEADER: str(now),
                   SIGNATURE_HEADER: sign(controller.secret, body, now)}
        where = f"{url.host}:{url.port}"  # never the path or query (they may hold tokens)
        try:
            response = await self._http.request("POST", url, body, headers)
        except TransportFailure as exc:
            if exc.kind == "connect":
                return PushResult(PushOutcome.UNREACHABLE, _short(exc.reason, controller))
            if exc.kind == "timeout":
                return PushResult(PushOutcome.TIMEOUT,
                                  f"no answer from {where} in {self.settings.timeout:g} s "
                                  "(it may have arrived)")
            return PushResult(PushOutcome.ERROR,
                              f"{_short(exc.reason, controller)} (it may have arrived)")
        status = response.status
        found = outcome(status)
        if found is PushOutcome.PUSHED:
            return PushResult(found, status=status)
        reason = f"HTTP {status}"
        text = _short(response.body.decode("utf-8", "replace"), controller)
        if text:
            reason += f": {text}"
        wait = None
        if found in (PushOutcome.THROTTLED, PushOutcome.ERROR):
            wait = retry_after(response.headers.get("retry-after", ""),
                               dt.datetime.fromtimestamp(self.clock(), dt.UTC))
        return PushResult(found, reason, status=status, retry_after=wait)

    async def aclose(self) -> None:
        await self._http.aclose()


def _short(text: str, controller: WifiController) -> str:
    """The start of a text from the network, on one line, without the controller's secret."""
    text = _SPACES.sub(" ", text[: REASON_CHARS * 4]).strip()
    if controller.secret:
        text = text.replace(controller.secret, "***")
    return text if len(text) <= REASON_CHARS else text[: REASON_CHARS - 1] + "…"


def _tls(settings: WifiSettings) -> ssl.SSLContext:
    """The TLS context of https controllers: the system's CAs, or ``ca_file``'s."""
    if not settings.ca_file:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=settings.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot read {settings.ca_file}: {exc.strerror or exc}",
                          key="wifi.ca_file") from None
