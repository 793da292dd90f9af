"""The faults of ``loa chaos``, each a wave of SMS and Zalo on a :class:`~dispatcher.chaos.Stage`
with one fault injected mid-wave. docs/guarantees.md states what each proves."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import re
import signal
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from dispatcher import procstat
from dispatcher.chaos import BINDS, WINDOW, ZALO_CONCURRENCY, ChaosResult, Stage, stage
from dispatcher.config import default_path
from dispatcher.errors import InputError, LoaError
from dispatcher.fallback import is_fallback_wave
from dispatcher.model import Channel, LevelState, WaveState
from dispatcher.msisdn import Numbering
from dispatcher.opening import opening_wave_id
from dispatcher.plan import due_slots, load_plan
from dispatcher.province import Province
from dispatcher.wavebench import WorkerProcess

TIMEOUT = 300.0  # seconds a scenario's wave may take before it is declared stuck
AT = 0.3  # the share of the wave sent when the fault strikes
QUOTA_WATCH_MAX = 30.0  # zalo-outage: the longest wait for the quota pause to show

Scenario = Callable[[Stage], Awaitable[ChaosResult]]


async def _two_workers(s: Stage) -> tuple[WorkerProcess, WorkerProcess]:
    a = await s.add_worker("--no-reconcile")
    b = await s.add_worker("--no-reconcile")
    return a, b


async def kill_worker(s: Stage) -> ChaosResult:
    """kill -9 one of two workers mid-wave, then start it again."""
    _, b = await _two_workers(s)
    started = time.monotonic()
    await s.send()
    await s.until(AT, TIMEOUT)
    # the largest write of sent bits it made so far: what it had taken from the channels and
    # not written yet at any moment, beyond what was on the wire
    exposition = await _mid_wave(s, b)
    write = procstat.largest(exposition, "loa_sent_marks_per_write")
    writes = procstat.quantiles([exposition], "loa_sent_marks_per_write", (0.5, 0.99))
    s.kill(b)
    assert b.proc is not None
    await b.proc.wait()
    held = await s.in_hand(b.name)  # its batches, pending until another worker takes them
    again = await s.add_worker("--no-reconcile")
    await s.completed(TIMEOUT)
    wire = WINDOW * BINDS + ZALO_CONCURRENCY
    bound = min(held, wire + 2 * int(min(write, held)))
    return await s.result("kill-worker", started, bound, killed=b.name, restarted=again.name,
                          in_hand_at_kill=held, on_the_wire=wire, largest_marks_write=write,
                          marks_per_write=writes)


async def _mid_wave(s: Stage, worker: WorkerProcess) -> str:
    """Until ``worker`` holds batches and has written sent bits (a worker slow to start may not
    have taken a batch yet when the others are well into the wave); its metrics then."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        with contextlib.suppress(OSError):  # its metrics port may not be open yet
            exposition = await worker.metrics()
            if procstat.largest(exposition, "loa_sent_marks_per_write") > 0 \
                    and await s.in_hand(worker.name) > 0:
                return exposition
        if time.monotonic() > deadline or await s.done() >= s.total:
            raise LoaError(f"{worker.name} took no part in the wave")
        await asyncio.sleep(0.05)


async def sigterm(s: Stage) -> ChaosResult:
    """SIGTERM one of two workers mid-wave: it finishes or leaves its batches and exits."""
    _, b = await _two_workers(s)
    started = time.monotonic()
    await s.send()
    await s.until(AT, TIMEOUT)
    await _mid_wave(s, b)
    held = await s.in_hand(b.name)
    assert b.proc is not None
    asked = time.monotonic()
    b.proc.send_signal(signal.SIGTERM)
    try:
        code = await asyncio.wait_for(b.proc.wait(), 30)
    except TimeoutError:
        raise LoaError(f"{b.name} did not exit within 30 s of SIGTERM") from None
    exit_seconds = round(time.monotonic() - asked, 2)
    left = await s.in_hand(b.name)
    await s.completed(TIMEOUT)
    return await s.result("sigterm", started, left, exit_seconds=exit_seconds,
                          exit_status=code, in_hand_at_sigterm=held, left_pending=left)


