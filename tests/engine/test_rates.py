"""Exact rates: the route throttle and the bind's rate hold a configured TPS within 2%, counted
over simulated seconds (tests/engine/virtual_time.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from adapters.bucket import TokenBucket
from adapters.smpp.rate import BindRate
from dispatcher.engine.throttle import RouteThrottle
from dispatcher.service.cli import main
from tests.engine import virtual_time

RATES = [1, 3, 15, 25, 500, 5000]


def seconds_for(tps: float) -> float:
    return max(2.0, 200 / tps)  # at least 200 permits counted


async def count_route(tps: float, batch: int) -> float:
    loop = asyncio.get_running_loop()
    throttle = RouteThrottle(tps, clock=loop.time)
    times: list[float] = []
    end = loop.time() + seconds_for(tps)
    while loop.time() < end:
        await throttle.acquire(batch)
        times.extend([loop.time()] * batch)
    return (len(times) - 1) / (times[-1] - times[0])


async def count_bind(tps: float) -> float:
    loop = asyncio.get_running_loop()
    rate = BindRate(tps, clock=loop.time)
    times: list[float] = []
    end = loop.time() + seconds_for(tps)
    while loop.time() < end:
        await rate.acquire()
        times.append(loop.time())
    return (len(times) - 1) / (times[-1] - times[0])


@pytest.mark.parametrize("tps", RATES)
def test_a_route_sends_its_configured_rate_within_two_percent(tps: float) -> None:
    achieved = virtual_time.run(count_route(tps, batch=1))
    assert abs(achieved - tps) <= 0.02 * tps, f"{tps} TPS configured, {achieved:.2f} achieved"


@pytest.mark.parametrize("tps", RATES)
def test_a_bind_sends_its_agreed_tps_within_two_percent(tps: float) -> None:
    achieved = virtual_time.run(count_bind(tps))
    assert abs(achieved - tps) <= 0.02 * tps, f"{tps} TPS agreed, {achieved:.2f} achieved"



# -- bursts: what leaves at once after a pause ---------------------------------------------------

@pytest.mark.parametrize(("tps", "burst_seconds", "burst"),
                         [(3, 0.1, 1), (500, 0.1, 50), (5000, 0.1, 500), (100, 0.5, 50),
                          (100, 0.0, 1)])
def test_after_a_pause_a_route_sends_at_most_its_burst_at_once(
        tps: float, burst_seconds: float, burst: int) -> None:
    async def at_once() -> int:
        loop = asyncio.get_running_loop()
        throttle = RouteThrottle(tps, burst_seconds=burst_seconds, clock=loop.time)
        await asyncio.sleep(60.0)  # idle a minute
        start, sent = loop.time(), 0
        while loop.time() == start:
            await throttle.acquire(1)
            sent += loop.time() == start
        return sent

    assert virtual_time.run(at_once()) == burst


def test_a_batch_larger_than_the_burst_keeps_to_the_rate() -> None:
    async def batch() -> float:
        loop = asyncio.get_running_loop()
        throttle = RouteThrottle(3, clock=loop.time)
        start = loop.time()
        await throttle.acquire(1)  # the first permit is there at once
        await throttle.acquire(500)
        return loop.time() - start

    assert virtual_time.run(batch()) == pytest.approx(500 / 3)


def test_an_urgent_batch_overtakes_a_routine_one_waiting_for_the_rate() -> None:
    async def race() -> list[str]:
        loop = asyncio.get_running_loop()
        throttle = RouteThrottle(10, clock=loop.time)
        done: list[str] = []

        async def take(name: str, n: int, urgent: bool) -> None:
            await throttle.acquire(n, urgent=urgent)
            done.append(name)

        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(take("routine", 100, False))  # 10 s of the route's rate
            await asyncio.sleep(1.0)
            tasks.create_task(take("urgent", 10, True))
        return done

    assert virtual_time.run(race()) == ["urgent", "routine"]


# -- AIMD: how low a bind goes, and how it comes back ---------------------------------------------

async def floor_of(tps: float, floor: float) -> float:
    """Slow a bind down as far as it goes (throttled answers only, a second apart): the rate
    in force then."""
    loop = asyncio.get_running_loop()
    rate = BindRate(tps, floor=floor, clock=loop.time)
    for _ in range(10):
        for _ in range(5):
            rate.throttled()
        await asyncio.sleep(1.0)
    return rate.rate


async def count_bucket(per_second: float) -> float:
    loop = asyncio.get_running_loop()
    bucket = TokenBucket(per_second, clock=loop.time)
    times: list[float] = []
    end = loop.time() + seconds_for(per_second)
    while loop.time() < end:
        await bucket.acquire()
        times.append(loop.time())
    return (len(times) - 1) / (times[-1] - times[0])


@pytest.mark.parametrize(("tps", "floor"), [(15, 0.1), (3, 0.1), (100, 0.05)])
def test_a_throttled_bind_goes_down_to_its_floor_below_ten_per_second(tps: float,
                                                                      floor: float) -> None:
    in_force = virtual_time.run(floor_of(tps, floor))
    assert in_force == pytest.approx(floor * tps)
    assert in_force < 10
    # and the bucket under the bind keeps that rate exactly
    achieved = virtual_time.run(count_bucket(in_force))
    assert abs(achieved - in_force) <= 0.02 * in_force, (
        f"floor {in_force:.2f}/s in force, {achieved:.2f}/s sent")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def steady_share(rate: BindRate, clock: Clock, seconds: float, share: float) -> list[float]:
    """Send at the bind's rate for ``seconds`` in steps of 0.1 s to an SMSC that answers
    ``share`` of every step's submits "throttled", whatever the rate; returns the rate in force
    after each step."""
    rates = []
    owed = refused = 0.0  # fractions of a submit (of a throttled answer) carried forward
    for _ in range(round(seconds * 10)):
        rate.tick()
        owed += rate.rate * 0.1
        sending = int(owed)
        owed -= sending
        refused += sending * share
        throttled = int(refused)
        refused -= throttled
        rate.accepted(sending - throttled)
        for _ in range(throttled):
            rate.throttled()
        clock.now += 0.1
        rates.append(rate.rate)
    return rates


@pytest.mark.parametrize("tps", [3, 15, 200, 2000, 5000])
def test_a_bind_recovers_under_steady_thirty_percent_throttling(tps: float) -> None:
    """Throttling that does not follow the bind's rate (30% answered "throttled" at any rate):
    slowing down does not lower the share, so the bind goes back to its agreed TPS instead of
    sitting at its floor, and stays there."""
    clock = Clock()
    rate = BindRate(tps, clock=clock)
    rates = steady_share(rate, clock, 60.0, share=0.3)
    late = rates[-300:]  # the last 30 s
    assert rate.decreases >= 1  # it did slow down at first
    assert min(late) >= 0.9 * tps, f"sat at {min(late):.1f}/s of {tps}"
    assert sum(late) / len(late) >= 0.95 * tps


def test_a_carrier_limit_below_the_agreed_tps_is_still_followed_under_steady_throttling(
        ) -> None:
    """A bind that stopped slowing down for a steady 30% still slows down when the carrier's
    limit falls below its rate (the share rises well above the steady one)."""
    clock = Clock()
    rate = BindRate(1000, clock=clock)
    steady_share(rate, clock, 30.0, share=0.3)
    assert rate.rate >= 900
    rates = []
    for _ in range(300):  # now the carrier takes 300/s, and 30% of those it refuses
        rate.tick()
        sending = round(rate.rate * 0.1)
        taken = min(sending, 30)
        throttled = sending - taken + round(taken * 0.3)
        rate.accepted(sending - throttled)
        for _ in range(throttled):
            rate.throttled()
        clock.now += 0.1
        rates.append(rate.rate)
    late = rates[-100:]
    assert sum(late) / len(late) < 2 * 300


# -- a [rates] key must name a route --------------------------------------------------------------

UNKNOWN_KEY = """
[smpp.default]
host = "127.0.0.1"
port = 2775
system_id = "loa"
tps = 15

