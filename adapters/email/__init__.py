"""The e-mail channel (officials' mailboxes): one message per address over pooled SMTP."""

from adapters.email.adapter import EmailAdapter, EmailConfig, EmailStats

__all__ = ["EmailAdapter", "EmailConfig", "EmailStats"]
