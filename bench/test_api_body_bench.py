"""The cost of refusing JSON bodies with a key given twice, next to decoding them.

Run with ``.venv/bin/pytest bench/test_api_body_bench.py --benchmark-only -p no:cacheprovider``;
results go to bench/RESULTS.md ("API bodies: a key given twice").
"""

from __future__ import annotations

import msgspec
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from dispatcher.service.api.context import _unique_keys

LEVEL = msgspec.json.encode({"level": 4, "reason": "báo cáo 8h của Sở Y tế"})
CAMPAIGN = msgspec.json.encode({  # about 15 KB: a long text and a long selector
    "title": "Thông báo khẩn", "channels": ["sms", "zalo"], "text": "Đeo khẩu trang " * 250,
    "selector": {"districts": ["ha-long"] * 1000, "kinds": []}})


@pytest.mark.parametrize("body", [LEVEL, CAMPAIGN], ids=["level-53B", "campaign-15KB"])
def test_duplicate_key_check(benchmark: BenchmarkFixture, body: bytes) -> None:
    benchmark(_unique_keys, body)


@pytest.mark.parametrize("body", [LEVEL, CAMPAIGN], ids=["level-53B", "campaign-15KB"])
def test_msgspec_decode(benchmark: BenchmarkFixture, body: bytes) -> None:
    benchmark(msgspec.json.decode, body)
