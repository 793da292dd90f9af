"""A generic HTTP channel: a configurable, signed JSON POST per message or per batch.

It serves the Smart Quảng Ninh app push and any later HTTP channel (an e-mail gateway, IP
loudspeakers) with configuration only. A request carries:

* the configured ``headers`` (an ``Authorization`` token, for instance);
* ``<timestamp_header>: <unix seconds>`` and ``<signature_header>: sha256=<hex>``, the
  HMAC-SHA256 with the shared ``secret`` (when one is configured) of the timestamp, a dot and
  the raw body, so the endpoint can check that the body came from Loa, and lately: a request
  captured and sent again after ``max_age`` seconds is refused (:func:`verify`, in
  :mod:`adapters.http.signature`);
* ``<idempotency_header>: <key>``: the same key every time the same message (or the same batch)
  is sent again, so the endpoint can answer a repeat without delivering twice.

Bodies (UTF-8 JSON)::

    message mode   {"wave", "channel", "to", "text", "subject", "id"}        id = "<wave>:<to>"
    batch mode     {"wave", "channel", "text", "subject", "messages": [{"to", "id"}, ...]}

A batch's key is a digest of the wave and its (sorted) addresses. A 2xx answer to a batch may
give each message its own outcome, ``{"results": [{"to", "status": "sent" | "retry" | "failed",
"reason"?, "id"?}]}``; otherwise every message of the batch takes the outcome of the request:

    2xx                                      sent
    408, 425, 429, 5xx, timeout, cut         retry (after a timeout it may have been delivered)
    other 4xx (and 1xx, 3xx: no redirects)   failed, "HTTP <code>: <start of the body>"
    cannot connect (refused, DNS, TLS)       requeue: never reached, no attempt used
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import re
import ssl
import time
from collections.abc import Callable, Iterator

import msgspec

from adapters.base import HALTED, Envelope, Results, halted, results_for
from adapters.http.client import HttpClient, TransportFailure, Url
from adapters.http.proxy import Proxies
from adapters.http.signature import sign
from dispatcher.domain.errors import ChannelError, ConfigError

MODES = ("message", "batch")
REASON_CHARS = 200  # of an answer's body quoted in a reason
_SPACES = re.compile(r"\s+")
# headers whose values are credentials: never quoted in a reason, even when an answer echoes them
_SENSITIVE = ("auth", "token", "key", "secret", "cookie", "signature", "password")


class WebhookConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An HTTP endpoint. ``secret`` is filled in from the environment variable named by
    ``secret_env`` by the settings loader; it is never written in a file."""

    url: str
    mode: str = "batch"  # "message": a POST per message; "batch": a POST per batch
    headers: dict[str, str] = {}
    secret_env: str = ""
    secret: str = ""  # HMAC-SHA256 key of the signature; empty: requests are not signed
    signature_header: str = "X-Loa-Signature"
    timestamp_header: str = "X-Loa-Timestamp"  # unix seconds, signed with the body
    # header -> environment variable holding its value (an Authorization token, an API key):
    # credentials are never written in the file; filled into ``headers`` by the settings loader
    headers_env: dict[str, str] = {}
    idempotency_header: str = "Idempotency-Key"
    timeout: float = 10.0  # seconds for a whole request; then it is retried
    connect_timeout: float = 5.0  # seconds to connect; then the messages are requeued
    concurrency: int = 8  # requests in flight (connections kept alive)
    batch_size: int = 500  # messages per POST in batch mode; a larger batch is split
    verify_tls: bool = True
    ca_file: str = ""  # a CA bundle for an endpoint with a private certificate authority
    # the proxy to the endpoint: "" the environment's (HTTPS_PROXY, HTTP_PROXY, NO_PROXY),
    # "direct" none, or http://[user:password@]host:port; no_proxy: more hosts that bypass it
    proxy: str = ""
    no_proxy: str = ""


class WebhookStats(msgspec.Struct):
    requests: int = 0
    messages: int = 0
    sent: int = 0
    retry: int = 0
    failed: int = 0
    requeue: int = 0
    timeouts: int = 0  # requests with no answer in time
    possible_duplicates: int = 0  # messages retried after a timeout: they may have gone out


