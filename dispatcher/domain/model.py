"""The domain's types, shared by every layer: channels, recipients, campaigns, waves, batches."""

from __future__ import annotations

import datetime as dt
import enum
import zoneinfo

import msgspec

from dispatcher.domain.outlet import Target

#: Vietnam's time (UTC+7, no daylight saving): the plan's, the campaigns' and Zalo's clock.
VN = zoneinfo.ZoneInfo("Asia/Ho_Chi_Minh")


class Channel(enum.StrEnum):
    """A channel Loa sends on."""

    SMS = "sms"  # carriers, over SMPP
    ZALO = "zalo"  # the e-government Zalo channel (ZNS / OA)
    EMAIL = "email"  # civil servants' official mailboxes
    APP = "app"  # Smart Quảng Ninh app push
    # outlets: each wave is published once to each of the channel's configured targets (a page,
    # a portal, a loudspeaker system), not sent to the audience's recipients
    FACEBOOK = "facebook"  # the province's, the department's and the districts' Facebook pages
    PORTAL = "portal"  # the provincial portal's Covid section, the public-service portal
    LOUDSPEAKER = "loudspeaker"  # the grassroots radio's IP loudspeaker systems
    # every phone present in an area (residents and visitors): the CAP alert handed to each
    # carrier's cell broadcast centre, which broadcasts it to the area's cells
    CELL_BROADCAST = "cell_broadcast"

    @property
    def outlet(self) -> bool:
        """Whether the channel publishes to configured targets instead of recipients."""
        return self in OUTLETS


#: The channels that publish to configured targets (:class:`dispatcher.domain.outlet.Target`).
OUTLETS = frozenset({Channel.FACEBOOK, Channel.PORTAL, Channel.LOUDSPEAKER,
                     Channel.CELL_BROADCAST})
#: The channels that reach recipients of an audience (what suppression lists and the recipient
#: lookup are about).
PERSONAL = tuple(c for c in Channel if c not in OUTLETS)


class Kind(enum.StrEnum):
    """Who a recipient is, as the plan's rows address them."""

    RESIDENT = "resident"
    VISITOR = "visitor"
    OFFICIAL = "official"


class Priority(enum.StrEnum):
    NORMAL = "normal"
    URGENT = "urgent"  # "thông báo khẩn": sent at once, outside the cadence and quiet hours


class OverQuota(enum.StrEnum):
    """What becomes of a Zalo wave's recipients beyond the OA's daily ZNS quota."""

    SMS = "sms"  # at once by SMS, through the wave's SMS fallback
    WAIT = "wait"  # queued until the quota resets


def over_quota_default(priority: Priority) -> OverQuota:
    """Urgent notices go by SMS beyond the quota; the others wait for the reset."""
    return OverQuota.SMS if priority is Priority.URGENT else OverQuota.WAIT


class CampaignState(enum.StrEnum):
    """draft → pending_approval → approved → running ⇄ paused → completed | cancelled | failed."""

    DRAFT = "draft"
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"


class WaveState(enum.StrEnum):
    """created → fanning_out → sending → completed; paused and cancelled at any point before."""

    CREATED = "created"  # waits for its start (sending hours, approval)
    FANNING_OUT = "fanning_out"
    SENDING = "sending"  # every batch is queued
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


WAVE_FINAL = frozenset({WaveState.COMPLETED, WaveState.CANCELLED})
WAVE_LIVE = frozenset(set(WaveState) - WAVE_FINAL)


