"""What the Zalo simulator answers to an OA message, by its type (:mod:`adapters.zalo.oa`).

Like Zalo (the rules of each type are not all public; see docs/channels.md):

* a body that does not fit its type is -201 (parameter invalid): ``cs`` needs ``message.text``;
  ``transaction`` and ``promotion`` need a template attachment with a ``template_type`` of the
  type (``transaction_*``, ``promotion``), a header of at most 100 characters and a text
  element of 1 to 1,000 characters;
* at night (``oa_night`` ``on``, or ``clock`` between 22:00 and 06:00 in Vietnam) the types of
  ``oa_night_types`` are -234;
* a deterministic share ``oa_not_follower_share`` of user ids (by hash) do not follow the OA:
  -213 for every type;
* a deterministic share ``oa_inactive_share`` of the followers did not interact with the OA in
  the last 7 days: -230 for ``cs`` only.
"""

from __future__ import annotations

import datetime as dt
import zlib
import zoneinfo
from typing import Literal

from adapters.zalo.api import OaText
from adapters.zalo.oa import HEADER_MAX, TEXT_MAX

NightMode = Literal["off", "on", "clock"]

NOT_FOLLOWER = -213
NO_INTERACTION = -230
NIGHT = -234
BAD_PARAMETER = -201
VN = zoneinfo.ZoneInfo("Asia/Ho_Chi_Minh")


def in_share(seed: int, salt: str, key: str, share: float) -> bool:
    """Whether ``key`` is in the deterministic ``share`` of keys for ``salt`` (by hash)."""
    return share > 0 and (zlib.crc32(f"{seed}:{salt}:{key}".encode())
                          < share * 0x1_0000_0000)


def text_of(kind: str, message: OaText) -> str | None:
    """The alert text of an OA message of type ``kind``; None if the body does not fit it."""
    if kind == "cs":
        return message.text or None
    payload = message.attachment.payload if message.attachment is not None else None
    if payload is None or message.attachment is None or message.attachment.type != "template":
        return None
    wanted = payload.template_type.startswith("transaction_") if kind == "transaction" else (
        payload.template_type == "promotion")
    if not wanted:
        return None
    text: str | None = None
    for element in payload.elements:
        content = element.get("content")
        if element.get("type") == "header" and not (
                isinstance(content, str) and len(content) <= HEADER_MAX):
            return None
        if element.get("type") == "text":
            if not (isinstance(content, str) and 0 < len(content) <= TEXT_MAX):
                return None
            text = content
    return text


def is_night(mode: NightMode, now: dt.datetime | None = None) -> bool:
    if mode == "clock":
        hour = (now or dt.datetime.now(VN)).astimezone(VN).hour
        return hour >= 22 or hour < 6
    return mode == "on"


def verdict(kind: str, user: str, *, seed: int, night: bool, night_types: frozenset[str],
            not_follower_share: float, inactive_share: float) -> int:
    """The code a valid OA message of type ``kind`` to ``user`` is refused with (0: none)."""
    if night and kind in night_types:
        return NIGHT
    if in_share(seed, "follow", user, not_follower_share):
        return NOT_FOLLOWER
    if kind == "cs" and in_share(seed, "interact", user, inactive_share):
        return NO_INTERACTION
    return 0
