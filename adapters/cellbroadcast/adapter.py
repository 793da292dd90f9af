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

import base64
import datetime as dt
import logging
import time

import msgspec

from adapters.base import Envelope, Standing
from adapters.cellbroadcast import codes, metrics
from adapters.cellbroadcast.answers import reference_of, retry_after, said, standing_of
from adapters.cellbroadcast.codes import Outcome
from adapters.cellbroadcast.config import Auth, Carrier, CellBroadcastConfig
from adapters.cellbroadcast.profile import Profile
from adapters.http.client import HttpClient, TransportFailure, Url
from adapters.http.proxy import Proxies
from adapters.outlet import Batch, BatchOutlet, backoff
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


class _Failed(Exception):
    """A request that got no HTTP answer: its words, and whether it never left."""

    def __init__(self, reason: str, *, connect: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.connect = connect


class CellBroadcastAdapter(BatchOutlet[CellBroadcastConfig, CellBroadcastStats, Carrier]):
    """The cell broadcast channel (see the module's documentation and
    :class:`CellBroadcastConfig`); ``cap`` gives the alerts' sender, status and event,
    ``province`` the districts' names."""

    NAME = "cell broadcast"
    LOG = log
    EXTRA = EXTRA
    ITEMS, ITEM = "alerts", "alert"
    STOPS = ALERTS
    LIFTED = "cell broadcast: %s accepts alerts again (it was stopped: %s)"
    ALERT_COUNTER = metrics.ALERTS
    KEY, KIND = "cell_broadcast", "carrier"
    AWAY = "the broadcast centres are away"
    FAILURE_EXTRA = EXTRA

    def __init__(self, config: CellBroadcastConfig, cap: CapSettings, province: Province, *,
                 client: HttpClient | None = None) -> None:
        super().__init__(config, CellBroadcastStats(),
                         {carrier.id: carrier for carrier in config.carriers})
        self.profile = Profile(config, cap, province)
        self.status_seconds = config.status_seconds
        self.status_reads = config.status_reads
        self.timeout = config.timeout
        self._client = client or HttpClient(
            config.concurrency, config.timeout, peer="the cell broadcast centre",
            proxies=Proxies.configured(config.proxy, config.no_proxy))
        self._urls: dict[str, Url] = {}
        metrics.track(self)

    async def aclose(self) -> None:
        self._closed = True
        metrics.untrack(self)
        await self._client.aclose()

    def _away(self, seconds: float) -> None:
        self.stats.outage_pauses += 1
        log.warning("cell broadcast: the centres answer 5xx or nothing: route paused for "
                    "%g s", seconds, extra=EXTRA)

    # -- one alert -------------------------------------------------------------------------------

    def _unfit(self, envelope: Envelope, carrier: Carrier) -> str:
        """Why no centre may take the wave's alert: expired, or longer than ``max_chars``."""
        expires = self.profile.expires(envelope)
        if time.time() >= expires.timestamp():
            return (f"cell_broadcast: expired at {expires.isoformat()} before a centre took it "
                    "(duration_hours)")
        most = carrier.options.max_chars
        longest = max(len(words) for _, words in self.profile.text(envelope))
        if most and longest > most:
            return (f"cell_broadcast: {longest} characters, more than {carrier.id}'s max_chars "
                    f"({most})")
        return ""

    async def _deliver(self, batch: Batch, i: int, carrier: Carrier) -> None:
        alert = self.profile.alert(batch.envelope, carrier)
        try:
            status, body, headers = await self._call(
                "POST", self._submit_url(carrier), self.profile.document(alert),
                carrier, content_type=carrier.options.content_type)
        except _Failed as failed:
            batch.down += 1
            if failed.connect:
                batch.results.requeue.append((i, failed.reason))
            else:
                self.stats.unanswered += 1
                batch.results.retry.append((i, failed.reason))
            return
        self._settle(batch, i, carrier, status, body, headers)

    def _settle(self, batch: Batch, i: int, carrier: Carrier, status: int, body: bytes,
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
            self._took(results, i, carrier.id, reference_of(body, headers))
        elif outcome is Outcome.REJECTED:
            self.stats.rejected += 1
            self._alert("rejected", f"{carrier.id} refused the alert of wave "
                                    f"{batch.envelope.wave}: {reason}")
            results.failed.append((i, reason))
        elif outcome is Outcome.CREDENTIALS or outcome is Outcome.ENDPOINT:
            batch.held_back(i, carrier.id, self._hold(carrier.id, outcome.value, reason))
        elif outcome is Outcome.THROTTLE:
            self.stats.throttled += 1
            batch.held_back(i, carrier.id, self._hold(carrier.id, "throttle", reason,
                                                      retry_after(headers)))
        elif outcome is Outcome.RETRY:
            batch.down += status >= 500
            results.retry.append((i, reason))
        elif count := self._unknowns(carrier.id, self.config.unknown_code_limit):
            batch.held_back(i, carrier.id, self._hold(carrier.id, "unknown", (
                f"{count} answers in a row Loa does not know, the last: {reason}")))
        else:  # not in the table, not yet too many in a row
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
        carrier = self._targets.get(target)
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

    def _pause(self, target: str, kind: str, reason: str, last: float | None,
               asked: float | None) -> tuple[float, str]:
        """A carrier that throttles Loa waits for its Retry-After, else ``throttle_pause``
        doubling while it lasts."""
        config = self.config
        seconds = backoff(last, config.throttle_pause, config.throttle_pause_max, asked=asked)
        log.warning("cell broadcast: %s asks Loa to slow down: paused for %g s", target, seconds,
                    extra=EXTRA)
        return seconds, f"{reason}; {target} paused for {seconds:g} s"