class Selector(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Who a campaign reaches: empty lists mean everyone."""

    districts: list[str] = []
    kinds: list[Kind] = []

    def matches(self, district: str, kind: Kind) -> bool:
        return (not self.districts or district in self.districts) and (
            not self.kinds or kind in self.kinds
        )


class LevelState(msgspec.Struct, frozen=True):
    """The epidemic level set by the department, with who set it, when and why."""

    level: int
    at: dt.datetime
    since: dt.datetime | None = None  # when this level began (at, unless it was already set)
    cases: int | None = None
    reason: str = ""
    set_by: str = ""
    confirmed_by: str = ""  # the second user, for a change that needed one
    confirm_reason: str = ""


class PendingLevel(msgspec.Struct, frozen=True):
    """A level change that waits for a second user (an approver) to confirm it before it takes
    effect; gone at ``expires_at``."""

    id: str
    level: int
    current: int  # the level in force when it was proposed
    at: dt.datetime
    expires_at: dt.datetime
    proposed_by: str
    reason: str
    cases: int | None = None
    pending: bool = True  # what the API answers (``{"pending": true, ...}``)


#: SMS parts a campaign's text may take unless it says otherwise, and the most it may allow.
DEFAULT_MAX_PARTS = 3
MAX_PARTS_LIMIT = 10


class StopState(msgspec.Struct, frozen=True):
    """The emergency stop: while ``active``, no worker takes, starts or sends anything until an
    operator lifts it. Each set and lift is kept in the history, with who and why."""

    active: bool
    at: dt.datetime
    by: str = ""
    reason: str = ""


class OpeningOutcome(enum.StrEnum):
    """What a level did on a channel when it came into force."""

    SENT = "sent"  # its opening wave was created
    DAMPED = "damped"  # the same level opened on this channel less than the damping ago
    MISSED = "missed"  # the level came into force longer ago than the catch-up window


class Opening(msgspec.Struct, frozen=True):
    """The opening message of a level on a channel, decided once per time the level comes into
    force (``since``). ``last_sent`` is the ``since`` of the last opening that did send: the
    damping is measured from it."""

    level: int
    channel: Channel
    since: dt.datetime
    outcome: OpeningOutcome
    decided_at: dt.datetime
    wave: str = ""  # the opening wave, when this one sent
    urgent: bool = False  # the level is urgent: the wave ignores the sending hours
    last_sent: dt.datetime | None = None
    last_wave: str = ""
    revision: int = 1


class ZnsMessage(msgspec.Struct, frozen=True):
    """A Zalo ZNS message by a pre-approved template: the template's name in ``[zalo.templates]``
    and the value of each of its parameters (``{date}`` is filled in when the wave is made)."""

    template: str
    params: dict[str, str] = {}


class Campaign(msgspec.Struct, frozen=True):
    """What to send, to whom, on which channels, owned by which unit."""

    id: str
    title: str
    channels: list[Channel]
    texts: dict[Channel, str]
    created_at: dt.datetime
    created_by: str
    state: CampaignState = CampaignState.DRAFT
    owner: str = ""  # lead unit (đơn vị chủ trì)
    coordinating: list[str] = []
    selector: Selector = Selector()
    priority: Priority = Priority.NORMAL
    subject: str = ""  # e-mail subject
    strip_diacritics: bool = False  # SMS without Vietnamese diacritics (GSM-7)
    approved_by: str = ""
    start_at: dt.datetime | None = None  # when an approved campaign starts (None: at once)
    sms_fallback: bool = False  # Zalo recipients who are not (or no longer) on Zalo get an SMS
    audience_size: int = 0
    level: int | None = None  # set for the plan's own campaigns
    revision: int = 0  # bumped on every change; updates compare it
    state_reason: str = ""  # why it was last paused, resumed or cancelled
    state_by: str = ""  # ... and by whom
    max_parts: int = DEFAULT_MAX_PARTS  # an SMS text (or SMS fallback) of more parts is refused
    pdus: int = 0  # SMS parts it sends at most: recipients x parts (with the SMS fallback's)
    zns: ZnsMessage | None = None  # Zalo by a typed template (None: the text in one parameter)
    over_quota: OverQuota | None = None  # Zalo beyond the daily quota (None: by priority)
    # an uploaded list of numbers (its audience version) instead of the province's audience
    audience_list: str = ""
    # a public-safety alert: reaches the numbers on the suppression lists too
    public_safety: bool = False


class Wave(msgspec.Struct, frozen=True):
    """One dispatch of a campaign on one channel to the audience version it started with; on an
    outlet channel, to the targets it was made with (``targets``)."""

    id: str
    campaign_id: str
    channel: Channel
    text: str
    created_at: dt.datetime
    audience_version: str
    selector: Selector = Selector()
    priority: Priority = Priority.NORMAL
    subject: str = ""
    strip_diacritics: bool = False
    level: int | None = None
    slot_at: dt.datetime | None = None
    total: int = 0  # recipients on this channel (an outlet's: targets), known when it is made
    start_now: bool = False  # start outside the sending hours too (urgent notices, the demo)
    fallback_text: str = ""  # set: recipients Zalo cannot reach get this text by SMS
    fallback_strip: bool = False  # ... without diacritics
    # no repeats (dispatcher.domain.repeats): a recipient who got this text on this channel from
    # another wave of the same scope less than repeat_window minutes ago is not sent it again
    repeat_scope: str = ""  # "plan", or the campaign's; empty: not checked
    repeat_window: int = 0  # minutes
    fallback_repeat_window: int = 0  # minutes, for the SMS fallback (the SMS channel's)
    zns: ZnsMessage | None = None  # Zalo: the typed template and its values, ``{date}`` filled in
    over_quota: OverQuota | None = None  # Zalo beyond the daily quota (None: by priority)
    # a public-safety alert's: the fan-out does not skip the channel's suppressed recipients
    public_safety: bool = False
    # the text naming {district}: district id -> its rendering (``text`` has the neutral one,
    # for recipients without a district); the fan-out then cuts its batches per district
    district_texts: dict[str, str] = {}
    fallback_district_texts: dict[str, str] = {}  # the same for the SMS fallback's text
    # an outlet channel's: the targets it is published to, taken from the settings when it is
    # made (its recipient ids are indexes into this list, its addresses the targets' ids)
    targets: list[Target] = []

    def text_for(self, district: str) -> str:
        """The words a batch of ``district`` is sent (one look-up per batch)."""
        return self.district_texts.get(district, self.text) if district else self.text

    @property
    def per_district(self) -> bool:
        """Whether its batches (and its SMS fallback's) are cut per district."""
        return bool(self.district_texts or self.fallback_district_texts)

    @property
    def quota_policy(self) -> OverQuota:
        """What becomes of this wave's recipients beyond the Zalo quota."""
        return self.over_quota or over_quota_default(self.priority)

    @property
    def quota_policy_in_force(self) -> OverQuota:
        """``quota_policy``, but ``wait`` for a wave with no SMS fallback to send them with."""
        return self.quota_policy if self.fallback_text else OverQuota.WAIT


class Batch(msgspec.Struct, frozen=True, array_like=True):
    """Messages of one wave on one route: recipient ids, addresses and attempts so far; of one
    district when the wave's text names ``{district}`` (``Wave.district_texts``)."""

    wave: str
    channel: Channel
    ids: list[int]
    addrs: list[str]
    attempts: list[int] = []  # empty: every message is on its first attempt
    retried: bool = False  # the messages come from the retry schedule (counted as retrying)
    district: str = ""  # the recipients' district id, when the wave has district texts

    def attempt(self, index: int) -> int:
        return self.attempts[index] if self.attempts else 0
