"""Zalo's capacity: the OA's daily ZNS quota against a wave's audience on Zalo.

When a Zalo wave starts, the engine reads the quota (``GET /message/quota``) and, when the
wave's recipients on Zalo exceed what is left today, records how many are beyond it
(``over_quota`` in the wave's progress) and logs a warning naming the wave's policy: ``sms``
(those recipients go by SMS at once, through the wave's SMS fallback) or ``wait`` (they wait for
the quota reset). A quota that cannot be read is recorded (``quota_unknown``) and the wave goes
on: an emergency never waits on it. The preview says the same before a campaign is sent.
"""

from __future__ import annotations

import logging

import msgspec

from adapters.base import QuotaReader
from dispatcher.domain.model import OverQuota, Wave
from dispatcher.store.base import Store

log = logging.getLogger(__name__)


class Capacity(msgspec.Struct, frozen=True):
    """An audience on Zalo against the quota left today (``remaining`` None: unknown)."""

    recipients: int
    policy: OverQuota  # what becomes of the recipients beyond the quota
    remaining: int | None = None
    daily: int | None = None
    reset: str = ""  # when the quota resets, e.g. "00:00 Asia/Ho_Chi_Minh"

    @property
    def beyond(self) -> int:
        """Recipients beyond the quota (0 when it is unknown)."""
        return 0 if self.remaining is None else max(0, self.recipients - self.remaining)

    def summary(self) -> str:
        """One sentence for an operator."""
        n = self.recipients
        if self.remaining is None:
            return (f"Zalo quota unknown (Zalo did not answer); {n:,} recipients on Zalo, "
                    f"those beyond the quota {self._fate()}")
        if not self.beyond:
            return f"Zalo can take {self.remaining:,} more today: the {n:,} recipients fit"
        return (f"Zalo can take {self.remaining:,} of {n:,} today; the other "
                f"{self.beyond:,} {self._fate()}")

    def _fate(self) -> str:
        if self.policy is OverQuota.SMS:
            return "go by SMS at once"
        at = f" at {self.reset}" if self.reset else ""
        return f"wait for the quota reset{at}"


def wave_policy(wave: Wave) -> OverQuota:
    """The policy in force for ``wave``: ``sms`` only when it has an SMS fallback."""
    return wave.quota_policy_in_force


async def capacity(reader: QuotaReader, recipients: int, policy: OverQuota) -> Capacity:
    """The quota read now against ``recipients`` (unknown when Zalo did not answer)."""
    quota = await reader.quota()
    if quota is None:
        return Capacity(recipients, policy)
    return Capacity(recipients, policy, quota.remaining, quota.daily, quota.reset)


async def check_wave(store: Store, wave: Wave, reader: QuotaReader) -> Capacity:
    """Read the quota as ``wave`` starts: record and log the recipients beyond it."""
    found = await capacity(reader, wave.total, wave_policy(wave))
    extra = {"wave": wave.id, "campaign": wave.campaign_id, "channel": wave.channel}
    if found.remaining is None:
        await store.receipts.count({wave.id: {"quota_unknown": 1}})
        log.warning("wave %s: %s", wave.id, found.summary(), extra=extra)
    elif found.beyond:
        await store.receipts.count({wave.id: {"over_quota": found.beyond}})
        log.warning("wave %s exceeds the Zalo quota: %s", wave.id, found.summary(),
                    extra=extra)
    else:
        log.info("wave %s: %s", wave.id, found.summary(), extra=extra)
    return found
