"""Zalo delivery webhooks: verify, read and de-duplicate ``user_received_message`` events.

:class:`WebhookVerifier` is sans-IO: ``parse(body, headers)`` checks ``X-ZEvent-Signature``
(SHA-256 of app id + body + timestamp + OA secret key, :func:`adapters.zalo.api.sign`) and the
event's age, and answers the delivery events in it, or raises :class:`WebhookRejected`. The
signed timestamp is the event's ``timestamp`` field (milliseconds; the first event's when a body
holds a list of events). Every event's timestamp must be an integer (digits only: no ``nan``,
``inf``, sign or exponent) at most ``max_age_seconds`` old (Zalo tries a failed delivery again
for about an hour, with the event's first timestamp) and at most ``max_ahead_seconds`` ahead of
the clock. The time the message reached the handset is ``message.delivery_time`` (milliseconds,
a string or a number; the event's ``timestamp`` when it has none).

The service takes the webhook in its API (:mod:`dispatcher.service.api.webhook_intake`); the demo's
receiver is :mod:`bench.webhookreceiver`. Zalo sends an event again when it got no 200 in
time; a :class:`Deduper` passes each ``msg_id`` on once within the age window, so every delivery
is seen once.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping

import msgspec

from adapters.zalo.api import (
    RECEIVED_EVENT,
    SIGNATURE_HEADER,
    WebhookEvent,
    event_decoder,
    verify,
)
from dispatcher.domain.errors import LoaError
from dispatcher.domain.incoming import FOLLOW, UNFOLLOW, Incoming, clip
from dispatcher.domain.model import Channel

log = logging.getLogger(__name__)

#: How old an event may be: Zalo tries a failed delivery again for about an hour (30 s, 5 min,
#: 15 min, 30 min, 1 h: reported, not documented by Zalo), each time with the event's first
#: timestamp; past this, an event is refused as a replay.
MAX_AGE = 7200.0
#: How far ahead of the clock an event may be (the two clocks' skew).
MAX_AHEAD = 300.0


class WebhookRejected(LoaError):
    """A webhook request that is not accepted; ``status`` is the HTTP answer (401 or 400)."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.status = status


class DeliveryEvent(msgspec.Struct, frozen=True):
    """A message Zalo delivered to the handset."""

    msg_id: str  # Zalo's id, the adapter's remote id ("" if the event had none)
    tracking_id: str  # Loa's: wave:address ("" if the event had none)
    timestamp: float  # epoch seconds of the event
    user_id: str = ""  # the recipient's Zalo user id, when given
    delivered_at: float = 0.0  # epoch seconds it reached the handset (message.delivery_time)


class UserEvent(msgspec.Struct, frozen=True):
    """What a Zalo user did: wrote to the OA (``user_send_text``, ``user_send_image``, ...),
    followed or unfollowed it. ``user_id`` is the OA-scoped Zalo user id (not a phone)."""

    event_name: str
    user_id: str
    timestamp: float  # epoch seconds of the event
    text: str = ""
    msg_id: str = ""

    @property
    def key(self) -> str:
        """The id the event is de-duplicated by (Zalo's msg_id; a follow has none)."""
        return self.msg_id or f"{self.event_name}:{self.user_id}:{self.timestamp:.3f}"


ZaloEvent = DeliveryEvent | UserEvent
FOLLOW_EVENTS = ("follow", "unfollow")
SEND_PREFIX = "user_send_"


def to_incoming(event: UserEvent) -> Incoming:
    """The item kept of a user event (dispatcher.domain.incoming)."""
    at = dt.datetime.fromtimestamp(event.timestamp, dt.UTC)
    if event.event_name in FOLLOW_EVENTS:
        kind = FOLLOW if event.event_name == "follow" else UNFOLLOW
        return Incoming(Channel.ZALO, event.user_id, at, kind=kind)
    text = event.text or f"[{event.event_name.removeprefix(SEND_PREFIX)}]"
    return Incoming(Channel.ZALO, event.user_id, at, text=clip(text), encoding="utf-8")


def _user_event(event: WebhookEvent, seconds: float) -> UserEvent | None:
    name = event.event_name
    if name in FOLLOW_EVENTS:
        user = event.follower.id if event.follower is not None else ""
        return UserEvent(name, user or event.user_id_by_app, seconds) if user or \
            event.user_id_by_app else None
    if name.startswith(SEND_PREFIX):
        user = event.sender.id if event.sender is not None else ""
        inner = event.message
        if not (user or event.user_id_by_app):
            return None
        return UserEvent(name, user or event.user_id_by_app, seconds,
                         inner.text if inner is not None else "",
                         (inner.msg_id if inner is not None else "") or event.msg_id)
    return None


_DIGITS = re.compile(r"[0-9]{1,16}")