async def smsc_drop(s: Stage) -> ChaosResult:
    """The SMSC drops every connection mid-wave and then refuses binds for a while."""
    a, b = await _two_workers(s)
    started = time.monotonic()
    await s.send()
    await s.until(AT, TIMEOUT)
    dropped = await s.smsc.drop_all()
    s.smsc.set_config(refuse_binds=True)
    down_seen = False
    until = time.monotonic() + 3.0
    while time.monotonic() < until:
        up = [await s.metrics(w, "loa_smpp_bind_up") for w in (a, b)]
        down_seen = down_seen or all(u == 0 for u in up)
        await asyncio.sleep(0.2)
    s.smsc.set_config(refuse_binds=False)
    await s.completed(TIMEOUT)
    return await s.result(
        "smsc-drop", started, WINDOW * BINDS, connections_dropped=dropped,
        link_down_seen_in_metrics=down_seen, bind_refusals=s.smsc.stats.bind_failures)


async def throttle_storm(s: Stage) -> ChaosResult:
    """30% of submits answered ESME_RTHROTTLED for the whole wave."""
    s.smsc.set_config(error_ratio=0.3, error_status=0x58, seed=5)
    a, b = await _two_workers(s)
    started = time.monotonic()
    await s.send()
    lowest = float("inf")
    done = asyncio.create_task(s.completed(TIMEOUT))
    try:
        while not done.done():
            rates = [await s.metrics(w, "loa_smpp_tps") for w in (a, b)]
            lowest = min([lowest, *(r for r in rates if r > 0)])
            await asyncio.wait({done}, timeout=0.5)
    finally:
        await done
    return await s.result("throttle-storm", started, 0,
                          throttled_answers=s.smsc.stats.errors_injected,
                          lowest_tps_in_force=None if lowest == float("inf") else lowest)


async def redis_restart(s: Stage) -> ChaosResult:
    """Redis (AOF, appendfsync everysec) killed mid-wave and started again 2 s later."""
    await _two_workers(s)
    started = time.monotonic()
    await s.send()
    await s.until(AT, TIMEOUT)
    before = await s.done()
    await asyncio.sleep(1.0)
    last_second = await s.done() - before  # what the AOF may not have kept
    held = sum([await s.in_hand(name) for name in s.workers])
    s.kill_redis()
    await asyncio.sleep(2.0)
    s.start_redis()
    await s.completed(TIMEOUT)
    return await s.result("redis-restart", started, last_second + held,
                          outcomes_in_the_last_second=last_second, in_hand_at_kill=held)


async def zalo_outage(s: Stage) -> ChaosResult:
    """Zalo answers HTTP 5xx for ``s.fault_seconds``, then its daily quota runs out; later the
    quota is raised. Nothing is dead-lettered: the route pauses, waits and resumes."""
    a, b = await _two_workers(s)
    started = time.monotonic()
    await s.send()
    await s.until(AT / 2, TIMEOUT)
    s.zalo.set_config(http_5xx_ratio=1.0)
    await asyncio.sleep(s.fault_seconds)
    s.zalo.set_config(http_5xx_ratio=0.0)
    s.zalo.set_config(daily_quota=s.zalo.quota_used + 200)  # runs out soon
    # the route may still sit out the outage's back-off before it meets the quota: watch a
    # while, and on until a worker shows the pause (bounded)
    shown_after: float | None = None  # seconds until a worker showed the pause
    start = time.monotonic()
    least, most = start + max(3.0, s.fault_seconds / 2), start + QUOTA_WATCH_MAX
    while time.monotonic() < least or (shown_after is None and time.monotonic() < most):
        paused = [await s.metrics(w, "loa_zalo_paused") for w in (a, b)]
        if shown_after is None and any(p == 1 for p in paused):
            shown_after = round(time.monotonic() - start, 1)
        await asyncio.sleep(0.2)
    s.zalo.set_config(daily_quota=0)  # the OA's quota is raised: no limit today
    await s.completed(TIMEOUT)
    stats = s.zalo.snapshot()
    return await s.result("zalo-outage", started, 0, outage_seconds=s.fault_seconds,
                          http_5xx_answered=stats.http_5xx, quota_refused=stats.quota_refused,
                          paused_seen_in_metrics=shown_after is not None,
                          pause_shown_after_seconds=shown_after)


DAY_MINUTES = 24 * 60


