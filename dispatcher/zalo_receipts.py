"""Zalo's delivery webhooks, as receipts: each ``user_received_message`` event becomes a
DELIVRD receipt of its ``msg_id`` for the :class:`~dispatcher.receipts.ReceiptMatcher`, with
the time the handset got the message (``message.delivery_time``, epoch seconds)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import msgspec

from adapters.zalo.webhook import DeliveryEvent
from dispatcher.receipts import ReceiptLike


class ZaloDelivered(msgspec.Struct, frozen=True):
    message_id: str
    state: str = "DELIVRD"
    delivered_at: float = 0.0


def to_matcher(add: Callable[[Sequence[ReceiptLike]], None],
               ) -> Callable[[list[DeliveryEvent]], None]:
    """An ``on_events`` callback for the webhook handler that feeds ``add``."""

    def on_events(events: list[DeliveryEvent]) -> None:
        add([ZaloDelivered(e.msg_id, delivered_at=e.delivered_at) for e in events if e.msg_id])

    return on_events
