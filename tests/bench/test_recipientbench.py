"""The recipient lookup benchmark (bench.recipientbench), small: 3,000 recipients and 2 days of
the level-4 plan's waves; every number looked up is found with its waves, the index measured."""

from __future__ import annotations

from bench import recipientbench


def test_a_small_lookup_benchmark_answers_every_number() -> None:
    result = recipientbench.run(3000, days=2, lookups=20, dead_per_wave=50)
    assert result.recipients == 3000 and result.lookups == 20
    assert result.waves > 0 and result.companions > 0
    assert result.waves_per_answer > 0  # each number was targeted by plan waves
    assert result.index_bytes > 0 and result.p50_ms <= result.max_ms
