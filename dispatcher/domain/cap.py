"""Public alerts as OASIS CAP 1.2 messages (Common Alerting Protocol, ITU-T X.1303).

Each public alert (a level change, an urgent campaign, a wave of a plan row marked public) is one
:class:`CapAlert`; :func:`to_xml` writes it as a CAP 1.2 ``<alert>`` in the namespace
``urn:oasis:names:tc:emergency:cap:1.2``. Its identifier is made from the event it speaks of
(:func:`identifier`), so one event makes one message whoever publishes it and however often.
An Update or a Cancel names the earlier message in ``references`` ("sender,identifier,sent").
Times are written with the province's offset (``2026-03-01T08:00:00+07:00``), without fractions
of a second, as the CAP schema requires. Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import xml.etree.ElementTree as ET

import msgspec

from dispatcher.domain.errors import ConfigError
from dispatcher.domain.model import VN

NAMESPACE = "urn:oasis:names:tc:emergency:cap:1.2"
MEDIA_TYPE = "application/cap+xml"
LANGUAGE = "vi-VN"
CATEGORY = "Health"
SCOPE = "Public"


class Status(enum.StrEnum):
    """Who the message is for: ``Actual`` (the public), ``Exercise`` and ``Test`` (not to be
    acted on; a deployment that trains or tries Loa says so)."""

    ACTUAL = "Actual"
    EXERCISE = "Exercise"
    TEST = "Test"


class MsgType(enum.StrEnum):
    ALERT = "Alert"
    UPDATE = "Update"  # supersedes the message in references
    CANCEL = "Cancel"  # the message in references is no longer in force


class Urgency(enum.StrEnum):
    IMMEDIATE = "Immediate"
    EXPECTED = "Expected"
    FUTURE = "Future"
    PAST = "Past"
    UNKNOWN = "Unknown"


class Severity(enum.StrEnum):
    EXTREME = "Extreme"
    SEVERE = "Severe"
    MODERATE = "Moderate"
    MINOR = "Minor"
    UNKNOWN = "Unknown"


class Certainty(enum.StrEnum):
    OBSERVED = "Observed"
    LIKELY = "Likely"
    POSSIBLE = "Possible"
    UNLIKELY = "Unlikely"
    UNKNOWN = "Unknown"


class Rating(msgspec.Struct, frozen=True):
    urgency: Urgency
    severity: Severity
    certainty: Certainty


#: What each epidemic level means for CAP (docs/channels.md, "CAP 1.2"). The levels are set by
#: confirmed cases, so the certainty is Observed; level 0 (no case) ends the level's alert.
#: A plan with more levels than this table rates its higher ones as the highest row.
LEVELS: dict[int, Rating] = {
    0: Rating(Urgency.PAST, Severity.MINOR, Certainty.OBSERVED),
    1: Rating(Urgency.FUTURE, Severity.MODERATE, Certainty.OBSERVED),
    2: Rating(Urgency.EXPECTED, Severity.MODERATE, Certainty.OBSERVED),
    3: Rating(Urgency.EXPECTED, Severity.SEVERE, Certainty.OBSERVED),
    4: Rating(Urgency.IMMEDIATE, Severity.EXTREME, Certainty.OBSERVED),
}


def rating(level: int, *, urgent: bool = False) -> Rating:
    """The level's rating; ``urgent`` (an urgent notice): its urgency is Immediate."""
    found = LEVELS.get(level) or LEVELS[max(LEVELS)]
    return msgspec.structs.replace(found, urgency=Urgency.IMMEDIATE) if urgent else found


class AreaConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Shapes of one district (or of the province: key ``province``) in ``[cap.areas]``."""

    # CAP polygons: "lat,lon lat,lon ..." (WGS 84), at least 4 points, the last the first
    polygons: list[str] = []
    geocodes: dict[str, str] = {}  # valueName -> value, e.g. {"VN-GSO" = "193"}


DEFAULT_INSTRUCTION = ("Theo dõi thông tin chính thống của tỉnh; thực hiện các biện pháp phòng, "
                       "chống dịch. Khi có sốt, ho, khó thở, gọi ngay trạm y tế xã, phường hoặc "
                       "đường dây nóng {hotline}.")


class CapSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The ``[cap]`` table: who publishes the public alerts, and how."""

    sender: str = ""  # e.g. "soyte@quangninh.gov.vn"; empty: no public alert is published
    sender_name: str = ""  # e.g. "Sở Y tế tỉnh Quảng Ninh"
    status: Status = Status.ACTUAL  # Exercise or Test for a deployment that trains or tries
    identifier_prefix: str = "loa"  # each identifier is <prefix>.<event>
    event: str = "Dịch COVID-19"  # the CAP event: "<event> — Cấp độ III"
    instruction: str = DEFAULT_INSTRUCTION  # {hotline}: the situation's or the plan's
    contact: str = ""  # empty: "Đường dây nóng <hotline>"
    web: str = ""  # more information (a URL); empty: <base_url>/public/notice when base_url is set
    base_url: str = ""  # the public address of /public (links of the feed); empty: the request's
    expires_hours: float = 24.0  # notices (campaigns, plan waves) expire after this; 0: never
    feed_entries: int = 30  # messages in the Atom feed, newest first
    # a message no longer in force, shown or referenced is removed this long after it was
    # sent (dispatcher.domain.capretention); 0: every message is kept for good
    retention_days: float = 90.0
    cache_seconds: int = 60  # Cache-Control max-age of the public routes
    areas: dict[str, AreaConfig] = {}  # district id (or "province") -> polygons and geocodes

    @property
    def enabled(self) -> bool:
        return bool(self.sender)

    def contact_for(self, hotline: str) -> str:
        return self.contact or (f"Đường dây nóng {hotline}" if hotline else "")

    def instruction_for(self, hotline: str) -> str:
        return self.instruction.replace("{hotline}", hotline or "115")

    def web_url(self) -> str:
        if self.web:
            return self.web
        return f"{self.base_url.rstrip('/')}/public/notice" if self.base_url else ""


_NO_SPACE = re.compile(r"^[^\s,<&]+$")
_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_POINT = re.compile(r"^-?\d{1,2}(\.\d+)?,-?\d{1,3}(\.\d+)?$")
_URL = re.compile(r"^https?://[^\s<>\"]+$")
PROVINCE_AREA = "province"


def check_settings(cap: CapSettings, source: str) -> None:
    """Refuse a ``[cap]`` table that would make invalid CAP or a broken feed (names the key)."""
    def fail(key: str, message: str) -> ConfigError:
        return ConfigError(message, source=source, key=f"cap.{key}")

    if cap.sender and not _NO_SPACE.match(cap.sender):
        raise fail("sender", "no spaces, commas, < or & (e.g. \"soyte@quangninh.gov.vn\")")
    if not _PREFIX.match(cap.identifier_prefix):
        raise fail("identifier_prefix", "letters, digits, dots, dashes and underscores (at "
                                        "most 64)")
    if not cap.event.strip():
        raise fail("event", "is empty")
    for key in ("web", "base_url"):
        value = getattr(cap, key)
        if value and not _URL.match(value):
            raise fail(key, f"{value!r} is not an http(s) URL")
    if cap.expires_hours < 0:
        raise fail("expires_hours", "must be 0 (never) or more")
    if cap.retention_days < 0:
        raise fail("retention_days", "must be 0 (kept for good) or more")
    if not 1 <= cap.feed_entries <= 500:
        raise fail("feed_entries", "must be 1 to 500")
    if not 0 <= cap.cache_seconds <= 86_400:
        raise fail("cache_seconds", "must be 0 to 86400")
    for name, area in cap.areas.items():
        for index, polygon in enumerate(area.polygons):
            points = polygon.split()
            if len(points) < 4 or points[0] != points[-1] or not all(
                    _POINT.match(p) for p in points):
                raise fail(f"areas.{name}.polygons[{index}]",
                           "a CAP polygon is \"lat,lon lat,lon ...\": at least 4 points, the "
                           "last the same as the first")


def check_areas(cap: CapSettings, districts: set[str], source: str | None = None) -> None:
    """Every key of ``[cap.areas]`` is a district id of the province, or ``province``."""
    for name in cap.areas:
        if name != PROVINCE_AREA and name not in districts:
            raise ConfigError(f"not a district id of the province (config/province.toml) nor "
                              f"{PROVINCE_AREA!r}", source=source, key=f"cap.areas.{name}")


# -- the message --------------------------------------------------------------------------------


class CapArea(msgspec.Struct, frozen=True):
    desc: str
    polygons: list[str] = []
    geocodes: dict[str, str] = {}


class CapInfo(msgspec.Struct, frozen=True, omit_defaults=True):
    event: str
    urgency: Urgency
    severity: Severity
    certainty: Certainty
    headline: str = ""
    description: str = ""
    instruction: str = ""
    web: str = ""
    contact: str = ""
    sender_name: str = ""
    effective: dt.datetime | None = None
    expires: dt.datetime | None = None
    areas: list[CapArea] = []
    language: str = ""  # RFC 3066 code; empty: vi-VN
    # <parameter> valueName -> value: what a receiving system asks for beyond CAP's elements
    # (a carrier's broadcast centre: its repetition, its channel)
    parameters: dict[str, str] = {}


