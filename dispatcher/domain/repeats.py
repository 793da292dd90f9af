"""No repeats to a person: the same text on the same channel reaches a recipient once per window.

The plan's waves of one channel (the slots, the level's opening), the Zalo waves' SMS fallback
and the retries of all of them could each reach the same phone with the same text: the level-4
SMS and the fallback of a Zalo slot, or a level's opening and its first slot. Before a batch is
sent, the worker *claims* its recipients in the ledger of (scope, audience, channel, text), one
Redis script per batch: a recipient whose last claim there came from another wave less than the
window ago is not sent the text again, and is counted ``repeats``. A wave's own retries keep
their claim (each claim carries the wave's tag), so a retry is never taken for a repeat; a
cancelled wave releases the claims of what it did not send.

- **Scope.** The plan's waves share the scope ``plan``; a campaign's waves (its SMS wave and its
  Zalo wave's SMS fallback) have the campaign's own, so an operator who sends the same text again
  in a new campaign is obeyed.
- **Window.** For a plan wave, :data:`WINDOW_SHARE` of the shortest time between two slots of
  its channel at its level: one day's SMS at level 4 is not repeated within 21.6 hours, the next
  day's slot goes. For a campaign, :data:`CAMPAIGN_WINDOW`.
- **Fallback cap.** On top of that, the Zalo→SMS fallback sends a recipient at most
  ``[engine] fallback_max_per_day`` SMS per local day, whatever the texts (claimed when the SMS
  is scheduled, with the Zalo wave's tag, so a batch processed twice counts once).

The ledger is an array of (minute, tag) pairs indexed by recipient id, so it belongs to one
audience version: after a new import the ids change and a new ledger starts.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import zlib

from dispatcher.domain.model import Channel, Wave
from dispatcher.domain.plan import Plan

WINDOW_SHARE = 0.9  # of the shortest gap between two slots of a channel
CAMPAIGN_WINDOW = dt.timedelta(hours=24)
PLAN_SCOPE = "plan"
LEDGER_TTL = dt.timedelta(days=8)  # longer than any window: the weekly slots' 6.3 days


def campaign_scope(campaign_id: str) -> str:
    return f"c:{campaign_id}"


def tag(wave_id: str) -> int:
    """A wave's mark in the ledger (never 0, which is "no claim")."""
    return zlib.crc32(wave_id.encode()) or 1


def ledger(wave: Wave) -> str | None:
    """The ledger a wave's batches claim in, or None when the wave is not checked."""
    if not wave.repeat_scope or wave.repeat_window <= 0:
        return None
    # a wave's texts per district (``Wave.district_texts``) are one message: its neutral text
    text = f"{int(wave.strip_diacritics)}\0{wave.subject}\0{wave.text}"
    digest = hashlib.blake2b(text.encode(), digest_size=8).hexdigest()
    return f"{wave.repeat_scope}:{wave.audience_version}:{wave.channel}:{digest}"


def fallback_ledger(audience_version: str) -> str:
    """Where the fallback SMS per recipient and local day are counted."""
    return f"fallback:{audience_version}"


def plan_window(plan: Plan, level: int, channel: Channel) -> int:
    """Minutes within which a plan text is not sent again on ``channel`` at ``level``."""
    rule = plan.level(level).rules.get(channel)
    if rule is None:
        return 0
    period = rule.cadence.period_days * 1440
    starts = sorted(day * 1440 + t.hour * 60 + t.minute for day, t in rule.cadence.slots)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    gaps.append(period - starts[-1] + starts[0])
    return int(min(gaps) * WINDOW_SHARE)


def minute(at: float) -> int:
    """The ledger's clock: whole minutes since the epoch."""
    return int(at // 60)


def local_day(at: dt.datetime, plan: Plan) -> int:
    """The fallback cap's clock: the number of the local day."""
    return at.astimezone(plan.tz).date().toordinal()
