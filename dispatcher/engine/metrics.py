"""Prometheus metrics of the engine (the channels' are in :mod:`adapters.metrics`).

Naming follows Prometheus: the ``loa_`` prefix, base units (seconds), ``_total`` on counters,
and bounded labels only: ``channel`` (sms, zalo, email, app; facebook, portal, loudspeaker,
cell_broadcast), ``carrier`` (a configured carrier of ``[cell_broadcast]``), ``route`` (a
configured route: ``sms.<link group>``, ``zalo``, ``facebook``, ...), ``link`` (a configured SMPP
link), ``controller`` (a configured Wi-Fi controller's id), ``result``, ``outcome`` and ``state``
(fixed words). Never a number, an address or an id of a message.

The hot path pays per batch, not per message: a worker counts a batch's outcomes with one
``inc(n)`` per outcome that occurred, observes the adapter call once, and adds its throttle wait
once, on children bound at start (:class:`RouteMetrics`). Gauges that need store reads (queue
depth per route, the level, wave progress) are set by :class:`Collector`, a task of the engine
that reads the store every ``interval`` seconds: one ``depth`` call per route, one level read,
the wave states and one progress read per live wave.

Every process exposes its own metrics; Prometheus scrapes each worker process (see
docs/operations.md). Counters are per process (``sum`` them); the collector's gauges describe
the shared store and are the same in every process (``max`` them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
)
from prometheus_client import generate_latest as _generate_latest

from adapters.base import Results
from adapters.metrics import (
    CHANNEL_GAUGES,
    RECEIPTS,
    RECEIPTS_MALFORMED,
    RECEIPTS_MATCHED,
    RECEIPTS_UNMATCHED,
)
from dispatcher.domain.model import WAVE_FINAL, Channel, Wave, WaveState
from dispatcher.engine import routing
from dispatcher.store.base import Store
from dispatcher.store.outage import UNAVAILABLE

__all__ = ["BATCH_SECONDS", "CHANNEL_GAUGES", "DEAD_LETTERS", "EMERGENCY_STOP", "LEVEL",
           "MESSAGES", "QUEUE_ENTRIES", "QUEUE_RETRIES", "RECEIPTS", "RECEIPTS_MALFORMED",
           "RECEIPTS_MATCHED",
           "RECEIPTS_UNMATCHED", "SENT_MARKED", "SENT_MARKS_WRITE", "STORE", "STORE_OUTAGES",
           "STORE_TRANSIENT", "STORE_UP", "TEXT_DEGRADED_REASONS", "THROTTLE_WAIT", "WAVES",
           "WAVE_MESSAGES", "WAVE_TEXTS_DEGRADED", "WIFI_LAG", "WIFI_PUSHES", "WIFI_REFUSED",
           "Backoff",
           "Collector", "MetricsServer", "RouteMetrics", "StoreHealth", "exposition", "for_route",
           "serve"]

log = logging.getLogger(__name__)

#: How the collector reads a wave's progress (:func:`dispatcher.engine.process.wave_progress`,
#: passed in by the engine, which imports this module): an object with the fields of
#: ``WAVE_FIELDS``.
ProgressReader = Callable[[Store, Wave], Awaitable[object]]

#: The outcomes a worker counts, the ``result`` label of ``loa_messages_total``.
RESULTS = ("sent", "retry", "failed", "expired", "cancelled", "skipped", "requeued", "fallback",
           "unrecorded", "repeats", "fallback_capped")
#: The fields of a wave's progress reported by ``loa_wave_messages``.
WAVE_FIELDS = ("total", "queued", "sent", "failed", "expired", "retrying", "cancelled",
               "skipped", "delivered", "undelivered", "receipt_expired", "fallback", "repeats",
               "fallback_capped", "suppressed")
BATCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
COLLECT_SECONDS = 5.0

MESSAGES = Counter(
    "loa_messages", "Messages by outcome, counted per batch by the worker that sent it: sent, "
    "retry (scheduled again), failed (permanent), expired (retries exhausted), cancelled, "
    "skipped (already sent), requeued (never reached the channel), fallback (rerouted to SMS; "
    "also counted as failed), unrecorded (sent, but the store could not record it: the batch "
    "is taken over after the lease and these are sent again), repeats (not sent: the recipient "
    "got the same text on the channel from another wave within the window), fallback_capped "
    "(not rerouted to SMS: the recipient had fallback_max_per_day today)",
    ["channel", "route", "result"])
BATCH_SECONDS = Histogram(
    "loa_batch_seconds", "Time a channel took to send one batch (submit latency per batch)",
    ["channel", "route"], buckets=BATCH_BUCKETS)
THROTTLE_WAIT = Counter(
    "loa_throttle_wait_seconds", "Time batches waited on the route's rate limit",
    ["route"])
QUEUE_ENTRIES = Gauge(
    "loa_queue_entries", "Batches (stream entries) on the route's stream, read or not",
    ["route"])
QUEUE_RETRIES = Gauge(
    "loa_queue_retries", "Messages waiting for a retry on the route", ["route"])
DEAD_LETTERS = Gauge("loa_dead_letters", "Dead letters of the route", ["route"])
QUEUE_OLDEST = Gauge("loa_queue_oldest_seconds",
                     "Age of the oldest batch waiting in the route (0: none)", ["route"])
LEVEL = Gauge("loa_level", "The epidemic level in force (0: none set)")
EMERGENCY_STOP = Gauge("loa_emergency_stop", "1 while the emergency stop is on: nothing is sent")
WAVES = Gauge("loa_waves", "Waves by state", ["state"])
WAVE_MESSAGES = Gauge(
    "loa_wave_messages", "Messages of the live (not completed, not cancelled) waves, by "
    "progress field (total, queued, sent, failed, ...)", ["channel", "state"])
SENT_MARKED = Counter(
    "loa_sent_marked", "Messages whose sent bit was written as the channel took them, while "
    "their batch was still being sent (dispatcher/engine/sentmarks.py)")
SENT_MARKS_WRITE = Histogram(
    "loa_sent_marks_per_write", "Messages per write of sent bits made while batches are being "
    "sent: what a worker killed just before a write leaves unrecorded, beyond what is on the "
    "wire", buckets=(1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096))
COLLECT_ERRORS = Counter("loa_collector_errors", "Collector passes that failed")
STORE_UP = Gauge("loa_store_up", "1 while the store (Redis) answers this process, 0 during an "
                 "outage")
STORE_UP.set(1)
CHANNEL_CONFIGURED = Gauge(
    "loa_channel_configured", "1 when this process sends on the channel: configured (a real "
    "adapter) or simulated=\"true\" (declared in [channels] simulate: sent to no one); 0 when "
    "it has no configuration (nothing is sent on it)", ["channel", "simulated"])
CAMPAIGNS_REFUSED = Counter(
    "loa_campaigns_refused", "Approved campaigns the engine refused to start (marked failed): "
    "above the approval threshold with no approver, or approved by their creator")
#: Why a plan wave's text was degraded (the ``reason`` label of ``loa_wave_texts_degraded``).
TEXT_DEGRADED_REASONS = ("missing_field", "over_parts", "approved_refused")
WAVE_TEXTS_DEGRADED = Counter(
    "loa_wave_texts_degraded", "Plan waves made with a text the situation record did not fully "
    "give: reason=\"missing_field\" (a field rendered as \"chưa cập nhật\": no record, or a "
    "free field it lacks), \"over_parts\" (an SMS still over sms_max_parts with fewer areas, "
    "sent as rendered) or \"approved_refused\" (an approved text the plan no longer accepts: "
    "the plan file's text sent)", ["channel", "reason"])
SUPPRESSED = Counter(
    "loa_suppressed", "Recipients a wave did not send to because their number is on the "
    "channel's suppression list (opt-out, refused for good, an operator's entry); a "
    "public-safety campaign's waves skip none", ["channel"])
CAP_PUBLISHED = Counter(
    "loa_cap_published", "Public alerts this process published as CAP messages (each is "
    "published once, by one process): origin=\"level\", \"campaign\" or \"wave\"; msg_type="
    "\"Alert\", \"Update\" or \"Cancel\"", ["origin", "msg_type"])
WIFI_PUSHES = Counter(
    "loa_wifi_push", "Pushes of the public notice to the public Wi-Fi controllers, by answer: "
    "pushed (2xx), error (5xx, 408, 425, a connection cut: tried again), timeout (tried again; "
    "it may have arrived), unreachable (no connection: tried again), throttled (429: after its "
    "Retry-After), refused (401/403: the notice waits), rejected (another 4xx: that notice is "
    "skipped for the controller); superseded counts the notices a controller that was behind "
    "did not get because a newer one was pushed to it", ["controller", "outcome"])
WIFI_LAG = Gauge(
    "loa_wifi_lag", "Public messages published that the Wi-Fi controller has not taken yet "
    "(0: it has the newest notice); the same in every process that runs the pusher (max it)",
    ["controller"])
WIFI_REFUSED = Gauge(
    "loa_wifi_refused", "1 while the Wi-Fi controller refuses Loa's pushes (401/403: a wrong "
    "secret); set by the process that pushes, 0 in the others (max it)", ["controller"])
CELL_BROADCAST_STATUS = Gauge(
    "loa_cell_broadcast_status", "Cell broadcasts the carriers' centres took, by carrier and "
    "state as the centre last said it (accepted, broadcasting, completed, expired, cancelled, "
    "failed, absent, unknown); the newest 1000, read from the store", ["carrier", "status"])
CELL_BROADCAST_CANCELS = Counter(
    "loa_cell_broadcast_cancels", "CAP Cancels of cell broadcasts this process had a centre "
    "take (each broadcast is cancelled once): reason=\"wave_cancelled\", \"withdrawn\" or "
    "\"emergency_stop\"",
    ["reason"])
CELL_BROADCAST_CANCEL_FAILURES = Counter(
    "loa_cell_broadcast_cancel_failures", "Cancels of cell broadcasts a carrier's centre did "
    "not take (tried again, backing off up to a minute), by carrier", ["carrier"])
#: What the retention pass removes, the ``data`` label of ``loa_retention_pruned_total``.
RETENTION_DATA = ("list", "cap_message")
RETENTION_PRUNED = Counter(
    "loa_retention_pruned", "What this process's retention pass removed from the store (one "
    "process prunes at a time: sum them): data=\"list\" (uploaded lists of numbers past [lists] "
    "retention_days that no campaign in progress names), \"cap_message\" (published CAP "
    "messages past [cap] retention_days, no longer in force, shown or referenced)", ["data"])
STORE_OUTAGES = Counter("loa_store_outages", "Times this process lost its store (Redis "
                        "unreachable, restarting, loading its data)")

#: Errors of a store that went away and comes back
#: (:class:`~dispatcher.domain.errors.StoreUnavailable`: a connection refused or lost, a timeout, a
#: Redis loading its AOF after a restart, a cluster electing a new master), and the operating
#: system's. The engine's loops wait and try again on these; any other error is a bug or a
#: misconfiguration and surfaces.
STORE_TRANSIENT: tuple[type[Exception], ...] = (*UNAVAILABLE, OSError)
BACKOFF_FIRST = 0.1  # seconds a loop waits after its first failed store call
BACKOFF_MOST = 2.0  # ... doubling up to this
#: After an outage, pooled connections opened before it fail once each when next used; their
#: failures within this many seconds of the store answering again are not a new outage.
STALE_SECONDS = 10.0


class StoreHealth:
    """Whether the store answers, for the whole process: an outage is logged when it begins and
    when it ends, once, however many loops notice it."""

    def __init__(self) -> None:
        self.down_since: float | None = None
        self.failures = 0  # failed calls of the outage going on
        self.outages = 0
        self._back = -STALE_SECONDS  # when the last outage ended

    @property
    def up(self) -> bool:
        return self.down_since is None

    def failed(self, exc: BaseException, where: str) -> None:
        self.failures += 1
        if self.down_since is None:
            now = time.monotonic()
            if now - self._back < STALE_SECONDS:
                log.debug("a connection from before the outage failed (%s in %s: %s)",
                          type(exc).__name__, where, exc)
                return
            self.down_since = now
            self.outages += 1
            STORE_UP.set(0)
            STORE_OUTAGES.inc()
            log.warning("store unreachable (%s in %s: %s); every loop waits and tries again",
                        type(exc).__name__, where, exc)

    def answered(self) -> None:
        if self.down_since is not None:
            log.warning("store answers again after %.1f s (%d calls failed meanwhile)",
                        time.monotonic() - self.down_since, self.failures)
            self.down_since = None
            self.failures = 0
            self._back = time.monotonic()
            STORE_UP.set(1)


STORE = StoreHealth()


class Backoff:
    """One loop's wait after transient store errors: ``BACKOFF_FIRST``, doubling up to
    ``BACKOFF_MOST``, back to the start once a call succeeds."""

    __slots__ = ("delay", "where")

    def __init__(self, where: str) -> None:
        self.where = where
        self.delay = 0.0

    def failed(self, exc: BaseException) -> float:
        """Seconds to wait before trying again."""
        STORE.failed(exc, self.where)
        self.delay = min(BACKOFF_MOST, self.delay * 2) if self.delay else BACKOFF_FIRST
        return self.delay

    def ok(self) -> None:
        if self.delay:
            self.delay = 0.0
            STORE.answered()


class RouteMetrics:
    """A route's counters, bound once: what a worker touches per batch."""

    __slots__ = ("batch", "cancelled", "expired", "failed", "fallback", "fallback_capped",
                 "repeats", "requeued", "retry", "sent", "skipped", "throttle", "unrecorded")

    def __init__(self, route: str) -> None:
        channel = routing.channel_of(route).value
        self.sent = MESSAGES.labels(channel, route, "sent")
        self.retry = MESSAGES.labels(channel, route, "retry")
        self.failed = MESSAGES.labels(channel, route, "failed")
        self.expired = MESSAGES.labels(channel, route, "expired")
        self.cancelled = MESSAGES.labels(channel, route, "cancelled")
        self.skipped = MESSAGES.labels(channel, route, "skipped")
        self.requeued = MESSAGES.labels(channel, route, "requeued")
        self.fallback = MESSAGES.labels(channel, route, "fallback")
        self.unrecorded = MESSAGES.labels(channel, route, "unrecorded")
        self.repeats = MESSAGES.labels(channel, route, "repeats")
        self.fallback_capped = MESSAGES.labels(channel, route, "fallback_capped")
        self.batch = BATCH_SECONDS.labels(channel, route)
        self.throttle = THROTTLE_WAIT.labels(route)

    def count(self, results: Results, expired: int) -> None:
        """A batch's outcomes; ``expired`` of its retries ran out of attempts."""
        if results.sent:
            self.sent.inc(len(results.sent))
        if results.retry:
            if len(results.retry) > expired:
                self.retry.inc(len(results.retry) - expired)
            if expired:
                self.expired.inc(expired)
        if results.failed:
            self.failed.inc(len(results.failed))
        if results.requeue:
            self.requeued.inc(len(results.requeue))


