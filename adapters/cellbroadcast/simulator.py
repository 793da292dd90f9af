"""A carrier's cell broadcast centre, as Loa's generic CAP-over-HTTP profile sees it: the demo's,
the tests' and ``loa sim cellbroadcast``.

An HTTP server on loopback (:mod:`adapters.http.server`) that serves one CBC per carrier it is
given (carrier id -> credential: ``user:password`` for HTTP Basic, anything else a Bearer token):

* ``POST /{carrier}/cap`` takes a CAP 1.2 document. It is parsed and checked: the root is CAP
  1.2's ``alert``; identifier, sender, sent (a time with its offset), status, msgType and scope
  are there; an Alert or Update has an info with its category, event, urgency, severity and
  certainty, and an area with a polygon or a geocode; an expiry, if given, is ahead; an Update
  or a Cancel references "sender,identifier,sent" of an alert this CBC has (else 404), with its
  very sender and sent (else 400). A refusal is 400 with ``{"error": ...}``. An identifier the
  CBC has already is answered 409 (``{"error", "reference"}``): nothing is broadcast twice.
  Taken: 201 ``{"reference": "<carrier>-<n>", "identifier", "state": "accepted"}``;
* ``GET /{carrier}/cap/status?identifier=<id>`` answers ``{"identifier", "reference",
  "state"}``: accepted, then broadcasting (``broadcast_after`` seconds after it was taken),
  completed at its expiry, cancelled once a Cancel names it; 404 for an identifier it does not
  have;
* ``GET /sim/stats``: the counters as JSON (for a simulator in another process).

Credentials other than the carrier's are answered 401; those of a carrier in ``expired`` 401
with "credentials expired". Faults, each an attribute that may be changed between (and during)
sends: ``down`` (every request answered 503), ``delay`` (every answer held back that long),
``throttle_left`` requests answered 429 with ``Retry-After: retry_after``, ``reject_left``
documents answered 400, ``http_5xx_ratio`` of requests answered 500, and ``hang_after_accept``:
the alert is taken, then its answer held back that long (longer than the client waits: the
acceptance whose answer is lost). Every alert taken is kept in ``broadcasts[carrier]``, so a test
counts at the far end what each carrier got.
"""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import time
import xml.etree.ElementTree as ET
from collections import Counter
from typing import Any

import msgspec

from adapters.http.codec import Request
from adapters.http.server import HttpServer, Response
from adapters.http.sim import SimServer
from dispatcher.domain.cap import NAMESPACE

__all__ = ["CbcSim", "CbcSimConfig", "CbcSimStats", "SimBroadcast"]

STATS_PATH = "/sim/stats"
DEFAULT_CARRIERS = {"viettel": "sim-user:sim-password"}
MSG_TYPES = frozenset({"Alert", "Update", "Cancel"})
STATUSES = frozenset({"Actual", "Exercise", "System", "Test", "Draft"})
_encode = msgspec.json.Encoder().encode
_NS = f"{{{NAMESPACE}}}"


class CbcSimConfig(msgspec.Struct, frozen=True, kw_only=True):
    """How the simulated broadcast centres start (times in seconds, ratios 0 to 1)."""

    carriers: dict[str, str] = msgspec.field(default_factory=lambda: dict(DEFAULT_CARRIERS))
    expired: frozenset[str] = frozenset()  # carriers whose credentials are answered expired
    throttle_count: int = 0  # the next requests answered 429
    retry_after: int = 1  # ... with this Retry-After
    reject_count: int = 0  # the next documents answered 400
    http_5xx_ratio: float = 0.0
    delay: float = 0.0
    hang_after_accept: float = 0.0
    broadcast_after: float = 0.0  # a taken alert is on the air this long after
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.http_5xx_ratio <= 1:
            raise ValueError("http_5xx_ratio must be between 0 and 1")
        if min(self.delay, self.hang_after_accept, self.broadcast_after, self.throttle_count,
               self.reject_count, self.retry_after) < 0:
            raise ValueError("delays, counts and retry_after must be 0 or more")
        if not self.carriers:
            raise ValueError("give at least one carrier (carrier id -> its credential)")
        for carrier, credential in self.carriers.items():
            if not carrier or "/" in carrier or not credential:
                raise ValueError(f"carrier {carrier!r}: an id without '/' and a credential")


class SimBroadcast(msgspec.Struct):
    """An alert a simulated CBC took."""

    identifier: str
    sender: str
    sent: str
    msg_type: str
    reference: str
    received: float
    expires: float  # epoch seconds; 0: none
    document: bytes
    references: list[str] = []
    cancelled_by: str = ""  # the identifier of the Cancel that withdrew it

    def state(self, now: float, broadcast_after: float) -> str:
        if self.cancelled_by:
            return "cancelled"
        if self.msg_type == "Cancel":
            return "completed"
        if self.expires and now >= self.expires:
            return "completed"
        return "broadcasting" if now >= self.received + broadcast_after else "accepted"


