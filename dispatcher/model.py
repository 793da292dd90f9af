"""Domain vocabulary shared by every layer: channels and kinds of recipient."""

from __future__ import annotations

import enum


class Channel(enum.StrEnum):
    """A channel Loa sends on."""

    SMS = "sms"  # carriers, over SMPP
    ZALO = "zalo"  # the e-government Zalo channel (ZNS / OA)
    EMAIL = "email"  # civil servants' official mailboxes
    APP = "app"  # Smart Quảng Ninh app push


class Kind(enum.StrEnum):
    """Who a recipient is, as the plan's rows address them."""

    RESIDENT = "resident"
    VISITOR = "visitor"
    OFFICIAL = "official"
