"""The ``[api]`` table of the deployment file, and reading that file as a whole.

``dispatcher.settings.Settings`` refuses unknown top-level tables, so :func:`load_deployment`
takes ``[api]`` out of the file before the rest is read as :class:`Settings` (with the same
``LOA_*`` environment overrides and secrets as ``load_settings``).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from dispatcher.auth import TokenEntry
from dispatcher.config import convert
from dispatcher.errors import ConfigError
from dispatcher.secret import Secret

# _check, _env_overrides, _secrets: the steps of load_settings after reading the file, used
# here because Settings refuses the [api] table (see the module's docstring)
from dispatcher.settings import Settings, _check, _env_overrides, _secrets, load_settings


class ApiConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    port: int = 8080
    audit_log: str = "loa-audit.jsonl"  # relative paths: to the working directory
    request_max_body_size: int = 65_536  # bytes; larger bodies are refused with 413
    zalo_app_id: str = ""  # the Zalo delivery webhook is served when this is set
    zalo_oa_secret_env: str = ""  # environment variable holding the OA secret key
    zalo_oa_secret: str = ""  # filled in from zalo_oa_secret_env (never write it here)
    zalo_max_skew_seconds: float = 300.0
    tokens: list[TokenEntry] = []
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
    if not api.level_confirm_seconds > 0:
        raise ConfigError("must be more than 0", source=source, key="api.level_confirm_seconds")
    if api.zalo_oa_secret_env:
        name = api.zalo_oa_secret_env
        if name not in env:
            raise ConfigError(f"the environment variable {name} is not set", source=source,
                              key="api.zalo_oa_secret_env")
        api = msgspec.structs.replace(api, zalo_oa_secret=Secret(env[name]))
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
    api = _api(data.pop("api", {}), env, source)
    data = _env_overrides(msgspec.to_builtins(convert(data, Settings, source=source)), env)
    try:
        settings = msgspec.convert(data, Settings, strict=False)
    except msgspec.ValidationError:
        settings = convert(data, Settings, source=f"{source} + LOA_* environment")
    return _secrets(_check(settings, source), env, source), api


def load_api_config(path: Path, env: Mapping[str, str] | None = None) -> ApiConfig:
    """Only the ``[api]`` table of the file at ``path``."""
    return _api(_read(path).get("api", {}), os.environ if env is None else env, str(path))
