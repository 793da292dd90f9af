"""``loa demo``: a level-4 wave of every channel through the whole engine, in one command.

It generates an audience, imports it, sets the level to 4, and has the reconciler create the
next wave of each channel of the level-4 plan at once (as if its slot were due now). The engine
fans the waves out and its workers send them: SMS over SMPP to the SMSC simulator (or an SMSC
given with ``--smsc``), with delivery receipts matched back; the other channels to in-process
channels that answer like real ones (a small share of transient and permanent failures), with
retries and dead letters. Wave ids are the plan's slot ids: run it twice on the same Redis and
the second run sends nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from adapters.base import Adapter
from adapters.memory import MemoryAdapter
from adapters.smpp.adapter import DEFAULT_LINK, LinkConfig, SmppAdapter
from adapters.smpp.simulator import Smsc, SmscConfig
from dispatcher import audiencegen
from dispatcher.audience import Validator
from dispatcher.engine import Engine, Progress, wave_progress
from dispatcher.importer import import_audience
from dispatcher.level import set_level
from dispatcher.model import WAVE_FINAL, Channel
from dispatcher.msisdn import Numbering
from dispatcher.plan import Plan
from dispatcher.province import Province
from dispatcher.receipts import ReceiptMatcher
from dispatcher.settings import Settings
from dispatcher.store import open_store
from dispatcher.store.base import Store

DEMO_LEVEL = 4
RETRY_RATIO = 0.002  # transient failures the demo's in-process channels answer
FAIL_RATIO = 0.0005  # permanent failures (invalid destination)
SMSC_ERROR_RATIO = 0.0005  # the simulated SMSC answers "invalid destination" to these
STAT_MIX = {"DELIVRD": 0.97, "UNDELIV": 0.02, "EXPIRED": 0.01}  # what its receipts say
RECEIPT_QUIET_STEPS = 5  # after the waves finish, stop when no receipt matched for 1 s


class DemoResult(msgspec.Struct):
    recipients: int
    messages: dict[str, int]
    sent: int
    duplicates: int
    failed: int
    dead_letters: int
    delivered: int
    seconds: float
    msgs_per_s: float
    waves: list[str] = []
    already_done: list[str] = []


ProgressCallback = Callable[[dict[str, Progress]], None]


class SmscTarget(msgspec.Struct, frozen=True):
    """An external SMSC for the demo's SMS (all SMS routes go to this one link)."""

    host: str
    port: int
    system_id: str = "loa"
    password: str = ""


async def run_demo(*, recipients: int, redis_url: str | None, plan: Plan, numbering: Numbering,
                   province: Province, settings: Settings, smsc: SmscTarget | None = None,
                   on_progress: ProgressCallback | None = None) -> DemoResult:
    store = open_store(redis_url)
    simulator: Smsc | None = None
    try:
        with tempfile.TemporaryDirectory(prefix="loa-demo-") as tmp:
            path = Path(tmp) / "audience.csv"
            audiencegen.generate(path, recipients, seed=1, numbering=numbering,
                                 province=province)
            await import_audience(path, store, Validator(numbering, province),
                                  chunk_size=settings.engine.chunk_size)
        now = dt.datetime.now(dt.UTC)
        current = await store.level.get()
        if current is None or current.level != DEMO_LEVEL:
            await set_level(store, plan, now=now, level=DEMO_LEVEL, reason="loa demo",
                            user="demo")
        if smsc is None:
            simulator = Smsc(SmscConfig(stat_mix=STAT_MIX, error_ratio=SMSC_ERROR_RATIO,
                                        error_status=0x0B, seed=1))
            await simulator.start()
            smsc = SmscTarget("127.0.0.1", simulator.port)
        matcher = ReceiptMatcher(store)
        sms = SmppAdapter({DEFAULT_LINK: LinkConfig(
            host=smsc.host, port=smsc.port, system_id=smsc.system_id, password=smsc.password,
            binds=2, window=128)}, on_receipt=matcher.add)
        others: dict[Channel, MemoryAdapter] = {
            c: MemoryAdapter(retry_ratio=RETRY_RATIO, fail_ratio=FAIL_RATIO, seed=n)
            for n, c in enumerate(Channel) if c is not Channel.SMS}
        adapters: dict[Channel, Adapter] = {Channel.SMS: sms}
        adapters.update(others)
        engine = Engine(store, plan, settings, province, adapters, numbering.carriers,
                        reconcile=False, receipts=matcher)
        states_before = await store.waves.states()
        wave_ids = await engine.reconciler.trigger_now(now)
        before = {w: await _progress(store, w) for w in wave_ids}
        started = time.perf_counter()
        stop = asyncio.Event()
        runner = asyncio.create_task(engine.run(stop))
        try:
            await _until_done(store, wave_ids, runner, matcher, on_progress)
        finally:
            stop.set()
            await runner
        seconds = time.perf_counter() - started
        after = {w: await _progress(store, w) for w in wave_ids}
        for adapter in adapters.values():
            await adapter.aclose()
    finally:
        if simulator is not None:
            await simulator.stop()
        await store.aclose()
    sent_by = {c.value: 0 for c in Channel}
    for w in wave_ids:
        sent_by[_wave_channel(w)] += after[w].sent - before[w].sent
    sent = sum(sent_by.values())
    duplicates = sum(a.duplicates for a in others.values())
    if simulator is not None:
        duplicates += sum(n - 1 for n in simulator.received.values() if n > 1)
    return DemoResult(
        recipients=recipients,
        messages=sent_by,
        sent=sent,
        duplicates=duplicates,
        failed=sum(after[w].failed - before[w].failed for w in wave_ids),
        dead_letters=sum(after[w].dead_letters - before[w].dead_letters for w in wave_ids),
        delivered=sum(after[w].delivered - before[w].delivered for w in wave_ids),
        seconds=round(seconds, 3),
        msgs_per_s=round(sent / seconds, 1) if seconds > 0 else 0.0,
        waves=wave_ids,
        already_done=[w for w in wave_ids if states_before.get(w) in WAVE_FINAL],
    )


async def _until_done(store: Store, wave_ids: list[str], runner: asyncio.Task[None],
                      matcher: ReceiptMatcher, on_progress: ProgressCallback | None) -> None:
    """Until every wave is finished and receipts stop coming in (a receipt can stay unmatched:
    a part accepted of a message whose other part was refused)."""
    quiet, matched = 0, -1
    while not runner.done():  # an engine that stopped on an error raises it to the caller
        states = await store.waves.states(wave_ids)
        if on_progress is not None:
            on_progress({w: await _progress(store, w) for w in wave_ids})
        if all(states.get(w) in WAVE_FINAL for w in wave_ids):
            quiet = quiet + 1 if matcher.stats.matched == matched else 0
            matched = matcher.stats.matched
            if matcher.pending == 0 or quiet >= RECEIPT_QUIET_STEPS:
                return
        await asyncio.sleep(0.2)


def _wave_channel(wave_id: str) -> str:
    return wave_id.split("-")[1]  # plan wave ids are L<level>-<channel>-<slot>


async def _progress(store: Store, wave_id: str) -> Progress:
    wave = await store.waves.get(wave_id)
    return await wave_progress(store, wave) if wave is not None else Progress()
