""""Did this citizen get it?": the waves that targeted one number, and what each did for it.

The waves of the window are read by the time they were made (:meth:`WaveStore.since`: on Redis
a range of a sorted set, and only the records this process has not decoded before), so a lookup
costs the waves of its window, however many were made before it. A number is looked up in the
index of every audience version those waves used (one command per version); a wave targeted the
recipient when its selector matches the recipient's district and kind and the recipient has an
address on the wave's channel (dispatcher.engine.routing). What each wave did is read from what
the engine keeps per wave, with the wave's state, for every wave at once
(:meth:`RecipientIndex.facts`: the sent and delivered bitmaps and the dead letters, one script
on one Redis server); the campaigns' titles are those of the campaigns the waves name
(:meth:`CampaignStore.many`). The wave's state and what it did give the outcome:

``delivered`` (a receipt or webhook said so), ``sent``, ``failed`` (a dead letter, its reason),
``expired`` (its retries ran out), ``cancelled`` (the wave was cancelled before it was sent),
``pending`` (the wave is live: not yet sent, or retrying), ``not_sent`` (the wave completed
without sending it: a repeat within the plan's period, the Zalo quota, or the fallback's daily
cap), ``suppressed`` (the wave completed, or is live, without sending it, and the number was
on the channel's suppression list when the wave was made: inferred from the list, not kept per
wave). A Zalo wave with an SMS fallback also says what its companion SMS wave did
(``fallback``). The view lists the number's entries on every channel's suppression list.
"""

from __future__ import annotations

import bisect
import datetime as dt

import msgspec

from dispatcher.domain.audience import Recipient
from dispatcher.domain.model import PERSONAL, Channel, Kind, Wave, WaveState
from dispatcher.domain.suppression import Suppression
from dispatcher.engine.fallback import fallback_wave_id, is_fallback_wave
from dispatcher.engine.routing import address
from dispatcher.store.base import Store, WaveFacts

DEFAULT_DAYS = 30
MAX_DAYS = 366
#: what became of a recipient's message of a wave (:func:`outcome`)
OUTCOMES = ("delivered", "sent", "failed", "expired", "pending", "not_sent", "cancelled",
            "suppressed")


class Row(msgspec.Struct, frozen=True):
    """The recipient's row in the current audience (else the newest that holds it)."""

    audience_version: str
    id: int
    district: str
    kind: Kind
    carrier: str
    zalo: bool
    email: bool


class WaveOutcome(msgspec.Struct, frozen=True, omit_defaults=True):
    wave: str
    campaign: str
    channel: Channel
    created_at: dt.datetime
    state: WaveState
    outcome: str
    text: str = ""
    campaign_title: str = ""
    level: int | None = None
    slot_at: dt.datetime | None = None
    reason: str = ""  # of a dead letter
    attempts: int = 0  # of a dead letter
    fallback: str = ""  # the SMS fallback's outcome (empty: none was made for it)
    fallback_text: str = ""


class RecipientView(msgspec.Struct, frozen=True):
    number: str
    days: int
    row: Row
    waves: list[WaveOutcome]  # newest first
    suppressed: list[Suppression] = []  # its entries on the channels' suppression lists


def outcome(facts: WaveFacts, state: WaveState) -> str:
    if facts.delivered:
        return "delivered"
    if facts.sent:
        return "sent"
    if facts.dead is not None:
        return "expired" if facts.dead.expired else "failed"
    if state is WaveState.CANCELLED:
        return "cancelled"
    return "not_sent" if state is WaveState.COMPLETED else "pending"


async def _row(store: Store, version: str, rid: int) -> Recipient | None:
    meta = await store.audiences.meta(version)
    pairs = sorted((first, number) for g in (meta.groups if meta else [])
                   if len(g.first_ids) == len(g.chunks)
                   for first, number in zip(g.first_ids, g.chunks, strict=True))
    at = bisect.bisect_right([p[0] for p in pairs], rid) - 1
    if at < 0:
        return None
    for chunk in await store.audiences.chunks(version, [pairs[at][1]]):
        if 0 <= rid - chunk.first_id < len(chunk.recipients):
            return chunk.recipients[rid - chunk.first_id]
    return None


