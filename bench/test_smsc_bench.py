"""Throughput of the SMSC simulator: submit_sm + submit_sm_resp + receipt + deliver_sm_resp.

A raw asyncio ESME (a Protocol, pre-encoded submits, a window of 256, receipts acknowledged in
one write per read) drives the simulator over loopback, in the same process and on uvloop, and
with the simulator in its own process (``loa sim smsc``) as the SMPP path will run it. A third
benchmark feeds the simulator's protocol directly, with no socket, for its own CPU per message.

Run with ``.venv/bin/pytest bench/test_smsc_bench.py --benchmark-only``; the figures are in each
benchmark's ``extra_info`` (``--benchmark-json``) and printed at the end.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any, cast

import pytest
import uvloop
from pytest_benchmark.fixture import BenchmarkFixture

from adapters.smpp import pdu
from adapters.smpp.simulator import Smsc, SmscConfig, _Conn

WINDOW = 256
TEXT = "Thông báo khẩn: tiêm vắc-xin mũi 3 tại trạm y tế phường từ 7h sáng mai."
PAYLOAD = TEXT.encode("utf-16-be")  # one UCS-2 part
SUBMIT_SM_RESP = pdu.SUBMIT_SM | pdu.RESP
DELIVER_SM_RESP = pdu.DELIVER_SM | pdu.RESP
_ack = pdu.HEADER.pack


def submits(n: int) -> list[bytes]:
    template = pdu.SubmitTemplate(source_addr="SYTQN", source_addr_ton=pdu.TON_ALPHANUMERIC,
                                  source_addr_npi=0, esm_class=0, data_coding=8)
    return [template.encode(i + 1, f"849{i:08d}", PAYLOAD) for i in range(n)]


class Esme(asyncio.Protocol):
    """Binds as a transceiver, keeps WINDOW submits in flight, acknowledges every receipt."""

    def __init__(self, pdus: list[bytes], done: asyncio.Future[None]) -> None:
        self.pdus = pdus
        self.done = done
        self.framer = pdu.Framer()
        self.sent = self.answered = self.receipts = self.errors = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(pdu.encode_bind(pdu.BIND_TRANSCEIVER, 0x7FFFFFFF,
                                             pdu.Bind("bench", "bench")))

    def _fill(self, out: list[bytes]) -> None:
        room = min(WINDOW - (self.sent - self.answered), len(self.pdus) - self.sent)
        if room > 0:
            out += self.pdus[self.sent:self.sent + room]
            self.sent += room

    def data_received(self, data: bytes) -> None:
        out: list[bytes] = []
        for header, _ in self.framer.feed(data):
            cid = header.command_id
            if cid == SUBMIT_SM_RESP:
                self.answered += 1
                self.errors += header.status != 0
            elif cid == pdu.DELIVER_SM:
                self.receipts += 1
                out.append(_ack(17, DELIVER_SM_RESP, 0, header.seq) + b"\0")
            elif cid == pdu.BIND_TRANSCEIVER | pdu.RESP:
                assert header.status == 0
        self._fill(out)
        assert self.transport is not None
        if out:
            self.transport.write(b"".join(out))
        n = len(self.pdus)
        if self.answered == n and self.receipts == n and not self.done.done():
            self.done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(ConnectionError(f"connection lost: {exc}"))


async def drive(host: str, port: int, pdus: list[bytes]) -> float:
    """Send every PDU and wait for all responses and receipts; the seconds it took."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    started = time.perf_counter()
    transport, esme = await loop.create_connection(lambda: Esme(pdus, done), host, port)
    try:
        await asyncio.wait_for(done, 120)
    finally:
        transport.close()
    assert esme.errors == 0
    return time.perf_counter() - started


def _report(benchmark: BenchmarkFixture, name: str, results: list[dict[str, float]]) -> None:
    best = max(results, key=lambda r: r["msgs_per_s"])
    benchmark.extra_info.update(best)
    print(f"\n{name}: " + ", ".join(f"{k} {v:,.2f}" for k, v in best.items()))