class CapAlert(msgspec.Struct, frozen=True, omit_defaults=True):
    """One CAP message, and what Loa knows of it beyond the XML: the event it speaks of
    (``origin``, e.g. ``level``, ``campaign``, ``wave``), the chain of messages it belongs to
    (``thread``: an Update or a Cancel references the chain's last), the level it speaks of
    and when that event happened (``event_at``)."""

    identifier: str
    sender: str
    sent: dt.datetime
    status: Status
    msg_type: MsgType
    thread: str
    origin: str
    event_at: dt.datetime
    references: list[str] = []
    infos: list[CapInfo] = []
    note: str = ""
    level: int | None = None

    @property
    def reference(self) -> str:
        """How a later message names this one: "sender,identifier,sent"."""
        return f"{self.sender},{self.identifier},{cap_time(self.sent)}"


class Published(msgspec.Struct, frozen=True):
    """A message of the feed and its place in it (1, 2, ...: the order of publication)."""

    seq: int
    alert: CapAlert


def identifier(prefix: str, *parts: str) -> str:
    """The identifier of the message about an event: ``<prefix>.<part>.<part>``."""
    return ".".join([prefix, *parts])


def cap_time(when: dt.datetime) -> str:
    """A CAP dateTime: local time of the province with its offset, whole seconds."""
    return when.astimezone(VN).replace(microsecond=0).isoformat()


# XML 1.0 allows neither these control characters nor lone surrogates: each becomes U+FFFD
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def xml_text(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def _add(parent: ET.Element, name: str, text: str) -> None:
    if text:
        ET.SubElement(parent, f"{{{NAMESPACE}}}{name}").text = xml_text(text)


def element(alert: CapAlert) -> ET.Element:
    """The ``<alert>`` element, children in the order the CAP 1.2 schema requires."""
    root = ET.Element(f"{{{NAMESPACE}}}alert")
    _add(root, "identifier", alert.identifier)
    _add(root, "sender", alert.sender)
    _add(root, "sent", cap_time(alert.sent))
    _add(root, "status", alert.status.value)
    _add(root, "msgType", alert.msg_type.value)
    _add(root, "scope", SCOPE)
    _add(root, "note", alert.note)
    _add(root, "references", " ".join(alert.references))
    for info in alert.infos:
        block = ET.SubElement(root, f"{{{NAMESPACE}}}info")
        _add(block, "language", info.language or LANGUAGE)
        _add(block, "category", CATEGORY)
        _add(block, "event", info.event)
        _add(block, "urgency", info.urgency.value)
        _add(block, "severity", info.severity.value)
        _add(block, "certainty", info.certainty.value)
        if info.effective is not None:
            _add(block, "effective", cap_time(info.effective))
        if info.expires is not None:
            _add(block, "expires", cap_time(info.expires))
        _add(block, "senderName", info.sender_name)
        _add(block, "headline", info.headline)
        _add(block, "description", info.description)
        _add(block, "instruction", info.instruction)
        _add(block, "web", info.web)
        _add(block, "contact", info.contact)
        for name, value in info.parameters.items():
            parameter = ET.SubElement(block, f"{{{NAMESPACE}}}parameter")
            _add(parameter, "valueName", name)
            _add(parameter, "value", value)
        for area in info.areas:
            where = ET.SubElement(block, f"{{{NAMESPACE}}}area")
            _add(where, "areaDesc", area.desc)
            for polygon in area.polygons:
                _add(where, "polygon", polygon)
            for name, value in area.geocodes.items():
                code = ET.SubElement(where, f"{{{NAMESPACE}}}geocode")
                _add(code, "valueName", name)
                _add(code, "value", value)
    return root


ET.register_namespace("cap", NAMESPACE)  # inside other documents (the Atom feed): cap:alert


def to_xml(alert: CapAlert) -> bytes:
    """The message as a CAP 1.2 document (UTF-8, with its XML declaration)."""
    written: bytes = ET.tostring(element(alert), encoding="utf-8", xml_declaration=True,
                                 default_namespace=NAMESPACE)
    return written


def headline_of(text: str, limit: int = 140) -> str:
    """A headline from a text: its first sentence, at most ``limit`` characters."""
    first = re.split(r"(?<=[.!?])\s", text.strip(), maxsplit=1)[0].rstrip(".")
    return first if len(first) <= limit else first[:limit - 1].rstrip() + "…"
