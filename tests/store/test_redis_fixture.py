"""The test Redis is private, empty for each test and keeps nothing on disk."""

from __future__ import annotations

import redis

from tests.conftest import RedisServer


def test_private_server_on_its_own_port(redis_server: RedisServer) -> None:
    client = redis.Redis(host=redis_server.host, port=redis_server.port)
    assert redis_server.port != 6379
    assert client.ping()
    assert client.config_get("save")["save"] == ""
    assert client.config_get("appendonly")["appendonly"] == "no"
    assert client.config_get("dir")["dir"] == str(redis_server.dir.resolve())


def test_each_test_starts_empty_first(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    assert client.dbsize() == 0
    client.set("loa:test:marker", "1")


def test_each_test_starts_empty_second(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    assert client.dbsize() == 0
    client.set("loa:test:marker", "2")
