"""The generic HTTP channel (app push and any later HTTP endpoint): signed JSON POSTs."""

from adapters.webhook.adapter import WebhookAdapter, WebhookConfig, WebhookStats

__all__ = ["WebhookAdapter", "WebhookConfig", "WebhookStats"]
