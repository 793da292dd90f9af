"""API users: roles, bearer tokens and where their hashes are kept.

Roles are ordered, each may do what the ones below it may:

* ``viewer``   reads: the level, campaigns and their progress, previews;
* ``operator`` also sets the level and creates, pauses, resumes and cancels campaigns;
* ``approver`` also approves campaigns (never one they created: the campaign service refuses);
* ``admin``    everything.

A token is ``loa_`` + 32 random bytes (``secrets.token_urlsafe(32)``, 256 bits). Only its
SHA-256 is stored, in the deployment's TOML file as one ``[[api.tokens]]`` table per token
(``user``, ``role``, ``hash``, ``created``, ``expires``). A token past its ``expires`` is refused
(a table without ``expires``, written before tokens expired, does not expire). A token's *id* is
the first :data:`ID_LENGTH` hex digits of its hash: enough to name it in ``loa token list`` and
the logs, nothing to sign in with. A plain, unsalted hash is enough here because the
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
import re
import secrets
import tomllib
from pathlib import Path

import msgspec

from dispatcher.domain.errors import ConfigError, InputError

TOKEN_PREFIX = "loa_"
ID_LENGTH = 8
DEFAULT_LIFETIME = dt.timedelta(days=90)


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
    """One ``[[api.tokens]]`` table: whose token, which role, its SHA-256 (hex), when it was
    created and until when it is accepted (None: no end, a table written before tokens
    expired)."""

    user: str
    role: Role
    hash: str
    created: dt.datetime | None = None
    expires: dt.datetime | None = None

    @property
    def id(self) -> str:
        return token_id(self.hash)

    def expired(self, now: dt.datetime) -> bool:
        return self.expires is not None and now >= _aware(self.expires)


class User(msgspec.Struct, frozen=True):
    """Who is calling, as the token says."""

    name: str
    role: Role


class Refusal(enum.StrEnum):
    """Why a sign-in was refused."""

    MISSING = "missing"  # no bearer token at all
    UNKNOWN = "unknown"  # a token no table holds
    EXPIRED = "expired"  # a table holds it, but it is past its ``expires``
    LIMITED = "limited"  # too many failed sign-ins from the address or with the prefix


def generate_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_id(digest: str) -> str:
    """The short id of the token whose SHA-256 is ``digest``."""
    return digest[:ID_LENGTH].lower()


def _aware(when: dt.datetime) -> dt.datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


class TokenTable:
    """The tokens the API accepts (their hashes)."""

    def __init__(self, entries: list[TokenEntry]) -> None:
        self.entries = list(entries)

    def find(self, token: str) -> TokenEntry | None:
        """The entry of ``token``, or None; every entry is compared, in constant time each."""
        digest = hash_token(token).encode("ascii")
        found: TokenEntry | None = None
        for entry in self.entries:
            if hmac.compare_digest(digest, entry.hash.lower().encode("ascii", "replace")):
                found = entry
        return found

    def lookup(self, token: str) -> User | None:
        """The user of ``token``, or None (whether or not it has expired)."""
        found = self.find(token)
        return User(found.user, found.role) if found is not None else None

    def authenticate(self, token: str, now: dt.datetime) -> User | Refusal:
        """The user of ``token`` at ``now``, or why it is refused."""
        found = self.find(token)
        if found is None:
            return Refusal.UNKNOWN
        if found.expired(now):
            return Refusal.EXPIRED
        return User(found.user, found.role)


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


_DAYS = re.compile(r"(?P<n>[0-9]{1,5})d")


def parse_expires(value: str, now: dt.datetime) -> dt.datetime:
    """``--expires``: a number of days (``90d``) from ``now``, or an ISO date (``2027-03-01``,
    midnight UTC) or date and time (``2027-03-01T12:00:00+07:00``); it must be after ``now``."""
    text = value.strip()
    days = _DAYS.fullmatch(text)
    if days:
        when = now + dt.timedelta(days=int(days.group("n")))
    else:
        try:
            when = _aware(dt.datetime.fromisoformat(text))
        except ValueError:
            raise InputError(f"--expires: {value!r}: give days (90d) or an ISO date "
                             "(2027-03-01)") from None
    if when <= now:
        raise InputError(f"--expires: {value!r} is not in the future")
    return when.astimezone(dt.UTC).replace(microsecond=0)


def _toml_time(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def add_token(path: Path, user: str, role: Role | str, *,
              now: dt.datetime | None = None, expires: dt.datetime | None = None) -> str:
    """Create a token for ``user`` with ``role``, valid until ``expires`` (default: ``now`` +
    :data:`DEFAULT_LIFETIME`), append its hash to the TOML file at ``path`` (an
    ``[[api.tokens]]`` table at the end; the rest of the file is kept as it is) and return the
    token. The token itself is written nowhere."""
    user = check_user(user)
    role = parse_role(role) if isinstance(role, str) and not isinstance(role, Role) else role
    if not path.exists():
        raise ConfigError("file not found (create it with `loa config init FILE`)",
                          source=str(path))
    now = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    expires = expires or now + DEFAULT_LIFETIME
    if expires <= now:
        raise InputError("--expires: not in the future")
    token = generate_token()
    text = path.read_text(encoding="utf-8")
    sep = "" if not text or text.endswith("\n") else "\n"
    # json.dumps writes a valid TOML basic string for these values (checked above)
    table = (f"{sep}\n[[api.tokens]]\nuser = {json.dumps(user)}\n"
             f"role = {json.dumps(role.value)}\nhash = \"{hash_token(token)}\"\n"
             f"created = {_toml_time(now)}\nexpires = {_toml_time(expires)}\n")
    try:
        tomllib.loads(text + table)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML with the token appended: {exc}",
                          source=str(path)) from None
    with path.open("a", encoding="utf-8") as f:
        f.write(table)
    return token
