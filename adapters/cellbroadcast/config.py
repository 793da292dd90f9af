"""The cell broadcast channel's settings (``[cell_broadcast]``): each carrier's broadcast centre,
its credentials and options, and the shapes of the areas.

Kept apart from the adapter so that what reads the settings does not load its HTTP client. Each
carrier is a target of the channel (:class:`dispatcher.domain.outlet.Target`, district "": a
carrier broadcasts wherever the wave's area says): its ``id`` is Loa's name for it (the address
of its batches, the key of its sent bit). Its password (``auth = "basic"``) or token (``auth =
"bearer"``) is read from the environment variable ``password_env`` or ``token_env`` when the
settings are loaded, never from the file.

``areas`` gives each district of the province (config/province.toml ids) as CAP polygons
(``"lat,lon lat,lon ..."``, WGS 84, closed) and/or geocodes (``{ valueName = value }``, as the
carriers agree), and ``province`` the whole province (without it, the whole province is every
district's shapes). Empty, ``[cap] areas`` serves. Every district must have one: a broadcast goes
to cells, and an area without a shape would reach no one (or, worse, everyone).
"""

from __future__ import annotations

import enum
import re

import msgspec

from adapters.http.proxy import Proxies
from dispatcher.domain.cap import AreaConfig
from dispatcher.domain.outlet import Target, check_id
from dispatcher.domain.secret import Secret

_POINT = re.compile(r"^-?\d{1,2}(\.\d+)?,-?\d{1,3}(\.\d+)?$")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.:-]{0,63}$")
_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_NO_SPACE = re.compile(r"^[^\s,<&]+$")
#: The placeholder of ``status_url`` that names the alert.
IDENTIFIER = "{identifier}"
#: ``status_url``: the CBC has no status interface (a broadcast's state is its answer's).
NO_STATUS = "none"


class Auth(enum.StrEnum):
    BASIC = "basic"  # Authorization: Basic user:password (password_env)
    BEARER = "bearer"  # Authorization: Bearer <token> (token_env)
    NONE = "none"  # the network alone (a private link, mutual TLS in front)


class CarrierOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What one carrier's CBC asks of the alerts it takes."""

    language: str = "vi-VN"  # the CAP info's language (RFC 3066)
    # how often the CBC repeats the broadcast in each cell (the CAP parameter
    # ``repetition_parameter``, seconds); 0: the CBC's own default
    repetition_seconds: int = 0
    repetition_parameter: str = "repetitionPeriod"
    parameters: dict[str, str] = {}  # more CAP <parameter>s, as the carrier names them
    max_chars: int = 0  # the longest text the CBC broadcasts (0: no limit): longer fails
    content_type: str = "application/cap+xml"  # or application/xml, text/xml


