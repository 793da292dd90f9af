"""Request and response bodies of the HTTP API (msgspec Structs; Litestar validates them).

Request bodies refuse unknown fields (a typo is an error, not a silently ignored option) and
bound every string and list, on top of the app's limit on the body's size.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from dispatcher.domain import textcheck
from dispatcher.domain.model import (
    DEFAULT_MAX_PARTS,
    MAX_PARTS_LIMIT,
    Campaign,
    Channel,
    Kind,
    OverQuota,
    Priority,
    Selector,
)
from dispatcher.domain.outlet import Target
from dispatcher.domain.plantext import Diacritics
from dispatcher.domain.smstext import Encoding
from dispatcher.service.auth import Role
from dispatcher.service.zns_check import ZnsPreview

TEXT_MAX = 4000  # characters of one message text (an SMS of 255 parts is ~17,000 GSM-7 ones)
# The characters dispatcher.domain.textcheck refuses: the schema says it (``not: {pattern}``), the
# server refuses them naming the field and the character.
_NOT_IN_TEXT = {"not": {"pattern": textcheck.IN_TEXT}}
_NOT_IN_LINE = {"not": {"pattern": textcheck.IN_LINE}}
Text = Annotated[str, Meta(max_length=TEXT_MAX, extra_json_schema=_NOT_IN_TEXT)]
Line = Annotated[str, Meta(max_length=200, extra_json_schema=_NOT_IN_LINE)]
Reason = Annotated[str, Meta(max_length=1000)]
NOT_BLANK = r"[^\s\x1c-\x1f\x85]"  # the same in ECMA-262 and Python: \s differs on these
#: A reason that must be given: not blank.
RequiredReason = Annotated[str, Meta(min_length=1, max_length=1000, pattern=NOT_BLANK)]
#: The most SMS parts a text may take (a longer one is refused with 400).
MaxParts = Annotated[int, Meta(ge=1, le=MAX_PARTS_LIMIT)]
#: A typed ZNS message's values: parameter name -> value (checked against its template).
ZnsParams = Annotated[dict[Annotated[str, Meta(max_length=50)],
                           Annotated[str, Meta(max_length=1000, extra_json_schema=_NOT_IN_LINE)]],
                      Meta(max_length=20)]  # the template's own limits are checked after


class LevelSet(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``{"cases": n, "reason": "..."}`` or ``{"level": l, "reason": "..."}``; the reason is
    required."""

    cases: Annotated[int, Meta(ge=0, le=100_000_000)] | None = None
    level: Annotated[int, Meta(ge=0, le=100)] | None = None
    reason: RequiredReason


