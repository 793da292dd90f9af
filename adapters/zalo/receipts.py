"""Zalo's delivery webhooks as receipts (:class:`adapters.base.Receipt`): each
``user_received_message`` event says its ``msg_id`` (the adapter's remote id) was DELIVRD, at
the time the handset got the message (``message.delivery_time``, epoch seconds). Zalo tells no
other state: a message never delivered has no event."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from adapters.base import Receipt

if TYPE_CHECKING:
    from adapters.zalo.webhook import DeliveryEvent


class Delivered(Receipt, frozen=True):
    """A message Zalo delivered to the handset, as a receipt."""

    state: str = "DELIVRD"
    delivered_at: float = 0.0  # epoch seconds it reached the handset


def receipts(events: Sequence[DeliveryEvent]) -> list[Delivered]:
    """The receipts of ``events``; an event without a ``msg_id`` names no message: none."""
    return [Delivered(e.msg_id, delivered_at=e.delivered_at) for e in events if e.msg_id]
