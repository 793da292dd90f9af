"""Logging of the long-running commands: one line per record on stderr, as text or as JSON.

Every line carries the time (ISO 8601, UTC), the level, the logger and the message, and the ids
of what was being worked on — ``wave``, ``campaign``, ``route``, ``link``, ``channel`` — taken
from the record's ``extra=`` fields or from :func:`context` (a context variable, so each asyncio
task carries its own). Secrets never appear: every string of a line goes through
:class:`Redactor` (the values the settings hold, and ``password=``, ``access_token=``,
``Bearer ...`` and URL passwords wherever they are).

:func:`setup` installs one handler on the root logger; uvicorn's loggers (``loa api``,
``loa run``) propagate to it, so the API's error and access lines are formatted the same way.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import logging
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, Any, Protocol

import msgspec

from dispatcher.domain.errors import ConfigError
from dispatcher.domain.secret import Secret, SecretUrl

FORMATS = ("text", "json")
LEVELS: Mapping[str, int] = {"debug": logging.DEBUG, "info": logging.INFO,
                             "warning": logging.WARNING, "error": logging.ERROR,
                             "critical": logging.CRITICAL}
#: The ids a line may carry, in the order the text format shows them.
CONTEXT_KEYS = ("wave", "campaign", "route", "link", "channel")


class LogSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The ``[log]`` table (``LOA_LOG_FORMAT``, ``LOA_LOG_LEVEL``)."""

    format: str = "text"  # text or json
    level: str = ""  # debug, info, warning, error, critical; empty: the command's default


def check(settings: LogSettings, source: str | None,
          keys: tuple[str, str] = ("log.format", "log.level")) -> None:
    """A :class:`ConfigError` naming ``log.format`` or ``log.level`` (or ``keys``) when one is
    not known."""
    if settings.format.lower() not in FORMATS:
        raise ConfigError(f"must be {' or '.join(FORMATS)}, not {settings.format!r}",
                          source=source, key=keys[0])
    if settings.level and settings.level.lower() not in LEVELS:
        raise ConfigError(f"must be one of {', '.join(LEVELS)}, not {settings.level!r}",
                          source=source, key=keys[1])


ENV_FORMAT, ENV_LEVEL = "LOA_LOG_FORMAT", "LOA_LOG_LEVEL"


def check_env(env: Mapping[str, str]) -> None:
    """A :class:`ConfigError` naming ``LOA_LOG_FORMAT`` or ``LOA_LOG_LEVEL`` when one is set to
    a value not known."""
    given = LogSettings(format=env.get(ENV_FORMAT, "text"), level=env.get(ENV_LEVEL, ""))
    check(given, None, (ENV_FORMAT, ENV_LEVEL))


_context: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "loa_log_context", default=None)


