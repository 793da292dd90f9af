"""The Zalo webhook's intake: every event taken once, and an answer within Zalo's two seconds.

Zalo waits about 2 s for a 200 and otherwise tries again later (and, after some failed tries,
turns the webhook off), so a request must never wait on a slow store. A request's events go
into this process's queue; one task takes them from it in batches, de-duplicates each batch in
the store with one command (:mod:`dispatcher.store.seen`) and passes the new events on. The
request waits for its batch at most ``wait`` seconds:

* taken in time: 200 with the number of new events;
* not yet (the store is slow or down): 200 all the same, the events wait in the queue and are
  taken once the store answers again (the queue is in this process's memory: a restart in
  that time loses them);
* the queue holds ``capacity`` events already: 503, counted in
  ``loa_webhook_queue_full_total``, and the events are not kept; Zalo sends them again.

Each queued event has a token (:func:`dispatcher.store.seen.new_token`): a batch whose command
timed out while the store still ran it is sent again with the same tokens and its new events
are still new, so a timeout neither loses an event nor lets a real repeat through.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable

from prometheus_client import Counter, Gauge, Histogram

from adapters.zalo.webhook import DeliveryEvent, ZaloEvent
from dispatcher.domain.errors import LoaError
from dispatcher.engine import metrics
from dispatcher.store.seen import SeenIds, new_token

log = logging.getLogger(__name__)

BATCH = 500  # events de-duplicated per store command (whole requests: one may be larger)
CLOSE_GRACE = 2.0  # seconds the queue is given to empty when the process stops

QUEUED = Gauge("loa_webhook_queued", "Zalo delivery events this process holds because the "
               "store has not taken them yet")
QUEUE_FULL = Counter("loa_webhook_queue_full", "Zalo delivery events answered 503 (Zalo sends "
                     "them again) because this process already held zalo_webhook_queue of them")
DELIVERY_DELAY = Histogram(
    "loa_zalo_delivery_delay_seconds", "From a Zalo message's delivery to the handset "
    "(message.delivery_time) until Loa took its delivery event",
    buckets=(1, 5, 15, 30, 60, 300, 900, 1800, 3600, 7200))

OnZaloEvents = Callable[[list[ZaloEvent]], None]


class WebhookBusy(LoaError):
    """The intake's queue is full: the request is answered 503 and Zalo sends it again."""

    retryable = True


NOT_PROCESSED = -1  # a request's answer when its events could not be passed on


class _Request:
    """One request's events, and the answer its handler waits for: the number of new events,
    None while they wait in the queue, NOT_PROCESSED. ``waiting`` is False once the handler
    answered without it."""

    __slots__ = ("answer", "events", "tokens", "waiting")

    def __init__(self, events: list[ZaloEvent], answer: asyncio.Future[int | None]) -> None:
        self.events = events
        self.tokens = [new_token() for _ in events]
        self.answer = answer
        self.waiting = True

    def settle(self, value: int | None) -> None:
        if not self.answer.done():
            self.answer.set_result(value)


def key(event: ZaloEvent) -> str:
    """The id an event is de-duplicated by."""
    if isinstance(event, DeliveryEvent):
        return event.msg_id or event.tracking_id
    return event.key


