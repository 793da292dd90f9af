"""A Redis ACL user in the URL (``redis://user:password@host``): what docs/operations.md
recommends (one user per role, limited to Loa's keys) works, and a wrong password is refused."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import redis
from redis.exceptions import AuthenticationError

from dispatcher.domain.plan import Plan
from dispatcher.engine.level import set_level
from dispatcher.store import RedisStore

NOW = dt.datetime(2024, 3, 5, 3, 0, tzinfo=dt.UTC)


@pytest.fixture
def acl_user(redis_url: str) -> Iterator[tuple[str, str, str]]:
    """A user allowed Loa's keys (``loa:*``) and channels only: its name, password, host:port."""
    parts = urlsplit(redis_url)
    where = f"{parts.hostname}:{parts.port}"
    client = redis.Redis.from_url(redis_url)
    name, password = f"loa-test-{secrets.token_hex(3)}", secrets.token_hex(16)
    client.acl_setuser(name, enabled=True, reset=True, passwords=[f"+{password}"],
                       keys=["loa:*"], channels=["loa:*"], commands=["+@all", "-@dangerous",
                                                                     "+info"])
    try:
        yield name, password, where
    finally:
        client.acl_deluser(name)
        client.close()


async def test_an_acl_user_in_the_url_works(acl_user: tuple[str, str, str], plan: Plan) -> None:
    name, password, where = acl_user
    store = RedisStore(f"redis://{name}:{password}@{where}/0")
    try:
        state = await set_level(store, plan, now=NOW, level=2, reason="r", user="olga")
        assert await store.level.get() == state
        # the user reaches Loa's keys only
        with pytest.raises(redis.exceptions.NoPermissionError):
            await store.client.get("not-loa")
    finally:
        await store.aclose()


async def test_a_wrong_password_is_refused(acl_user: tuple[str, str, str]) -> None:
    name, _, where = acl_user
    store = RedisStore(f"redis://{name}:wrong@{where}/0")
    try:
        with pytest.raises(AuthenticationError):
            await store.level.get()
    finally:
        await store.aclose()
