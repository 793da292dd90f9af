"""The ``[[api.tokens]]`` tables of a deployment file: reading, listing, revoking, and the table
a running API keeps up to date.

``loa token revoke`` removes a token's table from the file (written to a new file beside it and
renamed over it, so a reader sees the old file or the new one, never half of one). A running API
(:class:`TokenSource`) looks at the file's size, modification time and inode at most every
``[api] token_reload_seconds`` and reads its tokens again when one of them changed: a revoked or
expired-and-replaced token is refused within that many seconds, without a restart. A file that
cannot be read or is not valid any more keeps the tokens last read (a line in the log says why),
so a typo does not lock everyone out.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import tempfile
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from dispatcher.domain.config import convert
from dispatcher.domain.errors import ConfigError, InputError
from dispatcher.service.auth import TokenEntry, TokenTable, check_user

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]
_HEADER = re.compile(r"^\s*\[")
_TOKENS_HEADER = re.compile(r"^\s*\[\[\s*api\s*\.\s*tokens\s*\]\]\s*(#.*)?$")


class _Tokens(msgspec.Struct):
    tokens: list[TokenEntry] = []


def _parse(text: str, source: str) -> list[TokenEntry]:
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", source=source) from None
    api = data.get("api", {})
    tokens = api.get("tokens", []) if isinstance(api, dict) else []
    return convert({"tokens": tokens}, _Tokens, source=f"{source} [api]").tokens


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", source=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", source=str(path)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (byte {exc.start})", source=str(path)) from None


def read_tokens(path: Path) -> list[TokenEntry]:
    """The ``[[api.tokens]]`` entries of the file at ``path``."""
    return _parse(_text(path), str(path))


def revoke_tokens(path: Path, *, user: str | None = None,
                  token_id: str | None = None) -> list[TokenEntry]:
    """Remove from the file at ``path`` the tables of every token of ``user``, or of the token
    whose id starts with ``token_id``; the rest of the file is kept as it is. Returns the
    entries removed; none matching is an error."""
    if (user is None) == (token_id is None):
        raise InputError("give --user or --id (one of them)")
    if user is not None:
        check_user(user)
    wanted = (token_id or "").strip().lower()
    if token_id is not None and (len(wanted) < 4 or not re.fullmatch(r"[0-9a-f]+", wanted)):
        raise InputError(f"--id: {token_id!r}: give at least 4 hex digits of the id "
                         "(`loa token list`)")
    source = str(path)
    text = _text(path)
    before = _parse(text, source)

    def matches(entry: TokenEntry) -> bool:
        return entry.user == user if user is not None else entry.hash.lower().startswith(wanted)

    removed = [e for e in before if matches(e)]
    if not removed:
        who = f"user {user!r}" if user is not None else f"id {token_id!r}"
        raise InputError(f"no token of {who} in {path}")
    if token_id is not None and len(removed) > 1:
        raise InputError(f"--id: {token_id!r} names {len(removed)} tokens; give more digits")
    kept_lines: list[str] = []
    block: list[str] | None = None  # the lines of the [[api.tokens]] table being read

    def close(block: list[str]) -> None:
        entries = _parse("[[api.tokens]]\n" + "".join(block[1:]), source)
        if not (entries and matches(entries[0])):
            kept_lines.extend(block)

    for line in text.splitlines(keepends=True):
        if _HEADER.match(line):
            if block is not None:
                close(block)
            block = [line] if _TOKENS_HEADER.match(line) else None
            if block is not None:
                continue
        if block is not None:
            block.append(line)
        else:
            kept_lines.append(line)
    if block is not None:
        close(block)
    new = "".join(kept_lines)
    after = _parse(new, source)
    if after != [e for e in before if not matches(e)]:
        raise ConfigError("the tokens are not written as [[api.tokens]] tables; remove them "
                          "by hand", source=source)
    _replace(path, new)
    return removed


def _replace(path: Path, text: str) -> None:
    """Write ``text`` to a new file beside ``path`` (same mode) and rename it over ``path``."""
    mode = path.stat().st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ConfigError(f"cannot write: {exc.strerror}", source=str(path)) from None


class TokenSource:
    """The token table of a running API: ``entries`` as read at start and, with a ``path``, read
    again from the file when it changed, looked at no more often than every ``interval``."""

    def __init__(self, entries: list[TokenEntry], path: Path | None = None, *,
                 interval: float = 2.0, clock: Clock = lambda: dt.datetime.now(dt.UTC)) -> None:
        self._table = TokenTable(entries)
        self.path = path
        self.interval = dt.timedelta(seconds=interval)
        self.clock = clock
        self._checked: dt.datetime | None = None
        self._seen = self._stat() if path is not None else None

    def _stat(self) -> tuple[int, int, int] | None:
        assert self.path is not None
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def table(self) -> TokenTable:
        """The tokens in force now (the file looked at if ``interval`` has passed)."""
        if self.path is None:
            return self._table
        now = self.clock()
        if self._checked is not None and self._checked <= now < self._checked + self.interval:
            return self._table
        self._checked = now
        seen = self._stat()
        if seen == self._seen:
            return self._table
        try:
            entries = read_tokens(self.path)
        except ConfigError as exc:
            log.error("tokens not read again, the last ones read stay in force: %s", exc)
            return self._table
        self._seen = seen
        self._table = TokenTable(entries)
        log.info("tokens read again from %s: %d", self.path, len(entries))
        return self._table