class Carrier(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One carrier's cell broadcast centre."""

    id: str  # Loa's id of the carrier: "viettel", "vinaphone", "mobifone"
    url: str  # where the CAP alerts are POSTed
    name: str = ""  # for people: "Viettel CBC"
    auth: Auth = Auth.BASIC
    user: str = ""
    password_env: str = ""  # basic: the environment variable holding the password
    token_env: str = ""  # bearer: the environment variable holding the token
    # where a broadcast's state is read: "" is <url>/status?identifier={identifier}; "none": the
    # CBC has none
    status_url: str = ""
    options: CarrierOptions = CarrierOptions()
    password: str = ""  # filled in from password_env by the settings loader; never in the file
    token: str = ""  # filled in from token_env by the settings loader; never in the file

    def target(self) -> Target:
        return Target(self.id, self.name)

    def status_of(self, identifier: str) -> str:
        """The URL of a broadcast's state ("" when the CBC has none)."""
        if self.status_url == NO_STATUS:
            return ""
        template = self.status_url or f"{self.url.rstrip('/')}/status?identifier={IDENTIFIER}"
        return template.replace(IDENTIFIER, identifier)


class CellBroadcastConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The carriers' broadcast centres and the areas (see the module's documentation)."""

    carriers: list[Carrier] = []
    sender: str = ""  # the CAP sender the carriers know Loa by; empty: [cap] sender
    identifier_prefix: str = ""  # empty: [cap] identifier_prefix
    areas: dict[str, AreaConfig] = {}  # district id (or "province") -> shapes; empty: [cap]'s
    duration_hours: float = 6.0  # a broadcast expires this long after its wave was made
    # urgent campaigns while the level in force is this or higher also go by cell broadcast
    # (with their SMS text); 0: only those that name the channel
    urgent_level: int = 4
    timeout: float = 10.0  # seconds per request, connection included
    concurrency: int = 4  # requests in flight
    proxy: str = ""  # "" the environment's, "direct" none, or http://host:port
    no_proxy: str = ""
    throttle_pause: float = 30.0  # 429 without Retry-After: the carrier waits this long
    throttle_pause_max: float = 600.0  # ... doubling while the CBC keeps refusing, up to this
    alert_probe_seconds: float = 300.0  # a carrier stopped (credentials): tried this often
    outage_pause_max: float = 30.0  # longest pause of the route while every CBC is away
    unknown_code_limit: int = 5  # unlisted answers in a row that stop the carrier
    status_seconds: float = 60.0  # a live broadcast's state is read this often
    status_reads: int = 60  # ... at most this many times

    def __post_init__(self) -> None:
        if self.timeout <= 0 or self.concurrency < 1:
            raise ValueError("timeout must be positive and concurrency at least 1")
        if not 0 < self.throttle_pause <= self.throttle_pause_max:
            raise ValueError("throttle_pause must be positive and at most throttle_pause_max")
        if min(self.alert_probe_seconds, self.outage_pause_max, self.status_seconds) <= 0:
            raise ValueError("alert_probe_seconds, outage_pause_max and status_seconds must be "
                             "positive")
        if self.unknown_code_limit < 1 or self.status_reads < 0:
            raise ValueError("unknown_code_limit must be at least 1, status_reads 0 or more")
        if self.duration_hours <= 0:
            raise ValueError("duration_hours must be positive: a broadcast without an expiry "
                             "would be repeated for ever")
        if self.urgent_level < 0:
            raise ValueError("urgent_level must be 0 (never) or a level")
        if self.sender and not _NO_SPACE.match(self.sender):
            raise ValueError(f"sender {self.sender!r}: no spaces, commas, < or &")
        if self.identifier_prefix and not _PREFIX.match(self.identifier_prefix):
            raise ValueError(f"identifier_prefix {self.identifier_prefix!r}: letters, digits, "
                             "dots, dashes and underscores (at most 64)")
        Proxies.configured(self.proxy, self.no_proxy, env={})  # ValueError naming the URL
        for name, area in self.areas.items():
            check_area(f"areas.{name}", area)
        seen: set[str] = set()
        for index, carrier in enumerate(self.carriers):
            _check_carrier(f"carriers[{index}]", carrier, seen)
            if carrier.password and not isinstance(carrier.password, Secret):
                msgspec.structs.force_setattr(carrier, "password", Secret(carrier.password))
            if carrier.token and not isinstance(carrier.token, Secret):
                msgspec.structs.force_setattr(carrier, "token", Secret(carrier.token))

    def targets(self) -> list[Target]:
        """The carriers, as the engine knows them."""
        return [carrier.target() for carrier in self.carriers]


def check_area(where: str, area: AreaConfig) -> None:
    if not area.polygons and not area.geocodes:
        raise ValueError(f"{where}: give polygons or geocodes (an area without a shape reaches "
                         "no cell)")
    for index, polygon in enumerate(area.polygons):
        points = polygon.split()
        if len(points) < 4 or points[0] != points[-1] or not all(_POINT.match(p)
                                                                  for p in points):
            raise ValueError(f"{where}.polygons[{index}]: a CAP polygon is \"lat,lon lat,lon "
                             "...\": at least 4 points, the last the same as the first")
    for name, value in area.geocodes.items():
        if not _NAME.match(name) or not value.strip():
            raise ValueError(f"{where}.geocodes: {name!r} = {value!r} is not a geocode "
                             "(valueName = \"value\")")


def _check_carrier(where: str, carrier: Carrier, seen: set[str]) -> None:
    check_id(where, carrier.id, seen)
    where = f"{where} ({carrier.id})"
    for field in ("url", "status_url"):
        value = getattr(carrier, field)
        checked = field == "url" or value not in ("", NO_STATUS)
        if checked and (not value.startswith(("https://", "http://"))
                        or any(c.isspace() for c in value)):
            raise ValueError(f"{where}: {field} {value!r} is not an http(s) URL")
    if carrier.status_url not in ("", NO_STATUS) and IDENTIFIER not in carrier.status_url:
        raise ValueError(f"{where}: status_url must hold {IDENTIFIER} (where the alert is named)")
    if carrier.auth is Auth.BASIC and not (carrier.user and carrier.password_env):
        raise ValueError(f"{where}: auth = \"basic\" needs user and password_env (the "
                         "environment variable holding the password)")
    if carrier.auth is Auth.BEARER and not carrier.token_env:
        raise ValueError(f"{where}: auth = \"bearer\" needs token_env (the environment variable "
                         "holding the token)")
    options = carrier.options
    if options.repetition_seconds < 0 or options.max_chars < 0:
        raise ValueError(f"{where}: options.repetition_seconds and options.max_chars must be 0 "
                         "or more")
    if not _NAME.match(options.repetition_parameter):
        raise ValueError(f"{where}: options.repetition_parameter "
                         f"{options.repetition_parameter!r} is not a parameter name")
    for name, value in options.parameters.items():
        if not _NAME.match(name) or not value.strip():
            raise ValueError(f"{where}: options.parameters: {name!r} = {value!r} is not a CAP "
                             "parameter (valueName = \"value\")")
    if options.content_type not in ("application/cap+xml", "application/xml", "text/xml"):
        raise ValueError(f"{where}: options.content_type must be application/cap+xml, "
                         "application/xml or text/xml")