[rates]
"sms.default" = 15
"""


@pytest.mark.parametrize("command", [["worker", "--redis", "redis://127.0.0.1:1/0"],
                                     ["run", "--port", "8080"]])
def test_a_rate_naming_no_route_is_a_configuration_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    config = tmp_path / "loa.toml"
    config.write_text(UNKNOWN_KEY + "[api]\n", encoding="utf-8")
    status = main([*command, "--config", str(config)])
    out, err = capsys.readouterr()
    assert status == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert f'{config}: rates."sms.default": names no route' in lines[0]
    assert "sms.viettel" in lines[0] and "sms.vinaphone" in lines[0] and "zalo" in lines[0]
    assert "Traceback" not in err


def test_a_rate_naming_a_routed_link_group_is_accepted(tmp_path: Path) -> None:
    from dispatcher.service.settings import check_rates, load_settings  # noqa: PLC0415

    config = tmp_path / "loa.toml"
    config.write_text('[sms_routes]\nviettel = "big"\n[rates]\n"sms.big" = 3.5\nzalo = 10\n',
                      encoding="utf-8")
    settings = load_settings(config)
    check_rates(settings, ["viettel", "mobifone"], str(config))
    assert settings.rate("sms.big") == 3.5


def test_a_carrier_taking_three_a_second_of_an_agreed_fifteen_is_followed_below_ten() -> None:
    clock = Clock()
    rate = BindRate(15, clock=clock)
    rates = []
    owed = taken = 0.0
    for _ in range(600):  # a minute; the carrier accepts 3 submits a second, throttles the rest
        rate.tick()
        owed += rate.rate * 0.1
        sending = int(owed)
        owed -= sending
        taken = min(taken + 0.3, 1.0)  # what the carrier can take now (a bucket of one)
        accepted = min(sending, int(taken))
        taken -= accepted
        rate.accepted(accepted)
        for _ in range(sending - accepted):
            rate.throttled()
        clock.now += 0.1
        rates.append(rate.rate)
    late = rates[-300:]
    assert sum(late) / len(late) < 6, f"{sum(late) / len(late):.1f}/s for a carrier taking 3/s"
    assert min(late) >= 1.5  # the floor: a tenth of 15
