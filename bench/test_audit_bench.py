"""The cost of the audit log: one record appended (lock, last line, write, fsync), the newest
records read for the console, and a whole log verified.

Run with ``.venv/bin/pytest bench/test_audit_bench.py --benchmark-only -p no:cacheprovider``;
results go to bench/RESULTS.md ("Audit log").
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from dispatcher.service.audit import AuditLog, read_tail, verify

LINES = 100_000
TEXT = "KHẨN: Covid-19 lây lan rộng tại Quảng Ninh. Chỉ ra ngoài khi thật cần thiết."


def _write(log: AuditLog, i: int) -> None:
    log.write(who="olga", role="operator", action="campaign.create", target=f"c-{i}",
              detail={"title": "Khuyến cáo", "texts": {"sms": TEXT}, "channels": ["sms"]})


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    log = AuditLog(path)
    for i in range(LINES):
        _write(log, i)
    return path


def test_append_one_record(benchmark: BenchmarkFixture, big: Path) -> None:
    """One record on a 100,000-line log: open, flock, read the last line, write, fsync."""
    log = AuditLog(big)
    counter = iter(range(10**9))
    benchmark(lambda: _write(log, next(counter)))


def test_read_the_newest_200(benchmark: BenchmarkFixture, big: Path) -> None:
    """What the console's audit page asks for (GET /v1/audit?limit=200)."""
    assert len(benchmark(read_tail, big, 200)) == 200


def test_verify_100k_lines(benchmark: BenchmarkFixture, big: Path) -> None:
    """loa audit verify on a 100,000-line log."""
    found = benchmark.pedantic(verify, args=(big,), rounds=3)  # type: ignore[no-untyped-call]
    assert found.broken == 0
