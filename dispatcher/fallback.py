"""SMS fallback: Zalo recipients that Zalo cannot reach get the message by SMS, in the same wave.

When the Zalo channel answers that a recipient is not (or no longer) on Zalo, and the wave
allows it (it carries a ``fallback_text``), the message goes to that recipient's SMS route as part
of the wave's companion SMS wave ``<wave>.sms``, scheduled like a retry in the same transaction
that records the Zalo outcome. The companion wave has its own sent bitmap, so a recipient gets
at most one fallback SMS however often the Zalo batch is processed.
"""

from __future__ import annotations

import time

import msgspec

from dispatcher.errors import NumberError
from dispatcher.model import Batch, Channel, Priority, Wave, WaveState
from dispatcher.msisdn import Numbering
from dispatcher.settings import Settings
from dispatcher.store.base import Completion, RetryItem, Store

PREFIX = "fallback:"  # how a channel marks a permanent failure that SMS may cure


def fallback_wave_id(wave_id: str) -> str:
    return f"{wave_id}.sms"


def is_fallback_wave(wave_id: str) -> bool:
    """Whether the wave is a Zalo wave's companion SMS wave."""
    return wave_id.endswith(".sms")


class SmsFallback:
    def __init__(self, store: Store, settings: Settings, numbering: Numbering) -> None:
        self.store = store
        self.settings = settings
        self.numbering = numbering
        self._created: set[str] = set()

    async def reroute(self, wave: Wave, batch: Batch, indexes: list[int],
                      completion: Completion) -> int:
        """Schedule an SMS for each message ``indexes`` of ``batch``; returns how many."""
        target = fallback_wave_id(wave.id)
        if target not in self._created:
            companion = msgspec.structs.replace(
                wave, id=target, channel=Channel.SMS, text=wave.fallback_text,
                strip_diacritics=wave.fallback_strip, subject="", total=0, start_now=True,
                fallback_text="")
            await self.store.waves.create(companion, WaveState.SENDING)  # once, by anyone
            self._created.add(target)
        now = time.time()
        rerouted = 0
        for i in indexes:
            try:
                msisdn, carrier = self.numbering.normalize(batch.addrs[i])
            except NumberError:
                continue  # an OA user id has no number: nothing to send an SMS to
            item = RetryItem(target, Channel.SMS, batch.ids[i], msisdn, 0,
                             urgent=wave.priority is Priority.URGENT)
            completion.reroute.setdefault(self.settings.sms_route(carrier), []).append(
                (now, item))
            rerouted += 1
        completion.count(target, "added", rerouted)
        completion.count(target, "retrying", rerouted)  # they arrive as a retried batch
        completion.count(wave.id, "fallback", rerouted)
        return rerouted
