"""The store's outage error: redis-py's errors of a Redis that went away, as
:class:`~dispatcher.domain.errors.StoreUnavailable`.

The store's clients (:class:`Client`, and :class:`dispatcher.store.redis.Cluster` on a
cluster) raise :class:`StoreUnavailable` for a connection refused or lost, a timeout, a Redis
loading its data, a cluster with no master for a slot or in the middle of a move. The error is
also the redis-py error it comes from (its class derives from both), so what handles that error
(the store's own code, the lab's) sees what it saw before. Every other error
of Redis (a refused command, a permission the user lacks) is left as redis-py raises it: a bug
or a misconfiguration, which surfaces.

The engine never names redis-py: it catches :data:`UNAVAILABLE` (the store went away) or
:data:`ERRORS` (any failure of a store command), or :data:`FAILURES` (those and the operating
system's).
"""

from __future__ import annotations

from typing import Any, cast

from redis.asyncio.client import Pipeline, Redis
from redis.asyncio.cluster import ClusterPipeline
from redis.exceptions import (
    BusyLoadingError,
    ClusterDownError,
    RedisError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from dispatcher.domain.errors import StoreUnavailable

#: redis-py's errors of a Redis that went away and comes back.
REDIS_UNAVAILABLE: tuple[type[Exception], ...] = (
    RedisConnectionError, RedisTimeoutError, BusyLoadingError, ClusterDownError, TryAgainError)
#: The store went away: what the engine's loops wait out. redis-py's own errors are here too for
#: a store on a client made elsewhere (the lab's, the tests').
UNAVAILABLE: tuple[type[Exception], ...] = (StoreUnavailable, *REDIS_UNAVAILABLE)
#: Any failure of a store command: the store went away, or Redis refused the command.
ERRORS: tuple[type[Exception], ...] = (StoreUnavailable, RedisError)
#: Any failure of a store call: :data:`ERRORS`, or the operating system's (a socket's).
FAILURES: tuple[type[Exception], ...] = (*ERRORS, OSError)


_classes: dict[type[Exception], type[StoreUnavailable]] = {}


def _unavailable_class(kind: type[Exception]) -> type[StoreUnavailable]:
    """:class:`StoreUnavailable` that is also a ``kind`` (named as ``kind``, for the logs)."""
    made = _classes.get(kind)
    if made is None:
        made = _classes[kind] = cast(type[StoreUnavailable], type(
            kind.__name__, (StoreUnavailable, kind), {"__module__": __name__}))
    return made


def unavailable(exc: Exception) -> StoreUnavailable:
    """``exc``, one of :data:`REDIS_UNAVAILABLE`, as :class:`StoreUnavailable` (and still an
    instance of its own class, with its attributes). A plain ``try``, not a context manager,
    wraps each call: the commands of the hot path pay nothing while Redis answers."""
    error = _unavailable_class(type(exc))(str(exc))
    error.__dict__.update(vars(exc))
    error.message = str(exc)
    return error


class Client(Redis):
    """redis-py's client to one server, raising :class:`StoreUnavailable` when it went away."""

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        try:
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        except StoreUnavailable:  # translated by a call within this one
            raise
        except REDIS_UNAVAILABLE as exc:
            raise unavailable(exc) from exc

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Pipeline:
        return ClientPipeline(self.connection_pool, self.response_callbacks, transaction,
                              shard_hint)


class ClientPipeline(Pipeline):
    """A pipeline or transaction of :class:`Client`."""

    async def immediate_execute_command(self, *args: Any, **options: Any) -> Any:
        try:
            return await super().immediate_execute_command(  # type: ignore[no-untyped-call]
                *args, **options)
        except StoreUnavailable:  # translated by a call within this one
            raise
        except REDIS_UNAVAILABLE as exc:
            raise unavailable(exc) from exc

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        try:
            return await super().execute(raise_on_error)
        except StoreUnavailable:  # translated by a call within this one
            raise
        except REDIS_UNAVAILABLE as exc:
            raise unavailable(exc) from exc


class ClusterClientPipeline(ClusterPipeline):
    """A pipeline of :class:`dispatcher.store.redis.Cluster`."""

    async def execute(self, raise_on_error: bool = True,
                      allow_redirections: bool = True) -> list[Any]:
        try:
            return await super().execute(raise_on_error, allow_redirections)
        except StoreUnavailable:  # translated by a call within this one
            raise
        except REDIS_UNAVAILABLE as exc:
            raise unavailable(exc) from exc
