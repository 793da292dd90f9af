"""``loa bench``: one full level-4 wave through ``loa worker`` processes, measured.

Everything runs as it would in production, on this machine: a Redis (a private one, a private
Redis Cluster, or the caller's), the SMSC and Zalo simulators in processes of their own, and N
``loa worker`` processes that fan the waves out and send them over SMPP and HTTP, with dedup,
bind leases, retries of a small injected error rate, receipts and metrics on. The wave's clock
runs from the waves' creation (workers ready, binds up) until both are completed by the engine.

The figures come from outside the engine as far as possible: what reached each simulator
(unique recipients, duplicates), what the workers' ``/proc`` entries say they cost (CPU, peak
RSS), what their ``/metrics`` say about batch latency, and what Redis reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec

from bench import audiencegen, localredis, procstat, profiler, simconfig
from bench.enginebench import SimProcess
from dispatcher.domain import template
from dispatcher.domain.audience import Validator
from dispatcher.domain.errors import InputError, LoaError
from dispatcher.domain.model import (
    Campaign,
    CampaignState,
    Channel,
    Priority,
    Selector,
    Wave,
    WaveState,
)
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.province import Province
from dispatcher.domain.smstext import segment
from dispatcher.engine import routing
from dispatcher.engine.importer import import_audience
from dispatcher.engine.process import wave_progress
from dispatcher.service.settings import Settings
from dispatcher.store import RedisStore, Store, open_store
from dispatcher.store.base import AudienceMeta

ALERT = "KHẨN: Covid-19 lây lan tại Quảng Ninh. Ở nhà, đeo khẩu trang, gọi 115."
ZALO_TEXT = ("Sở Y tế Quảng Ninh: dịch Covid-19 ở cấp 4. Hạn chế ra ngoài, đeo khẩu trang, "
             "khai báo y tế; khi sốt, ho, khó thở gọi ngay trạm y tế.")
READY_SECONDS = 60.0
RECEIPT_SECONDS = 30.0
# --urgent-at: the urgent campaign's texts carry this mark, which the simulators count apart
URGENT_MARK = "TB-KHAN"
URGENT_SMS = f"KHẨN 01/{URGENT_MARK}: phong tỏa P. Hồng Hà từ 12h. Ở nhà, gọi 1900 9095."
URGENT_ZALO = (f"Thông báo khẩn 01/{URGENT_MARK}: phong tỏa phường Hồng Hà (Hạ Long) từ 12h "
               "hôm nay. Người dân ở nhà; cần hỗ trợ gọi 1900 9095.")
URGENT_POLL = 0.02  # seconds between two looks at the urgent waves' states


class Options(msgspec.Struct, frozen=True, kw_only=True):
    recipients: int = 1_000_000
    zalo: int = 981_901
    workers: tuple[int, ...] = (1,)  # one run per count, side by side
    redis_url: str | None = None  # None: a private redis-server (or cluster)
    redis_cluster: bool = False
    error_ratio: float = 0.001  # submits and requests answered with a transient error
    binds: int = 2
    window: int = 512
    text: str = ALERT
    timeout: float = 900.0  # a run that takes longer stops with an error
    routine: bool = False  # the full wave as routine (Priority.NORMAL), not urgent
    urgent_at: float | None = None  # an urgent campaign this many seconds into the wave
    urgent_recipients: int = 10_000  # ... to the first N recipients of the audience
    profile: str | None = None  # a folder: py-spy samples of each process (bench.profiler)


class ChannelFigures(msgspec.Struct):
    total: int  # recipients the wave reaches on the channel
    sent: int  # by the engine's counters
    pdus: int  # submit_sm accepted (SMS parts) or HTTP requests answered (Zalo)
    msgs_per_s: float
    reached: int  # distinct recipients the simulator received the message for
    duplicates: int  # messages beyond the first to one recipient, at the simulator
    lost: int  # neither reached nor dead-lettered
    dead_letters: int
    errors_injected: int  # transient errors the simulator answered (each retried)
    receipts_matched: int = 0


class UrgentFigures(msgspec.Struct, kw_only=True):
    """The urgent campaign created during the routine wave (``--urgent-at``)."""

    at_s: float  # seconds into the routine wave it was created and approved
    recipients: int
    messages: int  # sent, both channels
    routine_pending: int  # routine messages not yet sent (queued or due) at that moment
    first_message_ms: float | None  # approval -> its first submit_sm complete at the SMSC
    first_zalo_ms: float | None  # approval -> its first Zalo message accepted
    last_message_ms: float | None  # approval -> its last message at either simulator
    complete_s: float  # approval -> its waves completed (by the engine)
    duplicates: int
    lost: int
    per_channel: dict[str, ChannelFigures]


class ProcessFigures(msgspec.Struct):
    cpu_seconds: float  # during the wave
    peak_rss_mb: float


class RunResult(msgspec.Struct, kw_only=True):
    workers: int
    recipients: int
    messages: int
    seconds: float
    msgs_per_s: float
    duplicates: int
    lost: int
    per_channel: dict[str, ChannelFigures]
    cpu_us_per_msg: float  # the workers' CPU (fan-out included) per message
    peak_rss_mb: float  # the largest worker's
    submit_latency_ms: dict[str, float]  # p50/p99 of a batch handed to a channel until answered
    receipts_matched: int
    redis_used_mb: float
    dedup_bytes_per_recipient: float  # sent bitmaps, per recipient per wave-channel
    processes: dict[str, ProcessFigures]  # workers, simulators and Redis
    import_seconds: float
    redis_cluster: bool
    sms_encoding: str
    sms_parts: int
    priority: str = "urgent"  # of the full wave
    urgent: UrgentFigures | None = None  # --urgent-at
    # --profile: each process's CPU per message (µs) by part (bench.attribution)
    profile: dict[str, dict[str, float]] = {}


class BenchResult(RunResult, kw_only=True):
    """The last run's figures, with every run's messages per second by worker count."""

    scaling: dict[str, float] = {}
    runs: list[RunResult] = []


Progress = Callable[[int, int, str], None]  # done, total, what


def _worker_config(path: Path, smsc: SimProcess, zalo: SimProcess, opts: Options,
                   tokens: Path) -> None:
    path.write_text("\n".join([
        f'zalo_tokens_file = "{tokens}"',
        simconfig.smpp_table(smsc.port, "bench", binds=opts.binds, window=opts.window),
        simconfig.zalo_table(zalo.url),
        # the plan's others
        simconfig.simulate_others("sms", "zalo")]), encoding="utf-8")


class WorkerProcess:
    """``loa worker --no-reconcile`` with its own metrics port."""

    def __init__(self, n: int, config: Path, redis_url: str, *,
                 extra: list[str] | None = None) -> None:
        self.name = f"bench-w{n}"
        self.config = config
        self.redis_url = redis_url
        self.extra = extra if extra is not None else ["--no-reconcile"]
        self.metrics_port = localredis.free_port()
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        env = os.environ | simconfig.sim_env()
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "dispatcher.service.cli", "worker", "--config", str(self.config),
            "--redis", self.redis_url, *self.extra, "--name", self.name,
            "--metrics-port", str(self.metrics_port), env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)

    async def metrics(self) -> str:
        return await procstat.http_get("127.0.0.1", self.metrics_port, "/metrics")

    async def stop(self) -> str:
        """SIGTERM (unless it has exited) and wait; the end of its log when it failed."""
        if self.proc is None:
            return ""
        if self.proc.returncode is None:
            self.proc.terminate()
        try:
            _, err = await asyncio.wait_for(self.proc.communicate(), 60)
        except TimeoutError:
            self.proc.kill()
            _, err = await self.proc.communicate()
        if self.proc.returncode == 0:
            return ""
        return err.decode(errors="replace")[-20000:] or f"exit status {self.proc.returncode}"


def _head(source: Path, target: Path, rows: int) -> None:
    """The header and the first ``rows`` rows of an audience file."""
    with source.open(encoding="utf-8") as src, target.open("w", encoding="utf-8") as dst:
        for n, line in enumerate(src):
            if n > rows:
                break
            dst.write(line)


@contextlib.contextmanager
def _redis(opts: Options, tmp: Path) -> Iterator[str]:
    if opts.redis_url:
        yield opts.redis_url
    elif opts.redis_cluster:
        with localredis.cluster(tmp / "cluster") as cluster:
            yield cluster.url
    else:
        with localredis.running(tmp) as server:
            yield server.url


async def create_waves(store: Store, sms_text: str, version: str, reach: dict[Channel, int],
                       *, priority: Priority = Priority.URGENT, campaign: str = "bench",
                       title: str = "Cấp 4: cảnh báo toàn tỉnh", zalo_text: str = ZALO_TEXT,
                       province: Province | None = None) -> list[Wave]:
    """A running (approved) campaign with one SMS and one Zalo wave to everyone of audience
    ``version``, to start now; urgent unless ``priority`` says otherwise. An SMS text naming
    ``{district}`` is rendered per district of ``province``, as the engine does, and the Zalo
    text then names it too, where it names the province (the same length within a few
    characters: a run with and one without compare the cost of the texts per district)."""
    now = dt.datetime.now(dt.UTC)
    texts = {Channel.SMS: sms_text, Channel.ZALO: zalo_text}
    per: dict[Channel, dict[str, str]] = {}
    if province is not None and template.names_district(sms_text):
        texts[Channel.ZALO] = zalo_text.replace("Quảng Ninh", "{district}")
        given = template.values(None, "")
        names = {d.id: d.name for d in province.districts.values()}
        per = {c: template.per_district(t, given, names) for c, t in texts.items()}
        texts = {c: template.render(t, given)[0] for c, t in texts.items()}
    await store.campaigns.create(Campaign(
        id=campaign, title=title, channels=list(texts), texts=texts,
        created_at=now, created_by="bench", state=CampaignState.RUNNING,
        priority=priority, approved_by="bench"))
    waves = [Wave(id=f"{campaign}.{c}", campaign_id=campaign, channel=c, text=texts[c],
                  created_at=now, audience_version=version, total=reach[c],
                  priority=priority, start_now=True, district_texts=per.get(c, {}))
             for c in texts]
    for wave in waves:
        await store.waves.create(wave, WaveState.CREATED)
    return waves


async def _alive(workers: list[WorkerProcess], when: str) -> None:
    """Raise with its log if a worker process has exited."""
    for w in workers:
        if w.proc is not None and w.proc.returncode is not None:
            raise LoaError(f"{w.name} exited {when}: {await w.stop()}")


async def _ready(workers: list[WorkerProcess], binds: int, deadline: float) -> None:
    """Until every worker answers on its metrics port and the workers hold every bind."""
    while True:
        up = 0.0
        try:
            for w in workers:
                up += procstat.metric_sum(await w.metrics(), "loa_smpp_bind_up")
        except OSError:
            up = -1
        if up >= binds:
            return
        await _alive(workers, "before the wave")
        if time.monotonic() > deadline:
            raise LoaError(f"the workers did not bind in {READY_SECONDS:g} s ({up:g} binds up)")
        await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def _processes(opts: Options, tmp: Path, redis_url: str, workers: int,
                     ) -> AsyncIterator[tuple[SimProcess, SimProcess, list[WorkerProcess]]]:
    ratio = str(opts.error_ratio)
    mark = ["--mark", URGENT_MARK] if opts.urgent_at is not None else []
    async with contextlib.AsyncExitStack() as stack:
        smsc = await stack.enter_async_context(SimProcess(
            "smsc", ["--error-ratio", ratio, "--error-status", "0x08", *mark]))
        zalo = await stack.enter_async_context(SimProcess(
            "zalo", ["--http-5xx-ratio", ratio, *mark]))
        procs = []
        for n in range(workers):
            config = tmp / f"worker{n}.toml"
            _worker_config(config, smsc, zalo, opts, tmp / f"tokens{n}.json")
            procs.append(WorkerProcess(n, config, redis_url))
        try:
            for p in procs:
                await p.start()
            yield smsc, zalo, procs
        finally:
            failures = [f"{p.name}: {err}" for p in procs if (err := await p.stop())]
            if failures and sys.exc_info()[0] is None:
                raise LoaError("a worker failed: " + "; ".join(failures))


class _Urgent:
    """``--urgent-at``: the urgent campaign, created and approved during the routine wave, and
    watched until the engine completes its waves."""

    def __init__(self, store: Store, opts: Options, meta: AudienceMeta) -> None:
        self.store = store
        self.opts = opts
        self.meta = meta
        self.waves: list[Wave] = []
        self.at_s = 0.0
        self.approved_wall = 0.0  # epoch seconds, comparable with the simulators' clocks
        self.complete_s = 0.0
        self.routine_pending = 0

    async def run(self, started: float, routine: list[Wave]) -> None:
        assert self.opts.urgent_at is not None
        await asyncio.sleep(max(0.0, started + self.opts.urgent_at - time.perf_counter()))
        for w in routine:
            p = await wave_progress(self.store, w)
            self.routine_pending += p.queued + p.retrying
        reach = {c: routing.reach(self.meta, Selector(), c) for c in (Channel.SMS, Channel.ZALO)}
        self.approved_wall, approved = time.time(), time.perf_counter()
        self.at_s = round(approved - started, 2)
        self.waves = await create_waves(
            self.store, URGENT_SMS, self.meta.version, reach, campaign="urgent",
            title="Thông báo khẩn: phong tỏa phường Hồng Hà", zalo_text=URGENT_ZALO)
        ids = [w.id for w in self.waves]
        deadline = approved + self.opts.timeout
        while True:
            states = await self.store.waves.states(ids)
            if all(states.get(i) is WaveState.COMPLETED for i in ids):
                self.complete_s = round(time.perf_counter() - approved, 3)
                return
            if time.perf_counter() > deadline:
                raise LoaError("the urgent campaign did not complete in time")
            await asyncio.sleep(URGENT_POLL)

    def ms(self, at: float) -> float | None:
        """Milliseconds from the approval to ``at`` (epoch seconds; 0: never)."""
        return round((at - self.approved_wall) * 1000, 1) if at else None

    async def figures(self, smsc: dict[str, Any], zalo: dict[str, Any]) -> UrgentFigures:
        per_channel = {}
        for wave, stats in zip(self.waves, (smsc, zalo), strict=True):
            p = await wave_progress(self.store, wave)
            per_channel[wave.channel.value] = _figures(wave, p.sent, p.dead_letters, stats,
                                                       max(self.complete_s, 1e-3), part="urgent")
        last = max(smsc.get("last_marked_at", 0.0), zalo.get("last_marked_at", 0.0))
        return UrgentFigures(
            at_s=self.at_s, recipients=self.meta.count,
            messages=sum(f.sent for f in per_channel.values()),
            routine_pending=self.routine_pending,
            first_message_ms=self.ms(smsc.get("first_marked_at", 0.0)),
            first_zalo_ms=self.ms(zalo.get("first_marked_at", 0.0)),
            last_message_ms=self.ms(last), complete_s=self.complete_s,
            duplicates=sum(f.duplicates for f in per_channel.values()),
            lost=sum(f.lost for f in per_channel.values()), per_channel=per_channel)


async def _urgent(store: Store, opts: Options, tmp: Path, audience: Path,
                  validator: Validator, chunk_size: int) -> _Urgent:
    """Import the urgent campaign's audience (the first recipients of the full one); the
    full one, imported next, is then the current version."""
    head = tmp / "urgent.csv"
    _head(audience, head, opts.urgent_recipients)
    done = await import_audience(head, store, validator, chunk_size=chunk_size)
    meta = await store.audiences.meta(done.version)
    assert meta is not None
    return _Urgent(store, opts, meta)


async def _wave(store: Store, waves: list[Wave], started: float, timeout: float,
                procs: list[WorkerProcess], on_progress: Progress | None,
                urgent: _Urgent | None) -> float:
    """Until the waves are completed (and the urgent campaign's, when there is one); the
    seconds the routine waves took."""
    watching = asyncio.create_task(urgent.run(started, waves)) if urgent is not None else None
    try:
        await _until_completed(store, waves, sum(w.total for w in waves), started + timeout,
                               procs, on_progress, watching)
        seconds = time.perf_counter() - started
        if watching is not None:
            await asyncio.wait_for(asyncio.shield(watching), timeout)
    finally:
        if watching is not None and not watching.done():
            watching.cancel()
    return seconds


async def _run(opts: Options, tmp: Path, audience: Path, redis_url: str, workers: int,
               numbering: Numbering, province: Province, settings: Settings,
               on_progress: Progress | None) -> RunResult:
    store = open_store(redis_url)
    assert isinstance(store, RedisStore)
    try:
        await store.client.flushall()
        urgent = (await _urgent(store, opts, tmp, audience, Validator(numbering, province),
                                settings.engine.chunk_size)
                  if opts.urgent_at is not None else None)
        started = time.perf_counter()
        imported = await import_audience(audience, store, Validator(numbering, province),
                                         chunk_size=settings.engine.chunk_size)
        import_seconds = time.perf_counter() - started
        meta = await store.audiences.meta()
        assert meta is not None
        reach = {c: routing.reach(meta, Selector(), c) for c in (Channel.SMS, Channel.ZALO)}
        async with _processes(opts, tmp, redis_url, workers) as (smsc, zalo, procs):
            await _ready(procs, opts.binds, time.monotonic() + READY_SECONDS)
            pids = {p.name: p.proc.pid for p in procs if p.proc is not None}
            pids.update(smsc=smsc.pid, zalo=zalo.pid)
            folder = Path(opts.profile) / f"workers-{workers}" if opts.profile else None
            async with contextlib.AsyncExitStack() as profiling:
                samples = (await profiling.enter_async_context(profiler.recording(pids, folder))
                           if folder is not None else {})
                cpu0, redis0 = procstat.cpu(pids), await procstat.redis_cpu(store.client)
                started = time.perf_counter()
                priority = Priority.NORMAL if opts.routine else Priority.URGENT
                waves = await create_waves(store, opts.text, meta.version, reach,
                                           priority=priority, province=province)
                seconds = await _wave(store, waves, started, opts.timeout, procs, on_progress,
                                      urgent)
                cpu1, redis1 = procstat.cpu(pids), await procstat.redis_cpu(store.client)
            rss = procstat.peak_rss(pids)
            sms_wave = waves[0]
            receipts = await _receipts(store, sms_wave, on_progress)
            latency = procstat.quantiles(
                [await p.metrics() for p in procs], "loa_batch_seconds", (0.5, 0.99))
        figures = {}
        part = "routine" if urgent is not None else ""
        for wave, sim in zip(waves, (smsc, zalo), strict=True):
            p = await wave_progress(store, wave)
            figures[wave.channel.value] = _figures(wave, p.sent, p.dead_letters, sim.stats,
                                                   seconds, part=part)
        figures["sms"].receipts_matched = receipts
        urgent_figures = await urgent.figures(smsc.stats, zalo.stats) if urgent else None
        bitmaps = sum([await procstat.sent_bitmap_bytes(store.client, w.id) for w in waves])
        used = await procstat.redis_info(store.client, "memory", "used_memory")
    finally:
        await store.aclose()
    messages = sum(f.sent for f in figures.values())
    worker_cpu = sum(cpu1[n] - cpu0[n] for n in pids if n.startswith("bench-w"))
    processes = {n: ProcessFigures(round(cpu1[n] - cpu0[n], 2), rss[n]) for n in pids}
    profile = {name: profiler.report(path, processes[name].cpu_seconds / max(messages, 1) * 1e6,
                                     f"{name}, {workers} worker(s), {messages:,} messages")
               for name, path in samples.items()}
    processes["redis"] = ProcessFigures(round(redis1 - redis0, 2), round(used / 1e6, 1))
    seg = segment(waves[0].text_for(max(waves[0].district_texts, default="",
                                        key=lambda d: len(waves[0].district_texts[d]))))
    return RunResult(
        workers=workers, recipients=imported.recipients, messages=messages,
        seconds=round(seconds, 2), msgs_per_s=round(messages / seconds),
        duplicates=sum(f.duplicates for f in figures.values()),
        lost=sum(f.lost for f in figures.values()), per_channel=figures,
        cpu_us_per_msg=round(worker_cpu / max(messages, 1) * 1e6, 1),
        peak_rss_mb=max(rss[n] for n in pids if n.startswith("bench-w")),
        submit_latency_ms={k: round(v * 1000, 1) for k, v in latency.items()},
        receipts_matched=receipts, redis_used_mb=round(used / 1e6, 1),
        dedup_bytes_per_recipient=round(bitmaps / max(imported.recipients, 1) / len(figures),
                                        3),
        processes=processes, import_seconds=round(import_seconds, 2),
        redis_cluster=opts.redis_cluster, sms_encoding=seg.encoding.value,
        sms_parts=len(seg.parts), priority=priority.value, urgent=urgent_figures,
        profile=profile)


def _figures(wave: Wave, sent: int, dead: int, stats: dict[str, Any],
             seconds: float, *, part: str = "") -> ChannelFigures:
    """A wave's figures from its simulator's counters. ``part``: "urgent" or "routine" when
    the simulator counted the urgent campaign's (marked) messages apart (``--urgent-at``);
    its SMS parts are those with a priority_flag, the routine wave's the others."""
    get = stats.get
    if wave.channel is Channel.SMS:
        marked, marked_dups = get("marked_messages", 0), get("marked_duplicates", 0)
        if part == "urgent":
            reached, duplicates, pdus = marked - marked_dups, marked_dups, get("priority_parts", 0)
        else:
            reached = get("messages", 0) - get("duplicates", 0) - (marked - marked_dups)
            duplicates = get("duplicates", 0) - marked_dups
            pdus = get("parts", 0) - (get("priority_parts", 0) if part == "routine" else 0)
    elif part == "urgent":
        reached, duplicates, pdus = (get("marked_recipients", 0), get("marked_duplicates", 0),
                                     get("marked", 0))
    else:
        reached, duplicates = get("recipients", 0), get("duplicates", 0)
        pdus = get("accepted", 0) - get("marked", 0)
    return ChannelFigures(
        total=wave.total, sent=sent, pdus=pdus, msgs_per_s=round(sent / seconds),
        reached=reached, duplicates=duplicates,
        lost=max(0, wave.total - reached - dead), dead_letters=dead,
        errors_injected=get("errors_injected", 0) + get("http_5xx", 0))


async def _until_completed(store: Store, waves: list[Wave], total: int, deadline: float,
                           procs: list[WorkerProcess], on_progress: Progress | None,
                           watching: asyncio.Task[None] | None = None) -> None:
    while True:
        if watching is not None and watching.done():
            watching.result()  # the urgent campaign's watcher failed: say why
        states = await store.waves.states([w.id for w in waves])
        if all(states.get(w.id) is WaveState.COMPLETED for w in waves):
            return
        done = 0
        for w in waves:
            p = await wave_progress(store, w)
            done += p.total - p.queued - p.retrying
        if on_progress is not None:
            on_progress(done, total, "sending")
        await _alive(procs, "during the wave")
        if time.perf_counter() > deadline:
            raise LoaError(f"the wave did not complete in time ({done:,} of {total:,})")
        await asyncio.sleep(0.5)


async def _receipts(store: Store, wave: Wave, on_progress: Progress | None) -> int:
    """The SMS receipts matched, once every sent message has one (or after a while)."""
    deadline = time.monotonic() + RECEIPT_SECONDS
    while True:
        p = await wave_progress(store, wave)
        matched = p.delivered + p.undelivered + p.receipt_expired
        if on_progress is not None:
            on_progress(matched, p.sent, "receipts")
        if matched >= p.sent or time.monotonic() > deadline:
            return matched
        await asyncio.sleep(0.2)


async def wave_bench(opts: Options, *, numbering: Numbering, province: Province,
                     settings: Settings, on_progress: Progress | None = None) -> BenchResult:
    """Run the full wave once per worker count of ``opts.workers``."""
    if opts.recipients < 1 or not 0 <= opts.zalo <= opts.recipients:
        raise InputError("--recipients must be at least 1 and --zalo between 0 and it")
    if not opts.workers or min(opts.workers) < 1:
        raise InputError("--workers: give one or more counts of at least 1, e.g. 1,2")
    if opts.urgent_at is not None:
        if not 0 <= opts.urgent_at <= opts.timeout:
            raise InputError("--urgent-at: give the seconds into the wave, 0 or more")
        if not 1 <= opts.urgent_recipients <= opts.recipients:
            raise InputError("--urgent-recipients must be between 1 and --recipients")
        if not opts.routine:
            opts = msgspec.structs.replace(opts, routine=True)
    with tempfile.TemporaryDirectory(prefix="loa-bench-") as name:
        tmp = Path(name)
        audience = tmp / "audience.csv"
        audiencegen.generate(
            audience, opts.recipients, seed=1, numbering=numbering, province=province,
            zalo_accounts=opts.zalo,
            progress=(lambda n: on_progress(n, opts.recipients, "audience"))
            if on_progress is not None else None)
        runs = []
        with _redis(opts, tmp) as url:
            for workers in opts.workers:
                runs.append(await _run(opts, tmp, audience, url, workers, numbering, province,
                                       settings, on_progress))
    last = runs[-1]
    return BenchResult(**msgspec.structs.asdict(last),
                       scaling={str(r.workers): r.msgs_per_s for r in runs}, runs=runs)
