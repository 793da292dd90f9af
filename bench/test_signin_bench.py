"""The cost of a sign-in: the limiter's look-up and the token table (file looked at every 2 s).

Run with ``.venv/bin/pytest bench/test_signin_bench.py --benchmark-only -p no:cacheprovider``;
results go to bench/RESULTS.md ("Sign-in").
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from dispatcher.service.api import signin
from dispatcher.service.auth import Refusal, Role, add_token
from dispatcher.service.tokenfile import TokenSource, read_tokens

NOW = dt.datetime(2026, 12, 6, tzinfo=dt.UTC)
TOKENS = 50


@pytest.fixture
def deployment(tmp_path: Path) -> tuple[Path, list[str]]:
    path = tmp_path / "loa.toml"
    path.write_text("", encoding="utf-8")
    return path, [add_token(path, f"user{i}", Role.OPERATOR, now=NOW) for i in range(TOKENS)]


@pytest.mark.parametrize("interval", [2.0, 0.0], ids=["stat-every-2s", "stat-every-call"])
def test_good_sign_in(benchmark: BenchmarkFixture, deployment: tuple[Path, list[str]],
                      interval: float) -> None:
    """One call with a good token: limiter checked, table (50 tokens) compared in full."""
    path, tokens = deployment
    source = TokenSource(read_tokens(path), path, interval=interval,
                         clock=lambda: dt.datetime.now(dt.UTC))
    limiter = signin.SignInLimiter(10, 60)

    def one() -> None:
        keys = signin.keys("10.0.0.1", tokens[-1])
        assert limiter.retry_after(keys, NOW) is None
        assert not isinstance(source.table().authenticate(tokens[-1], NOW), Refusal)

    benchmark(one)


def test_failures_from_many_addresses(benchmark: BenchmarkFixture) -> None:
    """10,000 failed sign-ins from 250 addresses, each with its own token prefix."""
    guesses = [(f"10.{i % 250}.0.1", f"loa_guess-{i:06d}") for i in range(10_000)]

    def run() -> None:
        limiter = signin.SignInLimiter(10, 60)
        for address, token in guesses:
            keys = signin.keys(address, token)
            if limiter.retry_after(keys, NOW) is None:
                limiter.failed(keys, NOW)

    benchmark(run)
