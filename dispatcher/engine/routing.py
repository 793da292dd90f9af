"""Which address and which route a recipient has on each channel, and which targets an outlet
wave publishes to.

A route is where a channel's batches queue: ``sms.<link group>`` per carrier link group (the
carrier's own name unless settings map it elsewhere), and ``zalo``, ``email``, ``app``; an
outlet channel (:data:`dispatcher.domain.model.OUTLETS`) has one route, named like it.
"""

from __future__ import annotations

from collections.abc import Iterable

from dispatcher.domain.audience import Recipient
from dispatcher.domain.model import Channel, Selector, Wave
from dispatcher.domain.outlet import Target
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


def targets(channel: Channel, selector: Selector, settings: EngineConfig) -> list[Target]:
    """The configured targets of an outlet ``channel`` a wave for ``selector`` is published to:
    the province's and those of the selector's districts (every one for the whole province)."""
    if not channel.outlet:
        return []
    return [t for t in settings.targets(channel) if t.serves(selector.districts)]


def districts_of(wave: Wave) -> dict[str, str]:
    """An outlet wave's districts (empty: the whole province), each with its own words when its
    text names ``{district}`` ("" otherwise): what ``Envelope.districts`` tells the adapter."""
    chosen = wave.selector.districts or sorted(wave.district_texts)
    return {d: wave.district_texts.get(d, "") for d in chosen}


def reach(meta: AudienceMeta, selector: Selector, channel: Channel,
          settings: EngineConfig | None = None) -> int:
    """How many recipients of the audience the selector reaches on ``channel``; on an outlet
    channel, how many of its targets (none without ``settings``)."""
    if channel.outlet:
        return len(targets(channel, selector, settings)) if settings is not None else 0
    total = 0
    for g in meta.groups:
        if selector.matches(g.district, g.kind):
            total += {Channel.ZALO: g.zalo, Channel.EMAIL: g.email}.get(channel, g.count)
    return total
