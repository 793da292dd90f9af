"""The list benchmark (bench.listbench), small: 3,000 numbers imported as the province's
audience, stored as a list, and uploaded to the API served on loopback; each keeps every one."""

from __future__ import annotations

from bench import listbench


def test_a_small_list_benchmark_keeps_every_number() -> None:
    result = listbench.run(3000)
    assert result.recipients == 3000 and result.list_bytes > 3000 * 10
    assert (result.list_valid, result.upload_valid) == (3000, 3000)
