"""The HTTP API of Loa (Litestar, ASGI): see :func:`dispatcher.service.api.app.create_app`."""

from __future__ import annotations

from dispatcher.service.api.app import create_app, create_webhook_app
from dispatcher.service.api.config import ApiConfig, load_api_config, load_deployment

__all__ = ["ApiConfig", "create_app", "create_webhook_app", "load_api_config",
           "load_deployment"]