# -- wire types ------------------------------------------------------------------------------


class MessageBody(msgspec.Struct):
    wave: str
    channel: str
    to: str
    text: str
    subject: str
    id: str


class BatchItem(msgspec.Struct):
    to: str
    id: str


class BatchBody(msgspec.Struct):
    wave: str
    channel: str
    text: str
    subject: str
    messages: list[BatchItem]


class ItemResult(msgspec.Struct):
    to: str
    status: str  # "sent", "retry" or "failed"
    reason: str = ""
    id: str = ""


class BatchAnswer(msgspec.Struct):
    results: list[ItemResult] | None = None


class MessageAnswer(msgspec.Struct):
    id: str = ""


# -- outcomes --------------------------------------------------------------------------------


class Outcome(enum.Enum):
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"
    REQUEUE = "requeue"


#: HTTP status -> outcome where the status class does not say it. 401 and 403 refuse Loa, not
#: the message (a wrong secret or token): the messages wait, without using attempts, until the
#: configuration is fixed, instead of dead-lettering a whole audience.
STATUSES: dict[int, Outcome] = {408: Outcome.RETRY, 425: Outcome.RETRY, 429: Outcome.RETRY,
                                401: Outcome.REQUEUE, 403: Outcome.REQUEUE}
#: status class (first digit) -> outcome
CLASSES: dict[int, Outcome] = {1: Outcome.FAILED, 2: Outcome.SENT, 3: Outcome.FAILED,
                               4: Outcome.FAILED, 5: Outcome.RETRY}
#: a batch answer's per-message status -> outcome; anything else is retried
ITEM_STATUSES: dict[str, Outcome] = {"sent": Outcome.SENT, "retry": Outcome.RETRY,
                                     "failed": Outcome.FAILED}


