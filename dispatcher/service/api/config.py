"""The ``[api]`` table of the deployment file, and reading that file as a whole.

``dispatcher.service.settings.Settings`` refuses unknown top-level tables, so
:func:`load_deployment` takes ``[api]`` out of the file before the rest is read as
:class:`Settings` (with the same ``LOA_*`` environment overrides and secrets as ``load_settings``).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from dispatcher.domain.config import convert
from dispatcher.domain.errors import ConfigError
from dispatcher.domain.secret import Secret, from_env, refuse_inline
from dispatcher.service.auth import TokenEntry

# _check, _env_overrides, _secrets: the steps of load_settings after reading the file, used
# here because Settings refuses the [api] table (see the module's docstring)
from dispatcher.service.settings import Settings, _check, _env_overrides, _secrets, load_settings

MAX_WEBHOOK_AGE = 86_400  # seconds: the store keeps every taken event id this long and more
MAX_WEBHOOK_WAIT = 1.9  # seconds: Zalo waits about 2 s for the answer


class ApiConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    port: int = 8080
    audit_log: str = "loa-audit.jsonl"  # relative paths: to the working directory
    request_max_body_size: int = 65_536  # bytes; larger bodies are refused with 413
    zalo_app_id: str = ""  # the Zalo delivery webhook is served when this is set
    zalo_oa_secret_env: str = ""  # environment variable holding the OA secret key
    zalo_oa_secret: str = ""  # filled in from zalo_oa_secret_env (never write it here)
    # webhook events: how old (Zalo tries a failed delivery again for about an hour, with the
    # event's first timestamp) and how far ahead of the clock their timestamp may be
    zalo_max_age_seconds: float = 7200.0
    zalo_max_skew_seconds: float = 300.0
    # the webhook answers within this long whatever the store does: events the store has not
    # taken by then wait in this process (at most zalo_webhook_queue of them; beyond, 503)
    zalo_webhook_wait_seconds: float = 1.5
    zalo_webhook_queue: int = 10_000
    # the Zalo webhook on its own listener (0: on the API's port, with the console and /metrics)
    webhook_port: int = 0
    webhook_host: str = ""  # its address (default: host)
    tokens: list[TokenEntry] = []
    token_reload_seconds: float = 2.0  # how often the file is looked at for changed tokens
    signin_max_failures: int = 10  # failed sign-ins from one address (or token prefix) ...
    signin_window_seconds: float = 60.0  # ... within this many seconds, then 429 until it passes
    # a change that raises the level waits this long for a second user's confirmation
    level_confirm_seconds: float = 900.0
    level_single_person: bool = False  # true: one operator raises the level alone


def _read(path: Path) -> dict[str, Any]:
    source = str(path)
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("file not found", source=source) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", source=source) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (byte {exc.start})", source=source) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", source=source) from None
    return data


def _api(raw: Any, env: Mapping[str, str], source: str) -> ApiConfig:
    api = convert(raw, ApiConfig, source=f"{source} [api]")
    if api.request_max_body_size <= 0:
        raise ConfigError("must be more than 0", source=source, key="api.request_max_body_size")
    for key in ("token_reload_seconds", "signin_max_failures", "signin_window_seconds"):
        if not getattr(api, key) > 0:
            raise ConfigError("must be more than 0", source=source, key=f"api.{key}")
    if not 0 <= api.webhook_port < 65536:
        raise ConfigError(f"{api.webhook_port} is not a port (0: none of its own)", source=source,
                          key="api.webhook_port")
    if api.webhook_port and api.webhook_port == api.port:
        raise ConfigError(f"{api.webhook_port} is [api] port too: the webhook's listener needs "
                          "a port of its own", source=source, key="api.webhook_port")
    if not 0 < api.zalo_max_age_seconds <= MAX_WEBHOOK_AGE:
        raise ConfigError(f"{api.zalo_max_age_seconds:g} must be more than 0 and at most "
                          f"{MAX_WEBHOOK_AGE} (a day)", source=source,
                          key="api.zalo_max_age_seconds")
    if not 0 < api.zalo_max_skew_seconds <= api.zalo_max_age_seconds:
        raise ConfigError(f"{api.zalo_max_skew_seconds:g} must be more than 0 and at most "
                          "zalo_max_age_seconds", source=source, key="api.zalo_max_skew_seconds")
    if not 0 < api.zalo_webhook_wait_seconds <= MAX_WEBHOOK_WAIT:
        raise ConfigError(f"{api.zalo_webhook_wait_seconds:g} must be more than 0 and at most "
                          f"{MAX_WEBHOOK_WAIT} (Zalo waits about 2 s for the answer)",
                          source=source, key="api.zalo_webhook_wait_seconds")
    if api.zalo_webhook_queue < 1:
        raise ConfigError(f"{api.zalo_webhook_queue} must be at least 1", source=source,
                          key="api.zalo_webhook_queue")
    if not api.level_confirm_seconds > 0:
        raise ConfigError("must be more than 0", source=source, key="api.level_confirm_seconds")
    if api.zalo_oa_secret_env:
        secret = from_env(api.zalo_oa_secret_env, env, source=source,
                          key="api.zalo_oa_secret_env")
        api = msgspec.structs.replace(api, zalo_oa_secret=secret)
    elif api.zalo_oa_secret:
        api = msgspec.structs.replace(api, zalo_oa_secret=Secret(api.zalo_oa_secret))
    return api


def load_deployment(path: Path | None,
                    env: Mapping[str, str] | None = None) -> tuple[Settings, ApiConfig]:
    """Settings and the ``[api]`` table of the deployment file (defaults without a file)."""
    env = os.environ if env is None else env
    if path is None:
        return load_settings(None, env), ApiConfig()
    source = str(path)
    data = _read(path)
    refuse_inline(data, source)
    api = _api(data.pop("api", {}), env, source)
    data = _env_overrides(msgspec.to_builtins(convert(data, Settings, source=source)), env)
    try:
        settings = msgspec.convert(data, Settings, strict=False)
    except msgspec.ValidationError:
        settings = convert(data, Settings, source=f"{source} + LOA_* environment")
    return _secrets(_check(settings, source), env, source), api


def load_api_config(path: Path, env: Mapping[str, str] | None = None) -> ApiConfig:
    """Only the ``[api]`` table of the file at ``path``."""
    data = _read(path)
    refuse_inline({"api": data.get("api", {})}, str(path))
    return _api(data.get("api", {}), os.environ if env is None else env, str(path))
