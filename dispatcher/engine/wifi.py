"""Pushing each new public notice to the public Wi-Fi controllers (``[wifi]``).

The pusher follows the feed of public messages (:meth:`dispatcher.store.base.CapStore.latest`,
numbered in the order published) with a cursor per controller kept in the store
(:class:`dispatcher.store.base.WifiCursors`): the number of the last message the controller
took. A pass, once a second, looks at the newest message and pushes it to each controller whose
cursor is behind it, as the notice of ``/public/notice.json`` at that moment with the message's
identifier, ``msgType``, ``status`` and number in the feed
(:class:`dispatcher.domain.wifi.PushedNotice`).

* **Only the newest.** A splash page shows one notice, and each push carries the whole of it
  (the level, the message in force, the hotline), so a controller that was behind (down, slow,
  refusing) gets the newest notice only; the older ones it missed are counted
  (``loa_wifi_push_total{outcome="superseded"}``) and logged, never pushed late and out of
  date. A controller seen for the first time is owed the newest notice and what comes after.
* **Once per (message, controller).** The cursor moves only after the controller answered 2xx
  (or refused that notice for good: skipped), and only forward. A crash between the 2xx and the
  cursor's write pushes the notice again with the same ``Idempotency-Key``
  (``<identifier>:<controller>``): at most one repeat per controller per crash, which a
  controller drops by its key.
* **One pusher.** Any number of processes may run it; the one holding the store lease
  ``wifi-push`` pushes, the others only keep the lag gauge. A process that dies leaves the
  lease to another after ``lease_seconds``.
* **Failures** (the adapter's status table, :mod:`adapters.wifi.status`): 5xx, timeouts and
  refused connections are tried again after a backoff (``retry_base_seconds`` doubling up to
  ``retry_max_seconds``, with jitter); 429 after its ``Retry-After`` (at most
  ``retry_after_max_seconds``); 401/403 (Loa refused: a wrong secret) raise an ALERT log line
  and ``loa_wifi_refused``, and the notice is tried every ``refused_retry_seconds`` until it is
  taken; another 4xx skips that notice for the controller with an ALERT log line (the next
  notice goes to it: a notice it cannot take never holds back the later ones).
* **The emergency stop** holds every push but a Cancel's, as it holds their publication.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

import msgspec

from dispatcher.domain import notice
from dispatcher.domain.cap import MsgType, Published
from dispatcher.domain.plan import Plan
from dispatcher.domain.wifi import (
    PushOutcome,
    PushResult,
    WifiController,
    WifiSettings,
    backoff,
    idempotency_key,
    pushed,
)
from dispatcher.engine import metrics
from dispatcher.engine.stop import is_stopped
from dispatcher.store import keys
from dispatcher.store.base import Store

log = logging.getLogger(__name__)

PUSH_SECONDS = 1.0
TRANSIENT = metrics.STORE_TRANSIENT
SUPERSEDED = "superseded"  # the outcome label of notices a newer one made unneeded

Spawn = Callable[[Coroutine[Any, Any, None]], object]


class NoticeSender(Protocol):
    """Pushes one body to one controller (:class:`adapters.wifi.client.WifiClient`)."""

    async def push(self, controller: WifiController, body: bytes, key: str) -> PushResult: ...

    async def aclose(self) -> None: ...


class _Controller:
    """What this process knows of one controller between passes."""

    __slots__ = ("busy", "config", "due", "failures", "refused")

    def __init__(self, config: WifiController) -> None:
        self.config = config
        self.busy = False  # a push to it is under way
        self.due = 0.0  # monotonic time of its next try
        self.failures = 0  # failed tries in a row
        self.refused = False  # its last answer was 401/403


class WifiPusher:
    def __init__(self, store: Store, plan: Plan, province: str, settings: WifiSettings,
                 sender: NoticeSender, *, name: str, lease_seconds: float = 30.0,
                 interval: float = PUSH_SECONDS,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
                 monotonic: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None) -> None:
        self.store = store
        self.plan = plan
        self.province = province
        self.settings = settings
        self.sender = sender
        self.name = name
        self.lease_seconds = lease_seconds
        self.interval = interval
        self.clock = clock
        self.monotonic = monotonic
        self.rng = rng or random.Random()
        self.held = False  # this process holds the lease: it pushes
        self._controllers = {c.id: _Controller(c) for c in settings.controllers}
        self._held_for_stop = ""  # the identifier the emergency stop holds back, once logged

    async def run(self, stop: asyncio.Event) -> None:
        """Pass after pass until ``stop``; the pushes under way are finished, then the lease is
        let go."""
        backoff_ = metrics.Backoff("the Wi-Fi pusher")
        try:
            async with asyncio.TaskGroup() as pushes:
                while not stop.is_set():
                    wait = self.interval
                    try:
                        await self._pass(pushes.create_task)
                    except TRANSIENT as exc:
                        wait = max(wait, backoff_.failed(exc))
                    else:
                        backoff_.ok()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), wait)
        finally:
            if self.held:
                self.held = False
                with contextlib.suppress(*TRANSIENT):
                    await self.store.leases.release(keys.WIFI_PUSH, self.name)
            self._let_go()

    async def step(self) -> None:
        """One pass, and the pushes it starts, to their end."""
        async with asyncio.TaskGroup() as pushes:
            await self._pass(pushes.create_task)

    async def aclose(self) -> None:
        await self.sender.aclose()

    def waiting(self, controller: str) -> float:
        """Seconds until the next try of ``controller`` (0: at the next pass)."""
        return max(0.0, self._controllers[controller].due - self.monotonic())

    # -- a pass ---------------------------------------------------------------------------------

    async def _pass(self, spawn: Spawn) -> None:
        """Renew the lease, keep the lag gauge, and start the pushes due. The newest message's
        number is read every pass; the messages themselves only when a push is due."""
        head = await self.store.cap.latest(1)
        cursors = await self.store.wifi.cursors()
        top = head[0].seq if head else 0
        self.held = await self.store.leases.acquire(keys.WIFI_PUSH, self.name,
                                                    self.lease_seconds)
        if self.held:
            for cid in self._controllers:
                if cid not in cursors:  # seen for the first time: owed the newest and later
                    cursors[cid] = await self.store.wifi.advance(cid, max(top - 1, 0))
        for cid in self._controllers:
            metrics.WIFI_LAG.labels(cid).set(max(0, top - cursors.get(cid, max(top - 1, 0))))
        if not self.held:
            self._let_go()
            return
        now = self.monotonic()
        due = [c for cid, c in self._controllers.items()
               if not c.busy and cursors[cid] < top and c.due <= now]
        if not due:
            return
        newest = await self.store.cap.latest(notice.MESSAGES)  # with any published since
        message = newest[0]
        if message.alert.msg_type is not MsgType.CANCEL and await is_stopped(self.store):
            if self._held_for_stop != message.alert.identifier:
                self._held_for_stop = message.alert.identifier
                log.warning("the emergency stop holds the Wi-Fi push of %s until it is lifted",
                            message.alert.identifier, extra={"cap": message.alert.identifier})
            return
        body = await self._body(message, newest)
        for controller in due:
            controller.busy = True
            spawn(self._push(controller, message, cursors[controller.config.id], body))

    async def _body(self, message: Published, newest: list[Published]) -> bytes:
        """The notice as ``/public/notice.json`` gives it now, with ``message``'s identifier."""
        level = await self.store.level.get()
        current = await self.store.situation.get()
        hotline = current.situation.hotline if current else self.plan.hotline
        found = notice.notice(self.plan, self.province, level,
                              [p for p in newest if p.seq <= message.seq], hotline, self.clock())
        return msgspec.json.encode(pushed(found, message))

    def _let_go(self) -> None:
        """Not pushing (the lease is another's): this process says no controller refuses."""
        for cid, controller in self._controllers.items():
            controller.refused = False
            metrics.WIFI_REFUSED.labels(cid).set(0)

    # -- a push ---------------------------------------------------------------------------------

    async def _push(self, controller: _Controller, message: Published, cursor: int,
                    body: bytes) -> None:
        cid = controller.config.id
        try:
            result = await self.sender.push(controller.config, body,
                                            idempotency_key(message.alert.identifier, cid))
            metrics.WIFI_PUSHES.labels(cid, result.outcome.value).inc()
            await self._settle(controller, message, cursor, result)
        except TRANSIENT as exc:  # the cursor was not written: pushed again, with the same key
            metrics.Backoff(f"the Wi-Fi push to {cid}").failed(exc)
        finally:
            controller.busy = False

    async def _settle(self, controller: _Controller, message: Published, cursor: int,
                      result: PushResult) -> None:
        cid, ident = controller.config.id, message.alert.identifier
        where = {"cap": ident, "controller": cid}
        out = result.outcome
        if out in (PushOutcome.PUSHED, PushOutcome.REJECTED):
            await self.store.wifi.advance(cid, message.seq)
            metrics.WIFI_LAG.labels(cid).set(0)  # the newest of its pass; the next pass says
            controller.failures, controller.due = 0, 0.0
            if controller.refused:
                controller.refused = False
                metrics.WIFI_REFUSED.labels(cid).set(0)
                log.warning("Wi-Fi controller %s takes Loa's notices again", cid, extra=where)
            skipped = message.seq - cursor - 1
            if skipped > 0:
                metrics.WIFI_PUSHES.labels(cid, SUPERSEDED).inc(skipped)
                log.info("Wi-Fi controller %s: %d older notice%s not pushed, superseded by %s",
                         cid, skipped, "s" if skipped > 1 else "", ident, extra=where)
            if out is PushOutcome.PUSHED:
                log.info("notice %s pushed to Wi-Fi controller %s", ident, cid, extra=where)
            else:
                log.error("ALERT Wi-Fi controller %s rejected notice %s (%s): skipped for it, "
                          "the next notice goes to it", cid, ident, result.reason, extra=where)
            return
        controller.failures += 1
        settings = self.settings
        if out is PushOutcome.REFUSED:
            wait = settings.refused_retry_seconds
            metrics.WIFI_REFUSED.labels(cid).set(1)
            if not controller.refused:
                controller.refused = True
                log.error("ALERT Wi-Fi controller %s refuses Loa (%s): check its secret "
                          "(secret_env) with the controller's operator; the notice waits and "
                          "is tried every %g s", cid, result.reason, wait, extra=where)
        else:
            wait = backoff(controller.failures, settings, self.rng)
            if result.retry_after is not None:  # a 429's (or 503's) own wait, bounded
                asked = min(result.retry_after, settings.retry_after_max_seconds)
                wait = asked if out is PushOutcome.THROTTLED else max(wait, asked)
            log.warning("Wi-Fi push of %s to %s: %s; tried again in %.1f s", ident, cid,
                        result.reason, wait, extra=where)
        controller.due = self.monotonic() + wait