_routes: dict[str, RouteMetrics] = {}


def for_route(route: str) -> RouteMetrics:
    found = _routes.get(route)
    if found is None:
        found = _routes[route] = RouteMetrics(route)
    return found


class MetricsServer:
    """``/metrics`` on a thread of its own (prometheus-client's HTTP server)."""

    def __init__(self, port: int, addr: str = "0.0.0.0") -> None:
        self._server, self._thread = start_http_server(port, addr)
        self.port: int = self._server.server_port

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def serve(port: int, addr: str = "0.0.0.0") -> MetricsServer:
    """Serve ``/metrics`` for a process without the API (a worker started with ``loa worker``);
    port 0 takes a free port. The API serves the same registry at its own ``/metrics``."""
    return MetricsServer(port, addr)


def exposition() -> tuple[bytes, str]:
    """This process's metrics in the text format, and its content type (for ``/metrics``)."""
    return _generate_latest(REGISTRY), CONTENT_TYPE_LATEST


class Collector:
    """Sets the gauges that need store reads, every ``interval`` seconds."""

    def __init__(self, store: Store, routes: Iterable[str], progress: ProgressReader, *,
                 interval: float = COLLECT_SECONDS) -> None:
        self.store = store
        self.progress = progress
        self.routes = list(routes)
        self.interval = interval
        self._waves: dict[str, Wave] = {}  # waves are immutable: read each once

    async def run(self, stop: asyncio.Event) -> None:
        backoff = Backoff("the metrics collector")
        while not stop.is_set():
            wait = self.interval
            try:
                await self.collect()
            except asyncio.CancelledError:
                raise
            except STORE_TRANSIENT as exc:  # logged once per outage, by StoreHealth
                COLLECT_ERRORS.inc()
                wait = min(self.interval, backoff.failed(exc))
            except Exception:  # a metric must never stop the engine
                COLLECT_ERRORS.inc()
                log.warning("metrics collection failed", exc_info=True)
            else:
                backoff.ok()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)

    async def collect(self) -> None:
        for route in self.routes:
            entries, retries, dead = await self.store.queue.depth(route)
            oldest = await self.store.queue.oldest(route)
            QUEUE_OLDEST.labels(route).set(max(0.0, time.time() - oldest) if oldest else 0.0)
            QUEUE_ENTRIES.labels(route).set(entries)
            QUEUE_RETRIES.labels(route).set(retries)
            DEAD_LETTERS.labels(route).set(dead)
        level = await self.store.level.get()
        LEVEL.set(level.level if level is not None else 0)
        stop = await self.store.stop.get()
        EMERGENCY_STOP.set(1 if stop is not None and stop.active else 0)
        states = await self.store.waves.states()
        by_state = dict.fromkeys(WaveState, 0)
        for state in states.values():
            by_state[state] += 1
        for state, n in by_state.items():
            WAVES.labels(state.value).set(n)
        await self._wave_messages(states)

    async def _wave_messages(self, states: dict[str, WaveState]) -> None:
        sums = {c.value: dict.fromkeys(WAVE_FIELDS, 0) for c in Channel}
        for wave_id, state in states.items():
            if state in WAVE_FINAL:
                self._waves.pop(wave_id, None)
                continue
            wave = self._waves.get(wave_id)
            if wave is None:
                wave = await self.store.waves.get(wave_id)
                if wave is None:
                    continue
                self._waves[wave_id] = wave
            progress = await self.progress(self.store, wave)
            counts = sums[wave.channel.value]
            for field in WAVE_FIELDS:
                counts[field] += getattr(progress, field)
        for channel, counts in sums.items():
            for field, n in counts.items():
                WAVE_MESSAGES.labels(channel, field).set(n)
