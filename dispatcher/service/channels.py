"""The one registry of channels: which adapter serves which channel, from the settings.

A channel is *configured* when its table is in the settings (``[smpp.<link>]`` for SMS,
``[zalo]``, ``[email]``, ``[app]``; an outlet's, ``[facebook]``, ``[portal]``, ``[loudspeaker]``,
``[cell_broadcast]``: :meth:`Settings.outlet`), *simulated* when ``[channels] simulate`` lists it
(the in-process channel, which answers "sent" to no one), and *missing* otherwise: a missing
channel
gets no adapter at all, so nothing is ever "sent" on it (fail closed;
:mod:`dispatcher.service.failclosed` refuses to start a process whose plan or campaigns need one).
Receipts from the channels go to the given matcher.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping, Sequence

from adapters.base import Adapter, OnIncoming, OnReceipts, Receipt
from adapters.cellbroadcast.adapter import CellBroadcastAdapter
from adapters.email.adapter import EmailAdapter
from adapters.facebook.adapter import FacebookAdapter
from adapters.loudspeaker.adapter import LoudspeakerAdapter
from adapters.memory import MemoryAdapter
from adapters.portal import PortalAdapter
from adapters.smpp.adapter import LinkConfig, SmppAdapter
from adapters.webhook.adapter import WebhookAdapter
from adapters.zalo.adapter import ZaloAdapter
from adapters.zalo.tokens import FileTokenStore, TokenStore
from dispatcher.domain.model import OUTLETS, Channel
from dispatcher.domain.province import load_province
from dispatcher.engine.logs import HiddenTokens
from dispatcher.service.settings import Settings


class Mode(enum.StrEnum):
    CONFIGURED = "configured"  # its table is in the settings: a real adapter
    SIMULATED = "simulated"  # declared in [channels] simulate: the in-process channel
    MISSING = "missing"  # neither: no adapter, nothing is sent on it


#: The table that configures each channel, as an operator writes it.
TABLES: dict[Channel, str] = {Channel.SMS: "[smpp.<link>]", Channel.ZALO: "[zalo]",
                              Channel.EMAIL: "[email]", Channel.APP: "[app]",
                              Channel.FACEBOOK: "[facebook]", Channel.PORTAL: "[portal]",
                              Channel.LOUDSPEAKER: "[loudspeaker]",
                              Channel.CELL_BROADCAST: "[cell_broadcast]"}


def modes(settings: Settings, *,
          smpp_links: Mapping[str, LinkConfig] | None = None) -> dict[Channel, Mode]:
    """Every channel's mode under ``settings`` (``smpp_links`` overrides the SMPP links)."""
    links = smpp_links if smpp_links is not None else settings.smpp
    configured = {Channel.SMS: bool(links), Channel.ZALO: settings.zalo is not None,
                  Channel.EMAIL: settings.email is not None, Channel.APP: settings.app is not None,
                  **{c: settings.outlet(c) is not None for c in OUTLETS}}
    simulated = set(settings.channels.simulate)
    return {c: Mode.CONFIGURED if configured[c] else
            Mode.SIMULATED if c in simulated else Mode.MISSING for c in Channel}


def build(settings: Settings, *, channels: Sequence[Channel] = tuple(Channel),
          on_receipt: OnReceipts[Receipt] | None = None,
          on_incoming: OnIncoming | None = None,
          smpp_links: dict[str, LinkConfig] | None = None, leased_binds: bool = False,
          env: Mapping[str, str] | None = None,
          zalo_tokens: TokenStore | None = None) -> dict[Channel, Adapter]:
    """Adapters for those of ``channels`` that are configured or simulated (a missing channel
    has none); ``smpp_links`` overrides the configured SMPP links; ``leased_binds``: the SMPP
    adapter opens only the binds it is told to hold; ``zalo_tokens``: where the Zalo tokens are
    kept (default: ``zalo_tokens_file``, seeded from ``LOA_ZALO_ACCESS_TOKEN`` and
    ``LOA_ZALO_REFRESH_TOKEN``; with Redis, :func:`dispatcher.service.zalo_tokens.token_store`)."""
    env = os.environ if env is None else env
    links = smpp_links if smpp_links is not None else settings.smpp
    mode = modes(settings, smpp_links=links)
    adapters: dict[Channel, Adapter] = {}
    for channel in channels:
        if mode[channel] is Mode.SIMULATED:
            adapters[channel] = MemoryAdapter()
        elif mode[channel] is Mode.MISSING:
            continue
        elif channel is Channel.SMS:
            adapters[channel] = SmppAdapter(links, on_receipt=on_receipt,
                                            on_incoming=on_incoming, leased=leased_binds)
        elif channel is Channel.ZALO and settings.zalo is not None:
            tokens = HiddenTokens(zalo_tokens or FileTokenStore(
                settings.zalo_tokens_file, initial=(env.get("LOA_ZALO_ACCESS_TOKEN", ""),
                                                    env.get("LOA_ZALO_REFRESH_TOKEN", ""))))
            adapters[channel] = ZaloAdapter(settings.zalo, tokens)
        elif channel is Channel.APP and settings.app is not None:
            adapters[channel] = WebhookAdapter(settings.app)
        elif channel is Channel.EMAIL and settings.email is not None:
            adapters[channel] = EmailAdapter(settings.email)
        elif channel is Channel.FACEBOOK and settings.facebook is not None:
            adapters[channel] = FacebookAdapter(settings.facebook)
        elif channel is Channel.LOUDSPEAKER and settings.loudspeaker is not None:
            adapters[channel] = LoudspeakerAdapter(settings.loudspeaker)
        elif channel is Channel.PORTAL and settings.portal is not None:
            adapters[channel] = PortalAdapter(settings.portal)
        elif channel is Channel.CELL_BROADCAST and settings.cell_broadcast is not None:
            adapters[channel] = CellBroadcastAdapter(settings.cell_broadcast, settings.cap,
                                                     load_province())
    return adapters
