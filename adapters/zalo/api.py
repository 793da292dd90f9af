"""Zalo's wire types, its error codes by table, and the webhook signature.

Sans-IO: nothing here opens a socket. The adapter, the simulator and the webhook receiver all
speak through these types, so the simulator cannot drift from what the adapter expects.

Two APIs are spoken:

* **ZNS** (template messages by phone): ``POST {base}/message/template``, header ``access_token``,
  body :class:`ZnsRequest`; answer :class:`Answer` with ``data.msg_id`` and ``data.quota``.
* **OA** (text messages to a Zalo user id): ``POST {base}/v3.0/oa/message/cs``, body
  :class:`OaRequest`; answer :class:`Answer` with ``data.message_id``.

The access token is renewed with Zalo OAuth v4: ``POST {oauth}/v4/oa/access_token``, form fields
``refresh_token``, ``app_id``, ``grant_type=refresh_token``, header ``secret_key``; answer
:class:`TokenAnswer`. A refresh token is good for one use: the answer carries the next one.

Delivery webhooks (event ``user_received_message``) carry ``X-ZEvent-Signature``: the hex SHA-256
of ``app_id + body + timestamp + OA secret key`` (:func:`sign`), optionally written ``mac=<hex>``.
"""

from __future__ import annotations

import enum
import hashlib
import hmac

import msgspec

ZNS_PATH = "/message/template"
OA_PATH = "/v3.0/oa/message/cs"
OAUTH_PATH = "/v4/oa/access_token"
SIGNATURE_HEADER = "X-ZEvent-Signature"
RECEIVED_EVENT = "user_received_message"

#: The code Loa treats as "the OA's daily ZNS quota is exhausted": the route pauses until the
#: quota resets (midnight, Asia/Ho_Chi_Minh) and the messages stay queued. The simulator answers
#: it too. Check it against Zalo's current error table before production (see docs).
QUOTA_EXHAUSTED = -131
TOKEN_INVALID = -124
NOT_ZALO_USER = -118
USER_INACTIVE = -114
TRACKING_MAX = 48  # characters of a ZNS tracking_id


class Outcome(enum.Enum):
    """What the adapter does with a message after Zalo's answer."""

    SENT = "sent"
    RETRY = "retry"  # transient: retried later, using an attempt
    FAIL = "fail"  # permanent: dead-lettered
    FALLBACK = "fallback"  # permanent for Zalo; SMS may reach the recipient
    REFRESH = "refresh"  # the access token expired: refresh it, then resend once
    QUOTA = "quota"  # out of quota: pause the route, keep the messages queued
    REFUSED = "refused"  # Loa's application itself is refused: wait, no attempt used


#: Zalo ``error`` codes -> (reason, outcome). Codes not listed are retried (a code Loa does not
#: know is not proof that the message can never go).
ERRORS: dict[int, tuple[str, Outcome]] = {
    0: ("success", Outcome.SENT),
    -100: ("unknown error", Outcome.RETRY),
    # The application's own configuration: no message can go until it is fixed, and a whole
    # audience must not be dead-lettered for it.
    -101: ("application invalid", Outcome.REFUSED),
    -102: ("application does not exist", Outcome.REFUSED),
    -103: ("application not activated", Outcome.REFUSED),
    -104: ("application secret key invalid", Outcome.REFUSED),
    -105: ("application not linked to an OA", Outcome.REFUSED),
    -108: ("phone number invalid", Outcome.FAIL),
    -109: ("template id invalid", Outcome.FAIL),
    -111: ("template data empty", Outcome.FAIL),
    -112: ("template data invalid", Outcome.FAIL),
    USER_INACTIVE: ("user inactive or refuses ZNS", Outcome.FALLBACK),
    NOT_ZALO_USER: ("not a Zalo account (or disabled)", Outcome.FALLBACK),
    TOKEN_INVALID: ("access token invalid or expired", Outcome.REFRESH),
    QUOTA_EXHAUSTED: ("daily quota exhausted", Outcome.QUOTA),
    -216: ("access token invalid (OA API)", Outcome.REFRESH),
}

#: HTTP statuses other than 200 -> (reason, outcome); any other 4xx is permanent, 5xx transient.
HTTP_STATUS: dict[int, tuple[str, Outcome]] = {
    408: ("HTTP 408 request timeout", Outcome.RETRY),
    425: ("HTTP 425 too early", Outcome.RETRY),
    429: ("HTTP 429 too many requests", Outcome.RETRY),
}


def http_outcome(status: int) -> tuple[Outcome, str]:
    """The outcome of a non-200 HTTP status."""
    known = HTTP_STATUS.get(status)
    if known is not None:
        return known[1], known[0]
    if status >= 500:
        return Outcome.RETRY, f"HTTP {status}"
    return Outcome.FAIL, f"HTTP {status}"


# -- requests and answers -----------------------------------------------------------------------


class ZnsRequest(msgspec.Struct, omit_defaults=True):
    """``POST /message/template``: a ZNS template message to a phone number (``84…``)."""

    phone: str
    template_id: str
    template_data: dict[str, str]
    tracking_id: str = ""
    mode: str = ""  # "development" to send to the OA's admins only; empty in production


