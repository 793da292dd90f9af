"""The cost of logging: the context a worker sets per batch, and one line in each format.

Run with ``.venv/bin/pytest bench/test_logs_bench.py --benchmark-only -p no:cacheprovider``;
results go to bench/RESULTS.md ("Logs").
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from dispatcher.engine import logs

SECRETS = ["Sm7f3aQz", "zalo-app-Secret-91c2", "app-hmac-Secret-44d1", "mail-Pa55word-0b9e",
           "oa-webhook-Secret-c3d8", "redis-Pa55-e1f0"]


def test_context_per_batch(benchmark: BenchmarkFixture) -> None:
    """What a worker adds to each batch: the wave and campaign set and reset."""

    def one() -> None:
        with logs.context(wave="c-20261206-cd291c22-sms", campaign="c-20261206-cd291c22"):
            pass

    benchmark(one)


@pytest.fixture
def record() -> Iterator[logging.LogRecord]:
    yield logging.makeLogRecord({
        "name": "dispatcher.engine.process", "levelno": logging.INFO, "levelname": "INFO",
        "msg": "wave %s fanned out (%d messages by this process)",
        "args": ("c-20261206-cd291c22-sms", 1_000_000), "wave": "c-20261206-cd291c22-sms",
        "campaign": "c-20261206-cd291c22", "channel": "sms"})


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_one_line(benchmark: BenchmarkFixture, record: logging.LogRecord, fmt: str) -> None:
    """Formatting one line with six known secrets and the patterns searched."""
    redactor = logs.Redactor(SECRETS)
    formatter = logs.JsonFormatter(redactor) if fmt == "json" else logs.TextFormatter(redactor)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)

    def one() -> None:
        handler.handle(record)
        stream.seek(0)
        stream.truncate()

    benchmark(one)
