"""``--log-format`` and ``--log-level`` of the long-running commands, and the logging they set.

The flags win over ``LOA_LOG_FORMAT`` / ``LOA_LOG_LEVEL``, which win over the ``[log]`` table of
``--config FILE`` (dispatcher.service.settings); without any, text at the command's default level.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping

from dispatcher.engine import logs
from dispatcher.service.settings import load_settings

#: Environment variables whose values are hidden from the logs, whatever they are used for.
_SECRET_NAMES = ("PASSWORD", "SECRET", "TOKEN")


def add_options(parser: argparse.ArgumentParser, *, default_level: str = "info") -> None:
    """``--log-format`` and ``--log-level``; the command configures logging before it runs."""
    parser.add_argument("--log-format", type=str.lower, choices=logs.FORMATS,
                        default=argparse.SUPPRESS,
                        help="text (default) or json: one JSON object per line on stderr "
                             "(default: LOA_LOG_FORMAT or [log] format)")
    parser.add_argument("--log-level", type=str.lower, choices=tuple(logs.LEVELS),
                        default=argparse.SUPPRESS, metavar="LEVEL",
                        help=f"{', '.join(logs.LEVELS)} (default: LOA_LOG_LEVEL, [log] level "
                             f"or {default_level})")
    parser.set_defaults(log_default_level=default_level)


def env_secrets(env: Mapping[str, str]) -> list[str]:
    """Values of the ``LOA_*`` environment variables named like a password, secret or token."""
    return [value for name, value in env.items()
            if name.startswith("LOA_") and any(s in name.upper() for s in _SECRET_NAMES)]


def configure(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> None:
    """Set up logging for a command that took :func:`add_options` (others: nothing)."""
    default_level: str | None = getattr(args, "log_default_level", None)
    if default_level is None:
        return
    env = os.environ if env is None else env
    logs.check_env(env)
    settings = load_settings(getattr(args, "config", None), env)
    fmt = getattr(args, "log_format", None) or settings.log.format.lower()
    level = getattr(args, "log_level", None) or settings.log.level.lower() or default_level
    logs.setup(fmt, level, secrets=[*logs.secrets_of(settings), *env_secrets(env)])
