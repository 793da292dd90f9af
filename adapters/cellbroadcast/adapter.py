"""The cell broadcast channel: each wave's CAP alert to each carrier's broadcast centre.

An envelope's addresses are carrier ids of ``[cell_broadcast] carriers`` (the wave's targets);
each is one ``POST`` of the wave's CAP 1.2 alert (:mod:`adapters.cellbroadcast.profile`) to the
carrier's ``url`` with its credentials, at most ``concurrency`` requests in flight, on one pooled
keep-alive client (:mod:`adapters.http.client`). The alert's identifier is the wave's, so a CBC
that took an earlier try whose answer was lost (a timeout, a worker dead before the sent bit)
answers 409 and the carrier counts sent: a carrier broadcasts a wave once.

The answers decide each alert's outcome by the table of :mod:`adapters.cellbroadcast.codes`:
accepted and duplicate are ``results.sent`` (the CBC's reference, when it gives one, in
``remote_ids``); rejected is ``results.failed`` with the CBC's reason and an ALERT; credentials
and endpoint stop the carrier (its alerts requeued, an ALERT, ``loa_cell_broadcast_carrier_
stopped{carrier,reason}`` 1, one try every ``alert_probe_seconds``); throttle holds the carrier
for its ``Retry-After``; retry (5xx, no answer in time, a broken connection) is
``results.retry``, and when every request of a batch met one the CBCs are away: requeued
without using an attempt, the route paused for 1 s doubling up to ``outage_pause_max``. A batch
holding only carriers that wait pauses the route until the first may go again, for routine
batches only (urgent ones still go to the others). An alert whose expiry passed before it could
go fails ("expired"), one longer than the carrier's ``max_chars`` fails too.

The engine reads each accepted broadcast's state (:meth:`standing`) and withdraws it with a CAP
Cancel (:meth:`withdraw`) when its wave is cancelled or the emergency stop is raised
(:mod:`dispatcher.engine.broadcasts`): :class:`adapters.base.Withdrawable`.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import logging
import time

import msgspec

from adapters.base import HALTED, Envelope, Results, Standing, halted, results_for
from adapters.cellbroadcast import codes, metrics
from adapters.cellbroadcast.answers import reference_of, retry_after, said, standing_of
from adapters.cellbroadcast.codes import Outcome
from adapters.cellbroadcast.config import Auth, Carrier, CellBroadcastConfig
from adapters.cellbroadcast.profile import Profile
from adapters.http.client import HttpClient, TransportFailure, Url
from adapters.http.proxy import Proxies
from dispatcher.domain.broadcast import State
from dispatcher.domain.cap import CapSettings
from dispatcher.domain.errors import ChannelError
from dispatcher.domain.province import Province

log = logging.getLogger(__name__)

#: Why a carrier is stopped until an operator acts.
ALERTS = frozenset({"credentials", "endpoint", "unknown"})
EXTRA = {"channel": "cell_broadcast"}


class CellBroadcastStats(msgspec.Struct):
    requests: int = 0  # submissions, status reads and Cancels
    accepted: int = 0  # alerts a CBC took
    duplicates: int = 0  # answered 409: taken by an earlier try, counted sent
    rejected: int = 0  # CAP documents a CBC refused (failed, with an alert)
    retried: int = 0
    failed: int = 0
    requeued: int = 0  # not attempted (a carrier waiting, no connection)
    unanswered: int = 0  # submissions with no answer in time: the next try finds them (409)
    throttled: int = 0  # 429 answers
    alerts: int = 0  # carriers stopped, documents rejected
    outage_pauses: int = 0  # batches that found every CBC away
    reads: int = 0  # status reads answered
    cancels: int = 0  # Cancels a CBC took (or found nothing to withdraw)


class _Hold:
    """A carrier's pause: of which kind, why, until when, and its back-off."""

    __slots__ = ("backoff", "kind", "reason", "until")

    def __init__(self, kind: str, reason: str, until: float, backoff: float) -> None:
        self.kind = kind
        self.reason = reason
        self.until = until
        self.backoff = backoff


class _Batch:
    __slots__ = ("down", "envelope", "held", "results", "tried")

    def __init__(self, envelope: Envelope, results: Results) -> None:
        self.envelope = envelope
        self.results = results
        self.down = 0  # requests the CBCs did not answer, or answered 5xx
        self.tried = 0  # alerts that made a request
        self.held = 0  # alerts requeued because their carrier waits


