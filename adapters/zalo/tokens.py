"""Zalo OA access tokens: where they are kept, and renewing them once however many ask.

An OA access token lives about 25 hours; the refresh token that renews it is good for **one** use
and each renewal answers a new one, which must be kept: a lost refresh token means the OA must be
authorised again by hand. So the :class:`TokenManager` saves the new pair to its
:class:`TokenStore` as soon as Zalo answers, and renews once for any number of concurrent
requests that found the token expired (single flight).

:class:`FileTokenStore` keeps the pair in a JSON file written atomically (temporary file, fsync,
``os.replace``), for one process; :class:`MemoryTokenStore` is for tests and the simulator.
Workers on several hosts share the pair in Redis (``dispatcher/service/zalo_tokens.py``), whose
:meth:`TokenStore.renewal` lets one process renew at a time: the others wait, then read the pair
it saved instead of spending the refresh token a second time.

Every store keeps, with the pair, when it was issued and how long Zalo said the access token
lives (:class:`Issued`): :mod:`adapters.zalo.schedule` renews the pair before either token runs
out, through :meth:`TokenManager.renew_if`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Protocol

import msgspec

from adapters.zalo.api import TokenAnswer
from dispatcher.domain.errors import ConfigError, LoaError

log = logging.getLogger(__name__)

#: Seconds a renewal waits for another process's renewal of the same token file (one HTTP call).
LOCK_WAIT = 30.0


class TokenError(LoaError):
    """The access token could not be renewed (the reason says why)."""

    retryable = True


class TokenStoreError(TokenError):
    """The token store could not be read or written (Redis unreachable, ...)."""


class Issued(msgspec.Struct, frozen=True):
    """When the pair was issued (epoch seconds; 0: unknown, e.g. a pair from the environment)
    and the access token's lifetime Zalo answered with it (seconds; 0: unknown)."""

    at: float = 0.0
    expires_in: float = 0.0


def lifetime(answer: TokenAnswer) -> float:
    """The access token's lifetime in Zalo's answer (a number or a string of one); 0: none."""
    try:
        return max(0.0, float(answer.expires_in))
    except ValueError:
        return 0.0


