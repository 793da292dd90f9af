"""SMS fallback: Zalo recipients that Zalo cannot reach get the message by SMS, in the same wave.

When the Zalo channel answers that a recipient is not (or no longer) on Zalo (the message is in
``Results.fallback``, see adapters.base), and the wave allows it (it carries a
``fallback_text``), the message goes to that recipient's SMS route as part of the wave's
companion SMS wave ``<wave>.sms``, scheduled like a retry in the same transaction that records
the Zalo outcome. The companion wave has its own sent bitmap, so a recipient gets
at most one fallback SMS however often the Zalo batch is processed.

A fallback SMS is one more SMS beyond the plan's own, so it is held to the rules of one
(dispatcher.domain.repeats): at most ``[engine] fallback_max_per_day`` per recipient and local day,
counted ``fallback_capped`` on the Zalo wave beyond that; not the same text twice within the
SMS channel's window; and, unless the wave is urgent (or ``start_now``), inside the sending
hours (one found outside waits for the next start on the retry schedule).

A recipient reached on Zalo by an OA user id (the audience's ``zalo`` column holds one) is sent
the SMS at the phone number of the same audience row: the rows of a batch's refused user ids are
read from the audience (one read of their chunks per batch), found by recipient id through the
first id of each chunk (``AudienceGroup.first_ids``). A row that cannot be found (an audience
imported before first ids were recorded) gets no SMS, and a warning says how many.
"""

from __future__ import annotations

import bisect
import datetime as dt
import logging
from collections.abc import Callable

import msgspec

from dispatcher.domain import repeats
from dispatcher.domain.errors import NumberError
from dispatcher.domain.model import Batch, Channel, Priority, Wave, WaveState
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan
from dispatcher.engine import metrics
from dispatcher.engine.settings import EngineConfig
from dispatcher.store.base import Completion, RetryItem, Store

log = logging.getLogger(__name__)

def fallback_wave_id(wave_id: str) -> str:
    return f"{wave_id}.sms"


def is_fallback_wave(wave_id: str) -> bool:
    """Whether the wave is a Zalo wave's companion SMS wave."""
    return wave_id.endswith(".sms")


class SmsFallback:
    def __init__(self, store: Store, settings: EngineConfig, numbering: Numbering, plan: Plan, *,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:
        self.store = store
        self.settings = settings
        self.numbering = numbering
        self.plan = plan
        self.clock = clock
        self._created: set[str] = set()
        self._starts: dict[str, tuple[list[int], list[int]]] = {}  # version -> first ids, chunks

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
                fallback_repeat_window=0, district_texts=wave.fallback_district_texts,
                fallback_district_texts={})
            await self.store.waves.create(companion, WaveState.SENDING)  # once, by anyone
            self._created.add(target)
        users = [i for i in indexes if not _is_msisdn(batch.addrs[i])]  # OA user ids
        phones = await self._phones(wave.audience_version, batch, users) if users else {}
        numbers: list[tuple[int, str, str]] = []  # (index, msisdn, carrier)
        lost = 0
        for i in indexes:
            phone = phones.get(i)
            if phone is None:
                try:
                    phone = self.numbering.normalize(batch.addrs[i])
                except NumberError:
                    lost += 1  # a user id without an audience row: no number to send to
                    continue
            numbers.append((i, *phone))
        if lost:
            log.warning("%d refused Zalo user ids of wave %s have no audience row with a phone: "
                        "no fallback SMS for them", lost, wave.id, extra={"wave": wave.id})
        if numbers and not wave.public_safety:  # on the SMS list: not sent by SMS either
            on_list = await self.store.suppressions.mask(Channel.SMS, [n[1] for n in numbers])
            if any(on_list):
                completion.count(wave.id, "fallback_suppressed", on_list.count(True))
                metrics.SUPPRESSED.labels(Channel.SMS.value).inc(on_list.count(True))
                numbers = [n for n, on in zip(numbers, on_list, strict=True) if not on]
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
            item = RetryItem(target, Channel.SMS, batch.ids[i], msisdn, 0, urgent=urgent,
                             district=batch.district)
            completion.reroute.setdefault(self.settings.sms_route(carrier), []).append(
                (due, item))
            rerouted += 1
        completion.count(target, "added", rerouted)
        completion.count(target, "retrying", rerouted)  # they arrive as a retried batch
        completion.count(wave.id, "fallback", rerouted)
        return rerouted, capped

    async def _phones(self, version: str, batch: Batch,
                      indexes: list[int]) -> dict[int, tuple[str, str]]:
        """``(msisdn, carrier)`` of the audience row of each of ``indexes`` (messages to an OA
        user id), read in one call; an index whose row is not found is left out."""
        starts = self._starts.get(version)
        if starts is None:
            meta = await self.store.audiences.meta(version)
            pairs = sorted((first, number) for g in (meta.groups if meta else [])
                           if len(g.first_ids) == len(g.chunks)
                           for first, number in zip(g.first_ids, g.chunks, strict=True))
            starts = self._starts[version] = ([p[0] for p in pairs], [p[1] for p in pairs])
        firsts, numbers = starts
        wanted: dict[int, int] = {}  # index -> the chunk number holding its row
        for i in indexes:
            at = bisect.bisect_right(firsts, batch.ids[i]) - 1
            if at >= 0:
                wanted[i] = numbers[at]
        chunks = {c.first_id: c for c in await self.store.audiences.chunks(
            version, sorted(set(wanted.values())))}
        found: dict[int, tuple[str, str]] = {}
        for i in wanted:
            at = bisect.bisect_right(firsts, batch.ids[i]) - 1
            chunk = chunks.get(firsts[at])
            offset = batch.ids[i] - firsts[at]
            if chunk is not None and offset < len(chunk.recipients):
                row = chunk.recipients[offset]
                if row.zalo_uid == batch.addrs[i]:  # the row the message was addressed from
                    found[i] = (row.msisdn, row.carrier)
        return found

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


def _is_msisdn(addr: str) -> bool:
    """Whether a Zalo address is a phone number (as the audience stores it), not a user id."""
    return len(addr) == 11 and addr.startswith("84") and addr.isdigit()
