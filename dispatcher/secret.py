"""Strings that do not show themselves: passwords, tokens and URLs holding a password.

``repr`` (what logs, tracebacks and ``print(settings)`` use) gives ``'***'`` for a
:class:`Secret` and the URL with its password replaced by ``***`` for a :class:`SecretUrl`; the
value itself is the string, for the one place that must use it.
"""

from __future__ import annotations

import re

_PASSWORD = re.compile(r"^(?P<head>[a-z][a-z0-9+.-]*://[^:@/]*:)[^@/]*(?=@)", re.IGNORECASE)


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
