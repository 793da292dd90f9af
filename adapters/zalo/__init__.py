"""The Zalo channel: ZNS template messages by phone and OA messages by Zalo user id.

``api`` (wire types, error tables, webhook signature), ``client`` (the pooled HTTP client),
``tokens`` (access-token storage and single-flight renewal), ``adapter`` (:class:`ZaloAdapter`),
``webhook`` (delivery events, verified), ``simulator`` (:class:`ZaloSim`, ``loa sim zalo``).
"""

from adapters.zalo.adapter import ZaloAdapter, ZaloStats
from adapters.zalo.config import ZaloConfig
from adapters.zalo.tokens import FileTokenStore, MemoryTokenStore, TokenManager, TokenStore
from adapters.zalo.webhook import DeliveryEvent, WebhookRejected, WebhookVerifier

__all__ = ["DeliveryEvent", "FileTokenStore", "MemoryTokenStore", "TokenManager", "TokenStore",
           "WebhookRejected", "WebhookVerifier", "ZaloAdapter", "ZaloConfig", "ZaloStats"]