class TokenStore(Protocol):
    """Where the current (access, refresh) token pair is kept."""

    async def get(self) -> tuple[str, str]: ...

    async def issued(self) -> Issued:
        """When the pair :meth:`get` answers was issued, and its access token's lifetime."""
        ...

    async def save(self, access: str, refresh: str, expires_in: float = 0.0) -> None:
        """Keep a pair Zalo issued now, whose access token lives ``expires_in`` seconds."""
        ...

    def renewal(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Held while a renewal reads the pair, exchanges the refresh token and saves the new
        pair: one renewer at a time among every process that shares the store (a store kept by
        one process needs nothing more than the manager's single flight)."""
        ...


@contextlib.asynccontextmanager
async def _alone() -> AsyncIterator[None]:
    yield


class MemoryTokenStore:
    """A token pair in memory; ``saves`` counts renewals that were kept."""

    def __init__(self, access: str = "", refresh: str = "", *, issued_at: float = 0.0,
                 expires_in: float = 0.0) -> None:
        self.access = access
        self.refresh = refresh
        self.issued_at = issued_at
        self.expires_in = expires_in
        self.saves = 0

    async def get(self) -> tuple[str, str]:
        return self.access, self.refresh

    async def issued(self) -> Issued:
        return Issued(self.issued_at, self.expires_in)

    async def save(self, access: str, refresh: str, expires_in: float = 0.0) -> None:
        self.access, self.refresh = access, refresh
        self.issued_at, self.expires_in = time.time(), expires_in
        self.saves += 1

    def renewal(self) -> contextlib.AbstractAsyncContextManager[None]:
        return _alone()


class FileTokenStore:
    """A token pair in a JSON file ``{"access_token", "refresh_token", "saved_at",
    "expires_in"}`` (``saved_at``: when Zalo issued it, epoch seconds).

    ``initial`` is used while the file does not exist (the first start, with the tokens from the
    OA's authorisation); every renewal rewrites the file atomically, readable by its owner only.
    """

    def __init__(self, path: str | os.PathLike[str],
                 initial: tuple[str, str] | None = None) -> None:
        self.path = Path(path)
        self.initial = initial

    def _read(self) -> dict[str, object] | None:
        """The file's fields; None if there is no file."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ConfigError(f"cannot read: {exc.strerror or exc}",
                              source=str(self.path)) from None
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if not isinstance(data, dict) or not {"access_token", "refresh_token"} <= data.keys():
            raise ConfigError("not a Zalo token file (access_token, refresh_token)",
                              source=str(self.path))
        return data

    async def get(self) -> tuple[str, str]:
        data = self._read()
        if data is None:
            if self.initial is None:
                raise ConfigError("no Zalo token file and no initial tokens",
                                  source=str(self.path))
            return self.initial
        return str(data["access_token"]), str(data["refresh_token"])

    async def issued(self) -> Issued:
        data = self._read()
        if data is None:
            return Issued()
        at, life = data.get("saved_at", 0), data.get("expires_in", 0)
        return Issued(float(at) if isinstance(at, int | float) else 0.0,
                      float(life) if isinstance(life, int | float) else 0.0)

    async def save(self, access: str, refresh: str, expires_in: float = 0.0) -> None:
        data = json.dumps({"access_token": access, "refresh_token": refresh,
                           "saved_at": int(time.time()), "expires_in": expires_in}).encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def renewal(self) -> contextlib.AbstractAsyncContextManager[None]:
        """An exclusive lock on ``<file>.lock`` (flock): a ``loa zalo refresh-token`` next to a
        running ``loa run`` on the same file renews after it, reads the pair it saved and spends
        no refresh token twice. Workers on several hosts share a Redis store instead."""
        return self._locked()

    @contextlib.asynccontextmanager
    async def _locked(self) -> AsyncIterator[None]:
        lock = self.path.with_name(self.path.name + ".lock")
        try:
            lock.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise TokenStoreError(f"cannot open the lock {lock}: {exc.strerror or exc}") from None
        try:
            deadline = time.monotonic() + LOCK_WAIT
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise TokenStoreError(f"another process holds {lock}") from None
                    await asyncio.sleep(0.05)  # the event loop goes on meanwhile
            yield
        finally:
            os.close(fd)  # releases the lock


#: Renews tokens: the refresh token in, Zalo's answer out (raises TokenError on transport errors).
Exchange = Callable[[str], Awaitable[TokenAnswer]]
#: Whether a pair so issued is to be renewed now: the reason, or "" (not yet).
Due = Callable[[Issued], str]


class TokenManager:
    """The current access token, and its renewal: once for all concurrent callers.

    ``refresh(stale)`` renews only if ``stale`` is still the current token (a caller that saw an
    older token gets the new one at once), re-reads the store first (another process may have
    renewed), and after a failed renewal answers the same failure for ``retry_after`` seconds
    without asking Zalo again. ``renew_if(due)`` renews before anything is refused, when ``due``
    says so of the pair as the store holds it under the renewal lease (so that of several
    processes whose schedules fire together, one renews and the others take its pair).
    """

    def __init__(self, store: TokenStore, exchange: Exchange, *,
                 retry_after: float = 10.0) -> None:
        self.store = store
        self.exchange = exchange
        self.retry_after = retry_after
        self.access = ""
        self.refreshes = 0  # renewals that succeeded
        self.failures = 0
        self.issued = Issued()  # of the pair in use, as last read or renewed
        self._loaded = False
        self._flight: asyncio.Future[str] | None = None
        self._failed: tuple[float, str, str] | None = None  # (monotonic, stale token, reason)

    async def token(self) -> str:
        """The access token to use (loads it from the store, or renews it if there is none)."""
        if not self._loaded:
            self.access, _ = await self.store.get()
            self.issued = await self.store.issued()
            self._loaded = True
            if not self.access:
                return await self.refresh("")
        return self.access

    async def refresh(self, stale: str) -> str:
        """A new access token after ``stale`` was refused; TokenError if it cannot be had."""
        if self.access != stale and self._loaded:
            return self.access
        failed = self._failed
        if (failed is not None and failed[1] == stale
                and time.monotonic() - failed[0] < self.retry_after):
            raise TokenError(failed[2])
        return await self._single_flight(stale, None)

    async def renew_if(self, due: Due) -> str:
        """Renew the pair if ``due`` gives a reason, read under the renewal lease (another
        process may have just renewed it); the access token in force. TokenError if it cannot."""
        return await self._single_flight(self.access, due)

    async def look(self) -> Issued:
        """When the pair in the store was issued; a newer pair than this process's (another
        process renewed it) is taken at once, before Zalo refuses the old access token."""
        try:
            issued = await self.store.issued()
            if issued.at > self.issued.at:
                if self._loaded:  # else token() loads it when it is first needed
                    self.access, _ = await self.store.get()
                self.issued = issued
        except ConfigError as exc:
            raise TokenStoreError(f"cannot read the token store: {exc}") from None
        return issued

    async def _single_flight(self, stale: str, due: Due | None) -> str:
        if self._flight is None:
            self._flight = asyncio.ensure_future(self._renew(stale, due))
            self._flight.add_done_callback(self._landed)
        return await asyncio.shield(self._flight)

    def _landed(self, flight: asyncio.Future[str]) -> None:
        self._flight = None
        if not flight.cancelled():
            flight.exception()  # retrieved: every waiter sees it through shield

    async def _renew(self, stale: str, due: Due | None) -> str:
        try:
            async with self.store.renewal():
                return await self._renew_alone(stale, due)
        except TokenStoreError as exc:  # could not take the renewal
            raise self._fail(stale, str(exc)) from None

    async def _renew_alone(self, stale: str, due: Due | None) -> str:
        try:
            access, refresh = await self.store.get()
            issued = await self.store.issued()
        except (ConfigError, TokenStoreError) as exc:
            raise self._fail(stale, f"cannot read the token store: {exc}") from None
        self._loaded = True
        if access and access != stale:  # renewed elsewhere (another process, by hand)
            self.access, self.issued = access, issued
            if due is None:
                return access
        if due is not None:
            why = due(issued)
            if not why:
                self.access, self.issued = access, issued
                return access
            log.info("renewing the Zalo tokens before they run out: %s", why)
        if not refresh:
            raise self._fail(stale, "no refresh token")
        try:
            answer = await self.exchange(refresh)
        except TokenError as exc:
            raise self._fail(stale, f"token refresh failed: {exc}") from None
        if answer.error or not answer.access_token or not answer.refresh_token:
            why = answer.error_name or answer.error_description or answer.message or "no token"
            raise self._fail(stale, f"token refresh refused: {answer.error} {why}".strip())
        life = lifetime(answer)
        try:
            await self.store.save(answer.access_token, answer.refresh_token, life)
        except (OSError, TokenStoreError) as exc:  # they still work here: keep going, loudly
            log.error("the new Zalo refresh token could not be saved (%s): re-authorise the OA "
                      "if this process stops before the next successful save", exc)
        self.access = answer.access_token
        self.issued = Issued(time.time(), life)
        self._failed = None
        self.refreshes += 1
        log.info("Zalo access token renewed (expires in %s s)", answer.expires_in)
        return self.access

    def _fail(self, stale: str, reason: str) -> TokenError:
        self.failures += 1
        self._failed = (time.monotonic(), stale, reason)
        log.warning("Zalo access token renewal failed: %s", reason)
        return TokenError(reason)