async def look_up(store: Store, msisdn: str, *, days: int = DEFAULT_DAYS,
                  now: dt.datetime | None = None) -> RecipientView | None:
    """What the waves of the last ``days`` did for the normalised number ``msisdn``; None when
    the number is in no audience those waves used nor in the current one."""
    now = now or dt.datetime.now(dt.UTC)
    made = await store.waves.since(now - dt.timedelta(days=days))  # newest first
    # A companion is made from its wave with the wave's time: in the window with it.
    by_id = {w.id: w for w in made}
    recent = [w for w in made if not is_fallback_wave(w.id)]
    current = await store.audiences.meta()
    versions = list(dict.fromkeys([current.version] if current else []) |
                    dict.fromkeys(w.audience_version for w in recent))
    ids = {v: await store.recipients.find(v, msisdn) for v in versions}
    rows: dict[str, tuple[int, Recipient]] = {}
    for v, rid in ids.items():
        if rid is not None:
            found = await _row(store, v, rid)
            if found is not None and found.msisdn == msisdn:
                rows[v] = (rid, found)
    if not rows:
        return None
    targeted: list[tuple[Wave, int]] = []
    for w in recent:
        if w.audience_version in rows:
            rid, r = rows[w.audience_version]
            if w.selector.matches(r.district, r.kind) and address(w.channel, r) is not None:
                targeted.append((w, rid))
    asked = [(w.id, rid) for w, rid in targeted]
    companions = [(fallback_wave_id(w.id), rid) for w, rid in targeted
                  if fallback_wave_id(w.id) in by_id]
    facts = await store.recipients.facts(asked + companions)
    also = dict(zip([c[0] for c in companions], facts[len(asked):], strict=True))
    campaigns = await store.campaigns.many(list(dict.fromkeys(w.campaign_id
                                                              for w, _ in targeted)))
    titles = {c: campaign.title for c, campaign in campaigns.items()}
    listed = await _listed(store, [r for _, r in rows.values()])
    waves = []
    for (w, _), f in zip(targeted, facts[:len(asked)], strict=True):
        state = f.state or WaveState.CREATED
        companion = fallback_wave_id(w.id)
        fallback = ""
        if companion in also and (also[companion].sent or also[companion].dead is not None):
            fallback = outcome(also[companion], also[companion].state or WaveState.SENDING)
        district = rows[w.audience_version][1].district  # the words it was sent: its district's
        fallback_text = w.fallback_district_texts.get(district, w.fallback_text) \
            if district else w.fallback_text
        happened = outcome(f, state)
        entry = listed.get(w.channel)
        if (happened in ("not_sent", "pending") and entry is not None and not w.public_safety
                and entry.at <= w.created_at.timestamp()):
            happened = "suppressed"
        waves.append(WaveOutcome(
            wave=w.id, campaign=w.campaign_id, channel=w.channel, created_at=w.created_at,
            state=state, outcome=happened, text=w.text_for(district),
            campaign_title=titles.get(w.campaign_id, ""), level=w.level, slot_at=w.slot_at,
            reason=f.dead.reason if f.dead else "", attempts=f.dead.attempts if f.dead else 0,
            fallback=fallback, fallback_text=fallback_text if fallback else ""))
    version = current.version if current and current.version in rows else next(iter(rows))
    rid, r = rows[version]
    return RecipientView(msisdn, days, Row(version, rid, r.district, r.kind, r.carrier, r.zalo,
                                           bool(r.email)), waves,
                         sorted(listed.values(), key=lambda e: e.channel))


async def _listed(store: Store, rows: list[Recipient]) -> dict[Channel, Suppression]:
    """The recipient's entries on each channel's list, by the addresses its rows give (the phone
    on any channel, the Zalo user id on Zalo, the e-mail address on e-mail): one pipeline per
    address."""
    wanted: dict[str, set[Channel]] = {rows[0].msisdn: set(PERSONAL)}
    for r in rows:
        if r.zalo_uid:
            wanted.setdefault(r.zalo_uid, set()).add(Channel.ZALO)
        if r.email:
            wanted.setdefault(r.email.lower(), set()).add(Channel.EMAIL)
    found: dict[Channel, Suppression] = {}
    for number, channels in wanted.items():
        for e in await store.suppressions.lookup(number):
            if e.channel in channels:
                found.setdefault(e.channel, e)
    return found
