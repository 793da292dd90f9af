"""The options of the commands that use the store (``--redis``, ``--config``, ``--plan``), and
the settings and Redis URL they give."""

from __future__ import annotations

import argparse
from pathlib import Path

from dispatcher.domain.errors import InputError
from dispatcher.service.cli import gate
from dispatcher.service.settings import Settings, load_settings


def add_options(parser: argparse.ArgumentParser, *, need_redis: bool = False,
                without: str = "in this process's memory") -> None:
    """``--redis``, ``--config`` and ``--plan``; ``without`` says what the command does when
    no Redis is given (unless it needs one)."""
    parser.add_argument("--redis", metavar="URL",
                        help="Redis URL, e.g. redis://127.0.0.1:6379/0 (default: LOA_REDIS_URL; "
                             + ("required" if need_redis else f"none: {without}") + ")")
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="deployment settings (TOML; see docs/configuration.md)")
    parser.add_argument("--plan", type=Path, metavar="FILE", help="plan file (default: shipped)")


def add_record_options(parser: argparse.ArgumentParser, *, changes: bool = False) -> None:
    """``--redis``, ``--config`` and ``--json`` of a command on the store's records (campaigns,
    the situation, dead letters, the plan's texts); with ``changes``, the options of a
    state-changing verb too (an API token, or ``--admin-direct``: :func:`gate.add_options`)."""
    if changes:
        gate.add_options(parser)
    parser.add_argument("--redis", metavar="URL", help="Redis URL (default: LOA_REDIS_URL)")
    parser.add_argument("--config", type=Path, metavar="FILE", help="deployment settings")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")


def settings_and_url(args: argparse.Namespace, *,
                     need_redis: bool = False) -> tuple[Settings, str]:
    """The settings of ``--config`` (and ``LOA_*``) and the Redis URL: ``--redis``, else the
    settings' (empty when there is none)."""
    settings = load_settings(args.config)
    url = args.redis or settings.redis.url
    if need_redis and not url:
        raise InputError("this command needs a Redis: give --redis URL or set LOA_REDIS_URL")
    return settings, url
