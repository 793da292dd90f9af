"""A bind's rate under throttling answers: the model on a simulated clock, then the real
SmppAdapter against the SMSC simulator answering a share of submits 0x58 or 0x14."""

from __future__ import annotations

import asyncio
import contextlib

from prometheus_client import REGISTRY

from adapters.base import Envelope
from adapters.smpp.adapter import LinkConfig, SmppAdapter
from adapters.smpp.rate import RECOVERY_SECONDS, BindRate
from adapters.smpp.simulator import Smsc
from dispatcher.domain.model import Channel


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def run(rate: BindRate, clock: Clock, seconds: float, *, offered: float,
        cap: float = 0.0, sprinkle: int = 0) -> list[float]:
    """Offer ``offered`` submits per second for ``seconds`` in steps of 0.1 s, to an SMSC that
    accepts up to ``cap`` per second (0: all) and answers every ``sprinkle``-th accepted one
    "queue full" instead; returns the rate in force after each step (``offered`` when
    unthrottled) and keeps the bind's accepted count in ``rate.total``."""
    rates = []
    counter = 0
    for _ in range(round(seconds * 10)):
        rate.tick()
        sending = (min(offered, rate.rate) if rate.rate else offered) * 0.1
        accepted = min(sending, cap * 0.1) if cap else sending
        n = round(accepted)
        throttled = round(sending) - n
        if sprinkle:
            hits = (counter + n) // sprinkle - counter // sprinkle
            counter += n
            n -= hits
            throttled += hits
        rate.accepted(n)
        for _ in range(throttled):
            rate.throttled()
        rate.total = getattr(rate, "total", 0) + n  # type: ignore[attr-defined]
        clock.now += 0.1
        rates.append(rate.rate or offered)
    return rates


def test_a_throttle_right_after_the_bind_starts_from_what_the_smsc_took() -> None:
    clock = Clock()
    rate = BindRate(clock=clock)
    rate.accepted(400)  # the first batch, answered within 0.2 s of the bind
    clock.now += 0.2
    for _ in range(10):
        rate.throttled()
    assert rate.decreases == 1
    assert rate.rate > 0.49 * 400 / 0.2  # not the ~20 TPS of a second barely begun


def test_a_throttle_after_a_quiet_second_starts_from_the_busy_ones() -> None:
    clock = Clock()
    rate = BindRate(clock=clock)
    run(rate, clock, 3.0, offered=2000)
    clock.now += 1.0  # a quiet second: nothing to send
    rate.accepted(20)
    for _ in range(5):
        rate.throttled()
    assert rate.decreases == 1
    assert rate.rate >= 1000


def test_recovery_reaches_the_previous_rate_in_seconds() -> None:
    clock = Clock()
    rate = BindRate(1000, clock=clock)
    run(rate, clock, 2.0, offered=1000)
    for _ in range(50):
        rate.throttled()
    assert rate.rate == 500
    rates = run(rate, clock, RECOVERY_SECONDS * 1.5, offered=1000)  # steps every 0.3 s here
    assert rates[-1] == 1000


def test_a_carrier_that_throttles_hard_is_followed_down_to_what_it_takes() -> None:
    clock = Clock()
    rate = BindRate(1000, clock=clock)
    rates = run(rate, clock, 60.0, offered=1000, cap=200)
    late = rates[-200:]  # the last 20 s
    assert rate.decreases >= 5
    assert sum(late) / len(late) < 2 * 200  # near the carrier's 200/s, not the agreed 1000
    assert min(late) >= 0.1 * 1000  # never below the floor


def test_a_sprinkling_of_queue_full_leaves_the_rate_alone() -> None:
    clock = Clock()
    rate = BindRate(clock=clock)
    rates = run(rate, clock, 60.0, offered=2000, sprinkle=1000)  # 0.1% answered 0x14
    assert rate.ignored > 0
    assert min(rates) >= 0.5 * 2000
    assert rate.total >= 0.9 * 60 * 2000  # type: ignore[attr-defined]


# -- the real adapter and the SMSC simulator -----------------------------------------------------

def link(smsc: Smsc, **changes: object) -> LinkConfig:
    base: dict[str, object] = {"host": "127.0.0.1", "port": smsc.port, "system_id": "loa",
                               "password": "pw", "window": 64, "response_timeout": 5.0,
                               "bind_wait": 2.0}
    base.update(changes)
    return LinkConfig(**base)  # type: ignore[arg-type]


