"""API users: roles, bearer tokens and where their hashes are kept.

Roles are ordered, each may do what the ones below it may:

* ``viewer``   reads: the level, campaigns and their progress, previews;
* ``operator`` also sets the level and creates, pauses, resumes and cancels campaigns;
* ``approver`` also approves campaigns (never one they created: the campaign service refuses);
* ``admin``    everything.

A token is ``loa_`` + 32 random bytes (``secrets.token_urlsafe(32)``, 256 bits). Only its
SHA-256 is stored, in the deployment's TOML file as one ``[[api.tokens]]`` table per token
(``user``, ``role``, ``hash``, ``created``). A plain, unsalted hash is enough here because the
tokens are random and high-entropy: nobody can guess one from its hash (no dictionary exists
for 256-bit random strings), unlike passwords, which need a slow salted hash. A presented token
is hashed and compared with every stored hash with :func:`hmac.compare_digest`, without stopping
at the first match, so the answer's timing does not tell how much of a hash matched.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import hmac
import json
import secrets
import tomllib
from pathlib import Path

import msgspec

from dispatcher.errors import ConfigError, InputError

TOKEN_PREFIX = "loa_"


class Role(enum.StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    APPROVER = "approver"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def allows(self, needed: Role) -> bool:
        """Whether this role may do what ``needed`` may."""
        return self.rank >= needed.rank


_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.APPROVER: 2, Role.ADMIN: 3}


class TokenEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One ``[[api.tokens]]`` table: whose token, which role, its SHA-256 (hex)."""

    user: str
    role: Role
    hash: str
    created: dt.datetime | None = None


class User(msgspec.Struct, frozen=True):
    """Who is calling, as the token says."""

    name: str
    role: Role


def generate_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenTable:
    """The tokens the API accepts (their hashes)."""

    def __init__(self, entries: list[TokenEntry]) -> None:
        self.entries = list(entries)

    def lookup(self, token: str) -> User | None:
        """The user of ``token``, or None; every entry is compared, in constant time each."""
        digest = hash_token(token).encode("ascii")
        found: TokenEntry | None = None
        for entry in self.entries:
            if hmac.compare_digest(digest, entry.hash.lower().encode("ascii", "replace")):
                found = entry
        return User(found.user, found.role) if found is not None else None


_USER_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@-")


def check_user(user: str) -> str:
    if not user or len(user) > 64 or not _USER_CHARS.issuperset(user):
        raise InputError(f"--user: {user!r}: use 1 to 64 letters, digits, '.', '_', '@' or '-'")
    return user


def parse_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise InputError(f"--role: {value!r}: use one of "
                         f"{', '.join(r.value for r in Role)}") from None


def add_token(path: Path, user: str, role: Role | str, *,
              now: dt.datetime | None = None) -> str:
    """Create a token for ``user`` with ``role``, append its hash to the TOML file at ``path``
    (an ``[[api.tokens]]`` table at the end; the rest of the file is kept as it is) and return
    the token. The token itself is written nowhere."""
    user = check_user(user)
    role = parse_role(role) if isinstance(role, str) and not isinstance(role, Role) else role
    if not path.exists():
        raise ConfigError("file not found (create it with `loa config init FILE`)",
                          source=str(path))
    now = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    token = generate_token()
    text = path.read_text(encoding="utf-8")
    sep = "" if not text or text.endswith("\n") else "\n"
    # json.dumps writes a valid TOML basic string for these values (checked above)
    created = now.isoformat().replace("+00:00", "Z")
    table = (f"{sep}\n[[api.tokens]]\nuser = {json.dumps(user)}\n"
             f"role = {json.dumps(role.value)}\nhash = \"{hash_token(token)}\"\n"
             f"created = {created}\n")
    try:
        tomllib.loads(text + table)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML with the token appended: {exc}",
                          source=str(path)) from None
    with path.open("a", encoding="utf-8") as f:
        f.write(table)
    return token
