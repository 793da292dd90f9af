"""Throughput of the Zalo path: ZaloAdapter -> HTTP over loopback -> ZaloSim, for each client.

10,000 ZNS messages in envelopes of 500, sent by 4 concurrent consumers as the engine's worker
does (``engine.consumers_per_route``), at most ``concurrency`` requests in flight (the default
64), through :class:`ZaloAdapter` with Loa's own HTTP/1.1 client (``loa``, the product's),
and aiohttp and httpx (``bench/baseline_clients.py``), to the simulator in the same process
(one uvloop loop: both ends on one core) and to
``loa sim zalo`` in its own process (two cores, as against a real endpoint). Each run checks
that every message was sent once. The simulator itself runs on Loa's HTTP/1.1 server whatever the
client. Variants: httpx at concurrency 4 (its best here: it slows down as requests in flight
grow), and aiohttp with ``gc.freeze()`` (what a worker process could do after start-up).

Run with ``.venv/bin/pytest bench/test_zalo_bench.py --benchmark-only``; the figures are in each
benchmark's ``extra_info`` (``--benchmark-json``) and printed at the end.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
import uvloop
from pytest_benchmark.fixture import BenchmarkFixture

from adapters.base import Envelope, Results
from adapters.zalo.adapter import ZaloAdapter
from adapters.zalo.config import ZaloConfig
from adapters.zalo.simulator import ZaloSim, ZaloSimConfig
from adapters.zalo.tokens import MemoryTokenStore
from bench.baseline_clients import baseline_client
from dispatcher.domain.model import Channel

MESSAGES = 10_000
BATCH = 500
CONSUMERS = 4
TEXT = "Thông báo khẩn: tiêm vắc-xin mũi 3 tại trạm y tế phường từ 7h sáng mai."
CLIENTS = ["loa", "aiohttp", "httpx"]
VARIANTS = ["loa", "aiohttp", "httpx", "httpx-c4", "aiohttp-gc-frozen"]
_waves = itertools.count()


def envelopes(n: int) -> list[Envelope]:
    wave = f"bench-{next(_waves)}"
    addrs = [f"849{i:08d}" for i in range(n)]
    return [Envelope(wave=wave, channel=Channel.ZALO, text=TEXT, addrs=addrs[i:i + BATCH],
                     route="zalo") for i in range(0, n, BATCH)]


async def drive(url: str, client: str, n: int, concurrency: int = 64) -> tuple[float, float]:
    """Send n messages through a fresh adapter; (seconds, CPU seconds of this process)."""
    config = ZaloConfig(base_url=url, oauth_url=url, template_id="loa-alert",
                        concurrency=concurrency, proxy="direct")
    adapter = ZaloAdapter(config, MemoryTokenStore("sim-access-token", "sim-refresh-token"),
                          client=baseline_client(client, concurrency, config.timeout))
    results: list[Results] = []

    async def consumer(batches: Iterator[Envelope]) -> None:
        for batch in batches:
            results.append(await adapter.send(batch))

    try:
        warm = envelopes(64)  # open the keep-alive connections
        assert len((await adapter.send(warm[0])).sent) == len(warm[0].addrs)
        batches = iter(envelopes(n))
        cpu, started = time.process_time(), time.perf_counter()
        await asyncio.gather(*(consumer(batches) for _ in range(CONSUMERS)))
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        await adapter.aclose()
    assert sum(len(r.sent) for r in results) == n, [r.retry[:3] for r in results if r.retry]
    return seconds, cpu


def _report(benchmark: BenchmarkFixture, name: str, results: list[dict[str, float]]) -> None:
    best = max(results, key=lambda r: r["msgs_per_s"])
    best["median_msgs_per_s"] = statistics.median(r["msgs_per_s"] for r in results)
    benchmark.extra_info.update(best)
    print(f"\n{name}: " + ", ".join(f"{k} {v:,.1f}" for k, v in best.items()))


def _rounds(client: str) -> int:
    return 1 if client == "httpx" else 5  # httpx takes ~40 s a round here


@pytest.mark.parametrize("client", CLIENTS)
def test_zalo_in_process(benchmark: BenchmarkFixture, client: str) -> None:
    """Adapter and simulator on one uvloop loop (one core for both ends)."""
    results: list[dict[str, float]] = []

    async def once() -> None:
        sim = ZaloSim(ZaloSimConfig())
        await sim.start()
        try:
            seconds, cpu = await drive(sim.url, client, MESSAGES)
        finally:
            await sim.stop()
        assert sim.stats.accepted == MESSAGES + 64 and sim.duplicates == 64  # the warm-up
        results.append({"messages": MESSAGES, "seconds": seconds,
                        "msgs_per_s": MESSAGES / seconds,
                        "cpu_us_per_msg_both_ends": cpu / MESSAGES * 1e6})

    benchmark.pedantic(lambda: uvloop.run(once()), rounds=_rounds(client), iterations=1)  # type: ignore[no-untyped-call]
    _report(benchmark, f"in process, {client}", results)


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _accepted(url: str) -> int:
    async def get() -> int:
        import aiohttp  # noqa: PLC0415 (only this helper needs a bare client)
        async with aiohttp.ClientSession() as s, s.get(url + "/sim/stats") as resp:
            stats: dict[str, Any] = msgspec.json.decode(await resp.read())
            return int(stats["accepted"])
    return uvloop.run(get())


@pytest.fixture(scope="module")
def zalo_process() -> Iterator[tuple[int, str]]:
    """``loa sim zalo`` in its own process: (pid, url)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "dispatcher.service.cli", "sim", "zalo", "--port", "0", "--json"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("Zalo simulator listening on"), line
        yield proc.pid, line.split()[-1]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.mark.parametrize("variant", VARIANTS)
def test_zalo_own_process(benchmark: BenchmarkFixture, zalo_process: tuple[int, str],
                          variant: str) -> None:
    """Adapter here, ``loa sim zalo`` in another process (two cores); the simulator's CPU per
    message is read from /proc."""
    pid, url = zalo_process
    client = variant.split("-", maxsplit=1)[0]
    concurrency = 4 if variant.endswith("-c4") else 64
    frozen = variant.endswith("-gc-frozen")
    results: list[dict[str, float]] = []

    def once() -> None:
        accepted = _accepted(url)
        sim_cpu = _cpu_seconds(pid)
        if frozen:
            gc.collect()
            gc.freeze()
        try:
            seconds, cpu = uvloop.run(drive(url, client, MESSAGES, concurrency))
        finally:
            if frozen:
                gc.unfreeze()
        sim_cpu = _cpu_seconds(pid) - sim_cpu
        assert _accepted(url) - accepted == MESSAGES + 64
        results.append({"messages": MESSAGES, "seconds": seconds,
                        "msgs_per_s": MESSAGES / seconds,
                        "adapter_cpu_us_per_msg": cpu / MESSAGES * 1e6,
                        "simulator_cpu_us_per_msg": sim_cpu / MESSAGES * 1e6})

    rounds = {"httpx": 1, "httpx-c4": 3}.get(variant, 5)  # httpx at 64 takes ~40 s a round
    benchmark.pedantic(once, rounds=rounds, iterations=1)  # type: ignore[no-untyped-call]
    _report(benchmark, f"simulator in its own process, {variant}", results)