def numbers(n: int) -> list[str]:
    return [f"8491{i:07d}" for i in range(n)]


def envelope(addrs: list[str]) -> Envelope:
    return Envelope(wave="w1", channel=Channel.SMS, text="Deo khau trang", addrs=addrs,
                    route="sms.viettel")


class Watch:
    """Every decrease of the adapter's binds: the rate accepted before the throttle answer and
    the rate in force after it; and the ``loa_smpp_tps`` gauge, sampled."""

    def __init__(self, adapter: SmppAdapter) -> None:
        self.adapter = adapter
        self.decreases: list[tuple[float, float]] = []
        self.gauge: list[float] = []
        self.answered = 0

    def hook(self) -> None:
        for session in self.adapter.links["default"].sessions:
            rate = session.rate
            original = rate.throttled

            def throttled(rate: BindRate = rate, original: object = original) -> None:
                before, decreases = rate.accepted_rate(), rate.decreases
                original()  # type: ignore[operator]
                if rate.decreases > decreases:
                    self.decreases.append((before, rate.rate))
            rate.throttled = throttled  # type: ignore[method-assign]

    async def sample(self) -> None:
        while True:
            value = REGISTRY.get_sample_value("loa_smpp_tps", {"link": "default"})
            self.gauge.append(value or 0.0)
            await asyncio.sleep(0.02)


async def send_all(adapter: SmppAdapter, addrs: list[str], rounds: int = 60) -> int:
    """Send ``addrs``, again what was retried, until nothing is left; returns the rounds."""
    pending = addrs
    for n in range(rounds):
        if not pending:
            return n
        results = await adapter.send(envelope(pending))
        assert not results.failed
        pending = [pending[i] for i, _ in results.retry + results.requeue]
    assert not pending, f"{len(pending)} messages left after {rounds} rounds"
    return rounds


async def test_thirty_percent_throttled_a_wave_is_delivered_once_at_an_adapted_rate(
        smsc: Smsc) -> None:
    smsc.set_config(error_ratio=0.3, error_status=0x58, seed=3)
    adapter = SmppAdapter({"default": link(smsc)})
    watch = Watch(adapter)
    await adapter.links["default"].bound()
    watch.hook()
    sampler = asyncio.create_task(watch.sample())
    try:
        addrs = numbers(5_000)
        rounds = await send_all(adapter, addrs)
    finally:
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
        await adapter.aclose()
    rate = adapter.links["default"].sessions[0].rate if adapter.links["default"].sessions \
        else None
    print(f"\n30% 0x58: {len(addrs):,} delivered in {rounds} rounds; {len(watch.decreases)} "
          f"decreases, loa_smpp_tps between {min(watch.gauge):.0f} and {max(watch.gauge):.0f}; "
          f"throttled answers {smsc.stats.errors_injected:,}")
    assert all(smsc.received[a] == 1 for a in addrs)  # every one, once
    assert smsc.stats.duplicates == 0
    assert watch.decreases, "the bind slowed down"
    assert max(watch.gauge) > 0  # the rate in force was visible while throttled
    assert rate is None or rate.decreases >= 1


async def test_a_sprinkling_of_queue_full_keeps_the_bind_near_its_accepted_rate(
        smsc: Smsc) -> None:
    smsc.set_config(error_ratio=0.001, error_status=0x14, seed=5)
    adapter = SmppAdapter({"default": link(smsc, tps=2000.0)})
    watch = Watch(adapter)
    await adapter.links["default"].bound()
    watch.hook()
    try:
        addrs = numbers(6_000)
        await send_all(adapter, addrs)
        session = adapter.links["default"].sessions[0]
        ignored, rate = session.rate.ignored, session.rate.rate
    finally:
        await adapter.aclose()
    print(f"\n0.1% 0x14: {smsc.stats.errors_injected} queue-full answers, {ignored} left the "
          f"rate alone, decreases {watch.decreases}; rate in force at the end {rate:.0f}")
    assert smsc.stats.errors_injected > 0
    assert all(smsc.received[a] == 1 for a in addrs)
    # the rate in force never fell below half of what the SMSC accepted before the answer
    assert all(after >= 0.5 * before for before, after in watch.decreases)
    assert rate >= 0.5 * 2000
