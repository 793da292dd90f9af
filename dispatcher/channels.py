"""The one registry of channels: which adapter serves which channel, from the settings.

SMS goes over SMPP when links are configured (``[smpp.<link>]``), to the in-process channel
otherwise; the other channels use the in-process channel until their adapters are configured.
Receipts from the channels go to the given matcher.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence

from adapters.base import Adapter
from adapters.email.adapter import EmailAdapter
from adapters.memory import MemoryAdapter
from adapters.smpp.adapter import LinkConfig, SmppAdapter
from adapters.smpp.receipt import Receipt
from adapters.webhook.adapter import WebhookAdapter
from adapters.zalo.adapter import ZaloAdapter
from adapters.zalo.tokens import FileTokenStore, TokenStore
from dispatcher.logs import HiddenTokens
from dispatcher.model import Channel
from dispatcher.settings import Settings


def build(settings: Settings, *, channels: Sequence[Channel] = tuple(Channel),
          on_receipt: Callable[[list[Receipt]], None] | None = None,
          smpp_links: dict[str, LinkConfig] | None = None, leased_binds: bool = False,
          env: Mapping[str, str] | None = None,
          zalo_tokens: TokenStore | None = None) -> dict[Channel, Adapter]:
    """Adapters for ``channels``; ``smpp_links`` overrides the configured SMPP links;
    ``leased_binds``: the SMPP adapter opens only the binds it is told to hold;
    ``zalo_tokens``: where the Zalo tokens are kept (default: ``zalo_tokens_file``, seeded from
    ``LOA_ZALO_ACCESS_TOKEN`` and ``LOA_ZALO_REFRESH_TOKEN``; with Redis,
    :func:`dispatcher.zalotokens.token_store`)."""
    env = os.environ if env is None else env
    links = smpp_links if smpp_links is not None else settings.smpp
    adapters: dict[Channel, Adapter] = {}
    for channel in channels:
        if channel is Channel.SMS and links:
            adapters[channel] = SmppAdapter(links, on_receipt=on_receipt, leased=leased_binds)
        elif channel is Channel.ZALO and settings.zalo is not None:
            tokens = HiddenTokens(zalo_tokens or FileTokenStore(
                settings.zalo_tokens_file, initial=(env.get("LOA_ZALO_ACCESS_TOKEN", ""),
                                                    env.get("LOA_ZALO_REFRESH_TOKEN", ""))))
            adapters[channel] = ZaloAdapter(settings.zalo, tokens)
        elif channel is Channel.APP and settings.app is not None:
            adapters[channel] = WebhookAdapter(settings.app)
        elif channel is Channel.EMAIL and settings.email is not None:
            adapters[channel] = EmailAdapter(settings.email)
        else:
            adapters[channel] = MemoryAdapter()
    return adapters
