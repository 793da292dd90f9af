"""Loading TOML configuration into typed msgspec Structs, with errors that name the key.

Every configuration file of Loa (the plan, the numbering table, the province) goes through
:func:`load_toml`, so an operator who breaks a file always gets the file, the dotted key and
what is wrong with it, never a traceback.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from dispatcher.errors import ConfigError

T = TypeVar("T")

#: The configuration shipped with Loa: the plan from the source document, the numbering table
#: and the province. ``LOA_CONFIG_DIR`` points Loa at another directory with the same files.
DEFAULT_CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"


def config_dir() -> Path:
    """The directory holding the default configuration files."""
    override = os.environ.get("LOA_CONFIG_DIR")
    return Path(override) if override else DEFAULT_CONFIG_DIR


def default_path(name: str) -> Path:
    """Path of a default configuration file, e.g. ``default_path("plan.toml")``."""
    return config_dir() / name


_PATH_RE = re.compile(r" - at `\$(?P<path>[^`]*)`$")


def _dotted(path: str) -> str:
    """Turn msgspec's ``$.levels[0].channels.sms`` into ``levels[0].channels.sms``."""
    return path[1:] if path.startswith(".") else path


def convert(data: Any, type_: type[T], *, source: str) -> T:
    """Validate already-parsed data against ``type_``; errors become :class:`ConfigError`."""
    try:
        return msgspec.convert(data, type_, strict=True)
    except msgspec.ValidationError as exc:
        text = str(exc)
        match = _PATH_RE.search(text)
        if match:
            reason = text[: match.start()]
            key = _dotted(match.group("path")) or None
        else:
            reason, key = text, None
        raise ConfigError(reason, source=source, key=key) from None


def load_toml(path: Path, type_: type[T]) -> T:
    """Read the TOML file at ``path`` and validate it as ``type_``."""
    source = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError("file not found", source=source) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", source=source) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (byte {exc.start})", source=source) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", source=source) from None
    return convert(data, type_, source=source)
