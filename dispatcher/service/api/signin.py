"""Failed sign-ins: counted, logged, and limited.

Every refused bearer token (none, unknown, expired) is counted in
``loa_api_signin_failures_total{reason}`` and logged in one line: the reason, the client's
address and the refused token's id (the first hex digits of its SHA-256, as ``loa token list``
shows them; never the token). After ``[api] signin_max_failures`` failures within
``signin_window_seconds`` from one client address, or with one token prefix (the token's first
:data:`PREFIX_LENGTH` characters, the same from any address), every call from that address or
with that prefix is answered 429 with ``Retry-After`` until the oldest of those failures leaves
the window; those answers are counted (reason ``limited``) but neither logged nor counted as
failures, so the wait ends. The counts are kept in the process's memory (per API process), for
at most :data:`MAX_KEYS` addresses and prefixes.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import math

from prometheus_client import Counter

from dispatcher.service.auth import Refusal, hash_token, token_id

log = logging.getLogger(__name__)

PREFIX_LENGTH = 12  # "loa_" and 8 characters of the random part
MAX_KEYS = 10_000

SIGNIN_FAILURES = Counter(
    "loa_api_signin_failures", "API calls refused for their bearer token: missing, unknown, "
    "expired, or limited (429: too many failures from the address or with the token prefix)",
    ["reason"])
for _reason in Refusal:
    SIGNIN_FAILURES.labels(_reason.value)

Key = tuple[str, str]  # ("address", "10.0.0.5") or ("prefix", "loa_AbCdEfGh")


def keys(address: str, token: str) -> list[Key]:
    """What failures are counted by: the client's address and, with a token, its prefix."""
    found: list[Key] = [("address", address)]
    if token:
        found.append(("prefix", token[:PREFIX_LENGTH]))
    return found


class SignInLimiter:
    """Failures per key within a sliding window of ``window_seconds``."""

    def __init__(self, max_failures: int, window_seconds: float) -> None:
        self.max_failures = max_failures
        self.window = dt.timedelta(seconds=window_seconds)
        self._failures: dict[Key, collections.deque[dt.datetime]] = {}

    def _recent(self, key: Key, now: dt.datetime) -> collections.deque[dt.datetime] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times

    def retry_after(self, found: list[Key], now: dt.datetime) -> int | None:
        """Seconds to wait before a call with these keys is heard again, or None: heard now."""
        wait = 0.0
        for key in found:
            times = self._recent(key, now)
            if times is not None and len(times) >= self.max_failures:
                oldest = times[-self.max_failures]
                wait = max(wait, (oldest + self.window - now).total_seconds())
        return max(1, math.ceil(wait)) if wait > 0 else None

    def failed(self, found: list[Key], now: dt.datetime) -> None:
        """Count a failure against each key."""
        if len(self._failures) >= MAX_KEYS:
            self._prune(now)
        for key in found:
            times = self._failures.setdefault(key, collections.deque(maxlen=self.max_failures))
            times.append(now)

    def _prune(self, now: dt.datetime) -> None:
        for key in list(self._failures):
            self._recent(key, now)
        while len(self._failures) >= MAX_KEYS:  # still full: forget the oldest keys
            del self._failures[next(iter(self._failures))]


def record(reason: Refusal, address: str, token: str) -> None:
    """Count a refused sign-in and, unless it was only limited, log it (without the token)."""
    SIGNIN_FAILURES.labels(reason.value).inc()
    if reason is Refusal.LIMITED:
        return
    which = f" (token id {token_id(hash_token(token))})" if token else ""
    log.warning("API sign-in refused from %s: %s token%s", address, reason.value, which)
