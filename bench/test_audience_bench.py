"""Benchmarks of the audience path: check of a million rows, number normalisation, generation.

Run with ``make bench`` (``pytest bench --benchmark-only``); ``testpaths`` keeps them out of
``make test``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from bench import audiencegen
from dispatcher.domain import audience
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.province import Province

MILLION = 1_000_000


@pytest.fixture(scope="module")
def million(tmp_path_factory: pytest.TempPathFactory, numbering: Numbering,
            province: Province) -> Path:
    """A generated audience of 1,000,000 rows with ~1.5% bad rows, written once."""
    path = tmp_path_factory.mktemp("bench") / "audience-1m.csv"
    written = audiencegen.generate(path, MILLION, seed=1, numbering=numbering,
                                   province=province, with_errors=True)
    assert written == MILLION
    return path


def test_check_million(benchmark: BenchmarkFixture, million: Path, numbering: Numbering,
                       province: Province) -> None:
    validator = audience.Validator(numbering, province)
    report = benchmark.pedantic(  # type: ignore[no-untyped-call]
        audience.check, args=(million, validator), rounds=3, iterations=1,
    )
    assert report.rows == MILLION
    assert report.valid + report.duplicates + report.rejected == MILLION
    assert 0 < report.rejected + report.duplicates < MILLION * 0.03


def test_normalize_10k(benchmark: BenchmarkFixture, numbering: Numbering,
                       province: Province) -> None:
    rows = audiencegen.rows(10_000, seed=2, numbering=numbering, province=province)
    # the generator writes 0…, +84…, 84… and "0xx xxx xxxx"; every 10th "0…" loses its 0 to
    # give the bare 9-digit form too
    numbers = [n[1:] if i % 10 == 0 and n.startswith("0") and " " not in n else n
               for i, (n, *_) in enumerate(rows)]
    assert {len(n) for n in numbers} >= {9, 10, 11, 12}
    normalize = numbering.normalize

    def run() -> list[tuple[str, str]]:
        return [normalize(n) for n in numbers]

    result = benchmark(run)
    assert len(result) == 10_000
    assert all(m.startswith("84") and len(m) == 11 for m, _ in result)


def test_generate_100k(benchmark: BenchmarkFixture, tmp_path: Path, numbering: Numbering,
                       province: Province) -> None:
    path = tmp_path / "audience-100k.csv"
    written = benchmark.pedantic(  # type: ignore[no-untyped-call]
        audiencegen.generate, args=(path, 100_000),
        kwargs={"seed": 3, "numbering": numbering, "province": province, "with_errors": True},
        rounds=3, iterations=1,
    )
    assert written == 100_000
    assert path.read_bytes().count(b"\n") == 100_001  # the header and one line a row
