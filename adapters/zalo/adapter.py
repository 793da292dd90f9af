"""The Zalo channel: ZNS template messages by phone number, OA messages by Zalo user id.

Every message of an envelope is one HTTP request on one pooled keep-alive client, at most
``concurrency`` in flight per route. Zalo's answer decides each message's outcome by the tables
of :mod:`adapters.zalo.api`:

* sent (``error`` 0): ``results.sent`` with Zalo's ``msg_id`` as remote id; delivery comes later
  as a ``user_received_message`` webhook (``results.receipts`` is True), see
  :mod:`adapters.zalo.webhook`;
* transient (-100, HTTP 429/5xx, no answer in time, connection broken): ``results.retry``; a
  request that got no answer in time may have gone out (``stats.possible_duplicates``);
* permanent (-108 invalid phone, malformed requests): ``results.failed``;
* not reachable on Zalo (the codes of ``sms_fallback_codes``, by default every code of the table
  in :mod:`adapters.zalo.codes` whose outcome is fallback: -114, -118, -119, -134, -139, -140,
  -141, -1471, -110 ...): ``results.failed`` and ``results.fallback`` (the reason begins
  ``fallback:``). The engine decides whether the campaign falls back to SMS;
* a configuration or money fault (-101...-105, -109, -111, -112, -131 ...; -115, -136 ...):
  no message can go until an operator acts. The route pauses (the message and every one not yet
  sent in ``results.requeue``, no attempt used), ``loa_zalo_route_paused{reason}`` is 1, an error
  is logged, and one batch is tried every ``alert_probe_seconds`` until Zalo accepts again;
* a code not in the table: retried; ``unknown_code_limit`` of them in a row pause the route the
  same way (reason ``unknown``), so an unknown wave-wide fault never dead-letters an audience;
* night (-133, -234): urgent messages fail as ``results.fallback`` (SMS at once); the others are
  requeued and the route pauses until ``night_end_hour`` (06:00 in Asia/Ho_Chi_Minh);
* access token invalid or expired (-124; OA -216, -220): the token is renewed once for all
  concurrent requests (:class:`~adapters.zalo.tokens.TokenManager`, the new refresh token saved
  in the store) and the message is sent once more; refused again, or no renewal, it is retried.
  ``schedule`` (:class:`~adapters.zalo.schedule.TokenSchedule`, run by the process that owns the
  adapter) renews the pair before it runs out, every ``refresh_every_days`` at the latest;
* out of quota (-144, -147, -1441, -211, or an answer with ``remainingQuota`` 0): the adapter
  stops, puts the message and every one not yet sent in ``results.requeue`` (no attempt used)
  and pauses until the quota resets (``quota_reset`` in ``quota_timezone``, midnight in
  Asia/Ho_Chi_Minh by default): ``paused_until`` (epoch seconds). An envelope with
  ``over_quota_sms`` (a wave whose policy sends the recipients beyond the quota by SMS) has
  them in ``results.failed`` and ``results.fallback`` instead, and does not pause
  its route. While paused, ``send`` requeues everything without asking Zalo, except one batch every
  ``quota_probe_seconds``, which is tried: a quota raised during the day is used at once
  (``results.pause_until`` is the next such try); ``resume()`` lifts the pause;
* no connection at all: ``results.requeue`` (the request never left);
* Zalo down (at least half of a batch, and at least ``OUTAGE_MIN`` messages, answered HTTP
  5xx/429 or no answer): the batch's transient failures are requeued without using an attempt
  and the route pauses (``results.pause_until``) for 1 s, doubling up to ``outage_pause_max``
  while the outage lasts: an outage of any length delays messages but dead-letters none.

ZNS bodies: ``phone`` is the address; with a typed template (``envelope.zns``, checked by
:mod:`adapters.zalo.templates` when the wave was made) its ``template_id`` and ``template_data``
with every parameter, built once per batch; without one (OA-like texts, tests) ``template_id``
from the config and ``template_data`` ``{template_param: envelope.text}`` (``{"content": text}``
by default); ``tracking_id`` ``wave:address`` (:func:`~adapters.zalo.api.tracking_id`). A typed
template that is no longer configured stops the route with an alert (``configuration``).
OA bodies: ``recipient.user_id`` is the address, the message of type ``oa_message_type``
(transaction by default: it may reach followers who did not write to the OA; see
:mod:`adapters.zalo.oa`), built once per batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections import deque
from typing import Any

import msgspec

from adapters import metrics
from adapters.base import HALTED, DailyQuota, Envelope, Results, results_for
from adapters.zalo import oa
from adapters.zalo.api import (
    CODES,
    OAUTH_PATH,
    ZNS_PATH,
    Answer,
    Outcome,
    TokenAnswer,
    decode_answer,
    outcome,
    token_decoder,
    tracking_prefix,
)
from adapters.zalo.client import Client, TransportFailure, make_client, proxies
from adapters.zalo.codes import UNREACHABLE_CODES
from adapters.zalo.config import ZaloConfig, next_hour, next_quota_reset
from adapters.zalo.quota import (
    QUOTA_PATH,
    fetch_quota,
    reset_time,
    time_zone,
)
from adapters.zalo.schedule import DAY, TokenSchedule
from adapters.zalo.tokens import TokenError, TokenManager, TokenStore
from dispatcher.domain.errors import ChannelError
from dispatcher.domain.model import VN

log = logging.getLogger(__name__)

OUTAGE_MIN = 5  # a batch with at least this many "Zalo is down" answers (and half) pauses
# how the reason of a failure SMS may cure begins (the dead letter's words; the engine goes by
# ``Results.fallback``)
FALLBACK = "fallback:"


def zns_tail(config: ZaloConfig, envelope: Envelope) -> bytes | str:
    """The end of every ZNS request of a batch (``template_id`` and ``template_data``, built
    once per batch), or why there is none: the envelope's typed template is not configured."""
    encode = _encode
    zns = envelope.zns
    if config.mode == "oa":
        return b""  # every address is a user id: no ZNS request is made
    if zns is None:
        if not config.template_id:
            return "zalo: no [zalo] template_id for a message without a typed template"
        return (b',"template_id":' + encode(config.template_id) + b',"template_data":'
                + encode({config.template_param: envelope.text}) + b"}")
    template = config.templates.get(zns.template)
    if template is None or any(p.name not in zns.params for p in template.params):
        return (f"zalo: the wave's template {zns.template!r} is not configured as it was "
                "checked ([zalo.templates])")
    return (b',"template_id":' + encode(template.template_id) + b',"template_data":'
            + encode(template.data(zns.params)) + b"}")