class _Failed(Exception):
    """A request that got no HTTP answer: its words, and whether it never left."""

    def __init__(self, reason: str, *, connect: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.connect = connect


class CellBroadcastAdapter:
    """The cell broadcast channel (see the module's documentation and
    :class:`CellBroadcastConfig`); ``cap`` gives the alerts' sender, status and event,
    ``province`` the districts' names."""

    def __init__(self, config: CellBroadcastConfig, cap: CapSettings, province: Province, *,
                 client: HttpClient | None = None) -> None:
        self.config = config
        self.profile = Profile(config, cap, province)
        self.stats = CellBroadcastStats()
        self.status_seconds = config.status_seconds
        self.status_reads = config.status_reads
        self.timeout = config.timeout
        self._carriers = {carrier.id: carrier for carrier in config.carriers}
        self._client = client or HttpClient(
            config.concurrency, config.timeout, peer="the cell broadcast centre",
            proxies=Proxies.configured(config.proxy, config.no_proxy))
        self._urls: dict[str, Url] = {}
        self._slots = asyncio.Semaphore(config.concurrency)
        self._holds: dict[str, _Hold] = {}  # carrier id -> its pause
        self._unknown: dict[str, int] = {}  # carrier id -> unlisted answers in a row
        self._outage = 0.0
        self._closed = False
        metrics.track(self)

    @property
    def stopped(self) -> dict[str, str]:
        """Carriers stopped for a fault an operator must fix: carrier id -> why."""
        return {c: hold.kind for c, hold in self._holds.items() if hold.kind in ALERTS}

    # -- the Adapter interface -------------------------------------------------------------

    async def send(self, envelope: Envelope) -> Results:
        if self._closed:
            raise ChannelError("the cell broadcast channel is closed")
        results = results_for(envelope)
        n = len(envelope.addrs)
        if not n:
            return results
        batch = _Batch(envelope, results)
        async with asyncio.TaskGroup() as tasks:
            for i in range(n):
                tasks.create_task(self._guarded(batch, i))
        self._after(batch, n)
        stats = self.stats
        stats.retried += len(results.retry)
        stats.failed += len(results.failed)
        stats.requeued += len(results.requeue)
        return results

    async def aclose(self) -> None:
        self._closed = True
        metrics.untrack(self)
        await self._client.aclose()

    def _after(self, batch: _Batch, n: int) -> None:
        """The route's pause after a batch: every CBC away, or only carriers that wait."""
        results = batch.results
        now = time.time()
        if batch.down and batch.down >= batch.tried:
            self._outage = min(self.config.outage_pause_max, max(1.0, self._outage * 2))
            results.requeue.extend((i, f"the broadcast centres are away: {why}")
                                   for i, why in results.retry)
            results.retry = []
            results.pause_until = max(results.pause_until, now + self._outage)
            self.stats.outage_pauses += 1
            log.warning("cell broadcast: the centres answer 5xx or nothing: route paused for "
                        "%g s", self._outage, extra=EXTRA)
        elif batch.down == 0:
            self._outage = 0.0
        if batch.held == n:  # nothing of it could go: wait for the first carrier's next try
            waits = [h.until for h in self._holds.values() if h.until > now]
            if waits:
                results.pause_until = max(results.pause_until, min(waits))
                results.urgent_passes = True

    # -- one alert -------------------------------------------------------------------------------

    async def _guarded(self, batch: _Batch, i: int) -> None:
        try:
            await self._one(batch, i)
        except Exception as exc:  # a bug must not lose the batch: the alert is tried again
            log.exception("cell broadcast: alert %d of a batch failed", i, extra=EXTRA)
            batch.results.retry.append((i, f"internal error: {exc!r}"))

    def _waiting(self, batch: _Batch, i: int, carrier: Carrier) -> bool:
        """Requeue alert ``i`` if it may not go now (halted, its carrier waiting)."""
        if halted(batch.envelope):
            batch.results.requeue.append((i, HALTED))
            return True
        hold = self._holds.get(carrier.id)
        if hold is not None and time.time() < hold.until:
            batch.results.requeue.append((i, hold.reason))
            batch.held += 1
            return True
        return False

    async def _one(self, batch: _Batch, i: int) -> None:
        envelope, results = batch.envelope, batch.results
        addr = envelope.addrs[i]
        carrier = self._carriers.get(addr)
        if carrier is None:
            results.failed.append((i, f"cell_broadcast: no carrier {addr!r} in "
                                      "[cell_broadcast] carriers"))
            return
        expires = self.profile.expires(envelope)
        if time.time() >= expires.timestamp():
            results.failed.append((i, f"cell_broadcast: expired at {expires.isoformat()} "
                                      "before a centre took it (duration_hours)"))
            return
        alert = self.profile.alert(envelope, carrier)
        longest = max(len(info.description) for info in alert.infos)
        if carrier.options.max_chars and longest > carrier.options.max_chars:
            results.failed.append((i, f"cell_broadcast: {longest} characters, more than "
                                      f"{carrier.id}'s max_chars ({carrier.options.max_chars})"))
            return
        if self._waiting(batch, i, carrier):
            return
        async with self._slots:
            if self._waiting(batch, i, carrier):  # halted, or held while it waited its turn
                return
            batch.tried += 1
            try:
                status, body, headers = await self._call(
                    "POST", self._submit_url(carrier), self.profile.document(alert),
                    carrier, content_type=carrier.options.content_type)
            except _Failed as failed:
                batch.down += 1
                if failed.connect:
                    results.requeue.append((i, failed.reason))
                else:
                    self.stats.unanswered += 1
                    results.retry.append((i, failed.reason))
                return
        self._settle(batch, i, carrier, status, body, headers)

    def _settle(self, batch: _Batch, i: int, carrier: Carrier, status: int, body: bytes,
                headers: dict[str, str]) -> None:
        results = batch.results
        found = codes.lookup(status)
        words = said(body)
        reason = f"cell_broadcast {carrier.id}: HTTP {status}"
        if found is not None:
            reason += f" ({found[0]})"
        if words:
            reason += f": {words}"
        outcome = found[1] if found is not None else None
        if outcome is not Outcome.RETRY and outcome is not None:
            self._unknown.pop(carrier.id, None)
        if outcome is Outcome.ACCEPTED or outcome is Outcome.DUPLICATE:
            if outcome is Outcome.DUPLICATE:
                self.stats.duplicates += 1
                log.info("cell broadcast: %s has the alert of wave %s already: not broadcast "
                         "again", carrier.id, batch.envelope.wave, extra=EXTRA)
            else:
                self.stats.accepted += 1
            results.sent.append(i)
            results.remote_ids.append(reference_of(body, headers))
            self._accepted(carrier)
        elif outcome is Outcome.REJECTED:
            self.stats.rejected += 1
            self._alert("rejected", f"{carrier.id} refused the alert of wave "
                                    f"{batch.envelope.wave}: {reason}")
            results.failed.append((i, reason))
        elif outcome is Outcome.CREDENTIALS or outcome is Outcome.ENDPOINT:
            results.requeue.append((i, self._stop(carrier, outcome.value, reason)))
            batch.held += 1
        elif outcome is Outcome.THROTTLE:
            self.stats.throttled += 1
            results.requeue.append((i, self._throttle(carrier, reason, retry_after(headers))))
            batch.held += 1
        elif outcome is Outcome.RETRY:
            batch.down += status >= 500
            results.retry.append((i, reason))
        else:  # not in the table
            count = self._unknown[carrier.id] = self._unknown.get(carrier.id, 0) + 1
            if count >= self.config.unknown_code_limit:
                self._unknown.pop(carrier.id, None)
                results.requeue.append((i, self._stop(carrier, "unknown", (
                    f"{count} answers in a row Loa does not know, the last: {reason}"))))
                batch.held += 1
            else:
                results.retry.append((i, reason))

    # -- status and Cancel (adapters.base.Withdrawable) --------------------------------------

    def identifier(self, envelope: Envelope) -> str:
        return self.profile.identifier(envelope)

    def live_until(self, envelope: Envelope) -> float:
        return self.profile.expires(envelope).timestamp()

    async def standing(self, envelope: Envelope, target: str) -> Standing | None:
        """The broadcast's state as the carrier's CBC says it; None when it has no status
        interface (``status_url = "none"``)."""
        carrier = self._carrier(target)
        url = carrier.status_of(self.profile.identifier(envelope))
        if not url:
            return None
        try:
            status, body, _ = await self._call("GET", self._client.url(url), b"", carrier)
        except _Failed as failed:
            raise ChannelError(f"cell_broadcast {carrier.id}: status not read: "
                               f"{failed.reason}") from None
        found = codes.lookup(status, cancel=True)
        if found is not None and found[1] is Outcome.ABSENT:
            return Standing(State.ABSENT, detail=f"HTTP {status} ({found[0]})")
        answer = standing_of(body) if status == 200 else None
        if answer is None:
            raise ChannelError(f"cell_broadcast {carrier.id}: status not read: HTTP {status}"
                               + (f" ({found[0]})" if found else "")
                               + (f": {said(body)}" if said(body) else ""))
        self.stats.reads += 1
        return answer

    async def withdraw(self, envelope: Envelope, target: str) -> Standing:
        """Send the CAP Cancel of the wave's alert to the carrier; its state after (cancelled,
        or absent: the CBC does not know it). A Cancel answered 409 (the CBC has it already:
        an earlier try's) is done too."""
        carrier = self._carrier(target)
        cancel = self.profile.cancel(envelope, carrier, dt.datetime.now(dt.UTC))
        try:
            status, body, headers = await self._call(
                "POST", self._submit_url(carrier), self.profile.document(cancel), carrier,
                content_type=carrier.options.content_type)
        except _Failed as failed:
            raise ChannelError(f"cell_broadcast {carrier.id}: Cancel not answered: "
                               f"{failed.reason}") from None
        found = codes.lookup(status, cancel=True)
        outcome = found[1] if found is not None else None
        words = said(body)
        if outcome in (Outcome.ACCEPTED, Outcome.DUPLICATE, Outcome.ABSENT):
            self.stats.cancels += 1
            assert found is not None
            state = State.ABSENT if outcome is Outcome.ABSENT else State.CANCELLED
            return Standing(state, reference_of(body, headers),
                            f"HTTP {status} ({found[0]})" + (f": {words}" if words else ""))
        reason = (f"cell_broadcast {carrier.id}: Cancel refused: HTTP {status}"
                  + (f" ({found[0]})" if found else "") + (f": {words}" if words else ""))
        if outcome is Outcome.REJECTED or outcome is Outcome.CREDENTIALS:
            self._alert("cancel", reason)
        raise ChannelError(reason)

    def _carrier(self, target: str) -> Carrier:
        carrier = self._carriers.get(target)
        if carrier is None:
            raise ChannelError(f"cell_broadcast: no carrier {target!r} in [cell_broadcast] "
                               "carriers")
        return carrier

    # -- HTTP ------------------------------------------------------------------------------------

    def _submit_url(self, carrier: Carrier) -> Url:
        url = self._urls.get(carrier.id)
        if url is None:
            url = self._urls[carrier.id] = self._client.url(carrier.url)
        return url

    async def _call(self, method: str, url: Url, body: bytes, carrier: Carrier, *,
                    content_type: str = "") -> tuple[int, bytes, dict[str, str]]:
        """One request with the carrier's credentials: its status, body and headers; a
        failure without an answer is raised as :class:`_Failed`."""
        headers = {"Accept": "application/json, application/xml;q=0.9, */*;q=0.5"}
        if content_type:
            headers["Content-Type"] = f"{content_type}; charset=utf-8"
        if carrier.auth is Auth.BASIC:
            pair = f"{carrier.user}:{carrier.password}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        elif carrier.auth is Auth.BEARER:
            headers["Authorization"] = f"Bearer {carrier.token}"
        self.stats.requests += 1
        try:
            answer = await self._client.request(method, url, body, headers)
        except TransportFailure as exc:
            raise _Failed(exc.reason, connect=exc.kind == "connect") from None
        return answer.status, answer.body, dict(answer.headers)

    # -- carriers that wait ----------------------------------------------------------------------

    def _accepted(self, carrier: Carrier) -> None:
        """The CBC took an alert: whatever held the carrier is over."""
        hold = self._holds.pop(carrier.id, None)
        if hold is not None and hold.kind in ALERTS:
            log.warning("cell broadcast: %s accepts alerts again (it was stopped: %s)",
                        carrier.id, hold.kind, extra=EXTRA)

    def _throttle(self, carrier: Carrier, reason: str, after: float | None) -> str:
        now = time.time()
        hold = self._holds.get(carrier.id)
        if hold is not None and hold.until > now and hold.kind == "throttle":
            return hold.reason
        config = self.config
        if after is not None:
            backoff = min(max(after, 0.0), config.throttle_pause_max)
        else:
            backoff = min(config.throttle_pause_max, hold.backoff * 2
                          if hold is not None and hold.kind == "throttle"
                          else config.throttle_pause)
        why = f"{reason}; {carrier.id} paused for {backoff:g} s"
        self._holds[carrier.id] = _Hold("throttle", why, now + backoff, backoff)
        log.warning("cell broadcast: %s asks Loa to slow down: paused for %g s", carrier.id,
                    backoff, extra=EXTRA)
        return why

    def _stop(self, carrier: Carrier, kind: str, reason: str) -> str:
        """Stop ``carrier`` until its next try, every ``alert_probe_seconds``."""
        now = time.time()
        hold = self._holds.get(carrier.id)
        if hold is not None and hold.until > now and hold.kind == kind:
            return hold.reason
        probe = self.config.alert_probe_seconds
        why = f"{reason}; {carrier.id} stopped, tried again every {probe:g} s"
        self._alert(kind, f"{carrier.id} stopped, its alerts kept queued, an operator must "
                          f"act: {reason}")
        self._holds[carrier.id] = _Hold(kind, why, now + probe, probe)
        return why

    def _alert(self, reason: str, text: str) -> None:
        self.stats.alerts += 1
        metrics.ALERTS.labels(reason).inc()
        log.error("ALERT cell broadcast (%s): %s", reason, text, extra=EXTRA)