class WebhookIntake:
    """Takes the events of verified requests (:meth:`take`); :meth:`close` when stopping."""

    def __init__(self, seen: SeenIds, on_events: OnZaloEvents | None,
                 clock: Callable[[], float], *, wait: float = 1.5, capacity: int = 10_000,
                 batch: int = BATCH) -> None:
        self.seen = seen
        self.on_events = on_events
        self.clock = clock
        self.wait = wait
        self.capacity = capacity
        self.batch = batch
        self.close_grace = CLOSE_GRACE
        self._queue: deque[_Request] = deque()
        self._held = 0  # events in the queue and in the batch being taken
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def held(self) -> int:
        """Events not yet taken by the store."""
        return self._held

    async def take(self, events: list[ZaloEvent]) -> tuple[int, int]:
        """(new events passed on, events left waiting in the queue), within ``wait`` seconds;
        :class:`WebhookBusy` if the queue has no room for them; (NOT_PROCESSED, 0) if they
        could not be passed on (the answer is 500: Zalo sends them again)."""
        if not events:
            return 0, 0
        if self._held + len(events) > self.capacity or self._closing:
            QUEUE_FULL.inc(len(events))
            raise WebhookBusy(f"{self._held} delivery events already wait for the store; "
                              "send again later")
        self._start()
        answer: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        request = _Request(events, answer)
        self._queue.append(request)
        self._held += len(events)
        QUEUED.inc(len(events))
        self._wake.set()
        try:
            fresh = await asyncio.wait_for(asyncio.shield(answer), self.wait)
        except TimeoutError:
            fresh = None
        if fresh is None:
            request.waiting = False
            return 0, len(events)
        return fresh, 0

    def _start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="zalo-webhook-intake")

    async def close(self) -> None:
        """Take what waits (for at most ``close_grace`` seconds), then stop. (No parameter: a
        Litestar shutdown hook with one is given the application.)"""
        grace = self.close_grace
        self._closing = True
        task, self._task = self._task, None
        if task is None:
            return
        if self._held:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained(), grace)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if self._held:
            log.error("Zalo webhook: %d delivery events were not taken by the store before "
                      "the process stopped", self._held)
            QUEUED.dec(self._held)
            self._held = 0

    async def _drained(self) -> None:
        while self._held:
            await asyncio.sleep(0.01)

    async def _run(self) -> None:
        backoff = metrics.Backoff("the Zalo webhook's intake")
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = [self._queue.popleft()]
            size = len(batch[0].events)
            while self._queue and size + len(self._queue[0].events) <= self.batch:
                size += len(self._queue[0].events)
                batch.append(self._queue.popleft())
            try:
                await self._take(batch)
            except Exception as exc:
                self._queue.extendleft(reversed(batch))
                for request in batch:  # their handlers answer now: the events wait here
                    request.settle(None)
                if not backoff.delay and not isinstance(exc, metrics.STORE_TRANSIENT):
                    log.error("Zalo webhook: the store refused a batch (%s); it is tried "
                              "again", exc, exc_info=exc)
                await asyncio.sleep(backoff.failed(exc))
                continue
            backoff.ok()
            self._held -= size
            QUEUED.dec(size)

    async def _take(self, batch: list[_Request]) -> None:
        """De-duplicate ``batch`` in one store command and pass its new events on."""
        events = [e for r in batch for e in r.events]
        now = self.clock()
        firsts = await self.seen.first([key(e) for e in events],
                                       now, [t for r in batch for t in r.tokens])
        flags = iter(firsts)
        fresh_of = [[e for e in r.events if next(flags)] for r in batch]
        fresh = [e for f in fresh_of for e in f]
        if fresh and self.on_events is not None:
            try:
                self.on_events(fresh)
            except Exception as exc:  # noqa: BLE001 - answered 500 (or logged) below
                await self._not_processed(batch, fresh, now, exc)
                return
        for e in fresh:
            if isinstance(e, DeliveryEvent):
                DELIVERY_DELAY.observe(max(0.0, now - e.delivered_at))
        for request, new in zip(batch, fresh_of, strict=True):
            request.settle(len(new))

    async def _not_processed(self, batch: list[_Request], fresh: list[ZaloEvent],
                             now: float, exc: Exception) -> None:
        """``on_events`` failed: the events are forgotten, so that Zalo's next try is new."""
        log.error("Zalo webhook: passing %d delivery events on failed: %s", len(fresh), exc,
                  exc_info=exc)
        with contextlib.suppress(*metrics.STORE_TRANSIENT):
            await self.seen.forget([key(e) for e in fresh], now)
        answered = sum(len(r.events) for r in batch if not r.waiting or r.answer.done())
        for request in batch:
            request.settle(NOT_PROCESSED)
        if answered:
            log.error("Zalo webhook: %d of them were answered 200 already and are lost",
                      answered)