class ZaloStats(msgspec.Struct):
    requests: int = 0  # HTTP requests to the message APIs
    sent: int = 0
    retried: int = 0
    failed: int = 0  # permanent, fallback included
    fallback: int = 0  # failed, to the SMS fallback (``Results.fallback``)
    requeued: int = 0  # not attempted (quota, no connection)
    http_errors: int = 0  # answers other than HTTP 200
    possible_duplicates: int = 0  # no answer in time: retried, though it may have gone out
    token_refreshes: int = 0  # access tokens renewed
    quota_pauses: int = 0
    alert_pauses: int = 0  # pauses for a configuration, money or unknown fault
    night_holds: int = 0  # pauses until the night ends
    outage_pauses: int = 0  # batches that found Zalo down (5xx, no answer): route paused


class _Batch:
    """One envelope in flight: its messages not yet taken, where outcomes go, when it is done."""

    __slots__ = ("abort", "addrs", "done", "down", "halt", "indexes", "oa_tail", "pending",
                 "quota_sms", "results", "tracking", "urgent", "zns_tail")

    def __init__(self, envelope: Envelope, config: ZaloConfig, zns_tail: bytes,
                 results: Results, done: asyncio.Future[None]) -> None:
        encode = _encode
        self.addrs = envelope.addrs
        self.indexes = iter(range(len(self.addrs)))
        self.pending = len(self.addrs)  # messages without an outcome yet
        self.results = results
        self.done = done
        self.halt = ""  # set: every message not yet taken is requeued with this reason
        self.abort = envelope.abort  # halted by the caller: the same
        self.urgent = envelope.urgent  # taken before routine batches
        self.quota_sms = envelope.over_quota_sms  # beyond the quota: SMS, not a requeue
        self.down = 0  # answers that say Zalo is down: HTTP 5xx or 429, no answer
        self.tracking = encode(tracking_prefix(envelope.wave) + ":")[:-1]  # '"wave:'
        self.zns_tail = zns_tail
        self.oa_tail = oa.oa_tail(config.oa_message_type, envelope.text,
                                  template=config.oa_template_type, header=config.oa_header,
                                  language=config.oa_language, notice=envelope.wave)

    def finished(self) -> None:
        self.pending -= 1
        if not self.pending and not self.done.done():
            self.done.set_result(None)


