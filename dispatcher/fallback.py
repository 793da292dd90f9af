"""SMS fallback: Zalo recipients that Zalo cannot reach get the message by SMS, in the same wave.

When the Zalo channel answers that a recipient is not (or no longer) on Zalo, and the wave
allows it (it carries a ``fallback_text``), the message goes to that recipient's SMS route as part
of the wave's companion SMS wave ``<wave>.sms``, scheduled like a retry in the same transaction
that records the Zalo outcome. The companion wave has its own sent bitmap, so a recipient gets
at most one fallback SMS however often the Zalo batch is processed.

A fallback SMS is one more SMS beyond the plan's own, so it is held to the rules of one
(dispatcher.repeats): at most ``[engine] fallback_max_per_day`` per recipient and local day,
counted ``fallback_capped`` on the Zalo wave beyond that; not the same text twice within the
SMS channel's window; and, unless the wave is urgent (or ``start_now``), inside the sending
hours (one found outside waits for the next start on the retry schedule).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import msgspec

from dispatcher import repeats
from dispatcher.errors import NumberError
from dispatcher.model import Batch, Channel, Priority, Wave, WaveState
from dispatcher.msisdn import Numbering
from dispatcher.plan import Plan
from dispatcher.settings import Settings
from dispatcher.store.base import Completion, RetryItem, Store

PREFIX = "fallback:"  # how a channel marks a permanent failure that SMS may cure


def fallback_wave_id(wave_id: str) -> str:
    return f"{wave_id}.sms"


def is_fallback_wave(wave_id: str) -> bool:
    """Whether the wave is a Zalo wave's companion SMS wave."""
    return wave_id.endswith(".sms")


class SmsFallback:
    def __init__(self, store: Store, settings: Settings, numbering: Numbering, plan: Plan, *,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:
        self.store = store
        self.settings = settings
        self.numbering = numbering
        self.plan = plan
        self.clock = clock
        self._created: set[str] = set()

    async def reroute(self, wave: Wave, batch: Batch, indexes: list[int],
                      completion: Completion) -> tuple[int, int]:
        """Schedule an SMS for each message ``indexes`` of ``batch``: how many were, and how
        many were not for the day's cap."""
        target = fallback_wave_id(wave.id)
        if target not in self._created:
            companion = msgspec.structs.replace(
                wave, id=target, channel=Channel.SMS, text=wave.fallback_text,
                strip_diacritics=wave.fallback_strip, subject="", total=0, start_now=True,
                fallback_text="", repeat_window=wave.fallback_repeat_window,
                fallback_repeat_window=0)
            await self.store.waves.create(companion, WaveState.SENDING)  # once, by anyone
            self._created.add(target)
        numbers: list[tuple[int, str, str]] = []  # (index, msisdn, carrier)
        for i in indexes:
            try:
                msisdn, carrier = self.numbering.normalize(batch.addrs[i])
            except NumberError:
                continue  # an OA user id has no number: nothing to send an SMS to
            numbers.append((i, msisdn, carrier))
        now = self.clock()
        allowed = await self._capped(wave, [batch.ids[i] for i, _, _ in numbers], now)
        capped = allowed.count(False)
        if capped:
            completion.count(wave.id, "fallback_capped", capped)
        urgent = wave.priority is Priority.URGENT
        at_once = urgent or wave.start_now  # urgent notices, and the demo's waves
        due = (now if at_once else self.plan.sending_start(now)).timestamp()
        rerouted = 0
        for (i, msisdn, carrier), ok in zip(numbers, allowed, strict=True):
            if not ok:
                continue
            item = RetryItem(target, Channel.SMS, batch.ids[i], msisdn, 0, urgent=urgent)
            completion.reroute.setdefault(self.settings.sms_route(carrier), []).append(
                (due, item))
            rerouted += 1
        completion.count(target, "added", rerouted)
        completion.count(target, "retrying", rerouted)  # they arrive as a retried batch
        completion.count(wave.id, "fallback", rerouted)
        return rerouted, capped

    async def _capped(self, wave: Wave, ids: list[int], now: dt.datetime) -> list[bool]:
        """Which of ``ids`` may have one more fallback SMS today (claimed for the Zalo wave, so
        its batch processed twice claims once)."""
        most = self.settings.engine.fallback_max_per_day
        if not ids or most == 0:
            return [False] * len(ids)
        return await self.store.ledger.claim(
            repeats.fallback_ledger(wave.audience_version), ids,
            now=repeats.local_day(now, self.plan), window=1, tag=repeats.tag(wave.id),
            slots=most, ttl=2 * 86400)