def test_smsc_in_process_loopback(benchmark: BenchmarkFixture) -> None:
    """20,000 submits with receipts; the ESME and the simulator share one uvloop loop (one
    core): msgs/s here is bounded by both ends' CPU together."""
    pdus = submits(20_000)
    results: list[dict[str, float]] = []

    async def once() -> None:
        smsc = Smsc(SmscConfig())
        await smsc.start()
        try:
            cpu = time.process_time()
            seconds = await drive(smsc.host, smsc.port, pdus)
            cpu = time.process_time() - cpu
        finally:
            await smsc.stop()
        assert len(smsc.received) == len(pdus) and smsc.stats.receipts_acked == len(pdus)
        results.append({"messages": len(pdus), "seconds": seconds,
                        "msgs_per_s": len(pdus) / seconds,
                        "cpu_us_per_msg_both_ends": cpu / len(pdus) * 1e6})

    benchmark.pedantic(lambda: uvloop.run(once()), rounds=5, iterations=1)  # type: ignore[no-untyped-call]
    _report(benchmark, "in-process loopback", results)


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


@pytest.fixture(scope="module")
def smsc_process() -> Iterator[tuple[int, int]]:
    """``loa sim smsc`` in its own process: (pid, port)."""
    proc = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from dispatcher.service.cli import main; sys.exit(main())",
         "sim", "smsc", "--port", "0", "--json"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("SMSC simulator listening on"), line
        yield proc.pid, int(line.rsplit(":", 1)[1])
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_smsc_own_process(benchmark: BenchmarkFixture, smsc_process: tuple[int, int]) -> None:
    """100,000 submits with receipts to ``loa sim smsc`` in another process (two cores): the
    simulator's CPU per message is read from /proc."""
    pid, port = smsc_process
    pdus = submits(100_000)
    results: list[dict[str, float]] = []

    def once() -> None:
        cpu = _cpu_seconds(pid)
        seconds = uvloop.run(drive("127.0.0.1", port, pdus))
        cpu = _cpu_seconds(pid) - cpu
        results.append({"messages": len(pdus), "seconds": seconds,
                        "msgs_per_s": len(pdus) / seconds,
                        "simulator_cpu_us_per_msg": cpu / len(pdus) * 1e6})

    benchmark.pedantic(once, rounds=3, iterations=1)  # type: ignore[no-untyped-call]
    _report(benchmark, "simulator in its own process", results)


class _NullTransport(asyncio.Transport):
    def write(self, data: Any) -> None:
        pass

    def is_closing(self) -> bool:
        return False


def test_smsc_protocol_cpu(benchmark: BenchmarkFixture) -> None:
    """The simulator's own work per message, with no socket: 256 submits per read, then their
    256 deliver_sm_resp, as the ESME above sends them."""
    smsc = Smsc(SmscConfig())
    conn = _Conn(smsc)
    conn.connection_made(_NullTransport())
    conn.data_received(pdu.encode_bind(pdu.BIND_TRANSCEIVER, 1, pdu.Bind("bench", "bench")))
    pdus = submits(WINDOW * 40)
    reads = [b"".join(pdus[i:i + WINDOW]) for i in range(0, len(pdus), WINDOW)]
    acks = [b"".join(_ack(17, DELIVER_SM_RESP, 0, i * WINDOW + j + 1) + b"\0"
                     for j in range(WINDOW)) for i in range(len(reads))]

    times: list[float] = []

    def run() -> None:
        conn.deliver_seq = 0
        started = time.perf_counter()
        for submit_read, ack_read in zip(reads, acks, strict=True):
            conn.data_received(submit_read)
            conn.data_received(ack_read)
        times.append(time.perf_counter() - started)

    benchmark.pedantic(run, rounds=10, iterations=1)  # type: ignore[no-untyped-call]
    per_msg = min(times) / len(pdus)
    benchmark.extra_info.update({"messages_per_round": len(pdus),
                                 "us_per_msg": per_msg * 1e6, "msgs_per_s": 1 / per_msg})
    print(f"\nsimulator protocol alone: {per_msg * 1e6:.2f} µs per submit + receipt + ack "
          f"= {1 / per_msg:,.0f} msgs/s on one core")
    assert smsc.stats.receipts_acked == smsc.stats.receipts_sent
