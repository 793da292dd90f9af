"""The app push path: :class:`WebhookAdapter` in message mode (one signed POST per message, the
per-request cost of the HTTP client) to :class:`WebhookSim` in its own process.

Run: ``pytest bench/test_push_bench.py --benchmark-only -s``. Reports messages per second and
the adapter process's CPU microseconds per message (the simulator's CPU is not counted).
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import statistics
import time
from collections.abc import Iterator

import pytest
import uvloop
from pytest_benchmark.fixture import BenchmarkFixture

from adapters.base import Envelope
from adapters.webhook.adapter import WebhookAdapter, WebhookConfig
from adapters.webhook.simulator import WebhookSim
from dispatcher.domain.model import Channel

MESSAGES = 5_000
BATCH = 500
CONCURRENCY = 32
SECRET = "bench-secret"
TEXT = "Thông báo khẩn: tiêm vắc-xin mũi 3 tại trạm y tế phường từ 7h sáng mai."
_waves = itertools.count()


def _serve(port: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    async def main() -> None:
        sim = WebhookSim(secret=SECRET)
        await sim.start()
        port.put(sim.port)
        await asyncio.Event().wait()

    uvloop.run(main())


@pytest.fixture(scope="module")
def sim_url() -> Iterator[str]:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_serve, args=(queue,), daemon=True)
    proc.start()
    try:
        yield f"http://127.0.0.1:{queue.get(timeout=30)}/push"
    finally:
        proc.terminate()
        proc.join(5)


def envelopes(n: int) -> list[Envelope]:
    wave = f"bench-{next(_waves)}-{time.time_ns()}"
    addrs = [f"u{i}" for i in range(n)]
    return [Envelope(wave=wave, channel=Channel.APP, text=TEXT, addrs=addrs[i:i + BATCH],
                     route="app") for i in range(0, n, BATCH)]


async def drive(url: str, n: int) -> tuple[float, float]:
    """Send n messages through a fresh adapter; (seconds, CPU seconds of this process)."""
    adapter = WebhookAdapter(WebhookConfig(url=url, secret=SECRET, mode="message",
                                           concurrency=CONCURRENCY))
    sent = 0
    try:
        warm = envelopes(CONCURRENCY)[0]  # open the keep-alive connections
        assert len((await adapter.send(warm)).sent) == CONCURRENCY
        cpu, started = time.process_time(), time.perf_counter()
        for batch in envelopes(n):
            sent += len((await adapter.send(batch)).sent)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        await adapter.aclose()
    assert sent == n
    return seconds, cpu


def test_push_message_mode(benchmark: BenchmarkFixture, sim_url: str) -> None:
    results: list[dict[str, float]] = []

    def once() -> None:
        seconds, cpu = uvloop.run(drive(sim_url, MESSAGES))
        results.append({"msgs_per_s": MESSAGES / seconds, "cpu_us_per_msg": cpu / MESSAGES * 1e6})

    benchmark.pedantic(once, rounds=5, iterations=1)  # type: ignore[no-untyped-call]
    summary = {"median_msgs_per_s": statistics.median(r["msgs_per_s"] for r in results),
               "median_cpu_us_per_msg": statistics.median(r["cpu_us_per_msg"] for r in results)}
    benchmark.extra_info.update(summary)
    print("\napp push, message mode: " + ", ".join(f"{k} {v:,.1f}" for k, v in summary.items()))
