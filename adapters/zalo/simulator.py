"""A Zalo API simulator: ZNS, OA messages, OAuth v4 token renewal and signed delivery webhooks.

An HTTP server on loopback (:mod:`adapters.http.server`) that answers like Zalo
(:mod:`adapters.zalo.api` types):

* ``POST /message/template`` (ZNS) and ``POST /v3.0/oa/message/{cs,transaction,promotion}``
  (OA, each type's rules in :mod:`adapters.zalo.oasim`: -213 non-followers, -230 ``cs`` to
  users who did not interact in 7 days, -234 at night to the types of ``oa_night_types``, by
  share or setting): checks the ``access_token`` header (ZNS: -124 unknown or expired; OA: -216
  unknown, -220 expired), the template and its data (-109 unknown template, -131 a template of
  ``unapproved``, -111 no data, -1122 a parameter missing, -1121 a value longer than the
  template's ``limits`` for it) and the phone (-108 unless ``84`` + 9 digits); between 22:00 and
  06:00 Vietnam time (the ``clock`` given to :class:`ZaloSim`) it answers -133 to the templates
  of ``night_templates``; then the code of ``error_phones[phone]``, -118 for a
  deterministic share ``not_zalo_share`` of phones (by hash, the same in every run with the same
  seed), the code of ``refusals`` for its deterministic share of phones (``{-141: 0.02}``: 2 %
  refused ZNS from this OA; each refused phone is kept in ``refused``), ``error_code`` for a
  random share ``error_ratio`` (``error_ratio`` 1 with -115, -131 or -133: the balance, template
  or night faults that refuse every message), -144 (the OA's daily ZNS limit, Zalo's code;
  -211 to OA messages) once ``daily_quota`` messages were accepted today, and -115 (balance too
  low) once the ZNS account's ``balance`` of messages is spent; else it accepts: ``{"error": 0,
  "data":
  {"msg_id", "sent_time", "quota": {"dailyQuota", "remainingQuota"}}}``. ``http_429_ratio``
  and ``http_5xx_ratio`` of requests get HTTP 429 / 503 before any of that; ``delay`` holds
  every answer back.
* ``POST /v4/oa/access_token``: renews tokens (``secret_key`` header, form ``app_id``,
  ``grant_type=refresh_token``, ``refresh_token``); a refresh token works once (checked after
  ``oauth_delay``, which holds token answers back).
* ``GET /message/quota``: the OA's quota (``access_token`` header checked): ``{"error": 0,
  "data": {"dailyQuota", "remainingQuota"}}`` from ``daily_quota`` and ``quota_used``
  (``daily_quota`` 0: Zalo's largest, 500,000, with nothing used); ``quota_error`` set: that
  code instead.
* ``GET /sim/stats``: the counters as JSON (for a simulator in another process).

Every accepted message counts in ``received[phone or user_id]``, so a test can prove that each
recipient got exactly one message; every error answer counts in ``answered[code]``. With
``webhook_url`` set, each accepted message is confirmed by a ``user_received_message`` event
posted there after ``webhook_delay`` seconds, signed with ``X-ZEvent-Signature:
mac=<sha256(app_id + body + timestamp + oa_secret)>``, in batches over one keep-alive client
(:mod:`adapters.http.client`) with bounded concurrency; ``webhook_repeat_ratio`` of them are
posted twice, as Zalo does when it is not sure the first arrived. The event says when the
handset got the message in ``message.delivery_time`` (milliseconds, as a string), its
``timestamp`` when it was first posted. One not answered 200 is posted again, the same body and
signature, after each delay of ``webhook_retry_schedule`` in turn (Zalo's, as reported: 30 s,
5 min, 15 min, 30 min, 1 h), then given up (``webhooks_given_up``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import random
import re
import time
import zlib
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import msgspec

from adapters.http.client import HttpClient, TransportFailure, Url
from adapters.http.codec import Request
from adapters.http.proxy import Proxies
from adapters.http.server import HttpServer, Response
from adapters.zalo import oasim
from adapters.zalo.api import (
    CODES,
    NOT_ZALO_USER,
    OAUTH_PATH,
    QUOTA_EXHAUSTED,
    RECEIVED_EVENT,
    SIGNATURE_HEADER,
    TOKEN_INVALID,
    ZNS_PATH,
    OaRequest,
    ZnsRequest,
    sign,
)
from adapters.zalo.oa import OA_PATHS
from adapters.zalo.quota import QUOTA_PATH

__all__ = ["ZaloSim", "ZaloSimConfig", "ZaloSimStats"]

log = logging.getLogger(__name__)

PHONE = re.compile(r"84\d{9}")
USER_ID = re.compile(r"\d{10,20}")
MESSAGES = {code: code_.english for code, code_ in CODES.items()}  # Zalo's text of each code
STATS_PATH = "/sim/stats"
UNLIMITED = 500_000  # the quota told when daily_quota is 0: Zalo's largest


class ZaloSimConfig(msgspec.Struct, frozen=True, kw_only=True):
    """How the simulated Zalo behaves. Times in seconds; ratios between 0 and 1."""

    access_tokens: frozenset[str] = frozenset({"sim-access-token"})  # valid at start
    refresh_tokens: frozenset[str] = frozenset({"sim-refresh-token"})  # each works once
    token_ttl: float = 0.0  # access tokens expire this long after they are issued (0: never)
    app_id: str = "sim-app"
    secret_key: str = "sim-app-secret"  # the app's: OAuth
    oa_secret: str = "sim-oa-secret"  # the OA's: webhook signatures
    oa_id: str = "1000000000000000001"
    templates: dict[str, list[str]] = msgspec.field(  # template id -> its parameters
        default_factory=lambda: {"loa-alert": ["content"]})
    # template id -> parameter -> the most characters Zalo takes in it (-1121 beyond)
    limits: dict[str, dict[str, int]] = {}
    unapproved: frozenset[str] = frozenset()  # template ids not approved yet (-131)
    daily_quota: int = 0  # accepted messages per day (0: unlimited)
    quota_error: int = 0  # GET /message/quota answers this code (0: the quota)
    balance: int = 0  # ZNS messages the account pays for, then -115 (0: unlimited)
    night_templates: frozenset[str] = frozenset()  # -133 for these 22:00-06:00 (Vietnam)
    error_ratio: float = 0.0  # share of messages answered error_code
    error_code: int = -100
    error_phones: dict[str, int] = {}  # phone or user id -> the code it is always answered
    not_zalo_share: float = 0.0  # share of phones that are not Zalo accounts (-118), by hash
    refusals: dict[int, float] = {}  # code -> share of phones always answered it, by hash
    http_429_ratio: float = 0.0
    http_5xx_ratio: float = 0.0
    delay: float = 0.0  # before every message answer
    oauth_delay: float = 0.0  # before every token answer (the refresh token is checked after)
    webhook_url: str | None = None
    webhook_delay: float = 0.0
    webhook_layout: Literal["nested", "flat"] = "nested"
    webhook_repeat_ratio: float = 0.0
    # seconds before each new try of a webhook not answered 200 (Zalo: 30, 300, 900, 1800, 3600)
    webhook_retry_schedule: tuple[float, ...] = (0.2, 0.2)
    webhook_concurrency: int = 32
    seed: int = 0
    # messages whose text (ZNS template data or OA text) contains this are counted apart, in
    # ``marked`` and the marked_* counters, not in ``received`` (a benchmark's urgent campaign
    # among a routine wave); empty: none
    mark: str = ""
    # OA messages (adapters.zalo.oasim): shares of user ids, by hash, that do not follow the OA
    # (-213) and, of the followers, that did not interact in 7 days (-230 to cs messages);
    # night: -234 to the types of oa_night_types ("clock": 22:00-06:00 in Vietnam)
    oa_not_follower_share: float = 0.0
    oa_inactive_share: float = 0.0
    oa_night: oasim.NightMode = "off"
    oa_night_types: frozenset[str] = frozenset({"promotion"})

    def __post_init__(self) -> None:
        if self.oa_night not in ("off", "on", "clock"):
            raise ValueError("oa_night must be off, on or clock")
        if not self.oa_night_types <= set(OA_PATHS):
            raise ValueError("oa_night_types: each must be cs, transaction or promotion")
        for name in ("error_ratio", "not_zalo_share", "http_429_ratio", "http_5xx_ratio",
                     "webhook_repeat_ratio", "oa_not_follower_share", "oa_inactive_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if any(share < 0 for share in self.refusals.values()) or sum(
                self.refusals.values()) > 1.0:
            raise ValueError("refusals: each share must be positive and together at most 1")
        for name in ("token_ttl", "daily_quota", "balance", "delay", "oauth_delay",
                     "webhook_delay"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if any(not delay >= 0 for delay in self.webhook_retry_schedule):
            raise ValueError("webhook_retry_schedule: each delay must be 0 or more seconds")
        if self.webhook_concurrency < 1:
            raise ValueError("webhook_concurrency must be at least 1")
        if self.webhook_layout not in ("nested", "flat"):
            raise ValueError("webhook_layout must be nested or flat")


class ZaloSimStats(msgspec.Struct):
    """What the simulator saw and did since it was created."""

    requests: int = 0  # message API requests, whatever became of them
    accepted: int = 0  # messages accepted (counted in received)
    http_429: int = 0
    http_5xx: int = 0
    token_rejected: int = 0  # -124 (ZNS), -216 and -220 (OA)
    oa_token_expired: int = 0  # -220 (OA: expired)
    oa_token_invalid: int = 0  # -216 (OA: unknown)
    invalid: int = 0  # -108, -109, -111, -112, -1121, -1122, -131, unreadable bodies
    not_zalo: int = 0  # -118 by not_zalo_share
    errors_injected: int = 0  # by error_ratio or error_phones
    quota_refused: int = 0  # -144 (daily_quota reached; -211 to OA messages)
    balance_refused: int = 0  # -115 (balance spent)
    night_refused: int = 0  # -133 (night_templates) and -234 (OA, oa_night) at night
    refusals: int = 0  # answered a code of refusals
    oa_refused: int = 0  # OA messages answered -213, -230 or -234 by the rules of their type
    refreshes: int = 0  # tokens renewed
    quota_reads: int = 0  # GET /message/quota
    refresh_refused: int = 0
    webhooks_sent: int = 0  # answered 200 by the receiver (repeats included)
    webhooks_repeated: int = 0
    webhook_failures: int = 0  # not answered 200 (tried again by webhook_retry_schedule)
    webhooks_given_up: int = 0  # not answered 200 after the last try of the schedule
    recipients: int = 0  # distinct phones / user ids that got a message (see snapshot())
    duplicates: int = 0  # messages beyond the first to one recipient (see snapshot())
    last_request_at: float = 0.0  # when the last message request came (epoch seconds)
    marked: int = 0  # messages accepted with the configured mark (counted in ``marked``)
    marked_recipients: int = 0  # see snapshot()
    marked_duplicates: int = 0  # see snapshot()
    first_marked_at: float = 0.0  # epoch seconds; 0: none yet
    last_marked_at: float = 0.0


class _Hook(msgspec.Struct, array_like=True):
    due: float
    key: str  # phone or user id
    msg_id: str
    tracking_id: str
    tries: int = 0
    delivered_ms: str = ""  # when the handset got it (message.delivery_time)
    body: bytes = b""  # the event as first posted: tries again send it unchanged
    signature: str = ""


_encode = msgspec.json.Encoder().encode
_zns = msgspec.json.Decoder(ZnsRequest)
_oa = msgspec.json.Decoder(OaRequest)
_JSON = "application/json"


def _json(body: bytes, status: int = 200) -> Response:
    return Response(body, status, _JSON)


class ZaloSim:
    """The simulator: ``await start()``, then ``url``; ``await stop()``."""

    def __init__(self, config: ZaloSimConfig | None = None, *,
                 clock: Callable[[], float] = time.time) -> None:
        self._config = config or ZaloSimConfig()
        self.clock = clock  # epoch seconds: decides what is night in Vietnam
        self.stats = ZaloSimStats()
        self.received: Counter[str] = Counter()  # phone or user id -> messages accepted
        self.marked: Counter[str] = Counter()  # the same, of messages with the mark
        self.refused: dict[str, int] = {}  # phone -> the code of refusals it was answered
        self.oa_refused: dict[str, int] = {}  # user id -> the OA rule's code it was answered
        self.oa_types: Counter[str] = Counter()  # OA type -> messages of it accepted
        self.answered: Counter[int] = Counter()  # error code -> requests answered it
        self.quota_used = 0
        self.spent = 0  # ZNS messages accepted while a balance was set
        self.host = "127.0.0.1"
        self.port = 0
        self._rng = random.Random(self._config.seed)
        self._ids = itertools.count(1)
        self._prefix = f"{random.Random(self._config.seed ^ 0x5A10).getrandbits(32):08x}"
        now = time.monotonic()
        self._access: dict[str, float] = dict.fromkeys(self._config.access_tokens,
                                                        self._deadline(now))
        self._refresh: set[str] = set(self._config.refresh_tokens)
        self._errors = {code: _encode({"error": code, "message": text})
                        for code, text in MESSAGES.items()}
        self._hooks: deque[_Hook] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._server: HttpServer | None = None
        self._sender: asyncio.Task[None] | None = None
        self._client: HttpClient | None = None
        self._hook_url: Url | None = None

    # -- control ---------------------------------------------------------------------------

    @property
    def config(self) -> ZaloSimConfig:
        return self._config

    def set_config(self, **changes: Any) -> ZaloSimConfig:
        """Change the behaviour while running (tokens are not reset)."""
        self._config = msgspec.structs.replace(self._config, **changes)
        return self._config

    def snapshot(self) -> ZaloSimStats:
        """The counters, with ``recipients`` and ``duplicates`` brought up to date."""
        self.stats.recipients = len(self.received)
        self.stats.duplicates = self.duplicates
        self.stats.marked_recipients = len(self.marked)
        self.stats.marked_duplicates = sum(n - 1 for n in self.marked.values() if n > 1)
        return msgspec.structs.replace(self.stats)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def duplicates(self) -> int:
        """Messages beyond the first that one phone (or user) received."""
        return sum(n - 1 for n in self.received.values() if n > 1)

    def reset_quota(self) -> None:
        """A new day: the daily quota is whole again."""
        self.quota_used = 0

    def top_up(self, messages: int) -> None:
        """The ZNS account can pay for ``messages`` more."""
        self._config = msgspec.structs.replace(self._config,
                                               balance=max(self.spent, self._config.balance)
                                               + messages)

    def night(self) -> bool:
        """Whether it is 22:00-06:00 in Vietnam (UTC+7 all year) by ``clock``."""
        hour = int((self.clock() + 7 * 3600) // 3600) % 24
        return hour >= 22 or hour < 6

    def _oa_night(self) -> bool:
        """Whether the OA night rule (-234) applies now: ``oa_night`` on, or clock at night."""
        mode = self._config.oa_night
        return mode == "on" or (mode == "clock" and self.night())

    def expire_token(self) -> None:
        """Every access token issued so far is expired from now on (-124; OA: -220)."""
        self._access = dict.fromkeys(self._access, 0.0)

    def not_zalo(self, phone: str) -> bool:
        """Whether ``phone`` is in the not_zalo_share of numbers (answered -118)."""
        share = self._config.not_zalo_share
        return share > 0 and (zlib.crc32(f"{self._config.seed}:{phone}".encode())
                              < share * 0x1_0000_0000)

    def refusal(self, phone: str) -> int:
        """The code of ``refusals`` that ``phone`` is always answered (0: none)."""
        at = zlib.crc32(f"{self._config.seed}:refuse:{phone}".encode()) / 0x1_0000_0000
        for code, share in self._config.refusals.items():
            if at < share:
                return code
            at -= share
        return 0

    @property
    def access_tokens(self) -> list[str]:
        now = time.monotonic()
        return [t for t, end in self._access.items() if end > now]

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        server = HttpServer()
        server.route("POST", ZNS_PATH, self._zns_handler)
        for kind, path in OA_PATHS.items():
            server.route("POST", path, self._oa_route(kind))
        server.route("POST", OAUTH_PATH, self._oauth_route)
        server.route("GET", STATS_PATH, self._stats_handler)
        server.route("GET", QUOTA_PATH, self._quota_handler)
        await server.start(host, port, backlog=1024)
        self._server = server
        self.host, self.port = host, server.port
        self._sender = asyncio.create_task(self._send_hooks(), name="zalo-sim-webhooks")

    async def stop(self) -> None:
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
            self._sender = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        if self._server is not None:
            await self._server.close(grace=1.0)
            self._server = None

    async def __aenter__(self) -> ZaloSim:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def flush_webhooks(self, timeout: float = 5.0) -> bool:
        """Wait until every webhook due so far was posted; False if that took too long."""
        deadline = time.monotonic() + timeout
        while self._hooks or not self._idle.is_set():
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.005)
        return True

    # -- the message APIs --------------------------------------------------------------------

    def _deadline(self, now: float) -> float:
        ttl = self._config.token_ttl
        return now + ttl if ttl > 0 else math.inf

    def _refuse(self, code: int) -> Response:
        self.answered[code] += 1
        body = self._errors.get(code)
        if body is None:
            body = self._errors[code] = _encode({"error": code, "message": "Simulated error"})
        return _json(body)

    def _gate(self, request: Request, *, oa: bool = False) -> Response | None:
        """HTTP faults and the token check, before the body is read."""
        config = self._config
        self.stats.requests += 1
        self.stats.last_request_at = time.time()
        if config.http_429_ratio or config.http_5xx_ratio:
            r = self._rng.random()
            if r < config.http_429_ratio:
                self.stats.http_429 += 1
                return _json(b'{"error":-429,"message":"Too many requests"}', 429)
            if r < config.http_429_ratio + config.http_5xx_ratio:
                self.stats.http_5xx += 1
                return Response.text("Service Unavailable", 503)
        end = self._access.get(request.headers.get("access_token", ""))
        if end is None or (end != math.inf and end <= time.monotonic()):
            self.stats.token_rejected += 1
            if not oa:
                return self._refuse(TOKEN_INVALID)  # -124, expired or not
            if end is None:
                self.stats.oa_token_invalid += 1
                return self._refuse(-216)
            self.stats.oa_token_expired += 1
            return self._refuse(-220)
        return None

    def _delayed(self, handler: Callable[[Request], Response], request: Request,
                 delay: float | None = None) -> Response | Awaitable[Response]:
        """The handler's answer now, or after ``delay`` (default: the configured one for
        messages) when there is one."""
        wait = self._config.delay if delay is None else delay
        if not wait:
            return handler(request)

        async def later() -> Response:
            await asyncio.sleep(wait)
            return handler(request)

        return later()

    def _oauth_route(self, request: Request) -> Response | Awaitable[Response]:
        return self._delayed(self._oauth_handler, request, self._config.oauth_delay)

    def _zns_handler(self, request: Request) -> Response | Awaitable[Response]:
        return self._delayed(self._zns, request)

    def _oa_route(self, kind: str) -> Callable[[Request], Response | Awaitable[Response]]:
        def handler(request: Request) -> Response | Awaitable[Response]:
            return self._delayed(lambda r: self._oa(r, kind), request)
        return handler

    def _zns(self, request: Request) -> Response:
        refused = self._gate(request)
        if refused is not None:
            return refused
        try:
            req = _zns.decode(request.body)
        except msgspec.DecodeError as exc:
            self.stats.invalid += 1
            return Response.text(f"bad request: {exc}", 400)
        code = self._template_code(req)
        if not code and PHONE.fullmatch(req.phone) is None:
            code = -108
        if code:
            self.stats.invalid += 1
            return self._refuse(code)
        if self._config.night_templates and req.template_id in self._config.night_templates \
                and self.night():
            self.stats.night_refused += 1
            return self._refuse(-133)
        mark = self._config.mark
        marked = bool(mark) and any(mark in v for v in req.template_data.values())
        return self._deliver(req.phone, req.tracking_id, phone=True, marked=marked)

    def _template_code(self, req: ZnsRequest) -> int:
        """Zalo's answer to the template and its data: -109 unknown template, -131 not
        approved, -111 no data, -1122 a parameter missing, -1121 one over its length limit."""
        config = self._config
        params = config.templates.get(req.template_id)
        if params is None:
            return -109
        if req.template_id in config.unapproved:
            return -131
        data = req.template_data
        if not data:
            return -111
        if not all(map(data.get, params)):
            return -1122
        limits = config.limits.get(req.template_id)
        if limits and any(len(data.get(name, "")) > n for name, n in limits.items()):
            return -1121
        return 0

    def _oa(self, request: Request, kind: str) -> Response:
        refused = self._gate(request, oa=True)
        if refused is not None:
            return refused
        try:
            req = _oa.decode(request.body)
        except msgspec.DecodeError as exc:
            self.stats.invalid += 1
            return Response.text(f"bad request: {exc}", 400)
        user = req.recipient.user_id
        text = oasim.text_of(kind, req.message)
        if text is None or USER_ID.fullmatch(user) is None:
            self.stats.invalid += 1
            return self._refuse(oasim.BAD_PARAMETER if text is None else NOT_ZALO_USER)
        config = self._config
        code = oasim.verdict(kind, user, seed=config.seed, night=self._oa_night(),
                             night_types=config.oa_night_types,
                             not_follower_share=config.oa_not_follower_share,
                             inactive_share=config.oa_inactive_share)
        if code:
            self.stats.oa_refused += 1
            if code == oasim.NIGHT:
                self.stats.night_refused += 1
            self.oa_refused[user] = code
            return self._refuse(code)
        mark = config.mark
        answer = self._deliver(user, "", phone=False, marked=bool(mark) and mark in text)
        if answer.body.startswith(b'{"error":0'):
            self.oa_types[kind] += 1
        return answer

    def _deliver(self, key: str, tracking: str, *, phone: bool,
                 marked: bool = False) -> Response:
        config = self._config
        code = config.error_phones.get(key, 0) if config.error_phones else 0
        if code:
            self.stats.errors_injected += 1
            return self._refuse(code)
        if phone and config.not_zalo_share and self.not_zalo(key):
            self.stats.not_zalo += 1
            return self._refuse(NOT_ZALO_USER)
        if phone and config.refusals:
            refusal = self.refusal(key)
            if refusal:
                self.stats.refusals += 1
                self.refused[key] = refusal
                return self._refuse(refusal)
        if config.error_ratio and self._rng.random() < config.error_ratio:
            self.stats.errors_injected += 1
            return self._refuse(config.error_code)
        quota = config.daily_quota
        if quota and self.quota_used >= quota:
            self.stats.quota_refused += 1
            return self._refuse(QUOTA_EXHAUSTED if phone else -211)  # the OA's quota: -211
        if config.balance and phone:
            if self.spent >= config.balance:
                self.stats.balance_refused += 1
                return self._refuse(-115)
            self.spent += 1
        self.quota_used += 1
        received = self.received
        if marked:
            received = self.marked
            self.stats.marked += 1
            self.stats.last_marked_at = self.stats.last_request_at  # this request's
            if not self.stats.first_marked_at:
                self.stats.first_marked_at = self.stats.last_marked_at
        received[key] = received.get(key, 0) + 1
        self.stats.accepted += 1
        msg_id = f"{self._prefix}{next(self._ids):012x}"
        now_ms = str(int(time.time() * 1000))
        if config.webhook_url:
            due = time.monotonic() + config.webhook_delay
            delivered = str(int((time.time() + config.webhook_delay) * 1000))
            self._queue_hook(_Hook(due, key, msg_id, tracking, delivered_ms=delivered))
        if phone:
            q = (b',"quota":{"dailyQuota":"%d","remainingQuota":"%d"}'
                 % (quota, quota - self.quota_used)) if quota else b""
            return _json(b'{"error":0,"message":"Success","data":{"msg_id":"%s","sent_time":"%s"'
                         b'%s}}' % (msg_id.encode(), now_ms.encode(), q))
        return _json(b'{"error":0,"message":"Success","data":{"message_id":"%s","user_id":"%s"}}'
                     % (msg_id.encode(), key.encode()))

    # -- OAuth ---------------------------------------------------------------------------------

    def _oauth_handler(self, request: Request) -> Response:
        config = self._config
        form = request.form()
        error = ""
        if request.headers.get("secret_key") != config.secret_key:
            code, error = -14002, "Invalid secret key"
        elif form.get("app_id") != config.app_id:
            code, error = -14001, "Invalid app id"
        elif form.get("grant_type") != "refresh_token":
            code, error = -14003, "Invalid grant type"
        elif form.get("refresh_token") not in self._refresh:
            code, error = -14014, "Invalid refresh token"
        if error:
            self.stats.refresh_refused += 1
            return _json(_encode({"error": code, "error_name": error,
                                  "error_description": error}))
        self._refresh.discard(str(form["refresh_token"]))
        n = next(self._ids)
        access, refresh = f"sim-access-{self._prefix}-{n}", f"sim-refresh-{self._prefix}-{n}"
        self._access[access] = self._deadline(time.monotonic())
        self._refresh.add(refresh)
        self.stats.refreshes += 1
        ttl = int(config.token_ttl) if config.token_ttl else 90000
        return _json(_encode({"access_token": access, "refresh_token": refresh,
                              "expires_in": str(ttl)}))

    def _quota_handler(self, request: Request) -> Response:
        self.stats.quota_reads += 1
        end = self._access.get(request.headers.get("access_token", ""))
        if end is None or (end != math.inf and end <= time.monotonic()):
            return self._refuse(TOKEN_INVALID)
        config = self._config
        if config.quota_error:
            return self._refuse(config.quota_error)
        daily = config.daily_quota or UNLIMITED
        left = max(0, daily - self.quota_used) if config.daily_quota else daily
        return _json(b'{"error":0,"message":"Success","data":{"dailyQuota":"%d",'
                     b'"remainingQuota":"%d"}}' % (daily, left))

    def _stats_handler(self, request: Request) -> Response:
        return _json(_encode(self.snapshot()))

    # -- webhooks ------------------------------------------------------------------------------

    def _event(self, hook: _Hook, now_ms: str) -> bytes:
        config = self._config
        delivered = hook.delivered_ms or now_ms
        if config.webhook_layout == "flat":
            return _encode({"app_id": config.app_id, "event_name": RECEIVED_EVENT,
                            "timestamp": now_ms, "oa_id": config.oa_id, "msg_id": hook.msg_id,
                            "tracking_id": hook.tracking_id, "delivery_time": delivered})
        return _encode({"app_id": config.app_id, "event_name": RECEIVED_EVENT,
                        "timestamp": now_ms, "sender": {"id": config.oa_id},
                        "recipient": {"id": hook.key},
                        "message": {"msg_id": hook.msg_id, "tracking_id": hook.tracking_id,
                                    "delivery_time": delivered}})

    async def _send_hooks(self) -> None:
        hooks = self._hooks
        while True:
            if not hooks:
                self._wake.clear()
                await self._wake.wait()
                continue
            wait = hooks[0].due - time.monotonic()
            if wait > 0:  # until then, or until an earlier one is queued
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
                continue
            now = time.monotonic()
            batch: list[_Hook] = []
            while hooks and hooks[0].due <= now:
                batch.append(hooks.popleft())
            self._idle.clear()
            try:
                limit = asyncio.Semaphore(self._config.webhook_concurrency)
                await asyncio.gather(*(self._post_hook(h, limit) for h in batch))
            finally:
                self._idle.set()

    def _queue_hook(self, hook: _Hook) -> None:
        """Queue ``hook`` for its ``due`` time (the queue is kept in due order)."""
        hooks = self._hooks
        at = len(hooks)
        while at and hooks[at - 1].due > hook.due:
            at -= 1
        hooks.insert(at, hook)
        self._wake.set()

    async def _post_hook(self, hook: _Hook, limit: asyncio.Semaphore) -> None:
        config = self._config
        url = config.webhook_url
        if not url:
            return
        if self._client is None:
            self._client = HttpClient(max(config.webhook_concurrency, 100), 5.0,
                                      proxies=Proxies())  # Loa on the same network: direct
        if self._hook_url is None or self._hook_url.text != url:
            self._hook_url = self._client.url(url)
        if not hook.body:  # the first try; the next ones send the same event again
            now_ms = str(int(time.time() * 1000))
            hook.body = self._event(hook, now_ms)
            hook.signature = "mac=" + sign(config.app_id, hook.body, now_ms, config.oa_secret)
        body = hook.body
        headers = {SIGNATURE_HEADER: hook.signature, "Content-Type": _JSON}
        times = 2 if config.webhook_repeat_ratio and (
            self._rng.random() < config.webhook_repeat_ratio) else 1
        async with limit:
            for n in range(times):
                try:
                    status, _ = await self._client.post(self._hook_url, body, headers)
                    ok = status == 200
                except TransportFailure as exc:
                    log.debug("webhook to %s failed: %s", url, exc)
                    ok = False
                if not ok:
                    self.stats.webhook_failures += 1
                    schedule = config.webhook_retry_schedule
                    if hook.tries < len(schedule):
                        hook.due = time.monotonic() + schedule[hook.tries]
                        hook.tries += 1
                        self._queue_hook(hook)
                    else:
                        self.stats.webhooks_given_up += 1
                    return
                self.stats.webhooks_sent += 1
                self.stats.webhooks_repeated += n
