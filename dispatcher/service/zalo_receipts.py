"""Zalo's webhook events, to the engine: delivery events go to the
:class:`~dispatcher.engine.receipts.ReceiptMatcher` as :class:`adapters.zalo.receipts.Delivered`,
user events (messages, follows, unfollows) to the
:class:`~dispatcher.engine.incoming.IncomingIntake` as incoming items."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from adapters.base import OnIncoming, OnReceipts
from adapters.zalo.receipts import Delivered, receipts
from adapters.zalo.webhook import DeliveryEvent, UserEvent, ZaloEvent, to_incoming


def to_matcher(add: OnReceipts[Delivered], incoming: OnIncoming | None = None
               ) -> Callable[[Sequence[ZaloEvent]], None]:
    """An ``on_events`` callback for the webhook handler that feeds ``add`` the deliveries and
    ``incoming`` (when given) the user events."""

    def on_events(events: Sequence[ZaloEvent]) -> None:
        delivered = [e for e in events if isinstance(e, DeliveryEvent)]
        if delivered:
            add(receipts(delivered))
        if incoming is not None:
            users = [to_incoming(e) for e in events if isinstance(e, UserEvent)]
            if users:
                incoming(users)

    return on_events
