"""Zalo's wire types, its error codes by table, and the webhook signature.

Sans-IO: nothing here opens a socket. The adapter, the simulator and the webhook receiver all
speak through these types, so the simulator cannot drift from what the adapter expects.

Two APIs are spoken:

* **ZNS** (template messages by phone): ``POST {base}/message/template``, header ``access_token``,
  body :class:`ZnsRequest`; answer :class:`Answer` with ``data.msg_id`` and ``data.quota``.
* **OA** (messages to a Zalo user id): ``POST {base}/v3.0/oa/message/{cs|transaction|promotion}``
  (:mod:`adapters.zalo.oa`), body :class:`OaRequest`; answer :class:`Answer` with
  ``data.message_id``.

The access token is renewed with Zalo OAuth v4: ``POST {oauth}/v4/oa/access_token``, form fields
``refresh_token``, ``app_id``, ``grant_type=refresh_token``, header ``secret_key``; answer
:class:`TokenAnswer`. A refresh token is good for one use: the answer carries the next one.

Delivery webhooks (event ``user_received_message``) carry ``X-ZEvent-Signature``: the hex SHA-256
of ``app_id + body + timestamp + OA secret key`` (:func:`sign`), optionally written ``mac=<hex>``.
"""

from __future__ import annotations

import hashlib
import hmac

import msgspec

from adapters.zalo.codes import CODES, FALLBACK_CODES, Code, Outcome

__all__ = [
    "CODES",
    "ERRORS",
    "FALLBACK_CODES",
    "HTTP_STATUS",
    "NOT_ZALO_USER",
    "OAUTH_PATH",
    "OA_PATH",
    "QUOTA_EXHAUSTED",
    "RECEIVED_EVENT",
    "SIGNATURE_HEADER",
    "TOKEN_INVALID",
    "TRACKING_MAX",
    "USER_INACTIVE",
    "ZNS_PATH",
    "Answer",
    "AnswerData",
    "Code",
    "EventMessage",
    "EventUser",
    "OaAttachment",
    "OaPayload",
    "OaRecipient",
    "OaRequest",
    "OaText",
    "Outcome",
    "Quota",
    "TokenAnswer",
    "WebhookEvent",
    "ZnsRequest",
    "answer_decoder",
    "classify",
    "decode_answer",
    "event_decoder",
    "http_outcome",
    "outcome",
    "sign",
    "token_decoder",
    "tracking_id",
    "tracking_prefix",
    "verify",
]

ZNS_PATH = "/message/template"
OA_PATH = "/v3.0/oa/message/cs"
OAUTH_PATH = "/v4/oa/access_token"
SIGNATURE_HEADER = "X-ZEvent-Signature"
RECEIVED_EVENT = "user_received_message"

#: Zalo's "OA over its daily ZNS limit": the route pauses until the quota resets. (-131 is
#: "template not approved", a configuration fault: see adapters.zalo.codes.)
QUOTA_EXHAUSTED = -144
TOKEN_INVALID = -124
NOT_ZALO_USER = -118
USER_INACTIVE = -114
TRACKING_MAX = 48  # characters of a ZNS tracking_id

#: Zalo ``error`` codes -> (reason, outcome), from the table of adapters.zalo.codes. Codes not
#: listed are retried, and a run of them pauses the route with an alert (see the adapter).
ERRORS: dict[int, tuple[str, Outcome]] = {code: (c.english, c.outcome)
                                          for code, c in CODES.items()}

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


class OaPayload(msgspec.Struct):
    """A template attachment: ``template_type`` and its elements (header, text, table ...)."""

    template_type: str = ""
    language: str = ""
    elements: list[dict[str, object]] = []


class OaAttachment(msgspec.Struct):
    type: str = ""
    payload: OaPayload | None = None


class OaText(msgspec.Struct):
    """The ``message`` of an OA request: ``text`` (cs) or a template ``attachment``
    (transaction, promotion)."""

    text: str = ""
    attachment: OaAttachment | None = None


class OaRequest(msgspec.Struct):
    """``POST /v3.0/oa/message/<type>``: an OA message to a Zalo user id."""

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
    text: str = ""  # user_send_text: what the user wrote
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
    delivery_time: str | int | None = None  # flat layout; Zalo's is message.delivery_time
    message: EventMessage | None = None
    recipient: EventUser | None = None
    sender: EventUser | None = None
    follower: EventUser | None = None  # follow, unfollow: the user
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
