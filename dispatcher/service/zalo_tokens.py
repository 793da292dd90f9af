"""The Zalo OA's tokens kept in Redis, shared by every worker on every host.

A refresh token works once, and every renewal answers the next one. Workers on several hosts
that each kept the pair in a file of their own would spend the same refresh token twice: the
first renewal invalidates the token the others hold, and their next renewal is refused until
the OA is authorised again by hand. Here the pair lives in Redis (:data:`keys.ZALO_TOKENS`), and
a renewal runs under the store lease :data:`keys.ZALO_RENEWAL`: one process renews while the
others wait for the lease, then read the pair it saved (the manager sees an access token other
than the one refused, and renews nothing).

Until the first renewal saves a pair, Redis holds none and the tokens come from the seed: the
deployment's ``zalo_tokens_file`` if it exists (the pair an earlier, single-host Loa renewed),
else ``LOA_ZALO_ACCESS_TOKEN`` and ``LOA_ZALO_REFRESH_TOKEN``. The file is never written here.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import msgspec

from adapters.zalo.tokens import FileTokenStore, Issued, TokenStore, TokenStoreError
from dispatcher.service.settings import Settings
from dispatcher.store import RedisStore, Store, keys
from dispatcher.store.base import Leases
from dispatcher.store.outage import FAILURES as STORE_FAILURES

#: Seconds the renewal lease lasts: more than a renewal takes (one HTTP call, ``timeout`` 10 s
#: by default), so that a renewer that died frees it soon.
RENEWAL_SECONDS = 30.0
#: How often a process waiting for the lease tries it again, and how many tries before it gives
#: up for now (a little longer than the lease: a dead renewer's lease runs out first).
POLL_SECONDS = 0.05
POLLS = int(RENEWAL_SECONDS * 1.2 / POLL_SECONDS)


class TokenPair(msgspec.Struct, frozen=True):
    access_token: str
    refresh_token: str
    saved_at: int = 0  # unix seconds: when Zalo issued the pair
    expires_in: float = 0.0  # the access token's lifetime Zalo answered (0: unknown)


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(TokenPair).decode


class RedisTokenStore:
    """The pair in Redis under :data:`keys.ZALO_TOKENS`, renewed by one ``owner`` at a time."""

    def __init__(self, client: Any, leases: Leases, seed: TokenStore, *, owner: str,
                 lease_seconds: float = RENEWAL_SECONDS, poll: float = POLL_SECONDS,
                 polls: int = POLLS) -> None:
        # redis-py's async annotations do not type-check usefully (as in dispatcher/store)
        self._r: Any = client
        self.leases = leases
        self.seed = seed
        self.owner = owner
        self.lease_seconds = lease_seconds
        self.poll = poll
        self.polls = polls

    async def _pair(self) -> TokenPair | None:
        try:
            raw = await self._r.get(keys.ZALO_TOKENS)
        except STORE_FAILURES as exc:
            raise TokenStoreError(f"cannot read the Zalo tokens from Redis: {exc}") from None
        if raw is None:
            return None
        try:
            return _decode(raw)
        except msgspec.DecodeError:
            raise TokenStoreError(f"Redis key {keys.ZALO_TOKENS} is not a Zalo token pair "
                                  "(access_token, refresh_token)") from None

    async def get(self) -> tuple[str, str]:
        pair = await self._pair()
        if pair is None:
            return await self.seed.get()
        return pair.access_token, pair.refresh_token

    async def issued(self) -> Issued:
        pair = await self._pair()
        if pair is None:
            return await self.seed.issued()
        return Issued(float(pair.saved_at), pair.expires_in)

    async def save(self, access: str, refresh: str, expires_in: float = 0.0) -> None:
        data = _encode(TokenPair(access, refresh, int(time.time()), expires_in))
        try:
            await self._r.set(keys.ZALO_TOKENS, data)
        except STORE_FAILURES as exc:
            raise TokenStoreError(f"cannot save the Zalo tokens to Redis: {exc}") from None

    def renewal(self) -> contextlib.AbstractAsyncContextManager[None]:
        return self._renewal()

    @contextlib.asynccontextmanager
    async def _renewal(self) -> AsyncIterator[None]:
        for _ in range(self.polls):
            if await self._take():
                break
            await asyncio.sleep(self.poll)
        else:
            raise TokenStoreError("another Loa process has been renewing the Zalo token for "
                                  f"{self.poll * self.polls:.0f} s")
        try:
            yield
        finally:
            with contextlib.suppress(*STORE_FAILURES):  # it runs out by itself
                await self.leases.release(keys.ZALO_RENEWAL, self.owner)

    async def _take(self) -> bool:
        try:
            return await self.leases.acquire(keys.ZALO_RENEWAL, self.owner, self.lease_seconds)
        except STORE_FAILURES as exc:
            raise TokenStoreError(f"cannot take the Zalo token renewal in Redis: {exc}") from None


def token_store(store: Store, settings: Settings, env: Mapping[str, str], *,
                owner: str) -> TokenStore:
    """Where a process keeps the Zalo tokens: in Redis with a Redis store (shared by every
    worker), in ``zalo_tokens_file`` with the in-memory store (one process)."""
    seed = FileTokenStore(settings.zalo_tokens_file, initial=(
        env.get("LOA_ZALO_ACCESS_TOKEN", ""), env.get("LOA_ZALO_REFRESH_TOKEN", "")))
    if isinstance(store, RedisStore):
        return RedisTokenStore(store.client, store.leases, seed, owner=owner)
    return seed