def _seconds(value: str | int, where: str, field: str = "timestamp") -> float:
    """Epoch seconds of an event's ``timestamp`` (or ``field``): an integer of milliseconds (or
    of seconds), written with digits only. ``nan``, ``inf``, signs, exponents and fractions are
    refused."""
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not _DIGITS.fullmatch(text):
        raise WebhookRejected(f"{where}{field} {str(value)[:40]!r} is not a time in "
                              f"milliseconds")
    number = int(text)
    if number <= 0:
        raise WebhookRejected(f"{where}{field} {text!r} is not a time in milliseconds")
    return number / 1000 if number > 1e11 else float(number)  # milliseconds, or seconds


def _delivered_at(event: WebhookEvent, stamp: float) -> float:
    """When the message reached the handset: ``message.delivery_time`` (or a flat event's
    ``delivery_time``); the event's time ``stamp`` when it has none or it is not a time (the
    delivery is still taken: the signature vouches for it)."""
    inner = event.message
    value = inner.delivery_time if inner is not None else None
    if value is None or value == "":
        value = event.delivery_time
    if value is None or value == "":
        return stamp
    try:
        return _seconds(value, "", "delivery_time")
    except WebhookRejected:
        return stamp


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:
        value = headers.get(name.lower())
    return value or ""


class WebhookVerifier:
    """Checks and reads the events Zalo posts for one app (``app_id``, the OA secret key)."""

    def __init__(self, app_id: str, oa_secret: str, max_age_seconds: float = MAX_AGE, *,
                 max_ahead_seconds: float = MAX_AHEAD,
                 clock: Callable[[], float] = time.time) -> None:
        self.app_id = app_id
        self.oa_secret = oa_secret
        self.max_age = max_age_seconds
        self.max_ahead = max_ahead_seconds
        self.clock = clock

    def parse(self, body: bytes, headers: Mapping[str, str]) -> list[DeliveryEvent]:
        """The delivery events of a request; WebhookRejected if it is not to be trusted."""
        return [e for e in self.parse_all(body, headers) if isinstance(e, DeliveryEvent)]

    def parse_all(self, body: bytes, headers: Mapping[str, str]) -> list[ZaloEvent]:
        """The delivery and user events of a request (messages, follows, unfollows);
        WebhookRejected if it is not to be trusted."""
        signature = _header(headers, SIGNATURE_HEADER)
        if not signature:
            raise WebhookRejected(f"no {SIGNATURE_HEADER} header")
        try:
            decoded = event_decoder.decode(body)
        except msgspec.DecodeError as exc:
            raise WebhookRejected(f"not a Zalo event: {exc}", 400) from None
        events: list[WebhookEvent] = decoded if isinstance(decoded, list) else [decoded]
        if not events:
            raise WebhookRejected("no event in the body", 400)
        stamp = events[0].timestamp
        if not verify(self.app_id, body, stamp, self.oa_secret, signature):
            raise WebhookRejected("signature does not match")
        now = self.clock()
        times: list[float] = []
        for number, event in enumerate(events, 1):
            where = f"event {number}: " if len(events) > 1 else ""
            seconds = _seconds(event.timestamp, where)
            age = now - seconds
            if self.max_age > 0 and age > self.max_age:
                raise WebhookRejected(f"{where}timestamp is {age:.0f} s old (more than "
                                      f"{self.max_age:g} s)")
            if self.max_ahead > 0 and -age > self.max_ahead:
                raise WebhookRejected(f"{where}timestamp is {-age:.0f} s ahead of the clock "
                                      f"(more than {self.max_ahead:g} s)")
            times.append(seconds)
        delivered: list[ZaloEvent] = []
        for event, seconds in zip(events, times, strict=True):
            if event.app_id and event.app_id != self.app_id:
                raise WebhookRejected(f"event for another app ({event.app_id})")
            if event.event_name != RECEIVED_EVENT:
                user_event = _user_event(event, seconds)
                if user_event is not None:
                    delivered.append(user_event)
                continue
            inner = event.message
            msg_id = event.msg_id or (inner.msg_id if inner is not None else "")
            tracking = event.tracking_id or (inner.tracking_id if inner is not None else "")
            if not (msg_id or tracking):
                continue
            user = event.recipient.id if event.recipient is not None else ""
            delivered.append(DeliveryEvent(msg_id, tracking, seconds,
                                           user or event.user_id_by_app,
                                           _delivered_at(event, seconds)))
        return delivered


class Deduper:
    """Keys seen within ``ttl`` seconds (at most ``max_keys``, the oldest go first)."""

    def __init__(self, ttl: float = 3600.0, max_keys: int = 500_000, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.max_keys = max_keys
        self.clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def first(self, key: str) -> bool:
        """True the first time ``key`` is seen within ``ttl``; it is remembered from now."""
        now = self.clock()
        seen = self._seen
        horizon = now - self.ttl
        while seen:
            oldest = next(iter(seen.values()))
            if oldest >= horizon:
                break
            seen.popitem(last=False)
        if key in seen:
            return False
        seen[key] = now
        if len(seen) > self.max_keys:
            seen.popitem(last=False)
        return True

    def forget(self, keys: list[str]) -> None:
        for key in keys:
            self._seen.pop(key, None)

