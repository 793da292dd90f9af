"""``loa bench engine``: fan-out and workers of one process on a real Redis, measured.

A generated audience is imported, one wave per channel is created and fanned out while one
worker sends it through in-process channels; the figures are messages per second (wall clock,
fan-out included), the process's CPU time per message, and what Redis holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import msgspec

from adapters.base import Adapter, Envelope
from adapters.memory import MemoryAdapter
from adapters.smpp.adapter import DEFAULT_LINK, LinkConfig, SmppAdapter
from adapters.smpp.receipt import Receipt
from adapters.zalo.adapter import ZaloAdapter
from adapters.zalo.config import ZaloConfig
from adapters.zalo.simulator import ZaloSimConfig
from adapters.zalo.tokens import MemoryTokenStore
from bench import audiencegen, localredis
from dispatcher.domain.audience import Validator
from dispatcher.domain.errors import LoaError
from dispatcher.domain.model import Channel, Selector, Wave, WaveState
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.province import Province
from dispatcher.engine import routing
from dispatcher.engine.fanout import fan_out
from dispatcher.engine.importer import import_audience
from dispatcher.engine.receipts import ReceiptMatcher
from dispatcher.engine.worker import Worker
from dispatcher.service import failclosed
from dispatcher.service.channels import Mode
from dispatcher.service.settings import Settings
from dispatcher.store import keys
from dispatcher.store.redis import RedisStore


class SimProcess:
    """``loa sim <kind>`` in a process of its own (its own core), on a free loopback port."""

    def __init__(self, kind: str = "smsc", args: list[str] | None = None) -> None:
        self.kind = kind
        self.args = args or []
        self.port = localredis.free_port()
        self._proc: asyncio.subprocess.Process | None = None
        self.stats: dict[str, Any] = {}

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> SimProcess:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "dispatcher.service.cli", "sim", self.kind,
            "--port", str(self.port), "--json", *self.args, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL)
        assert self._proc.stdout is not None
        line = await asyncio.wait_for(self._proc.stdout.readline(), 20)
        if b"listening" not in line:
            raise LoaError(f"the {self.kind} simulator did not start: "
                           f"{line.decode(errors='replace')}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        out, _ = await self._proc.communicate()
        last = out.decode(errors="replace").strip().splitlines()[-1:] if out else []
        if last and last[0].startswith("{"):
            self.stats = msgspec.json.decode(last[0])


class EngineBenchResult(msgspec.Struct):
    recipients: int
    channels: list[str]
    messages: int
    seconds: float
    msgs_per_s: float
    cpu_us_per_msg: float
    duplicates: int
    dedup_bytes_per_recipient: float  # Redis memory of the sent bitmaps, per recipient per wave
    redis_used_mb: float
    peak_rss_mb: float
    sms_over_smpp: bool = False
    zalo_over_http: bool = False
    delivered: int = 0  # receipts matched (SMPP only)


def _bench_adapters(channels: list[Channel], smsc: SimProcess | None, zalo: SimProcess | None,
                    matcher: ReceiptMatcher,
                    ) -> tuple[dict[Channel, MemoryAdapter], dict[Channel, Adapter]]:
    """In-process channels, but SMS over SMPP and Zalo over HTTP to their simulators' processes
    when those run."""
    memory = {c: MemoryAdapter() for c in channels
              if not (smsc and c is Channel.SMS) and not (zalo and c is Channel.ZALO)}
    adapters: dict[Channel, Adapter] = dict(memory)
    if smsc is not None and Channel.SMS in channels:
        adapters[Channel.SMS] = SmppAdapter(
            {DEFAULT_LINK: LinkConfig(host="127.0.0.1", port=smsc.port, system_id="bench",
                                      binds=2, window=512)}, on_receipt=matcher.add)
    if zalo is not None and Channel.ZALO in channels:
        sim = ZaloSimConfig()
        adapters[Channel.ZALO] = ZaloAdapter(
            ZaloConfig(base_url=zalo.url, oa_url=zalo.url, oauth_url=zalo.url,
                       app_id=sim.app_id, secret_key=sim.secret_key, template_id="loa-alert",
                       mode="auto", proxy="direct"),  # the simulator on loopback
            MemoryTokenStore(next(iter(sim.access_tokens)), next(iter(sim.refresh_tokens))))
    return memory, adapters


async def _run(url: str, path: Path, channels: list[Channel], numbering: Numbering,
               province: Province, settings: Settings,
               on_progress: Callable[[int, int], None] | None,
               smsc: SimProcess | None, zalo: SimProcess | None) -> EngineBenchResult:
    store = RedisStore(url)
    try:
        await store.client.flushdb()
        result = await import_audience(path, store, Validator(numbering, province),
                                       chunk_size=settings.engine.chunk_size)
        meta = await store.audiences.meta()
        assert meta is not None
        now = dt.datetime.now(dt.UTC)
        waves = [Wave(id=f"bench-{c}", campaign_id="bench", channel=c, text="Loa benchmark",
                      created_at=now, audience_version=meta.version,
                      total=routing.reach(meta, Selector(), c))
                 for c in channels]
        for wave in waves:
            await store.waves.create(wave, WaveState.SENDING)
        matcher = ReceiptMatcher(store)
        memory, adapters = _bench_adapters(channels, smsc, zalo, matcher)
        # every channel of the bench goes to an in-process channel or a simulator: declared
        failclosed.record({c: Mode.SIMULATED if c in adapters else Mode.MISSING
                           for c in Channel})
        routes = [r for c in channels for r in routing.routes(c, numbering.carriers, settings)]
        worker = Worker(store, adapters, routes, settings, name="bench")
        total = sum(w.total for w in waves)
        stop = asyncio.Event()
        started, cpu = time.perf_counter(), time.process_time()
        working = asyncio.create_task(worker.run(stop))
        matching = asyncio.create_task(matcher.run(stop))

        async def proceed() -> bool:
            return True

        async def sent_so_far() -> int:
            return sum([(await store.waves.progress(w.id)).get("sent", 0) for w in waves])

        try:
            for wave in waves:
                await fan_out(store, wave, settings, numbering.carriers, proceed=proceed)
            while (sent := await sent_so_far()) < total:
                if working.done():
                    break
                if on_progress is not None:
                    on_progress(sent, total)
                await asyncio.sleep(0.05)
            seconds = time.perf_counter() - started
            cpu = time.process_time() - cpu
            deadline = time.monotonic() + 10  # the last receipts
            while matcher.pending and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        finally:
            stop.set()
            await working
            await matching
            for adapter in adapters.values():
                await adapter.aclose()
        sent = await sent_so_far()
        delivered = sum([(await store.waves.progress(w.id)).get("delivered", 0)
                         for w in waves])
        bitmaps = sum([await store.client.memory_usage(keys.sent(w.id)) or 0 for w in waves])
        info = await store.client.info("memory")
        return EngineBenchResult(
            recipients=result.recipients, channels=[c.value for c in channels], messages=sent,
            seconds=round(seconds, 3), msgs_per_s=round(sent / seconds),
            cpu_us_per_msg=round(cpu / max(sent, 1) * 1e6, 2),
            duplicates=sum(a.duplicates for a in memory.values()),
            dedup_bytes_per_recipient=round(bitmaps / max(result.recipients, 1) / len(waves), 3),
            redis_used_mb=round(info["used_memory"] / 1e6, 1),
            peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            sms_over_smpp=smsc is not None, zalo_over_http=zalo is not None,
            delivered=delivered)
    finally:
        await store.aclose()


async def engine_bench(*, recipients: int, channels: list[Channel], redis_url: str | None,
                       numbering: Numbering, province: Province, settings: Settings,
                       on_progress: Callable[[int, int], None] | None = None,
                       smpp: bool = False, zalo: bool = False) -> EngineBenchResult:
    """Run the engine benchmark; without ``redis_url`` a private redis-server is started.
    With ``smpp``, SMS goes over SMPP to ``loa sim smsc`` in its own process."""
    with tempfile.TemporaryDirectory(prefix="loa-bench-") as tmp:
        path = Path(tmp) / "audience.csv"
        audiencegen.generate(path, recipients, seed=1, numbering=numbering, province=province)
        async with contextlib.AsyncExitStack() as stack:
            smsc = await stack.enter_async_context(SimProcess("smsc")) if smpp else None
            zalo_sim = await stack.enter_async_context(SimProcess("zalo")) if zalo else None
            if not redis_url:
                redis_url = stack.enter_context(localredis.running(Path(tmp))).url
            return await _run(redis_url, path, channels, numbering, province, settings,
                              on_progress, smsc, zalo_sim)
        raise AssertionError("unreachable")


class SmppBenchResult(msgspec.Struct):
    messages: int
    binds: int
    window: int
    seconds: float
    submits_per_s: float  # submit_sm accepted per second
    receipts: int
    submit_receipt_per_s: float  # messages whose submit and receipt are both done, per second
    esme_cpu_us_per_msg: float  # this process: ESME and receipt parsing
    retried: int
    tps: float = 0.0  # each bind's agreed TPS (0: none)
    # submit_sm per second counted by the SMSC simulator, first to last: (submits - 1) / span
    smsc_submits_per_s: float = 0.0


async def smpp_bench(*, messages: int, binds: int = 2, window: int = 512, batch: int = 500,
                     concurrency: int = 4, tps: float = 0.0,
                     on_progress: Callable[[int, int], None] | None = None) -> SmppBenchResult:
    """The ESME in this process against ``loa sim smsc`` in its own, over loopback: single-part
    Vietnamese (UCS-2) messages, a receipt for each; ``tps`` per bind (0: no limit)."""

    async with SimProcess("smsc") as smsc:
        port = smsc.port
        receipts = 0

        def count(found: Sequence[Receipt]) -> None:
            nonlocal receipts
            receipts += len(found)

        adapter = SmppAdapter({"default": LinkConfig(host="127.0.0.1", port=port,
                                                     system_id="bench", binds=binds,
                                                     window=window, tps=tps)},
                              on_receipt=count)
        text = "Cảnh báo: dịch Covid-19 lây lan. Đeo khẩu trang, gọi y tế khi sốt."
        addrs = [f"8491{i:07d}" for i in range(batch)]
        started, cpu = time.perf_counter(), time.process_time()
        sent = retried = queued = 0

        async def sender() -> None:  # like a worker's consumers: batches in flight at once
            nonlocal sent, retried, queued
            while queued < messages:
                n = min(batch, messages - queued)
                queued += n
                results = await adapter.send(Envelope(wave="bench", channel=Channel.SMS,
                                                      text=text, addrs=addrs[:n]))
                sent += len(results.sent)
                retried += len(results.retry)
                if on_progress is not None:
                    on_progress(sent, messages)

        try:
            await asyncio.gather(*(sender() for _ in range(concurrency)))
            submitted = time.perf_counter() - started
            deadline = time.monotonic() + 30
            while receipts < sent and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            seconds = time.perf_counter() - started
            cpu = time.process_time() - cpu
        finally:
            await adapter.aclose()
    counted = smsc.stats
    span = counted.get("last_submit_at", 0.0) - counted.get("first_submit_at", 0.0)
    at_smsc = (counted.get("submits", 0) - 1) / span if span > 0 else 0.0
    return SmppBenchResult(
        messages=sent, binds=binds, window=window, seconds=round(seconds, 3),
        submits_per_s=round(sent / submitted), receipts=receipts,
        submit_receipt_per_s=round(min(sent, receipts) / seconds),
        esme_cpu_us_per_msg=round(cpu / max(sent, 1) * 1e6, 2), retried=retried, tps=tps,
        smsc_submits_per_s=round(at_smsc, 3))
