"""Zalo's delivery webhooks, as receipts: the events the webhook intake takes go to the
:class:`~dispatcher.engine.receipts.ReceiptMatcher` as :class:`adapters.zalo.receipts.Delivered`."""

from __future__ import annotations

from collections.abc import Callable

from adapters.base import OnReceipts
from adapters.zalo.receipts import Delivered, receipts
from adapters.zalo.webhook import DeliveryEvent


def to_matcher(add: OnReceipts[Delivered]) -> Callable[[list[DeliveryEvent]], None]:
    """An ``on_events`` callback for the webhook handler that feeds ``add``."""

    def on_events(events: list[DeliveryEvent]) -> None:
        add(receipts(events))

    return on_events