class LevelConfirm(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The second user's confirmation of the level change waiting (``id``: that one only)."""

    reason: RequiredReason
    id: Line = ""


class ActionBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Why a campaign is paused, resumed or cancelled (required for the plan's campaigns)."""

    reason: Annotated[str, Meta(max_length=1000, extra_json_schema=_NOT_IN_TEXT)] = ""


class StopBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Why everything is stopped."""

    # not blank: a character that is not white space (in JSON Schema's regexes and Python's)
    reason: Annotated[str, Meta(min_length=1, max_length=1000, pattern=NOT_BLANK)]


class LiftBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Why the emergency stop is lifted."""

    reason: Reason = ""


class CampaignCreate(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A new campaign. ``text`` is used on every channel that ``texts`` gives no text for;
    the audience defaults to everyone (an empty selector)."""

    title: Annotated[str, Meta(min_length=1, max_length=200, extra_json_schema=_NOT_IN_LINE)]
    channels: Annotated[list[Channel], Meta(min_length=1, max_length=len(Channel))]
    text: Text = ""
    texts: dict[Channel, Text] = {}
    selector: Selector = Selector()
    priority: Priority = Priority.NORMAL
    owner: Line = ""
    coordinating: Annotated[list[Line], Meta(max_length=50)] = []
    subject: Line = ""
    strip_diacritics: bool = False
    start_at: Annotated[dt.datetime, Meta(tz=True)] | None = None  # with its UTC offset
    sms_fallback: bool = False
    max_parts: MaxParts = DEFAULT_MAX_PARTS  # the SMS text (and the SMS fallback's)
    zns_template: Line = ""  # Zalo ZNS by this template of [zalo.templates] ...
    zns_params: ZnsParams = {}  # ... with these values ({date}: the day the wave is made)
    # Zalo recipients beyond the OA's daily quota: "sms" at once (needs sms_fallback) or
    # "wait" for the reset; null: "sms" when urgent, else "wait"
    over_quota: OverQuota | None = None
    # an uploaded list's id (POST /v1/lists): the whole list, not the province's audience
    audience_list: Annotated[str, Meta(max_length=100)] = ""
    # a public-safety alert: its waves reach the numbers on the suppression lists too
    public_safety: bool = False

    def resolved_texts(self) -> dict[Channel, str]:
        return {c: self.texts.get(c) or self.text for c in self.channels}


class ChannelProgress(msgspec.Struct, frozen=True, omit_defaults=True):
    """Where one channel's wave of a campaign stands. ``rate`` is messages with an outcome per
    second since the wave was created; ``eta_seconds`` what is left at that rate (null: not
    known yet, 0: done). ``over_quota`` and ``quota_unknown`` are Zalo's only."""

    wave: str
    state: str
    total: int
    queued: int
    sent: int
    delivered: int
    failed: int
    retrying: int
    dead_lettered: int
    cancelled: int
    fallback: int
    rate: float
    eta_seconds: float | None
    suppressed: int = 0  # not sent: on the channel's suppression list (fan-out)
    over_quota: int | None = None  # Zalo: recipients beyond the OA's quota at the wave's start
    quota_unknown: bool | None = None  # Zalo: the quota could not be read at the wave's start


class CampaignDetail(msgspec.Struct, frozen=True):
    campaign: Campaign
    progress: dict[Channel, ChannelProgress]  # empty until the engine starts the campaign


class PreviewRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    text: Text = ""
    texts: dict[Channel, Text] = {}
    channels: Annotated[list[Channel], Meta(min_length=1, max_length=len(Channel))] = (
        msgspec.field(default_factory=lambda: [Channel.SMS]))
    selector: Selector = Selector()
    strip_diacritics: bool = False
    max_parts: MaxParts = DEFAULT_MAX_PARTS
    zns_template: Line = ""
    zns_params: ZnsParams = {}
    # Zalo: what becomes of the recipients beyond the OA's daily quota, as for a campaign
    priority: Priority = Priority.NORMAL
    sms_fallback: bool = False
    over_quota: OverQuota | None = None
    audience_list: Annotated[str, Meta(max_length=100)] = ""  # an uploaded list's recipients
    public_safety: bool = False  # the suppression lists: reached (true) or skipped


class RoutePreview(msgspec.Struct, frozen=True):
    recipients: int
    pdus: int
    tps: float | None  # null: no limit configured
    seconds: float | None


class SmsPreview(msgspec.Struct, frozen=True):
    encoding: str  # gsm7 or ucs2
    chars: int  # GSM-7 septets or UTF-16 units
    parts: int
    text: str  # as sent (normalised, diacritics stripped if asked)
    recipients: int
    by_carrier: dict[str, int]
    by_route: dict[str, RoutePreview]
    pdus: int  # recipients x parts: every part is a submit_sm
    tps: float | None  # the SMS routes' configured rates together; null if one has no limit
    seconds: float | None  # the slowest route's PDUs / its rate; null if one has no limit


class ZaloCapacity(msgspec.Struct, frozen=True):
    """Zalo's daily quota against the audience on Zalo. ``remaining`` null: the quota could
    not be read (the campaign still goes). ``over_quota`` is the policy for the ``beyond``
    recipients: ``sms`` (at once by SMS) or ``wait`` (for the reset)."""

    recipients: int
    remaining: int | None
    daily: int | None
    beyond: int
    over_quota: OverQuota
    reset: str  # when the quota resets (as configured), e.g. "00:00 Asia/Ho_Chi_Minh"
    summary: str  # one sentence for the operator


class ChannelPreview(msgspec.Struct, frozen=True):
    recipients: int
    seconds: float | None  # at the route's configured rate; null when it has none
    parts: int | None = None  # SMS: parts of the text as sent; null on a channel without parts
    # the text as sent, its fields rendered from the situation record in force (null: no text
    # given for the channel); SMS: its encoding (gsm7, ucs2) and PDUs (recipients x parts)
    text: str | None = None
    encoding: str | None = None
    pdus: int | None = None
    # a text naming {district}: ``text`` (and parts, PDUs) is the rendering for the district
    # with the longest name, the worst case; ``districts`` has each district's (id -> text)
    district: str | None = None
    districts: dict[str, str] | None = None
    # an outlet channel (facebook, portal, loudspeaker): the targets the campaign would be
    # published to (``recipients`` is their number)
    targets: list[Target] | None = None


class Preview(msgspec.Struct, frozen=True):
    audience_version: str
    audience_size: int
    needs_approval: bool
    channels: dict[Channel, ChannelPreview]
    sms: SmsPreview | None = None
    zns: ZnsPreview | None = None  # the typed ZNS template and its values, as sent today
    zalo: ZaloCapacity | None = None  # with zalo among the channels
    # the numbers on each channel's suppression list: skipped, or reached by a public-safety
    # alert (``public_safety``, as asked)
    suppressed: dict[Channel, int] = {}
    public_safety: bool = False


class Me(msgspec.Struct, frozen=True):
    """Who the bearer token belongs to, and what its role allows."""

    user: str
    role: Role


LocalTime = Annotated[str, Meta(pattern=r"^[0-2][0-9]:[0-5][0-9]$")]  # "HH:MM"


class PlanSlot(msgspec.Struct, frozen=True):
    day: Annotated[int, Meta(ge=0)]  # day of the period, from 0 (with period_days 7: Monday)
    time: LocalTime


class PlanChannel(msgspec.Struct, frozen=True):
    """One channel of a level: its row of the plan, its cadence and its next send."""

    activity: str
    quantity: str  # the source document's wording, e.g. "02 lần/tuần"
    lead: str
    coordinating: list[str]
    kinds: list[Kind]
    sends_per_week: float
    period_days: int
    slots: list[str]  # as the plan file writes them: "08:00", "mon 08:00", "+1 09:00"
    times: list[PlanSlot]  # the same, as (day of period, local time)
    next: dt.datetime | None  # the next send at this level (null: none within a period)
    template: str
    text: str  # as sent (SMS: diacritics stripped when the plan says so)
    subject: str
    strip_diacritics: bool
    sends_range: list[int] | None  # [min, max] sends per period the source allows
    encoding: Encoding | None  # SMS only
    parts: Annotated[int, Meta(ge=1)] | None  # SMS only
    # where the text in force comes from: the plan file, or an approved version (its id)
    origin: Literal["file", "approved"] = "file"
    version: str | None = None
    refused: RefusedText | None = None  # an approved version the plan no longer accepts
    # a text naming {district}: ``text`` and ``parts`` are the rendering for this district,
    # the one with the longest name (each recipient gets their district's)
    district: str | None = None
    # an outlet channel (facebook, portal, loudspeaker): the targets configured in this
    # deployment, which each of its waves is published to (a district's get its own text)
    targets: list[Target] | None = None
    # a public notice: each wave of the row is also a CAP message on /public/cap/feed.xml
    # and the public page's latest message
    public: bool = False


class RefusedText(msgspec.Struct, frozen=True):
    """The approved version in force of a level's channel that the plan no longer accepts
    (restarted with its level or row gone, another hotline or cap, ...): the plan file's text
    is sent instead, until the file accepts it again or another version is approved."""

    version: str
    reason: str  # as a proposal would be refused: "text: must give the hotline ..."


class PlanActivity(msgspec.Struct, frozen=True):
    """A row of the plan done by people (press, radio, loudspeakers): not sent, on the
    checklist (``GET /v1/checklist``) as ``L<level>-<id>`` on the days its cadence says."""

    field: str
    what: str
    quantity: str
    lead: str
    coordinating: list[str]
    id: str = ""
    cadence: str = ""  # "daily", "2/week (mon, thu)", "every 2 days", "as needed"
    carried: bool = False  # carried on from the level below (not in the source's table)
    channel: Channel | None = None  # sent by this channel once the level has its row
    on_checklist: bool = True  # False: the level's row of ``channel`` sends it


class PlanLevel(msgspec.Struct, frozen=True):
    level: int
    name: str
    trigger: str
    min_cases: int
    max_cases: int | None  # null: no upper bound
    channels: dict[Channel, PlanChannel]
    activities: list[PlanActivity]
    sms_diacritics: Diacritics  # in force at this level: strip (GSM-7) or keep (UCS-2)


class DistrictInfo(msgspec.Struct, frozen=True):
    id: str
    name: str


class PlanView(msgspec.Struct, frozen=True):
    """The plan Loa executes (config/plan.toml) with each channel's next send, and the
    province's districts, which a campaign's selector may name."""

    name: str
    source: str
    timezone: str
    sending_hours: Annotated[list[LocalTime], Meta(min_length=2, max_length=2)]  # [start, end)
    catch_up_minutes: int
    opening_damping_hours: int  # a level's opening is sent on a channel once within this
    province: str
    districts: list[DistrictInfo]
    levels: list[PlanLevel]
    hotline: str  # the number citizens call, filled into the texts' {hotline}
    sms_diacritics: Diacritics  # the plan's; a level may set its own
    sms_max_parts: int  # every SMS of the plan fits this many parts


class Health(msgspec.Struct, frozen=True):
    status: str


class Ready(msgspec.Struct, frozen=True):
    status: str
    # every channel: "configured", "simulated" ([channels] simulate: sent to no one) or
    # "missing" (no configuration: nothing is sent on it, campaigns on it are refused)
    channels: dict[Channel, str]
    simulated: list[Channel]  # the simulated ones, for a quick look


class WebhookAck(msgspec.Struct, frozen=True):
    status: str
    events: int  # events not seen before, passed on
    queued: int = 0  # events kept in the process until the store takes them (it is slow)


#: What the JSON schema of ``LevelSet`` says on top of its fields: exactly one of ``cases`` and
#: ``level`` is given (the other absent or null).
LEVEL_SET_ONE_OF = {"anyOf": [
    {"required": ["cases"],
     "properties": {"cases": {"type": "integer"}, "level": {"type": "null"}}},
    {"required": ["level"],
     "properties": {"level": {"type": "integer"}, "cases": {"type": "null"}}},
]}
