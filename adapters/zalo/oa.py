"""OA messages: which of Zalo's OA message types Loa sends, where, and the body of each.

Zalo's OA API v3 has three types of message to a Zalo user id (``recipient.user_id``):

* ``cs`` (consultation, ``POST /v3.0/oa/message/cs``): ``{"message": {"text": ...}}``. An answer
  to a user who wrote to the OA: Zalo refuses it (-230) to users who did not interact with the
  OA in the last 7 days, so an unprompted alert to followers mostly fails.
* ``transaction`` (``POST /v3.0/oa/message/transaction``) and ``promotion``
  (``POST /v3.0/oa/message/promotion``): a template attachment, ``{"message": {"attachment":
  {"type": "template", "payload": {"template_type", "language", "elements": [...]}}}}`` whose
  elements are a ``header`` (at most 100 characters), the alert as a ``text`` element (at most
  1,000) and, for ``transaction``, a ``table`` row that names the notice (Zalo asks a
  transaction message to carry a row whose key begins with "Mã").

Every message of a batch has the same text, so :func:`oa_tail` builds the body after the user id
once per batch, already encoded; the adapter adds ``{"recipient":{"user_id":"..."`` per message.
"""

from __future__ import annotations

from typing import Literal

import msgspec

OaType = Literal["transaction", "promotion", "cs"]
OA_TYPES: tuple[OaType, ...] = ("transaction", "promotion", "cs")

#: OA message type -> its path under the OA API's base URL.
OA_PATHS: dict[str, str] = {t: f"/v3.0/oa/message/{t}" for t in OA_TYPES}

#: OA message type -> the ``template_type`` Loa sends when none is configured.
DEFAULT_TEMPLATE_TYPES: dict[str, str] = {"transaction": "transaction_event",
                                          "promotion": "promotion"}

HEADER_MAX = 100  # characters of the header element
TEXT_MAX = 1000  # characters of a text element
NOTICE_KEY = "Mã thông báo"  # the table row of a transaction message: the notice's code

_encode = msgspec.json.Encoder().encode


def template_type(kind: str, configured: str) -> str:
    """The ``template_type`` of an OA message of type ``kind``."""
    return configured or DEFAULT_TEMPLATE_TYPES.get(kind, "")


def check(kind: str, configured_template: str, header: str) -> None:
    """Raise ValueError naming the setting when the OA settings cannot make a valid body."""
    if kind not in OA_TYPES:
        raise ValueError(f"oa_message_type must be one of {', '.join(OA_TYPES)}, not {kind!r}")
    chosen = template_type(kind, configured_template)
    if kind == "transaction" and not chosen.startswith("transaction_"):
        raise ValueError(f"oa_template_type: {chosen!r} is not a transaction template type "
                         "(transaction_event, transaction_internal, ...)")
    if kind == "promotion" and chosen != "promotion":
        raise ValueError(f"oa_template_type: a promotion message has template_type "
                         f"'promotion', not {chosen!r}")
    if kind != "cs" and not 0 < len(header) <= HEADER_MAX:
        raise ValueError(f"oa_header: must be 1 to {HEADER_MAX} characters, not {len(header)}")


def message(kind: str, text: str, *, template: str = "", header: str = "",
            language: str = "VI", notice: str = "") -> dict[str, object]:
    """The ``message`` object of an OA message of type ``kind`` carrying ``text``."""
    if kind == "cs":
        return {"text": text}
    elements: list[dict[str, object]] = [
        {"type": "header", "content": header, "align": "left"},
        {"type": "text", "content": text, "align": "left"},
    ]
    if kind == "transaction":
        elements.append({"type": "table", "content": [{"key": NOTICE_KEY, "value": notice}]})
    return {"attachment": {"type": "template", "payload": {
        "template_type": template_type(kind, template), "language": language,
        "elements": elements}}}


def oa_tail(kind: str, text: str, *, template: str = "", header: str = "",
            language: str = "VI", notice: str = "") -> bytes:
    """Everything of the body after the user id: ``},"message":{...}}``, encoded."""
    return (b'},"message":' + _encode(message(kind, text, template=template, header=header,
                                              language=language, notice=notice[:100])) + b"}")
