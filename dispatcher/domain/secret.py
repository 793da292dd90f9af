"""Strings that do not show themselves: passwords, tokens and URLs holding a password; and
where they come from: the environment, or a file it names (:func:`from_env`), never the
deployment file itself (:func:`refuse_inline`).

``repr`` (what logs, tracebacks and ``print(settings)`` use) gives ``'***'`` for a
:class:`Secret` and the URL with its password replaced by ``***`` for a :class:`SecretUrl`; the
value itself is the string, for the one place that must use it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from dispatcher.domain.errors import ConfigError

_PASSWORD = re.compile(r"^(?P<head>[a-z][a-z0-9+.-]*://[^:@/]*:)[^@/]*(?=@)", re.IGNORECASE)


def has_password(url: str) -> bool:
    """Whether ``url`` holds a password (``scheme://user:password@host``)."""
    return _PASSWORD.match(url) is not None


class Secret(str):
    __slots__ = ()

    def __repr__(self) -> str:
        return "'***'"


class SecretUrl(str):
    """A URL (``redis://user:password@host``) whose ``repr`` and ``shown`` hide the password."""

    __slots__ = ()

    @property
    def shown(self) -> str:
        return _PASSWORD.sub(r"\g<head>***", str.__str__(self))

    def __repr__(self) -> str:
        return repr(self.shown)


#: Where secrets would be written in a deployment file: (table path, field, the field naming
#: the environment variable that holds it instead). ``*`` is any name (an SMPP link).
INLINE_FIELDS = (
    (("smpp", "*"), "password", "password_env"),
    (("zalo",), "secret_key", "secret_key_env"),
    (("app",), "secret", "secret_env"),
    (("email",), "password", "password_env"),
    (("api",), "zalo_oa_secret", "zalo_oa_secret_env"),
)
#: The same in the entries of a table's list: (table, list, field, the field naming the
#: environment variable): a portal site's application password or signing secret, a Facebook page's
#: access token, a cell broadcast carrier's password or token.
INLINE_LISTS = (
    ("portal", "sites", "password", "password_env"),
    ("portal", "sites", "secret", "secret_env"),
    ("facebook", "pages", "token", "token_env"),
    ("cell_broadcast", "carriers", "password", "password_env"),
    ("cell_broadcast", "carriers", "token", "token_env"),
)


def _tables(data: Mapping[str, Any], path: tuple[str, ...],
            prefix: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    if not path:
        yield prefix, data
        return
    head, rest = path[0], path[1:]
    names = [k for k in data if isinstance(data[k], Mapping)] if head == "*" else [head]
    for name in names:
        table = data.get(name)
        if isinstance(table, Mapping):
            yield from _tables(table, rest, f"{prefix}{name}.")


#: Words in an HTTP header's name that make its value a credential.
SENSITIVE_HEADER_WORDS = ("auth", "token", "key", "secret", "cookie", "signature", "password")


def sensitive_header(name: str) -> bool:
    return any(word in name.lower() for word in SENSITIVE_HEADER_WORDS)


def refuse_inline(data: Mapping[str, Any], source: str) -> None:
    """Refuse a deployment file (its parsed TOML) that writes a secret itself: a file is copied,
    committed and printed; the secret belongs in the environment (or a file of its own)."""
    app = data.get("app")
    headers = app.get("headers") if isinstance(app, Mapping) else None
    if isinstance(headers, Mapping):
        for name in headers:
            if sensitive_header(str(name)):
                raise ConfigError(
                    f"a credential is not written in this file: give the header in "
                    f"app.headers_env instead ({name} = \"NAME\", NAME an environment variable "
                    f"holding its value, or NAME_FILE naming a file that does)", source=source,
                    key=f"app.headers.{name}")
    for path, field, env_field in INLINE_FIELDS:
        for prefix, table in _tables(data, path):
            if table.get(field):
                raise ConfigError(
                    f"a secret is not written in this file: set {prefix}{env_field} to the "
                    f"name of an environment variable holding it (or NAME_FILE naming a file "
                    f"that holds it)", source=source, key=f"{prefix}{field}")
    for name, listed, field, env_field in INLINE_LISTS:
        found = data.get(name)
        items = found.get(listed) if isinstance(found, Mapping) else None
        for index, item in enumerate(items if isinstance(items, list) else []):
            if isinstance(item, Mapping) and item.get(field):
                raise ConfigError(
                    f"a secret is not written in this file: set {env_field} to the name of an "
                    f"environment variable holding it (or NAME_FILE naming a file that holds "
                    f"it)", source=source, key=f"{name}.{listed}[{index}].{field}")


def from_env(name: str, env: Mapping[str, str], *, source: str, key: str) -> Secret:
    """The secret in the environment variable ``name``, else in the file that ``name_FILE``
    names (its content without the final newline: Docker and systemd credentials)."""
    if name in env:
        return Secret(env[name])
    file_var = f"{name}_FILE"
    path = env.get(file_var)
    if not path:
        raise ConfigError(f"the environment variable {name} is not set (nor {file_var}, "
                          f"naming a file that holds it)", source=source, key=key)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{file_var}: cannot read {path}: {exc.strerror}", source=source,
                          key=key) from None
    except UnicodeDecodeError:
        raise ConfigError(f"{file_var}: {path} is not UTF-8 text", source=source,
                          key=key) from None
    return Secret(text.removesuffix("\n").removesuffix("\r"))
