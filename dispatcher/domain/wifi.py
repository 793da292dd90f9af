"""The public Wi-Fi controllers: what each new public notice is pushed to (``[wifi]``).

A controller of a public Wi-Fi network (a city's hotspots, a bus station's) shows a splash page
before it lets a visitor on; it can embed ``/public/notice`` itself, or take the notice pushed to
it. Loa pushes, to each configured controller, every new public message (CAP Alert, Update or
Cancel) as the notice it makes: the document of ``/public/notice.json`` at that moment, with the
message's CAP ``identifier``, ``msgType``, ``status`` and its number in the feed, ``seq``
(:class:`PushedNotice`). How a push is
answered is a :class:`PushOutcome` (the adapter's status table says which); the engine's pusher
(:mod:`dispatcher.engine.wifi`) decides what follows. Pure: no I/O.
"""

from __future__ import annotations

import enum
import random
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import msgspec

from dispatcher.domain.cap import MsgType, Published, Status
from dispatcher.domain.errors import ConfigError
from dispatcher.domain.notice import Notice

#: A controller's id: in metric labels, log lines and the idempotency key.
CONTROLLER_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


class WifiController(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One controller of ``[wifi] controllers``. ``secret`` is filled in from the environment
    variable named by ``secret_env`` by the settings loader; it is never written in a file."""

    id: str  # e.g. "hue-park": lower-case letters, digits and dashes, at most 40
    url: str  # where the notices are POSTed, e.g. "https://wifi.example.vn/loa-notice"
    secret_env: str = ""  # the environment variable holding the HMAC key (required)
    name: str = ""  # what people call it ("Wi-Fi công viên bờ biển Hạ Long")
    secret: str = ""


class WifiSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The ``[wifi]`` table."""

    controllers: list[WifiController] = []
    timeout: float = 10.0  # seconds for a whole push; then it is tried again (may have arrived)
    connect_timeout: float = 5.0  # seconds to connect; then it is tried again
    retry_base_seconds: float = 1.0  # first wait after 5xx, a timeout, a refused connection
    retry_max_seconds: float = 300.0  # ... doubling up to this
    retry_jitter: float = 0.2  # +/- share of each wait
    refused_retry_seconds: float = 60.0  # 401/403: the same notice is tried again this often
    retry_after_max_seconds: float = 3600.0  # a 429's Retry-After is honoured up to this
    # the proxy to the controllers: "" the environment's (HTTPS_PROXY, HTTP_PROXY, NO_PROXY),
    # "direct" none, or http://[user:password@]host:port
    proxy: str = ""
    ca_file: str = ""  # a CA bundle for controllers with a private certificate authority


class PushOutcome(enum.StrEnum):
    """What a controller's answer means for the notice pushed (the ``outcome`` label)."""

    PUSHED = "pushed"  # 2xx: it has the notice; the controller's cursor moves past it
    ERROR = "error"  # 5xx, 408, 425, a connection cut: tried again after a backoff
    TIMEOUT = "timeout"  # no answer in time: tried again (it may have arrived: same key)
    UNREACHABLE = "unreachable"  # no connection (refused, DNS, TLS): tried again after a backoff
    THROTTLED = "throttled"  # 429: tried again after its Retry-After
    REFUSED = "refused"  # 401/403: Loa is refused (secret); the notice waits, tried slowly
    REJECTED = "rejected"  # another 4xx (and 1xx, 3xx): this notice is skipped for it


#: Outcomes after which the same notice is tried again (the cursor stays).
AGAIN = frozenset({PushOutcome.ERROR, PushOutcome.TIMEOUT, PushOutcome.UNREACHABLE,
                   PushOutcome.THROTTLED, PushOutcome.REFUSED})


class PushResult(msgspec.Struct, frozen=True):
    outcome: PushOutcome
    reason: str = ""  # HTTP status and the start of the body, or the transport failure
    status: int = 0  # the HTTP status (0: none)
    retry_after: float | None = None  # seconds a 429 (or 503) asked for


class PushedNotice(Notice, frozen=True):
    """The body of a push: the public notice, and the CAP message that made it."""

    identifier: str  # the CAP identifier of the message pushed
    msg_type: MsgType = msgspec.field(name="msgType")  # Alert, Update or Cancel
    status: Status = Status.ACTUAL  # Actual; Exercise and Test are not to be shown as real
    # the message's number in the feed (1, 2, ...: the order published): a controller that is
    # pushed a smaller number than the notice it shows keeps its own
    seq: int = 0


def pushed(found: Notice, message: Published) -> PushedNotice:
    return PushedNotice(**msgspec.structs.asdict(found), identifier=message.alert.identifier,
                        msg_type=message.alert.msg_type, status=message.alert.status,
                        seq=message.seq)


def idempotency_key(identifier: str, controller: str) -> str:
    """The same on every try of one notice to one controller: a controller drops a repeat."""
    return f"{identifier}:{controller}"


def backoff(failures: int, settings: WifiSettings, rng: random.Random) -> float:
    """Seconds to wait after ``failures`` (1, 2, ...) failed tries in a row: the base doubling
    up to the most, each with +/- ``retry_jitter`` of itself, never above the most."""
    wait = min(settings.retry_max_seconds,
               settings.retry_base_seconds * 2.0 ** min(max(failures, 1) - 1, 40))
    spread = wait * settings.retry_jitter
    return min(settings.retry_max_seconds, max(0.0, wait + rng.uniform(-spread, spread)))


# -- the settings ---------------------------------------------------------------------------------


def refuse_inline(data: Mapping[str, Any], source: str) -> None:
    """Refuse a deployment file (its parsed TOML) that writes a controller's secret itself."""
    wifi = data.get("wifi")
    items = wifi.get("controllers") if isinstance(wifi, Mapping) else None
    for index, item in enumerate(items if isinstance(items, list) else []):
        if isinstance(item, Mapping) and item.get("secret"):
            raise ConfigError(
                "a secret is not written in this file: set secret_env to the name of an "
                "environment variable holding it (or NAME_FILE naming a file that holds it)",
                source=source, key=f"wifi.controllers[{index}].secret")


def check(settings: WifiSettings, *, cap_enabled: bool, source: str) -> None:
    """Refuse a ``[wifi]`` table that could not push (one line naming the key)."""
    def fail(key: str, message: str) -> ConfigError:
        return ConfigError(message, source=source, key=f"wifi.{key}")

    for key in ("timeout", "connect_timeout", "retry_base_seconds", "retry_max_seconds",
                "refused_retry_seconds", "retry_after_max_seconds"):
        if not getattr(settings, key) > 0:
            raise fail(key, "must be more than 0 (seconds)")
    if settings.retry_base_seconds > settings.retry_max_seconds:
        raise fail("retry_base_seconds", "must be at most retry_max_seconds")
    if not 0 <= settings.retry_jitter < 1:
        raise fail("retry_jitter", "must be at least 0 and below 1")
    seen: set[str] = set()
    for index, controller in enumerate(settings.controllers):
        where = f"controllers[{index}]"
        if not CONTROLLER_ID.match(controller.id):
            raise fail(f"{where}.id", f"{controller.id!r}: lower-case letters, digits and "
                                      "dashes, at most 40 (e.g. \"hue-park\")")
        if controller.id in seen:
            raise fail(f"{where}.id", f"{controller.id!r} is given twice")
        seen.add(controller.id)
        parts = urlsplit(controller.url)
        if parts.scheme not in ("http", "https") or not parts.hostname or any(
                c.isspace() for c in controller.url):
            raise fail(f"{where}.url", f"{controller.url!r} is not an http(s) URL")
        if not controller.secret_env:
            raise fail(f"{where}.secret_env", "is required: the name of the environment "
                                              "variable holding the key that signs the pushes")
    if settings.controllers and not cap_enabled:
        raise fail("controllers", "the notices pushed are the public alerts published as CAP "
                                  "messages: set [cap] sender too")