def _plan_at(text: str, levels: dict[int, dt.datetime]) -> str:
    """The plan file's text with the sends of each of ``levels`` moved so that the first of
    each day falls at the given time (the others spread evenly over the day, as many as
    before), and sending hours around the clock."""
    out, level = [], 0
    for line in text.splitlines():
        found = re.match(r"level = (\d+)$", line)
        if found:
            level = int(found.group(1))
        if line.startswith("sending_hours"):
            out.append('sending_hours = ["00:00", "24:00"]')
        elif level in levels and line.startswith("slots = "):
            n = line.count(",") + 1
            first = levels[level].hour * 60 + levels[level].minute
            minutes = [(first + k * DAY_MINUTES // n) % DAY_MINUTES for k in range(n)]
            times = [f"{m // 60:02d}:{m % 60:02d}" for m in minutes]
            out.append("slots = [" + ", ".join(f'"{t}"' for t in times) + "]")
        else:
            out.append(line)
    return "\n".join(out) + "\n"


async def reconciler_restart(s: Stage) -> ChaosResult:
    """Level 3, then level 4, while the processes that reconcile the plan are killed and
    started again every couple of seconds: every wave the plan calls for (each level's opening
    waves and its slots) is created once."""
    plan_path = s.tmp / "plan.toml"
    tz = load_plan().tz
    # the first whole minute at least 15 s away (the workers start meanwhile)
    first = (dt.datetime.now(tz) + dt.timedelta(seconds=75)).replace(second=0, microsecond=0)
    second = first + dt.timedelta(minutes=1)
    plan_path.write_text(_plan_at(default_path("plan.toml").read_text(encoding="utf-8"),
                                  {3: first, 4: second}), encoding="utf-8")
    plan = load_plan(plan_path)
    reconcile = ("--plan", str(plan_path))
    workers = [await s.add_worker(*reconcile), await s.add_worker(*reconcile)]
    started = time.monotonic()
    kills = held = 0

    async def churn(until: dt.datetime) -> None:
        nonlocal kills, held
        while dt.datetime.now(dt.UTC) < until:
            await asyncio.sleep(2.0)
            victim = workers.pop(0)
            s.kill(victim)
            assert victim.proc is not None
            await victim.proc.wait()
            held += await s.in_hand(victim.name)
            kills += 1
            workers.append(await s.add_worker(*reconcile))

    expected: set[str] = set()
    for level, at in ((3, first), (4, second)):
        since = dt.datetime.now(dt.UTC)
        await s.db.level.set(LevelState(level=level, at=since, since=since, set_by="chaos"))
        channels = (Channel.SMS, Channel.ZALO)
        due = {slot.id for channel in channels
               for slot in due_slots(plan, level, channel, since, at + dt.timedelta(seconds=1))}
        due |= {opening_wave_id(level, channel, since, plan) for channel in channels}
        expected |= due
        await churn(at + dt.timedelta(seconds=10))
        await _waves_completed(s, due, TIMEOUT)
    created = {w.id for w in await s.db.waves.all()
               if w.channel in (Channel.SMS, Channel.ZALO) and not is_fallback_wave(w.id)}
    if created != expected:
        raise LoaError(f"waves missing: {sorted(expected - created)}; "
                       f"not called for: {sorted(created - expected)}")
    return await s.result("reconciler-restart", started, held, waves=sorted(created),
                          processes_killed=kills)


async def _waves_completed(s: Stage, ids: set[str], timeout: float) -> None:
    """Until the waves ``ids`` exist and are completed; they join the waves the stage counts."""
    deadline = time.monotonic() + timeout
    while True:
        states = await s.db.waves.states(sorted(ids))
        if all(states.get(i) is WaveState.COMPLETED for i in ids):
            for i in sorted(ids):
                wave = await s.db.waves.get(i)
                assert wave is not None
                s.waves.append(wave)
            return
        if time.monotonic() > deadline:
            raise LoaError(f"waves {sorted(ids)} did not complete in {timeout:g} s")
        await asyncio.sleep(0.5)


SCENARIOS: dict[str, Scenario] = {
    "kill-worker": kill_worker,
    "smsc-drop": smsc_drop,
    "redis-restart": redis_restart,
    "throttle-storm": throttle_storm,
    "sigterm": sigterm,
    "zalo-outage": zalo_outage,
    "reconciler-restart": reconciler_restart,
}


async def run(name: str, *, recipients: int, numbering: Numbering, province: Province,
              fault_seconds: float = 10.0) -> ChaosResult:
    scenario = SCENARIOS.get(name)
    if scenario is None:
        raise InputError(f"unknown scenario {name!r}; use one of {', '.join(SCENARIOS)}")
    if recipients < 100:
        raise InputError("--recipients must be at least 100")
    with tempfile.TemporaryDirectory(prefix="loa-chaos-") as tmp:
        async with stage(Path(tmp), numbering, province, recipients=recipients,
                         fault_seconds=fault_seconds) as s:
            return await scenario(s)