@contextlib.contextmanager
def context(**ids: object) -> Iterator[None]:
    """Within the block (and the tasks it starts), every line carries ``ids``
    (``wave=``, ``campaign=``, ``route=``, ``link=``, ``channel=``)."""
    unknown = set(ids) - set(CONTEXT_KEYS)
    if unknown:
        raise ValueError(f"not a log context key: {', '.join(sorted(unknown))}")
    token = _context.set({**(_context.get() or {}), **{k: str(v) for k, v in ids.items()
                                               if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def ids_of(record: logging.LogRecord) -> dict[str, str]:
    """The context ids of ``record``: the task's context, then its own ``extra=`` fields."""
    ids = dict(_context.get() or {})
    for key in CONTEXT_KEYS:
        value = record.__dict__.get(key)
        if value is not None:
            ids[key] = str(value)
    return ids


_PATTERNS = (
    # password=..., access_token: ..., "refresh_token": "...", secret_key=...
    (re.compile(r"(?i)(\b[\w-]*(?:password|passwd|secret|token|api_key)[\w-]*\b[\"']?\s*[=:]\s*"
                r"[\"']?)[^\s\"'&,;)}\]]+"), r"\1***"),
    (re.compile(r"(?i)(\b(?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]+"), r"\1***"),
    (re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^:@/\s]*:)[^@/\s]+(?=@)"), r"\1***"),
)
#: Known values shorter than this are not searched for (they would hide ordinary words).
MIN_SECRET = 4


class Redactor:
    """Hides secrets in text: known values, and values after names that say they are one."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: list[str] = []
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        new = {s for s in secrets if len(s) >= MIN_SECRET} - set(self._secrets)
        if new:
            self._secrets = sorted([*self._secrets, *new], key=len, reverse=True)  # longest first

    def clear(self) -> None:
        self._secrets = []

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "***")
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text


def secrets_of(*objects: Any) -> list[str]:
    """Every :class:`Secret` value and URL password held by ``objects`` (settings Structs, and
    the dicts, lists and Structs inside them)."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, Secret):
            found.append(str.__str__(value))
        elif isinstance(value, SecretUrl):
            match = re.match(r"^[a-z][a-z0-9+.-]*://[^:@/]*:([^@/]+)@", value, re.IGNORECASE)
            if match:
                found.append(match.group(1))
        elif isinstance(value, msgspec.Struct):
            for name in value.__struct_fields__:
                walk(getattr(value, name))
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)

    for obj in objects:
        walk(obj)
    return found


def _time(record: logging.LogRecord) -> str:
    when = dt.datetime.fromtimestamp(record.created, dt.UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Formatter(logging.Formatter):
    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redact = redactor

    def _parts(self, record: logging.LogRecord) -> tuple[str, str | None]:
        message = record.getMessage()
        exc = None
        if record.exc_info:
            exc = self.formatException(record.exc_info)
        elif record.exc_text:
            exc = record.exc_text
        if record.stack_info:
            exc = f"{exc}\n{record.stack_info}" if exc else record.stack_info
        return self.redact(message), (self.redact(exc) if exc else None)


class TextFormatter(_Formatter):
    """``2026-05-01T08:00:00.000Z INFO dispatcher.engine.process: wave w1 completed [wave=w1]``"""

    def format(self, record: logging.LogRecord) -> str:
        message, exc = self._parts(record)
        ids = " ".join(f"{k}={self.redact(v)}" for k, v in ids_of(record).items())
        line = f"{_time(record)} {record.levelname} {record.name}: {message}"
        if ids:
            line += f" [{ids}]"
        return f"{line}\n{exc}" if exc else line


class JsonLine(msgspec.Struct, omit_defaults=True):
    """One line of the JSON format."""

    time: str
    level: str
    logger: str
    message: str
    wave: str | None = None
    campaign: str | None = None
    route: str | None = None
    link: str | None = None
    channel: str | None = None
    exc: str | None = None  # the traceback, when the record has one


_encoder = msgspec.json.Encoder()


class JsonFormatter(_Formatter):
    """One JSON object per line: time, level, logger, message, the context ids, exc."""

    def format(self, record: logging.LogRecord) -> str:
        message, exc = self._parts(record)
        ids = {k: self.redact(v) for k, v in ids_of(record).items()}
        line = JsonLine(time=_time(record), level=record.levelname, logger=record.name,
                        message=message, exc=exc, **ids)
        return _encoder.encode(line).decode()


class _StderrHandler(logging.StreamHandler[IO[str]]):
    """Writes to whatever ``sys.stderr`` is when a record comes (it may be replaced)."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> IO[str]:  # type: ignore[override]
        return sys.stderr


#: The handler :func:`setup` installed and the root logger's level before it (one at most).
_installed: list[tuple[logging.Handler, int]] = []
#: The redactor of the installed handler: :func:`hide` adds values to it.
redactor = Redactor()


def setup(format: str = "text", level: str = "info", *, secrets: Iterable[str] = (),
          stream: IO[str] | None = None) -> logging.Handler:
    """Send every record at ``level`` or above to ``stream`` (stderr) in ``format``, with
    ``secrets`` hidden; Python warnings go through it too."""
    if format not in FORMATS:
        raise ValueError(f"log format {format!r}")
    redactor.add(secrets)
    formatter = JsonFormatter(redactor) if format == "json" else TextFormatter(redactor)
    handler: logging.Handler = (_StderrHandler() if stream is None
                                else logging.StreamHandler(stream))
    handler.setFormatter(formatter)
    handler.setLevel(LEVELS[level])
    root = logging.getLogger()
    previous = _installed[0][1] if _installed else root.level
    for old, _ in _installed:
        root.removeHandler(old)
    _installed[:] = [(handler, previous)]
    root.addHandler(handler)
    root.setLevel(LEVELS[level])
    logging.captureWarnings(True)
    return handler


class TokenPair(Protocol):
    """A store of a token pair (adapters.zalo.tokens.TokenStore)."""

    async def get(self) -> tuple[str, str]: ...

    async def issued(self) -> Any: ...

    async def save(self, access: str, refresh: str, expires_in: float = 0.0) -> None: ...

    def renewal(self) -> contextlib.AbstractAsyncContextManager[None]: ...


class HiddenTokens:
    """``store``, whose tokens are hidden from the logs as soon as they are read or renewed."""

    def __init__(self, store: TokenPair) -> None:
        self.store = store

    async def get(self) -> tuple[str, str]:
        pair = await self.store.get()
        hide(pair)
        return pair

    async def issued(self) -> Any:
        return await self.store.issued()

    async def save(self, access: str, refresh: str, expires_in: float = 0.0) -> None:
        hide((access, refresh))
        await self.store.save(access, refresh, expires_in)

    def renewal(self) -> contextlib.AbstractAsyncContextManager[None]:
        return self.store.renewal()


def teardown() -> None:
    """Undo :func:`setup`: the root logger as it was, no secrets remembered."""
    root = logging.getLogger()
    for handler, previous in _installed:
        root.removeHandler(handler)
        root.setLevel(previous)
        logging.captureWarnings(False)
    _installed.clear()
    redactor.clear()


def hide(secrets: Iterable[str]) -> None:
    """Hide these values too from every line from now on (e.g. secrets read after start)."""
    redactor.add(secrets)
