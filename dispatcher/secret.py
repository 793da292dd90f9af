"""A string that does not show itself: passwords and tokens in settings.

``repr`` (what logs, tracebacks and ``print(settings)`` use) gives ``'***'``; the value itself is
the string, for the one place that must send it.
"""

from __future__ import annotations


class Secret(str):
    __slots__ = ()

    def __repr__(self) -> str:
        return "'***'"
