"""Loading TOML configuration into typed msgspec Structs, with errors that name the key.

Every configuration file of Loa (the plan, the numbering table, the province) goes through
:func:`load_toml`, so an operator who breaks a file always gets the file, the dotted key and
what is wrong with it, never a traceback.
"""

from __future__ import annotations

import os
import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from dispatcher.domain.errors import ConfigError

T = TypeVar("T")

#: The configuration shipped with Loa: the plan from the source document, the numbering table,
#: the province and the starter deployment file. They live in the repository's ``config/`` and
#: are installed inside the package as ``dispatcher.defaults`` (setup.py maps one to the other).
#: An installed Loa reads them there; a checkout (also installed in editable mode) reads
#: ``config/`` itself. ``LOA_CONFIG_DIR`` points Loa at another directory with the same files.
CHECKOUT_CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"


def shipped_config_dir() -> Path:
    """Where this Loa's own configuration files are: in the installed package, or the
    checkout's ``config/`` when the package has none (run from the source tree)."""
    installed = resources.files("dispatcher").joinpath("defaults")
    if isinstance(installed, Path) and installed.joinpath("plan.toml").is_file():
        return installed
    return CHECKOUT_CONFIG_DIR


DEFAULT_CONFIG_DIR = shipped_config_dir()


def config_dir() -> Path:
    """The directory holding the default configuration files: ``LOA_CONFIG_DIR`` if set, else
    the shipped one."""
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
            if key is not None and "[...]" in key:
                key = _name_keys(data, type_, key, text)
        else:
            reason, key = text, None
        raise ConfigError(reason, source=source, key=key) from None


_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _steps(path: str) -> list[str | int]:
    return [int(index) if index else name for name, index in _STEP.findall(path)]


def _at(data: Any, steps: list[str | int]) -> Any:
    for step in steps:
        data = data[step]
    return data


def _with(data: Any, steps: list[str | int], value: Any) -> Any:
    """A copy of ``data`` with ``value`` at ``steps`` (only the containers on the way copied)."""
    if not steps:
        return value
    copy = dict(data) if isinstance(data, dict) else list(data)
    first = steps[0]
    copy[first] = _with(data[first], steps[1:], value)  # type: ignore[index]
    return copy


def _name_keys(data: Any, type_: type[Any], key: str, error: str) -> str:
    """``key`` with each ``[...]`` (msgspec's mark for a key of a table it does not name, as in
    ``smpp[...].port``) replaced by the key: the one entry that alone gives the same error."""
    head, _, tail = key.partition("[...]")
    try:
        table = _at(data, _steps(head))
    except (KeyError, IndexError, TypeError):
        return key
    if not isinstance(table, dict):
        return key
    for name, value in table.items():
        try:
            msgspec.convert(_with(data, _steps(head), {name: value}), type_, strict=True)
        except msgspec.ValidationError as exc:
            if str(exc) == error:
                named = f"{head}.{name}{tail}"
                return _name_keys(data, type_, named, error) if "[...]" in named else named
    return key


def load_toml(path: Path, type_: type[T]) -> T:
    """Read the TOML file at ``path`` and validate it as ``type_``."""
    return convert(read_toml(path), type_, source=str(path))


def read_toml(path: Path) -> dict[str, Any]:
    """Read the TOML file at ``path`` (UTF-8); errors name the file."""
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
    return data