class CbcSimStats(msgspec.Struct):
    requests: int = 0
    alerts: int = 0  # Alerts and Updates taken
    cancels: int = 0  # Cancels taken
    duplicates: int = 0  # answered 409
    refused: int = 0  # answered 4xx (but 409) or 5xx
    reads: int = 0  # status reads answered
    answered: dict[str, int] = {}  # HTTP status -> answers
    by_carrier: dict[str, int] = {}  # carrier -> alerts taken


class _Refusal(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class CbcSim(SimServer):
    """The broadcast centres on ``127.0.0.1``: ``await start()``, then requests to
    ``url_of(carrier)``."""

    def __init__(self, config: CbcSimConfig | None = None) -> None:
        config = config or CbcSimConfig()
        super().__init__(config.seed)
        self.config = config
        self.credentials = dict(config.carriers)
        self.expired = set(config.expired)
        self.throttle_left = config.throttle_count
        self.retry_after = config.retry_after
        self.reject_left = config.reject_count
        self.http_5xx_ratio = config.http_5xx_ratio
        self.delay = config.delay
        self.hang_after_accept = config.hang_after_accept
        self.broadcast_after = config.broadcast_after
        self.down = False
        self.broadcasts: dict[str, dict[str, SimBroadcast]] = {c: {} for c in config.carriers}
        self.answered: Counter[int] = Counter()
        self.requests = 0
        self.reads = 0
        self._refs = itertools.count(1)

    def _route(self, server: HttpServer) -> None:
        for carrier in self.config.carriers:
            server.route("POST", f"/{carrier}/cap", self._submit)
            server.route("GET", f"/{carrier}/cap/status", self._status)
        server.route("GET", STATS_PATH, self._stats)

    def url_of(self, carrier: str) -> str:
        """Where a carrier's CBC takes alerts."""
        return f"{self.url}/{carrier}/cap"

    def alerts(self, carrier: str) -> list[SimBroadcast]:
        """The Alerts and Updates a carrier's CBC took, oldest first."""
        return [b for b in self.broadcasts.get(carrier, {}).values() if b.msg_type != "Cancel"]

    def cancels(self, carrier: str) -> list[SimBroadcast]:
        """The Cancels a carrier's CBC took, oldest first."""
        return [b for b in self.broadcasts.get(carrier, {}).values() if b.msg_type == "Cancel"]

    def state(self, carrier: str, identifier: str) -> str:
        found = self.broadcasts.get(carrier, {}).get(identifier)
        return found.state(time.time(), self.broadcast_after) if found else "absent"

    def snapshot(self) -> CbcSimStats:
        every = [b for taken in self.broadcasts.values() for b in taken.values()]
        return CbcSimStats(
            requests=self.requests, alerts=sum(b.msg_type != "Cancel" for b in every),
            cancels=sum(b.msg_type == "Cancel" for b in every),
            duplicates=self.answered[409],
            refused=sum(n for code, n in self.answered.items() if code >= 400 and code != 409),
            reads=self.reads,
            answered={str(code): n for code, n in sorted(self.answered.items())},
            by_carrier={c: len(self.alerts(c)) for c in self.broadcasts})

    # -- the CBC ---------------------------------------------------------------------------------

    def _stats(self, request: Request) -> Response:
        return Response(_encode(self.snapshot()))

    def _answer(self, status: int, body: dict[str, Any],
                headers: dict[str, str] | None = None) -> Response:
        self.answered[status] += 1
        return Response(_encode(body), status, headers=headers)

    async def _refuse(self, request: Request, carrier: str) -> Response | None:
        """The fault answer of a request, or None to serve it."""
        self.requests += 1
        if self.down:
            return self._answer(503, {"error": "service unavailable"})
        await self._wait(self.delay)
        if not self._allowed(request, carrier):
            return self._answer(401, {"error": "invalid credentials"}, {
                "WWW-Authenticate": 'Basic realm="cbc"'})
        if carrier in self.expired:
            return self._answer(401, {"error": "credentials expired"}, {
                "WWW-Authenticate": 'Bearer error="invalid_token"'})
        if self.throttle_left > 0:
            self.throttle_left -= 1
            return self._answer(429, {"error": "too many requests"},
                                {"Retry-After": str(self.retry_after)})
        if self._chance(self.http_5xx_ratio):
            return self._answer(500, {"error": "internal error"})
        return None

    def _allowed(self, request: Request, carrier: str) -> bool:
        credential = self.credentials[carrier]
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        if ":" in credential:
            try:
                return (scheme.lower() == "basic"
                        and base64.b64decode(value, validate=True).decode() == credential)
            except (ValueError, UnicodeDecodeError):
                return False
        return scheme.lower() == "bearer" and value == credential

    def _carrier(self, request: Request) -> str:
        return request.path.split("/")[1]

    async def _submit(self, request: Request) -> Response:
        carrier = self._carrier(request)
        refused = await self._refuse(request, carrier)
        if refused is not None:
            return refused
        if self.reject_left > 0:
            self.reject_left -= 1
            return self._answer(400, {"error": "the CAP document is refused (simulated)"})
        try:
            taken = self._read(request.body, carrier)
        except _Refusal as refusal:
            return self._answer(refusal.status, {"error": refusal.message})
        kept = self.broadcasts[carrier]
        earlier = kept.get(taken.identifier)
        if earlier is not None:
            return self._answer(409, {"error": f"identifier {taken.identifier} exists already",
                                      "reference": earlier.reference})
        kept[taken.identifier] = taken
        if taken.msg_type == "Cancel":
            for reference in taken.references:
                kept[reference.split(",")[1]].cancelled_by = taken.identifier
        await self._wait(self.hang_after_accept)  # taken; the answer may come too late
        return self._answer(201, {"reference": taken.reference, "identifier": taken.identifier,
                                  "state": "accepted"})

    async def _status(self, request: Request) -> Response:
        carrier = self._carrier(request)
        refused = await self._refuse(request, carrier)
        if refused is not None:
            return refused
        identifier = request.query.get("identifier", "")
        found = self.broadcasts[carrier].get(identifier)
        if found is None:
            return self._answer(404, {"error": f"no alert {identifier!r}"})
        self.reads += 1
        return self._answer(200, {"identifier": identifier, "reference": found.reference,
                                  "state": found.state(time.time(), self.broadcast_after)})

    # -- reading a CAP document ------------------------------------------------------------------

    def _read(self, body: bytes, carrier: str) -> SimBroadcast:
        try:
            root = ET.fromstring(body)
        except ET.ParseError as exc:
            raise _Refusal(400, f"not XML: {exc}") from None
        if root.tag != f"{_NS}alert":
            raise _Refusal(400, f"not a CAP 1.2 alert: the root is {root.tag}")
        fields = {name: _text(root, name) for name in (
            "identifier", "sender", "sent", "status", "msgType", "scope")}
        missing = [name for name, value in fields.items() if not value]
        if missing:
            raise _Refusal(400, f"missing {', '.join(missing)}")
        if fields["msgType"] not in MSG_TYPES or fields["status"] not in STATUSES:
            raise _Refusal(400, f"msgType {fields['msgType']} or status {fields['status']} is "
                                "not CAP 1.2's")
        if _time(fields["sent"]) is None:
            raise _Refusal(400, f"sent {fields['sent']!r} is not a time with its offset")
        references = _text(root, "references").split()
        msg_type = fields["msgType"]
        expires = 0.0
        if msg_type != "Cancel":
            expires = self._infos(root)
        if msg_type != "Alert":
            self._references(references, carrier)
        return SimBroadcast(
            identifier=fields["identifier"], sender=fields["sender"], sent=fields["sent"],
            msg_type=msg_type, reference=f"{carrier}-{next(self._refs):06d}",
            received=time.time(), expires=expires, document=body, references=references)

    def _infos(self, root: ET.Element) -> float:
        """Check an Alert's or Update's infos; the latest expiry (0: none)."""
        infos = root.findall(f"{_NS}info")
        if not infos:
            raise _Refusal(400, "no info")
        latest = 0.0
        for info in infos:
            missing = [name for name in ("category", "event", "urgency", "severity",
                                         "certainty") if not _text(info, name)]
            if missing:
                raise _Refusal(400, f"an info without {', '.join(missing)}")
            areas = info.findall(f"{_NS}area")
            if not areas or not all(
                    area.findall(f"{_NS}polygon") or area.findall(f"{_NS}geocode")
                    for area in areas):
                raise _Refusal(400, "an info without an area, or an area without a polygon "
                                    "or a geocode: no cell to broadcast in")
            text = _text(info, "expires")
            if text:
                when = _time(text)
                if when is None or when <= time.time():
                    raise _Refusal(400, f"expires {text} is not a time ahead")
                latest = max(latest, when)
        return latest

    def _references(self, references: list[str], carrier: str) -> None:
        if not references:
            raise _Refusal(400, "an Update or a Cancel references the alert it concerns")
        for reference in references:
            parts = reference.split(",")
            if len(parts) != 3:
                raise _Refusal(400, f"reference {reference!r} is not sender,identifier,sent")
            sender, identifier, sent = parts
            earlier = self.broadcasts[carrier].get(identifier)
            if earlier is None:
                raise _Refusal(404, f"no alert {identifier!r} to refer to")
            if earlier.sender != sender or earlier.sent != sent:
                raise _Refusal(400, f"reference {reference!r} does not match the alert "
                                    f"({earlier.sender},{earlier.identifier},{earlier.sent})")


def _text(parent: ET.Element, name: str) -> str:
    found = parent.find(f"{_NS}{name}")
    return (found.text or "").strip() if found is not None else ""


def _time(text: str) -> float | None:
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return when.timestamp() if when.tzinfo is not None else None