class _Route:
    """The batches of one route waiting for its ``concurrency`` long-lived workers, which take
    their messages in order: a worker busy on one request never waits on a lock for the next."""

    __slots__ = ("batches", "ready", "workers")

    def __init__(self) -> None:
        self.batches: deque[_Batch] = deque()
        self.ready = asyncio.Event()
        self.workers: list[asyncio.Task[None]] = []


_encode = msgspec.json.Encoder().encode


class ZaloAdapter:
    """The Zalo channel (see the module's documentation and :class:`ZaloConfig`)."""

    def __init__(self, config: ZaloConfig, tokens: TokenStore, *,
                 client: Client | None = None) -> None:
        """``client``: the HTTP client (Loa's own by default; another one for comparison)."""
        self.config = config
        self.stats = ZaloStats()
        self.paused_until = 0.0  # epoch seconds; 0: not paused
        self.pause_reason = ""
        self.pause_kind = ""  # quota, configuration, balance, unknown, night ("": not paused)
        self._unknown = 0  # unlisted codes answered in a row
        # configuration, balance or unknown: the route stopped for a fault an operator must fix;
        # kept between the tries of the paused route, until Zalo accepts a message again
        self.alert = ""
        self.remaining_quota: int | None = None  # from Zalo's last answer
        self.daily_quota: int | None = None
        self.tokens = TokenManager(tokens, self._exchange, retry_after=config.token_retry_after)
        self.schedule = TokenSchedule(self.tokens, refresh_every=config.refresh_every_days * DAY)
        self._client: Client = client or make_client(config)
        base = config.base_url.rstrip("/")
        self._zns_url = self._client.url(base + ZNS_PATH)
        self._oa_url = self._client.url((config.oa_url or base).rstrip("/")
                                        + oa.OA_PATHS[config.oa_message_type])
        self._oauth_url = self._client.url(config.oauth_url.rstrip("/") + OAUTH_PATH)
        self._routes: dict[str, _Route] = {}
        self._headers: tuple[str, dict[str, str]] = ("", {})
        self._closed = False
        self._probe_at = 0.0  # while paused for quota: when a batch is tried next
        self._outage = 0.0  # the pause of the last batch that found Zalo down (0: none)
        self._reset = (reset_time(config.quota_reset), time_zone(config.quota_timezone))
        self._quota_url = base + QUOTA_PATH
        metrics.track_zalo(self)  # remaining quota and pause, read at scrape time

    # -- the Adapter interface -------------------------------------------------------------

    async def send(self, envelope: Envelope) -> Results:
        if self._closed:
            raise ChannelError("the Zalo channel is closed")
        addrs = envelope.addrs
        results = results_for(envelope, receipts=True)  # sent: told as each answer comes
        if not addrs:
            return results
        if self.paused_until:
            now = time.time()
            if self.paused_until <= now:
                self.resume()
            elif now < self._probe_at:
                if envelope.over_quota_sms and self.pause_kind == "quota":
                    return self._fallback_all(results, addrs)
                if envelope.urgent and self.pause_kind == "night":
                    return self._fallback_all(results, addrs, users=True)
                return self._requeue_all(results, len(addrs))
            else:  # try this batch: the quota may have been raised, the fault fixed
                self._probe_at = now + self.config.quota_probe_seconds
                self.resume()
        try:
            await self.tokens.token()
        except TokenError as exc:
            raise ChannelError(f"Zalo: no access token: {exc}") from None
        tail = zns_tail(self.config, envelope)
        if isinstance(tail, str):  # the template is not configured: an operator must act
            self._pause(tail, "configuration")
            return self._requeue_all(results, len(addrs))
        batch = _Batch(envelope, self.config, tail, results,
                       asyncio.get_running_loop().create_future())
        route = self._queue(envelope.route, batch)
        try:
            await batch.done
        except asyncio.CancelledError:  # the caller gave up: send no more of it
            batch.halt = "cancelled"
            with contextlib.suppress(ValueError):
                route.batches.remove(batch)
            raise
        if batch.down >= max(OUTAGE_MIN, len(addrs) // 2):
            self._zalo_down(results)
        elif batch.down == 0:
            self._outage = 0.0
        if self.paused_until and not (batch.quota_sms and self.pause_kind == "quota"):
            results.pause_until = min(self.paused_until, self._probe_at)
            results.urgent_passes = self.pause_kind in ("night", "quota")
        stats = self.stats
        stats.sent += len(results.sent)
        stats.retried += len(results.retry)
        stats.failed += len(results.failed)
        stats.requeued += len(results.requeue)
        stats.token_refreshes = self.tokens.refreshes
        return results

    def _queue(self, name: str, batch: _Batch) -> _Route:
        """Put ``batch`` on its route (started on first use): after the urgent batches already
        waiting if it is urgent, before every routine one; else last."""
        route = self._routes.get(name)
        if route is None:
            route = self._routes[name] = _Route()
            route.workers = [asyncio.create_task(self._work(route), name=f"zalo-{n}")
                             for n in range(self.config.concurrency)]
        if batch.urgent:
            ahead = next((i for i, b in enumerate(route.batches) if not b.urgent),
                         len(route.batches))
            route.batches.insert(ahead, batch)
        else:
            route.batches.append(batch)
        route.ready.set()
        return route

    async def aclose(self) -> None:
        self._closed = True
        metrics.untrack_zalo(self)
        workers = [task for route in self._routes.values() for task in route.workers]
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        self._routes.clear()
        await self._client.aclose()

    # -- quota ---------------------------------------------------------------------------------

    def resume(self) -> None:
        """Lift a quota pause (it ended, or the OA's quota was raised)."""
        self.paused_until = 0.0
        self.pause_reason = ""
        self.pause_kind = ""

    def _pause(self, reason: str, kind: str = "quota") -> str:
        """Pause the route (once): ``kind`` quota until the reset, night until the night ends,
        configuration, balance or unknown (an operator must act) until the next try."""
        if self.paused_until:
            return self.pause_reason
        now = time.time()
        config = self.config
        if kind == "quota":
            self.paused_until = next_quota_reset(now, *self._reset)
            self._probe_at = now + config.quota_probe_seconds
            self.stats.quota_pauses += 1
            self.remaining_quota = 0
        elif kind == "night":
            self.paused_until = self._probe_at = next_hour(now, config.night_end_hour)
            self.stats.night_holds += 1
        else:
            self.paused_until = self._probe_at = now + config.alert_probe_seconds
            self.stats.alert_pauses += 1
            self.alert = kind
        self.pause_kind = kind
        until = dt.datetime.fromtimestamp(self.paused_until, VN).strftime("%Y-%m-%d %H:%M:%S")
        self.pause_reason = f"{reason}; Zalo paused until {until} (Asia/Ho_Chi_Minh)"
        if kind in ("quota", "night"):
            log.warning("Zalo route paused (%s): %s", kind, self.pause_reason,
                        extra={"channel": "zalo"})
        else:
            log.error("ALERT Zalo route stopped (%s), audience kept queued, an operator must "
                      "act: %s", kind, self.pause_reason, extra={"channel": "zalo"})
        return self.pause_reason

    def _zalo_down(self, results: Results) -> None:
        """Zalo is down: what failed for now waits without using attempts, the route pauses."""
        self._outage = min(self.config.outage_pause_max, max(1.0, self._outage * 2))
        results.requeue.extend((i, f"Zalo is down: {why}") for i, why in results.retry)
        results.retry = []
        results.pause_until = max(results.pause_until, time.time() + self._outage)
        self.stats.outage_pauses += 1
        log.warning("Zalo answers 5xx or nothing: route paused for %g s", self._outage,
                    extra={"channel": "zalo"})

    def _fallback_all(self, results: Results, addrs: list[str], *,
                      users: bool = False) -> Results:
        """Out of quota, a wave whose policy is SMS: every phone to the SMS fallback now; a
        Zalo user id is requeued: it goes at the reset (``users``: to the SMS fallback too, as
        an urgent message at night, which the engine sends to its audience row's phone). The
        route is not paused: the wave's next batches go by SMS too."""
        why = f"{FALLBACK} {self.pause_reason}"
        for i, addr in enumerate(addrs):
            if users or self._phone(addr):
                results.fail_over(i, why)
            else:
                results.requeue.append((i, self.pause_reason))
        self.stats.failed += len(results.failed)
        self.stats.fallback += len(results.fallback)
        self.stats.requeued += len(results.requeue)
        return results

    def _beyond_quota(self, batch: _Batch, i: int, why: str) -> None:
        """A message of a wave whose policy is SMS, beyond the quota: to the SMS fallback (a
        phone) or requeued (a Zalo user id)."""
        if self._phone(batch.addrs[i]):
            batch.results.fail_over(i, f"{FALLBACK} {why}")
            self.stats.fallback += 1
        else:
            batch.results.requeue.append((i, why))

    async def quota(self) -> DailyQuota | None:
        """The OA's ZNS quota now (``GET /message/quota``); None when Zalo cannot be asked or
        does not say (never raises: a wave does not wait on it)."""
        try:
            token = await self.tokens.token()
        except TokenError as exc:
            log.warning("Zalo quota unknown: no access token: %s", exc,
                        extra={"channel": "zalo"})
            return None
        config = self.config
        quota = await fetch_quota(self._quota_url, token, min(config.timeout, 5.0),
                                  f"{config.quota_reset} {config.quota_timezone}",
                                  proxies(config))
        if quota is not None:
            if not self.paused_until:
                self.remaining_quota = quota.remaining
            self.daily_quota = quota.daily if quota.daily is not None else self.daily_quota
        return quota

    def _requeue_all(self, results: Results, n: int) -> Results:
        results.requeue = [(i, self.pause_reason) for i in range(n)]
        results.pause_until = min(self.paused_until, self._probe_at)
        results.urgent_passes = self.pause_kind in ("night", "quota")
        self.stats.requeued += n
        return results

    def _track_quota(self, answer: Answer) -> bool:
        """Record the quota in an answer; True if it is now exhausted."""
        data = answer.data
        if data is None or data.quota is None or self.paused_until:
            return False
        remaining = data.quota.remaining()
        if remaining is None:
            return False
        self.remaining_quota = remaining
        daily = data.quota.daily_quota
        if daily is not None:
            self.daily_quota = int(daily) if str(daily).isdigit() else self.daily_quota
        return remaining <= 0

    # -- one message ---------------------------------------------------------------------------

    async def _work(self, route: _Route) -> None:
        """One of a route's workers: the next message of the oldest batch, for ever."""
        batches = route.batches
        while True:
            if not batches:
                route.ready.clear()
                await route.ready.wait()
                continue
            batch = batches[0]
            i = next(batch.indexes, -1)
            if i < 0:  # every message of it is taken (some may still be in flight)
                batches.popleft()
                continue
            if batch.abort is not None and batch.abort.halted and not batch.halt:
                batch.halt = HALTED
            if not batch.halt and self.paused_until and batch.quota_sms and (
                    self.pause_kind == "quota"):
                self._beyond_quota(batch, i, self.pause_reason)
            elif batch.halt or self.paused_until:
                batch.results.requeue.append((i, batch.halt or self.pause_reason))
            else:
                try:
                    await self._one(batch, i)
                except Exception as exc:  # a bug must not stop the route: retry the message
                    log.exception("Zalo: sending message %d of a batch failed", i)
                    batch.results.retry.append((i, f"internal error: {exc!r}"))
            batch.finished()

    def _phone(self, addr: str) -> bool:
        """Whether ``addr`` is a phone (a ZNS message), not a Zalo user id (an OA message)."""
        mode = self.config.mode
        return mode == "zns" or (mode == "auto" and len(addr) == 11 and addr.startswith("84")
                                 and addr.isdigit())

    def _request(self, batch: _Batch, addr: str) -> tuple[Any, bytes]:
        if self._phone(addr):
            a = _encode(addr)
            return self._zns_url, (b'{"phone":' + a + b',"tracking_id":' + batch.tracking
                                   + a[1:] + batch.zns_tail)
        return self._oa_url, b'{"recipient":{"user_id":' + _encode(addr) + batch.oa_tail

    def _auth(self, token: str) -> dict[str, str]:
        if self._headers[0] != token:
            self._headers = (token, {"access_token": token, "Content-Type": "application/json"})
        return self._headers[1]

    async def _one(self, batch: _Batch, i: int) -> None:
        results = batch.results
        url, body = self._request(batch, batch.addrs[i])
        renewed = False
        while True:
            token = self.tokens.access
            self.stats.requests += 1
            try:
                status, data = await self._client.post(url, body, self._auth(token))
            except TransportFailure as exc:
                self._no_answer(batch, i, exc)
                return
            if status == 200:
                answer = decode_answer(data)
            else:
                answer = None
                self.stats.http_errors += 1
                if status >= 500 or status == 429:
                    batch.down += 1
            result, reason = outcome(status, answer)
            if answer is not None and answer.error:
                self._unknown = 0 if answer.error in CODES else self._unknown + 1
            if result is Outcome.SENT:
                self._unknown = 0
                if self.alert:  # Zalo accepts again: the operator's fault is fixed
                    self.alert = ""
                assert answer is not None
                results.sent.append(i)
                results.remote_ids.append(answer.remote_id)
                if self._track_quota(answer):
                    self._pause("zalo quota exhausted (remainingQuota 0)")
                return
            if result is Outcome.REFRESH and not renewed:
                try:
                    await self.tokens.refresh(token)
                except TokenError as exc:
                    results.retry.append((i, f"{reason}; {exc}"))
                    return
                renewed = True
                continue
            break
        self._settle(batch, i, result, reason, answer)

    def _settle(self, batch: _Batch, i: int, result: Outcome, reason: str,
                answer: Answer | None) -> None:
        """Where a message that was not sent goes, by its outcome."""
        results = batch.results
        if result is Outcome.QUOTA:
            why = self._pause(reason)
            if batch.quota_sms:  # the wave's policy: beyond the quota by SMS at once
                self._beyond_quota(batch, i, why)
            else:
                results.requeue.append((i, why))
        elif result is Outcome.CONFIGURATION or result is Outcome.BALANCE:
            self._pause(reason, result.value)
            results.requeue.append((i, reason))
        elif result is Outcome.NIGHT:
            if batch.urgent:  # an urgent alert does not wait for the morning: SMS now
                results.fail_over(i, f"{FALLBACK} {reason}")
                self.stats.fallback += 1
            else:
                self._pause(reason, "night")
                results.requeue.append((i, reason))
        elif result is Outcome.FAIL or result is Outcome.FALLBACK:
            if answer is not None and answer.error in self.config.sms_fallback_codes:
                results.fail_over(i, f"{FALLBACK} {reason}")
                self.stats.fallback += 1
            else:
                results.failed.append((i, reason))
            if answer is not None and answer.error in UNREACHABLE_CODES:
                results.unreachable.append(i)
        elif result is Outcome.REFRESH:
            results.retry.append((i, f"{reason}: refused again after a renewal"))
        elif self._unknown >= self.config.unknown_code_limit:
            self._pause(reason, "unknown")
            results.requeue.append((i, reason))
        else:
            results.retry.append((i, reason))

    def _no_answer(self, batch: _Batch, i: int, exc: TransportFailure) -> None:
        batch.down += 1
        if exc.kind == "connect":  # the request never left
            batch.results.requeue.append((i, exc.reason))
        else:
            if exc.kind == "timeout":
                self.stats.possible_duplicates += 1
            batch.results.retry.append((i, exc.reason))

    # -- OAuth ---------------------------------------------------------------------------------

    async def _exchange(self, refresh: str) -> TokenAnswer:
        form = {"refresh_token": refresh, "app_id": self.config.app_id,
                "grant_type": "refresh_token"}
        try:
            status, data = await self._client.post_form(
                self._oauth_url, form, {"secret_key": self.config.secret_key})
        except TransportFailure as exc:
            raise TokenError(f"OAuth: {exc.reason}") from None
        try:
            return token_decoder.decode(data)
        except msgspec.DecodeError:
            raise TokenError(f"OAuth answered HTTP {status} without a token answer") from None
