"""The recipient lookup benchmark (bench.recipientbench), small: 3,000 recipients and 2 days of
the level-4 plan's waves; every number looked up is found with its waves, the index measured;
waves made before the window are not among the answers."""

from __future__ import annotations

from bench import recipientbench


def test_a_small_lookup_benchmark_answers_every_number() -> None:
    result = recipientbench.run(3000, days=2, lookups=20, dead_per_wave=50)
    assert result.recipients == 3000 and result.lookups == 20
    assert result.waves > 0 and result.companions > 0
    assert result.waves_per_answer > 0  # each number was targeted by plan waves
    assert result.index_bytes > 0 and result.p50_ms <= result.max_ms


def test_waves_made_before_the_window_are_not_answered() -> None:
    plain = recipientbench.run(3000, days=2, lookups=10, dead_per_wave=20)
    result = recipientbench.run(3000, days=2, lookups=10, dead_per_wave=20, history_days=5)
    assert (plain.history_waves, result.history_days) == (0, 5)
    assert result.history_waves > 2 * result.waves
    assert result.waves_per_answer == plain.waves_per_answer
    assert result.time_index_bytes > plain.time_index_bytes > 0
