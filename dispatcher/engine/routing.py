"""Which address and which route a recipient has on each channel.

A route is where a channel's batches queue: ``sms.<link group>`` per carrier link group (the
carrier's own name unless settings map it elsewhere), and ``zalo``, ``email``, ``app``.
"""

from __future__ import annotations

from collections.abc import Iterable

from dispatcher.domain.audience import Recipient
from dispatcher.domain.model import Channel, Selector
from dispatcher.engine.settings import EngineConfig
from dispatcher.store.base import AudienceMeta


def address(channel: Channel, r: Recipient) -> str | None:
    """The recipient's address on ``channel``, or None when it cannot be reached there."""
    if channel is Channel.SMS or channel is Channel.APP:
        return r.msisdn
    if channel is Channel.ZALO:
        return (r.zalo_uid or r.msisdn) if r.zalo else None
    if channel is Channel.EMAIL:
        return r.email or None
    return None  # an outlet publishes to its targets, not to recipients


def route(channel: Channel, r: Recipient, settings: EngineConfig) -> str:
    if channel is Channel.SMS:
        return settings.sms_route(r.carrier)
    return channel.value


def routes(channel: Channel, carriers: Iterable[str], settings: EngineConfig) -> list[str]:
    """Every route of ``channel``."""
    if channel is Channel.SMS:
        return sorted({settings.sms_route(c) for c in carriers})
    return [channel.value]


def channel_of(route_name: str) -> Channel:
    return Channel(route_name.split(".", 1)[0])


def reach(meta: AudienceMeta, selector: Selector, channel: Channel) -> int:
    """How many recipients of the audience the selector reaches on ``channel``."""
    total = 0
    for g in meta.groups:
        if selector.matches(g.district, g.kind):
            total += {Channel.ZALO: g.zalo, Channel.EMAIL: g.email}.get(
                channel, 0 if channel.outlet else g.count)
    return total
