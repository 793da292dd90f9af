"""The checklist's daily e-mail reminder to each lead unit (``[checklist]`` of the settings).

From ``remind_at`` (the plan's time zone) until the end of the day, every :data:`TICK_SECONDS`,
one process at a time (a lease per day) looks at the day's checklist and sends each unit of
``units`` that leads items due and not done the list of them, through the e-mail channel
(:func:`dispatcher.domain.reminder.message`), once: what became of it is kept in the store by
date (:meth:`ChecklistStore.record_reminder`), so neither a restart nor another process sends it
again. A unit with nothing due at one tick is looked at again at the next (a level raised at
15:00 reminds then); a unit reminded is not reminded again that day, whatever changes.

A message the mail server refuses for good (5xx) is recorded with the reason and not tried again
that day; one it could not take (4xx, no connection) is tried again at a later tick. A process
that dies after the server took a message and before the record is written sends it again once
restarted: the Message-ID is the same (derived from the day and the address), so a mailbox that
drops repeated ids shows it once.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable

from adapters.base import Adapter, Envelope
from dispatcher.domain import reminder
from dispatcher.domain.errors import ChannelError
from dispatcher.domain.model import Channel
from dispatcher.domain.plan import Plan
from dispatcher.domain.reminder import Reminded, ReminderSettings
from dispatcher.engine import metrics
from dispatcher.engine.checklist import day_checklist
from dispatcher.store.base import Store

log = logging.getLogger(__name__)

TICK_SECONDS = 30.0
LEASE_SECONDS = 120.0


def lease_name(day: dt.date) -> str:
    return f"checklist-reminders:{day.isoformat()}"


def wave_name(day: dt.date) -> str:
    """What the reminders of ``day`` are to the e-mail channel (their Message-ID derives from
    it and the address)."""
    return f"checklist-{day:%Y%m%d}"


class Reminders:
    def __init__(self, store: Store, plan: Plan, settings: ReminderSettings, mail: Adapter, *,
                 owner: str, clock: Callable[[], dt.datetime]) -> None:
        self.store = store
        self.plan = plan
        self.settings = settings
        self.mail = mail
        self.owner = owner
        self.clock = clock
        self.at = settings.time()

    async def run(self, stop: asyncio.Event) -> None:
        backoff = metrics.Backoff("the checklist reminders")
        while not stop.is_set():
            wait = TICK_SECONDS
            try:
                await self.tick(self.clock())
            except metrics.STORE_TRANSIENT as exc:
                wait = min(wait, backoff.failed(exc))
            else:
                backoff.ok()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)

    async def tick(self, now: dt.datetime) -> list[Reminded]:
        """Send the day's reminders not sent yet, if it is time; what this call decided."""
        local = now.astimezone(self.plan.tz)
        if local.time() < self.at:
            return []
        day = local.date()
        lease = lease_name(day)
        if not await self.store.leases.acquire(lease, self.owner, LEASE_SECONDS):
            return []  # another process is at it
        try:
            done = await self.store.checklist.reminded(day)
            todo = {u: a for u, a in self.settings.units.items() if u not in done}
            if not todo:
                return []
            checklist = await day_checklist(self.store, self.plan, day, now)
            decided = []
            for unit, address in todo.items():
                written = reminder.message(checklist, unit)
                if written is None:
                    continue
                if not await self.store.leases.acquire(lease, self.owner, LEASE_SECONDS):
                    break  # held too long (a slow mail server): another process goes on
                outcome = await self._send(day, unit, address, *written, now)
                if outcome is not None:
                    await self.store.checklist.record_reminder(day, outcome)
                    decided.append(outcome)
            return decided
        finally:
            await self.store.leases.release(lease, self.owner)

    async def _send(self, day: dt.date, unit: str, address: str, subject: str, text: str,
                    now: dt.datetime) -> Reminded | None:
        envelope = Envelope(wave=wave_name(day), channel=Channel.EMAIL, text=text,
                            addrs=[address], subject=subject)
        try:
            results = await self.mail.send(envelope)
        except ChannelError as exc:
            log.warning("checklist reminder to %s (%s) not sent, tried again later: %s", unit,
                        address, exc)
            return None
        if results.sent:
            log.info("checklist reminder of %s sent to %s (%s)", day.isoformat(), unit, address)
            return Reminded(unit=unit, at=now)
        if results.failed:
            reason = results.failed[0][1]
            log.warning("checklist reminder to %s (%s) refused, not tried again today: %s",
                        unit, address, reason)
            return Reminded(unit=unit, at=now, sent=False, reason=reason)
        why = (results.retry or results.requeue or [(0, "no answer")])[0][1]
        log.warning("checklist reminder to %s (%s) not sent, tried again later: %s", unit,
                    address, why)
        return None
