"""The loudspeaker channel: each wave read aloud, uploaded once to each loudspeaker system.

An envelope's addresses are system ids of ``[loudspeaker] systems`` (the wave's targets) and its
text the bulletin of their district. The text is rendered to speech once per wave and text
(:class:`~adapters.loudspeaker.speech.Renderings`), then uploaded to each system as a broadcast
of the generic HTTP profile (:mod:`adapters.loudspeaker.broadcast`), at most ``concurrency``
uploads in flight, on one pooled keep-alive client (:mod:`adapters.http.client`). Each system
gets the broadcast id ``<wave>:<system>``: a system that took it answers 409 to a later try,
which counts as sent, so a system plays a wave once.

The answers decide each upload's outcome by the table of :mod:`adapters.loudspeaker.codes`:

* 201/200 with the system's id, or 409: ``results.sent`` (the id in ``remote_ids``);
* 5xx, 408, no answer in time, the connection broken after the upload left: ``results.retry``
  (the next try meets 409 if the upload had arrived);
* no connection at all: ``results.requeue`` (the upload never left, no attempt used);
* 429: the system waits for its ``Retry-After`` (``throttle_pause`` without one, at most
  ``throttle_pause_max``); its bulletins are requeued;
* 401/403: the system stops, its bulletins are requeued, an ALERT is logged and
  ``loa_loudspeaker_system_stopped{system,reason="token"}`` is 1; one upload is tried every
  ``alert_probe_seconds`` until the system accepts (a new token in its ``token_env``, the
  workers restarted);
* 400, 413, 415, 422: ``results.failed`` with the system's reason;
* a status not in the table: retried; ``unknown_status_limit`` in a row stop the system with an
  alert (reason ``unknown``), tried again every ``alert_probe_seconds``.

A batch whose every bulletin waits for its system (stopped or backing off) pauses the route
until the first of them may be tried again, for routine batches only. The speech program
missing is an alert (reason ``speech``): the bulletins are requeued until it is installed; a
rendering that fails or takes too long is retried.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import logging
import time
from collections.abc import Callable

import msgspec

from adapters import metrics
from adapters.base import HALTED, Envelope, Results, halted, results_for
from adapters.http.client import HttpClient, TransportFailure, Url
from adapters.http.proxy import Proxies
from adapters.loudspeaker import broadcast
from adapters.loudspeaker.codes import Outcome, lookup
from adapters.loudspeaker.config import LoudspeakerConfig, System
from adapters.loudspeaker.normalise import normalise
from adapters.loudspeaker.speech import Audio, Renderings, Speaker, SpeechFailed, find
from adapters.outlet import Hold, Outlet
from dispatcher.domain.errors import ChannelError, ConfigError

log = logging.getLogger(__name__)

REASON_CHARS = 200  # of a system's error quoted in a reason
EXTRA = {"channel": "loudspeaker"}


class LoudspeakerStats(msgspec.Struct):
    requests: int = 0  # uploads made
    broadcasts: int = 0  # uploads a system took (201/200)
    taken: int = 0  # uploads answered 409: the system had the bulletin already
    retried: int = 0
    failed: int = 0
    requeued: int = 0  # not attempted (system stopped or backing off, no connection, halted)
    unanswered: int = 0  # uploads with no answer in time: the next try meets 409 if they arrived
    throttled: int = 0  # 429 answers
    alerts: int = 0


class _Refused(Exception):
    """An upload that was not taken: its outcome (None: a status Loa does not know)."""

    def __init__(self, outcome: Outcome | None, reason: str, *, connect: bool = False,
                 wait: float = 0.0) -> None:
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason
        self.connect = connect  # the upload never left
        self.wait = wait  # seconds the system asked to wait (Retry-After)


def retry_after(value: str, now: float) -> float | None:
    """Seconds a ``Retry-After`` asks (delay-seconds or an HTTP date); None if unreadable."""
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


class LoudspeakerAdapter(Outlet[LoudspeakerConfig, LoudspeakerStats]):
    """The loudspeaker channel (see the module's documentation and :class:`LoudspeakerConfig`).
    ``clock`` gives the time the broadcasts are scheduled from (epoch seconds)."""

    NAME = "loudspeaker"
    LOG = log
    EXTRA = EXTRA
    WHO = "system "
    ITEMS = "bulletins"
    STOPS = metrics.LOUDSPEAKER_STOP_REASONS
    LIFTED = "loudspeaker system %s accepts broadcasts again (it was stopped: %s)"
    ALERT_COUNTER = metrics.LOUDSPEAKER_ALERTS

    def __init__(self, config: LoudspeakerConfig, *, speaker: Speaker | None = None,
                 client: HttpClient | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        if speaker is None and find(config.speech.binary) is None:
            raise ConfigError(f"{config.speech.binary} is not installed: install the Debian "
                              "package espeak-ng, or name the program", key="loudspeaker.speech"
                                                                          ".binary")
        super().__init__(config, LoudspeakerStats())
        self.clock = clock
        self.speaker = speaker or Speaker(config.speech)
        self.renderings = Renderings(self.speaker)
        self._systems = {system.id: system for system in config.systems}
        self._client = client or HttpClient(
            config.concurrency, config.timeout, connect_timeout=config.connect_timeout,
            peer="loudspeaker system", proxies=Proxies.configured(config.proxy, config.no_proxy))
        self._urls: dict[str, Url] = {}
        self._slots = asyncio.Semaphore(config.concurrency)

    async def aclose(self) -> None:
        self._closed = True
        for system, kind in self.stopped.items():
            metrics.LOUDSPEAKER_STOPPED.remove(system, kind)
        self._holds.clear()
        await self._client.aclose()

    # -- sending -----------------------------------------------------------------------------

    async def send(self, envelope: Envelope) -> Results:
        if self._closed:
            raise ChannelError("loudspeaker channel is closed")
        results = results_for(envelope)
        if not normalise(envelope.text):
            results.failed.extend((i, "nothing to read: the text is empty")
                                  for i in range(len(envelope.addrs)))
            return self._count(results)
        waits: list[float] = []  # until when each held system waits
        todo: list[tuple[int, System]] = []
        for i, addr in enumerate(envelope.addrs):
            system = self._systems.get(addr)
            if system is None:
                results.failed.append((i, f"no system {addr!r} in [loudspeaker] systems"))
            elif halted(envelope):
                results.requeue.append((i, HALTED))
            elif (hold := self._held(system)) is not None:
                results.requeue.append((i, hold.reason))
                waits.append(hold.until)
            else:
                todo.append((i, system))
        if todo:
            try:
                audio = await self.renderings.audio(envelope.wave, envelope.text)
            except SpeechFailed as exc:
                self._speech_failed(exc, [i for i, _ in todo], results)
                return self._count(results)
            outcomes = await asyncio.gather(*(self._one(envelope, i, system, audio, results)
                                              for i, system in todo))
            waits.extend(until for until in outcomes if until)
        if waits and len(waits) == len(envelope.addrs) and not envelope.urgent:
            # nothing of the batch could go: the route waits for the first system to be free
            results.pause_until = min(waits)
            results.urgent_passes = True
        return self._count(results)

    def _held(self, system: System) -> Hold | None:
        """The pause of ``system`` in force now, if any (a stopped system past its time gets one
        probe: the hold moves on, so that one upload tries and the others wait)."""
        hold = self._holds.get(system.id)
        if hold is None:
            return None
        now = time.time()
        if now < hold.until:
            return hold
        if hold.kind in self.STOPS:
            hold.until = now + self.config.alert_probe_seconds  # this upload is the probe
        else:
            del self._holds[system.id]
        return None

    def _speech_failed(self, exc: SpeechFailed, indexes: list[int], results: Results) -> None:
        if exc.installed:
            results.retry.extend((i, str(exc)) for i in indexes)
            log.warning("loudspeaker bulletin not rendered: %s", exc, extra=EXTRA)
            return
        results.requeue.extend((i, str(exc)) for i in indexes)
        self._alert("speech", f"no bulletin can be read aloud, they wait queued: {exc}")

    async def _one(self, envelope: Envelope, i: int, system: System, audio: Audio,
                   results: Results) -> float:
        """Upload the bulletin to ``system``; when it must wait for the system, until when."""
        async with self._slots:
            if halted(envelope):
                results.requeue.append((i, HALTED))
                return 0.0
            hold = self._holds.get(system.id)
            if hold is not None and hold.kind == "throttle" and time.time() < hold.until:
                results.requeue.append((i, hold.reason))  # throttled while this one waited
                return hold.until
            try:
                remote = await self._upload(envelope, system, audio)
            except _Refused as refused:
                return self._settle(i, system, refused, results)
        self._took(results, i, system.id, remote)
        return 0.0

    async def _upload(self, envelope: Envelope, system: System, audio: Audio) -> str:
        url = self._urls.get(system.id)
        if url is None:
            url = self._urls[system.id] = self._client.url(
                system.url.rstrip("/") + broadcast.PATH)
        now = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
        content_type, body = broadcast.form(
            wave=envelope.wave, system=system, title=envelope.subject or self.config.title,
            text=envelope.text, times=broadcast.schedule(system, now, urgent=envelope.urgent),
            repeat=self.config.repeat, audio=audio)
        headers = {"Authorization": f"Bearer {system.token}", "Content-Type": content_type,
                   "Accept": "application/json", "User-Agent": "Loa"}
        self.stats.requests += 1
        try:
            response = await self._client.request("POST", url, body, headers)
        except TransportFailure as exc:
            if exc.kind == "connect":
                raise _Refused(Outcome.RETRY, exc.reason, connect=True) from None
            if exc.kind == "timeout":
                self.stats.unanswered += 1
            raise _Refused(Outcome.RETRY, f"{exc.reason}; it may have arrived") from None
        status = lookup(response.status)
        answer = broadcast.answer(response.body)
        if status is not None and status.outcome is Outcome.SENT:
            self.stats.broadcasts += 1
            return answer.id
        if status is not None and status.outcome is Outcome.TAKEN:
            self.stats.taken += 1
            log.info("loudspeaker system %s has the broadcast of wave %s already: not uploaded "
                     "again", system.id, envelope.wave, extra=EXTRA)
            return answer.id
        words = " ".join(answer.error.split())[:REASON_CHARS]
        meaning = status.meaning if status is not None else "a status Loa does not know"
        reason = f"{system.id}: HTTP {response.status} ({meaning})" + (
            f": {words}" if words else "")
        wait = 0.0
        if status is not None and status.outcome is Outcome.THROTTLE:
            asked = retry_after(response.headers.get("retry-after", ""), time.time())
            wait = self.config.throttle_pause if asked is None else asked
        raise _Refused(status.outcome if status is not None else None, reason, wait=wait)

    # -- outcomes ------------------------------------------------------------------------------

    def _accepted(self, target: str) -> None:
        """The system took an upload: whatever held it is over."""
        hold = self._holds.get(target)
        if hold is not None and hold.kind in self.STOPS:
            metrics.LOUDSPEAKER_STOPPED.remove(target, hold.kind)
        super()._accepted(target)

    def _settle(self, i: int, system: System, refused: _Refused, results: Results) -> float:
        """The outcome of an upload refused; when the system must be waited for, until when."""
        outcome, reason = refused.outcome, refused.reason
        if outcome is not None:
            self._unknown.pop(system.id, None)
        if refused.connect:
            results.requeue.append((i, reason))
        elif outcome is Outcome.THROTTLE:
            self.stats.throttled += 1
            wait = min(max(refused.wait, 1.0), self.config.throttle_pause_max)
            why = f"{reason}; system {system.id} waits {wait:g} s"
            hold = self._holds[system.id] = Hold("throttle", why, time.time() + wait)
            log.warning("loudspeaker system %s over its rate limit: waits %g s", system.id, wait,
                        extra=EXTRA)
            results.requeue.append((i, why))
            return hold.until
        elif outcome is Outcome.TOKEN:
            results.requeue.append((i, self._stop(system.id, "token", reason)))
            return self._holds[system.id].until
        elif outcome is Outcome.FAIL:
            results.failed.append((i, reason))
        elif outcome is None:
            count = self._unknowns(system.id, self.config.unknown_status_limit)
            if count:
                why = f"{count} answers in a row that Loa does not know, the last: {reason}"
                results.requeue.append((i, self._stop(system.id, "unknown", why)))
                return self._holds[system.id].until
            results.retry.append((i, reason))
        else:
            results.retry.append((i, reason))
        return 0.0

    def _stop(self, target: str, kind: str, reason: str) -> str:
        """Stop ``target`` until its next probe (its gauge 1 for ``kind``); the reason its
        bulletins are requeued with."""
        old = self._holds.get(target)
        if old is not None and old.kind != kind and old.kind in self.STOPS:
            metrics.LOUDSPEAKER_STOPPED.remove(target, old.kind)
        why = super()._stop(target, kind, reason)
        metrics.LOUDSPEAKER_STOPPED.labels(target, kind).set(1)
        return why