def outcome(status: int) -> Outcome:
    """What an HTTP status means for the messages of the request."""
    return STATUSES.get(status) or CLASSES.get(status // 100, Outcome.RETRY)


def message_key(wave: str, addr: str) -> str:
    """The idempotency key of one message: the same on every attempt."""
    return f"{wave}:{addr}"


def batch_key(wave: str, addrs: list[str]) -> str:
    """The idempotency key of a batch: a digest of the wave and the set of its addresses."""
    digest = hashlib.sha256(wave.encode())
    digest.update(b"\0")
    digest.update("\n".join(sorted(addrs)).encode())
    return digest.hexdigest()[:40]


class _Answer(msgspec.Struct):
    outcome: Outcome
    reason: str = ""
    status: int = 0
    body: bytes = b""


class WebhookAdapter:
    """A channel over HTTP POST (see :class:`WebhookConfig` and the module's documentation)."""

    def __init__(self, config: WebhookConfig, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = _checked(config)
        self.clock = clock
        self.stats = WebhookStats()
        self._http = HttpClient(config.concurrency, config.timeout,
                                connect_timeout=config.connect_timeout, ssl_context=_tls(config),
                                proxies=Proxies.configured(config.proxy, config.no_proxy))
        self._url = self._http.url(config.url)
        self._where = f"{self._url.host}:{self._url.port}"  # never the path or query (tokens)
        self._http.peer = self._where
        self._headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "Loa",
                         **config.headers}
        self._slots = asyncio.Semaphore(config.concurrency)
        self._closed = False
        self._secrets = _secret_words(config)
        self._message_decoder = msgspec.json.Decoder(MessageAnswer)
        self._batch_decoder = msgspec.json.Decoder(BatchAnswer)
        self._encoder = msgspec.json.Encoder()

    # -- sending -----------------------------------------------------------------------------

    async def send(self, envelope: Envelope) -> Results:
        if self._closed:
            raise ChannelError("webhook channel is closed")
        results = results_for(envelope)  # sent: told as each answer comes
        remote: list[str] = []
        if self.config.mode == "message":
            await self._send_messages(envelope, results, remote)
        else:
            await self._send_batches(envelope, results, remote)
        if any(remote):
            results.remote_ids = remote
        stats = self.stats
        stats.messages += len(envelope.addrs)
        stats.sent += len(results.sent)
        stats.retry += len(results.retry)
        stats.failed += len(results.failed)
        stats.requeue += len(results.requeue)
        return results

    async def _send_messages(self, envelope: Envelope, results: Results,
                             remote: list[str]) -> None:
        addrs = envelope.addrs
        wave, channel = envelope.wave, envelope.channel.value
        todo: Iterator[int] = iter(range(len(addrs)))
        down: list[str] = []  # why the endpoint cannot be reached, once a request found out

        async def run() -> None:
            for i in todo:
                if down:
                    results.requeue.append((i, down[0]))
                    continue
                key = message_key(wave, addrs[i])
                body = self._encoder.encode(MessageBody(
                    wave=wave, channel=channel, to=addrs[i], text=envelope.text,
                    subject=envelope.subject, id=key))
                async with self._slots:
                    if halted(envelope):
                        results.requeue.append((i, HALTED))
                        continue
                    answer = await self._post(body, key, 1, down)
                out = answer.outcome
                if out is Outcome.SENT:
                    results.sent.append(i)
                    remote.append(self._message_id(answer.body))
                elif out is Outcome.RETRY:
                    results.retry.append((i, answer.reason))
                elif out is Outcome.FAILED:
                    results.failed.append((i, answer.reason))
                else:
                    results.requeue.append((i, answer.reason))

        await asyncio.gather(*(run() for _ in range(min(len(addrs), self.config.concurrency))))

    async def _send_batches(self, envelope: Envelope, results: Results,
                            remote: list[str]) -> None:
        addrs = envelope.addrs
        size = self.config.batch_size
        down: list[str] = []

        async def run(indexes: range) -> None:
            if down:
                results.requeue.extend((i, down[0]) for i in indexes)
                return
            chunk = [addrs[i] for i in indexes]
            wave = envelope.wave
            body = self._encoder.encode(BatchBody(
                wave=wave, channel=envelope.channel.value, text=envelope.text,
                subject=envelope.subject,
                messages=[BatchItem(to=a, id=message_key(wave, a)) for a in chunk]))
            async with self._slots:
                if halted(envelope):
                    results.requeue.extend((i, HALTED) for i in indexes)
                    return
                answer = await self._post(body, batch_key(wave, chunk), len(chunk), down)
            self._collect(answer, indexes, chunk, results, remote)

        await asyncio.gather(*(run(range(start, min(start + size, len(addrs))))
                               for start in range(0, len(addrs), size)))

    def _collect(self, answer: _Answer, indexes: range, chunk: list[str], results: Results,
                 remote: list[str]) -> None:
        out = answer.outcome
        if out is Outcome.SENT:
            items = self._items(answer.body)
            if items is None:
                results.sent.extend(indexes)
                remote.extend("" for _ in indexes)
            else:
                self._collect_items(items, indexes, chunk, results, remote)
        elif out is Outcome.RETRY:
            results.retry.extend((i, answer.reason) for i in indexes)
        elif out is Outcome.FAILED:
            results.failed.extend((i, answer.reason) for i in indexes)
        else:
            results.requeue.extend((i, answer.reason) for i in indexes)

    def _collect_items(self, items: list[ItemResult], indexes: range, chunk: list[str],
                       results: Results, remote: list[str]) -> None:
        by_addr: dict[str, list[int]] = {}
        for i, addr in zip(indexes, chunk, strict=True):
            by_addr.setdefault(addr, []).append(i)
        for item in items:
            found = by_addr.pop(item.to, None)
            if found is None:  # not in this batch, or given twice: the first answer counts
                continue
            out = ITEM_STATUSES.get(item.status)
            reason = self._short(item.reason)
            if out is Outcome.SENT:
                results.sent.extend(found)
                remote.extend(item.id for _ in found)
            elif out is Outcome.FAILED:
                results.failed.extend((i, reason or "failed (no reason given)") for i in found)
            elif out is Outcome.RETRY:
                results.retry.extend((i, reason or "retry (no reason given)") for i in found)
            else:
                why = f"unknown status {item.status[:40]!r}" + (f": {reason}" if reason else "")
                results.retry.extend((i, why) for i in found)
        for missing in by_addr.values():  # the answer said nothing about them: send again
            results.retry.extend((i, "no result for this address in the answer")
                                 for i in missing)

    def _items(self, body: bytes) -> list[ItemResult] | None:
        if not body.lstrip().startswith(b"{"):
            return None
        try:
            return self._batch_decoder.decode(body).results
        except msgspec.MsgspecError:  # not our shape: the request's outcome counts
            return None

    def _message_id(self, body: bytes) -> str:
        if not body.lstrip().startswith(b"{"):
            return ""
        try:
            return self._message_decoder.decode(body).id
        except msgspec.MsgspecError:
            return ""

    # -- HTTP --------------------------------------------------------------------------------

    async def _post(self, body: bytes, key: str, messages: int, down: list[str]) -> _Answer:
        """POST ``body``; ``down`` gets the reason when the endpoint cannot be reached."""
        if down:  # found out while this request waited for a slot
            return _Answer(Outcome.REQUEUE, down[0])
        config = self.config
        headers = {**self._headers, config.idempotency_header: key}
        if config.secret:
            now = int(self.clock())
            headers[config.timestamp_header] = str(now)
            headers[config.signature_header] = sign(config.secret, body, now)
        self.stats.requests += 1
        try:
            response = await self._http.request("POST", self._url, body, headers)
        except TransportFailure as exc:
            if exc.kind == "connect":
                reason = exc.reason
                if not down:
                    down.append(reason)
                return _Answer(Outcome.REQUEUE, reason)
            if exc.kind == "timeout":
                self.stats.timeouts += 1
                self.stats.possible_duplicates += messages
                return _Answer(Outcome.RETRY, f"no answer in {config.timeout:g} s "
                                              "(it may have been delivered)")
            return _Answer(Outcome.RETRY, f"{exc.reason}; it may have been delivered")
        status, payload = response.status, response.body
        retry_after = response.headers.get("retry-after", "")
        out = outcome(status)
        if out is Outcome.SENT:
            return _Answer(out, status=status, body=payload)
        reason = f"HTTP {status}"
        short = self._short(payload.decode("utf-8", "replace"))
        if short:
            reason += f": {short}"
        if retry_after and out is Outcome.RETRY:
            reason += f" (Retry-After {retry_after[:40]})"
        return _Answer(out, reason, status=status)

    def _short(self, text: str) -> str:
        """The start of a text from the endpoint, on one line, with no credential in it."""
        text = _SPACES.sub(" ", text[: REASON_CHARS * 4]).strip()
        for word in self._secrets:
            text = text.replace(word, "***")
        return text if len(text) <= REASON_CHARS else text[: REASON_CHARS - 1] + "…"

    async def aclose(self) -> None:
        self._closed = True
        await self._http.aclose()


def _checked(config: WebhookConfig) -> WebhookConfig:
    if config.mode not in MODES:
        raise ConfigError(f"must be one of {', '.join(MODES)}", key="mode")
    try:
        Url(config.url)
    except ValueError:
        raise ConfigError("must be an http:// or https:// URL", key="url") from None
    try:
        Proxies.configured(config.proxy, config.no_proxy, env={})
    except ValueError as exc:
        raise ConfigError(str(exc), key="proxy") from None
    for key, value in (("concurrency", config.concurrency), ("batch_size", config.batch_size),
                       ("timeout", config.timeout),
                       ("connect_timeout", config.connect_timeout)):
        if value <= 0:
            raise ConfigError("must be more than 0", key=key)
    return config


def _secret_words(config: WebhookConfig) -> list[str]:
    """Credentials that a reason must never quote: the secret and sensitive header values."""
    words = [config.secret] if config.secret else []
    for name, value in config.headers.items():
        if any(s in name.lower() for s in _SENSITIVE):
            words.append(value)
            words += [w for w in value.split() if len(w) >= 8]
    return sorted({w for w in words if w}, key=len, reverse=True)


def _tls(config: WebhookConfig) -> ssl.SSLContext:
    """The TLS context of an https endpoint: the system's CAs, ``ca_file``'s, or (with
    ``verify_tls = false``) none checked."""
    if config.ca_file:
        return ssl.create_default_context(cafile=config.ca_file)
    context = ssl.create_default_context()
    if not config.verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
