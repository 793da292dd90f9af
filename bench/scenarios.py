"""The faults of ``loa chaos``, each a wave of SMS and Zalo on a :class:`~bench.chaos.Stage`
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

from bench import procstat
from bench.chaos import (
    BINDS,
    RECONCILE,
    STATE_REFRESH,
    WINDOW,
    ZALO_CONCURRENCY,
    ChaosResult,
    Stage,
    stage,
)
from bench.wavebench import WorkerProcess
from dispatcher.domain.config import default_path
from dispatcher.domain.errors import InputError, LoaError
from dispatcher.domain.model import Channel, LevelState, WaveState
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import due_slots, load_plan
from dispatcher.domain.province import Province
from dispatcher.engine.fallback import is_fallback_wave
from dispatcher.engine.level import set_level
from dispatcher.engine.opening import opening_wave_id
from dispatcher.engine.stop import lift, stop_all

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
    await s.until(AT / 2, TIMEOUT, Channel.ZALO)  # the Zalo wave's own share: SMS may lag
    s.zalo.set_config(http_5xx_ratio=1.0)
    await asyncio.sleep(s.fault_seconds)
    s.zalo.set_config(http_5xx_ratio=0.0)
    # runs out soon, with messages still to send however far the wave got
    left = s.total_of(Channel.ZALO) - len(s.zalo.received)
    s.zalo.set_config(daily_quota=s.zalo.quota_used + max(0, min(200, left // 2)))
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


STOP_QUIET = max(1.0, 5 * STATE_REFRESH)  # stop: no message for this long means all is still
STOP_WATCH_MAX = 15.0  # stop: the longest wait for the simulators to fall silent
FIRST_POLL = 0.002  # seconds between two looks at the simulators' counters


def _seen(s: Stage) -> tuple[int, int]:
    """submit_sm the SMSC simulator received and message requests the Zalo simulator did."""
    return s.smsc.stats.submits, s.zalo.stats.requests


async def emergency_stop(s: Stage) -> ChaosResult:
    """The emergency stop mid-wave (through the store, as POST /v1/stop does): what reached the
    simulators after it took effect, and how long until the last of it; then the stop is
    lifted and the wave completes."""
    workers = await _two_workers(s)
    started = time.monotonic()
    await s.send()
    await s.until(AT, TIMEOUT)
    before = await s.done()
    asked = _seen(s)
    await stop_all(s.db, now=dt.datetime.now(dt.UTC), user="chaos",
                   reason="chaos: the emergency stop mid-wave")
    # the store answered: the stop is in force, every message from here is "after" it (what
    # arrived during the store's round trip is reported apart)
    stopped_at, at_stop = time.time(), _seen(s)
    while_storing = sum(at_stop) - sum(asked)
    watch_from = last_change = time.monotonic()
    seen = at_stop
    while time.monotonic() - last_change < STOP_QUIET:
        await asyncio.sleep(0.05)
        if _seen(s) != seen:
            last_change, seen = time.monotonic(), _seen(s)
        if time.monotonic() - watch_from > STOP_WATCH_MAX:
            break  # still sending: the figures below say how much
    sms_after, zalo_after = seen[0] - at_stop[0], seen[1] - at_stop[1]
    after = sms_after + zalo_after
    last = max(s.smsc.stats.last_submit_at, s.zalo.stats.last_request_at)
    effective_ms = round(max(0.0, last - stopped_at) * 1000, 1) if after else 0.0
    held_while_stopped = await s.done()
    await asyncio.sleep(STOP_QUIET)  # still nothing while the stop stays on
    still = sum(_seen(s)) - sum(seen)
    on_the_wire = WINDOW * BINDS + ZALO_CONCURRENCY * len(workers)
    limit_ms = STATE_REFRESH * 1000 + 500
    failures = []
    if after > on_the_wire:
        failures.append(f"sent_after_stop {after:,} > {on_the_wire} (SMPP window x binds + "
                        f"Zalo requests in flight)")
    if effective_ms > limit_ms:
        failures.append(f"stop_effective_ms {effective_ms:,.0f} > {limit_ms:,.0f} "
                        f"(state_refresh_seconds x 1000 + 500)")
    if still:
        failures.append(f"{still} messages sent while the stop stayed on")
    await lift(s.db, now=dt.datetime.now(dt.UTC), user="chaos", reason="chaos: lifted")
    lifted = time.monotonic()
    await s.completed(TIMEOUT)
    return await s.result(
        "stop", started, 0, failures=failures, sent_after_stop=after,
        sms_submits_after_stop=sms_after, zalo_requests_after_stop=zalo_after,
        sent_while_storing_the_stop=while_storing,
        stop_effective_ms=effective_ms, bound_sent_after_stop=on_the_wire,
        bound_stop_effective_ms=limit_ms, state_refresh_seconds=STATE_REFRESH,
        sent_before_stop=before, outcomes_at_rest=held_while_stopped,
        sent_while_stopped_later=still,
        completed_after_lift_s=round(time.monotonic() - lifted, 2))


async def _bound(s: Stage, workers: list[WorkerProcess]) -> None:
    """Until the workers hold every SMPP bind (they are up and could send)."""
    deadline = time.monotonic() + 60
    while sum([max(0.0, await s.metrics(w, "loa_smpp_bind_up")) for w in workers]) < BINDS:
        if time.monotonic() > deadline:
            raise LoaError("the workers did not bind in 60 s")
        await asyncio.sleep(0.1)


async def _firsts(s: Stage, since: float, deadline: float) -> dict[str, float | None]:
    """Milliseconds from ``since`` (epoch seconds) to the first message at each simulator
    after the counters as they are now; None: none came before ``deadline`` (monotonic)."""
    base = _seen(s)
    found: dict[str, float | None] = {"sms": None, "zalo": None}
    while any(v is None for v in found.values()) and time.monotonic() < deadline:
        now = _seen(s)
        for i, name in enumerate(found):
            if found[name] is None and now[i] > base[i]:
                found[name] = round((time.time() - since) * 1000, 1)
        await asyncio.sleep(FIRST_POLL)
    return found


async def level_change(s: Stage) -> ChaosResult:
    """Workers that reconcile the plan (as ``loa run`` does) are up; the level is set to 3,
    then to 4 (through the store, as the API and ``loa level set`` do). From each set to the
    first message of each channel at the simulators: within reconcile_seconds + 1 s. Level
    3's opening goes in the routine lane (sending hours are the whole day here), level 4's in
    the urgent lane."""
    plan_path = s.tmp / "plan.toml"
    plan_path.write_text(_plan_at(default_path("plan.toml").read_text(encoding="utf-8"), {}),
                         encoding="utf-8")
    plan = load_plan(plan_path)
    workers = [await s.add_worker("--plan", str(plan_path)) for _ in range(2)]
    await _bound(s, workers)
    started = time.monotonic()
    target_ms = (RECONCILE + 1) * 1000
    firsts: dict[str, dict[str, float | None]] = {}
    failures = []
    for level in (3, 4):
        now = dt.datetime.now(dt.UTC)
        state = await set_level(s.db, plan, now=now, level=level, user="chaos",
                                reason="chaos: level change")
        set_at = time.time()
        found = await _firsts(s, set_at, time.monotonic() + 30)
        firsts[f"level_{level}"] = found
        for channel, ms in found.items():
            if ms is None or ms > target_ms:
                failures.append(f"level {level}: first {channel} message "
                                + ("never came" if ms is None else f"after {ms:,.0f} ms")
                                + f" (target {target_ms:,.0f} ms)")
        since = state.since or state.at
        await _waves_completed(s, {opening_wave_id(level, c, since, plan)
                                   for c in (Channel.SMS, Channel.ZALO)}, TIMEOUT)
    return await s.result("level-change", started, 0, failures=failures,
                          first_message_ms=firsts, target_ms=target_ms,
                          reconcile_seconds=RECONCILE, waves=[w.id for w in s.waves])


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
    "stop": emergency_stop,
    "level-change": level_change,
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