class OaRecipient(msgspec.Struct):
    user_id: str


class OaText(msgspec.Struct):
    text: str


class OaRequest(msgspec.Struct):
    """``POST /v3.0/oa/message/cs``: an OA text message to a Zalo user id."""

    recipient: OaRecipient
    message: OaText


class Quota(msgspec.Struct, rename="camel"):
    """ZNS quota of the OA (Zalo writes the numbers as strings)."""

    daily_quota: str | int | None = None
    remaining_quota: str | int | None = None

    def remaining(self) -> int | None:
        try:
            return None if self.remaining_quota is None else int(self.remaining_quota)
        except ValueError:
            return None


class AnswerData(msgspec.Struct):
    msg_id: str = ""  # ZNS
    message_id: str = ""  # OA
    sent_time: str | int | None = None
    quota: Quota | None = None
    user_id: str = ""


class Answer(msgspec.Struct):
    """Every answer of the message APIs: ``error`` 0 is success."""

    error: int = 0
    message: str = ""
    data: AnswerData | None = None

    @property
    def remote_id(self) -> str:
        data = self.data
        return "" if data is None else (data.msg_id or data.message_id)


class TokenAnswer(msgspec.Struct):
    """OAuth v4 answer: tokens, or an error (``error`` non-zero, ``error_name``)."""

    access_token: str = ""
    refresh_token: str = ""
    expires_in: str | int = 0
    error: int = 0
    error_name: str = ""
    error_description: str = ""
    message: str = ""


class EventMessage(msgspec.Struct):
    msg_id: str = ""
    tracking_id: str = ""
    delivery_time: str | int | None = None


class EventUser(msgspec.Struct):
    id: str = ""


class WebhookEvent(msgspec.Struct):
    """A webhook event. ``user_received_message`` carries ``msg_id`` and ``tracking_id``, under
    ``message`` (nested, Zalo's layout) or at the top level (flat); both are read."""

    event_name: str = ""
    app_id: str = ""
    timestamp: str | int = 0  # milliseconds since the epoch
    msg_id: str = ""
    tracking_id: str = ""
    message: EventMessage | None = None
    recipient: EventUser | None = None
    sender: EventUser | None = None
    user_id_by_app: str = ""
    oa_id: str = ""


answer_decoder = msgspec.json.Decoder(Answer)
token_decoder = msgspec.json.Decoder(TokenAnswer)
event_decoder = msgspec.json.Decoder(WebhookEvent | list[WebhookEvent])


def decode_answer(body: bytes) -> Answer | None:
    """The answer in ``body``; None if it is not one."""
    try:
        return answer_decoder.decode(body)
    except msgspec.DecodeError:
        return None


def outcome(status: int, answer: Answer | None) -> tuple[Outcome, str]:
    """The outcome of one HTTP answer (``answer`` decoded from its body when it was 200)."""
    if status != 200:
        return http_outcome(status)
    if answer is None:
        return Outcome.RETRY, "HTTP 200 with an unreadable body"
    code = answer.error
    if code == 0:
        if not answer.remote_id:
            return Outcome.RETRY, "success without a message id"
        return Outcome.SENT, ""
    known = ERRORS.get(code)
    if known is None:
        return Outcome.RETRY, f"zalo {code}: {answer.message or 'unlisted error'}"
    return known[1], f"zalo {code}: {known[0]}"


def classify(http_status: int, body: bytes) -> tuple[Outcome, str]:
    """The outcome of an answer and its reason ('' when sent): by the tables above."""
    return outcome(http_status, decode_answer(body) if http_status == 200 else None)


def tracking_prefix(wave: str) -> str:
    """What comes before ``:address`` in a tracking id: the wave id, or when it is longer than
    27 characters (an address may have 20), a 16-hex-digit digest of it."""
    if len(wave) > TRACKING_MAX - 21:
        return hashlib.blake2b(wave.encode(), digest_size=8).hexdigest()
    return wave


def tracking_id(wave: str, address: str) -> str:
    """The ``tracking_id`` Loa gives a ZNS message: ``wave:address`` (see tracking_prefix)."""
    return f"{tracking_prefix(wave)}:{address}"


# -- webhook signature --------------------------------------------------------------------------


def sign(app_id: str, body: bytes | str, timestamp: str | int, secret: str) -> str:
    """``X-ZEvent-Signature``: hex SHA-256 of app id + body + timestamp + OA secret key."""
    raw = body.encode() if isinstance(body, str) else body
    digest = hashlib.sha256(app_id.encode())
    digest.update(raw)
    digest.update(str(timestamp).encode())
    digest.update(secret.encode())
    return digest.hexdigest()


def verify(app_id: str, body: bytes | str, timestamp: str | int, secret: str,
           signature: str) -> bool:
    """Whether ``signature`` (``<hex>`` or ``mac=<hex>``) signs the event; constant time."""
    given = signature.strip()
    if given[:4].lower() == "mac=":
        given = given[4:].strip()
    return hmac.compare_digest(given.lower().encode(),
                               sign(app_id, body, timestamp, secret).encode())
