"""The pusher of the public notices to the Wi-Fi controllers (dispatcher.engine.wifi), against the
controller simulator over loopback: each new notice once per controller and in order, across a
restart; the newest only to a controller that was behind, the others counted; each fault's
handling (refused, rejected, throttled, errors, timeouts); one pusher under the lease; held by
the emergency stop."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import msgspec
import pytest
from litestar.testing import AsyncTestClient
from prometheus_client import REGISTRY

from adapters.wifi.client import WifiClient
from adapters.wifi.simulator import Fault, WifiControllerSim
from dispatcher.domain.cap import CapSettings, MsgType
from dispatcher.domain.model import Channel
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.domain.wifi import WifiController, WifiSettings, backoff
from dispatcher.engine.cap import CapPublisher
from dispatcher.engine.level import set_level
from dispatcher.engine.stop import lift, stop_all
from dispatcher.engine.wifi import WifiPusher
from dispatcher.service.api import ApiConfig, create_app
from dispatcher.service.auth import Role, TokenEntry, hash_token
from dispatcher.service.settings import ChannelSettings, Settings
from dispatcher.store import MemoryStore, RedisStore, Store

NOW = dt.datetime(2026, 3, 1, 1, 0, tzinfo=dt.UTC)
CAP = CapSettings(sender="soyte@quangninh.gov.vn")
SECRET = "k3y-of-the-controllers"


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Lab:
    """A store, the CAP publisher, controllers (simulators) and the pushers made on them."""

    def __init__(self, store: Store, plan: Plan, province: Province,
                 sims: dict[str, WifiControllerSim]) -> None:
        self.store = store
        self.plan = plan
        self.province = province
        self.sims = sims
        self.publisher = CapPublisher(store, plan, province, CAP)
        self.minute = 0
        self.clock = Clock()
        self.pushers: list[WifiPusher] = []

    def settings(self, **kw: float) -> WifiSettings:
        controllers = [WifiController(id=cid, url=sim.url, secret_env="S", secret=SECRET)
                       for cid, sim in self.sims.items()]
        fields = {"retry_base_seconds": 1.0, "retry_max_seconds": 8.0, "timeout": 2.0, **kw}
        return WifiSettings(controllers=controllers, proxy="direct", **fields)  # type: ignore[arg-type]

    def pusher(self, name: str = "a", lease_seconds: float = 30.0, interval: float = 1.0,
               **kw: float) -> WifiPusher:
        settings = self.settings(**kw)
        made = WifiPusher(self.store, self.plan, self.province.name, settings,
                          WifiClient(settings), name=name, lease_seconds=lease_seconds,
                          interval=interval, clock=lambda: NOW + dt.timedelta(hours=1),
                          monotonic=self.clock, rng=random.Random(7))
        self.pushers.append(made)
        return made

    async def level(self, level: int) -> str:
        """Set the level and publish its message; the message's identifier."""
        self.minute += 1
        when = NOW + dt.timedelta(minutes=self.minute)
        await set_level(self.store, self.plan, now=when, level=level)
        [published] = await self.publisher.tick(when)
        return published.alert.identifier

    async def cursors(self) -> dict[str, int]:
        return await self.store.wifi.cursors()


@pytest.fixture
async def sims() -> AsyncIterator[dict[str, WifiControllerSim]]:
    made = {cid: WifiControllerSim(secret=SECRET) for cid in ("hue-park", "bai-chay")}
    for sim in made.values():
        await sim.start()
    yield made
    for sim in made.values():
        await sim.stop()


async def _lab(store: Store, plan: Plan, province: Province,
               sims: dict[str, WifiControllerSim]) -> AsyncIterator[Lab]:
    lab = Lab(store, plan, province, sims)
    try:
        yield lab
    finally:
        for pusher in lab.pushers:
            await pusher.aclose()


@pytest.fixture
async def lab(plan: Plan, province: Province,
              sims: dict[str, WifiControllerSim]) -> AsyncIterator[Lab]:
    async for found in _lab(MemoryStore(), plan, province, sims):
        yield found


def counted(controller: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("loa_wifi_push_total",
                                     {"controller": controller, "outcome": outcome}) or 0.0


def gauge(name: str, controller: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"controller": controller})


async def test_each_new_notice_is_pushed_once_per_controller_in_order_across_a_restart(
        store: Store, plan: Plan, province: Province,
        sims: dict[str, WifiControllerSim]) -> None:
    async for lab in _lab(store, plan, province, sims):
        pusher = lab.pusher()
        first = await lab.level(2)
        await pusher.step()
        await pusher.step()  # nothing new: nothing pushed
        second = await lab.level(4)
        await pusher.step()
        third = await lab.level(3)
        await pusher.step()
        again = lab.pusher()  # the process restarted
        await again.step()
        for cid, sim in sims.items():
            assert sim.identifiers == [first, second, third], cid
            assert [n["msgType"] for n in sim.notices] == ["Alert", "Update", "Update"]
            assert [n["level"] for n in sim.notices] == [2, 4, 3]
            assert [n["seq"] for n in sim.notices] == [1, 2, 3]
            assert [h["idempotency-key"] for h in sim.headers] == [
                f"{first}:{cid}", f"{second}:{cid}", f"{third}:{cid}"]
            assert sim.stats.requests == 3 and sim.stats.replays == 0
            assert gauge("loa_wifi_lag", cid) == 0
        assert await lab.cursors() == {"hue-park": 3, "bai-chay": 3}


async def test_the_body_is_the_public_notice_json_with_the_message(
        lab: Lab, tmp_path: Path, numbering: Numbering) -> None:
    identifier = await lab.level(3)
    await lab.pusher().step()
    [pushed] = lab.sims["hue-park"].notices
    api = ApiConfig(audit_log=str(tmp_path / "audit.jsonl"),
                    tokens=[TokenEntry("vic", Role.VIEWER, hash_token("loa_token-of-vic"))])
    settings = Settings(channels=ChannelSettings(simulate=list(Channel)), cap=CAP)
    app = create_app(lab.store, settings, lab.plan, lab.province, numbering, api,
                     clock=lambda: NOW + dt.timedelta(hours=1))
    async with AsyncTestClient(app) as client:
        page = (await client.get("/public/notice.json")).json()
    assert {k: v for k, v in pushed.items()
            if k not in ("identifier", "msgType", "status", "seq")} == page
    assert (pushed["identifier"], pushed["msgType"], pushed["status"], pushed["seq"]) == (
        identifier, "Alert", "Actual", 1)
    assert page["message"]["identifier"] == identifier and page["level"] == 3


async def test_a_controller_that_was_down_gets_the_newest_notice_and_the_rest_are_counted(
        lab: Lab) -> None:
    down = lab.sims["bai-chay"]
    pusher = lab.pusher()
    await lab.level(1)
    await down.go_down()
    before = (counted("bai-chay", "superseded"), counted("bai-chay", "unreachable"),
              counted("hue-park", "superseded"))
    await pusher.step()  # bai-chay is owed level 1 from now on, and is down
    await lab.level(2)
    newest = await lab.level(3)
    lab.clock.now += 100
    await pusher.step()
    assert gauge("loa_wifi_lag", "bai-chay") == 3 and gauge("loa_wifi_lag", "hue-park") == 0
    await down.come_up()
    lab.clock.now += 100
    await pusher.step()
    assert down.identifiers == [newest] and down.notices[0]["level"] == 3
    assert counted("bai-chay", "superseded") - before[0] == 2
    assert counted("bai-chay", "unreachable") - before[1] == 2
    assert counted("hue-park", "superseded") - before[2] == 1
    # the one up took the first, and the newest of the two published between two passes
    assert [n["level"] for n in lab.sims["hue-park"].notices] == [1, 3]
    assert await lab.cursors() == {"hue-park": 3, "bai-chay": 3}


async def test_a_controller_added_later_gets_the_newest_notice_only(lab: Lab) -> None:
    for level in (1, 2):
        await lab.level(level)
    newest = await lab.level(3)
    before = counted("hue-park", "superseded")
    await lab.pusher().step()
    assert lab.sims["hue-park"].identifiers == [newest]
    assert counted("hue-park", "superseded") == before  # it was owed nothing older


async def test_a_refused_push_alerts_and_the_notice_waits_until_it_is_taken(
        lab: Lab, caplog: pytest.LogCaptureFixture) -> None:
    sim = lab.sims["hue-park"]
    pusher = lab.pusher(refused_retry_seconds=60.0)
    identifier = await lab.level(2)
    sim.set_fault(Fault(fault="401"))  # until changed: the controller's secret was rotated
    with caplog.at_level(logging.INFO, logger="dispatcher.engine.wifi"):
        await pusher.step()
        assert pusher.waiting("hue-park") == 60.0
        assert gauge("loa_wifi_refused", "hue-park") == 1
        await pusher.step()  # not due yet
        assert sim.stats.requests == 1
        lab.clock.now += 60
        await pusher.step()  # tried again, refused again: one ALERT line for both
        assert sim.stats.requests == 2 and sim.notices == []
        assert (await lab.cursors())["hue-park"] == 0
        sim.set_fault(Fault())
        lab.clock.now += 60
        await pusher.step()
    assert sim.identifiers == [identifier]
    assert gauge("loa_wifi_refused", "hue-park") == 0
    alerts = [r.getMessage() for r in caplog.records if r.getMessage().startswith("ALERT")]
    assert len(alerts) == 1 and "hue-park refuses Loa (HTTP 401" in alerts[0]
    assert "secret_env" in alerts[0] and SECRET not in caplog.text
    assert any("hue-park takes Loa's notices again" in r.getMessage() for r in caplog.records)


async def test_a_rejected_notice_is_skipped_with_an_alert_and_the_next_one_goes(
        lab: Lab, caplog: pytest.LogCaptureFixture) -> None:
    sim = lab.sims["hue-park"]
    pusher = lab.pusher()
    rejected = await lab.level(2)
    sim.set_fault(Fault(fault="400", count=1))
    before = counted("hue-park", "rejected")
    with caplog.at_level(logging.ERROR, logger="dispatcher.engine.wifi"):
        await pusher.step()
    assert counted("hue-park", "rejected") - before == 1
    assert (await lab.cursors())["hue-park"] == 1 and sim.notices == []
    [alert] = [r.getMessage() for r in caplog.records]
    assert alert.startswith(f"ALERT Wi-Fi controller hue-park rejected notice {rejected} "
                            "(HTTP 400")
    await pusher.step()  # skipped: not pushed again
    assert sim.stats.requests == 1
    newest = await lab.level(3)
    await pusher.step()
    assert sim.identifiers == [newest]


async def test_a_throttled_push_waits_for_its_retry_after_within_the_bound(lab: Lab) -> None:
    sim = lab.sims["hue-park"]
    pusher = lab.pusher(retry_after_max_seconds=600.0)
    identifier = await lab.level(2)
    sim.set_fault(Fault(fault="429", count=1, retry_after="120"))
    await pusher.step()
    assert pusher.waiting("hue-park") == 120.0
    lab.clock.now += 119
    await pusher.step()
    assert sim.stats.requests == 1
    lab.clock.now += 1
    await pusher.step()
    assert sim.identifiers == [identifier]
    sim.set_fault(Fault(fault="429", count=1, retry_after="86400"))
    await lab.level(3)
    await pusher.step()
    assert pusher.waiting("hue-park") == 600.0  # retry_after_max_seconds


async def test_errors_back_off_doubling_with_jitter_up_to_the_most(lab: Lab) -> None:
    sim = lab.sims["hue-park"]
    pusher = lab.pusher(retry_base_seconds=1.0, retry_max_seconds=3.0, retry_jitter=0.2)
    identifier = await lab.level(2)
    sim.set_fault(Fault(fault="500", count=3))
    waits = []
    for _ in range(3):
        await pusher.step()
        waits.append(pusher.waiting("hue-park"))
        lab.clock.now += waits[-1]
    assert 0.8 <= waits[0] <= 1.2 and 1.6 <= waits[1] <= 2.4 and 2.4 <= waits[2] <= 3.0
    await pusher.step()
    assert sim.identifiers == [identifier] and pusher.waiting("hue-park") == 0
    settings = WifiSettings(retry_base_seconds=2.0, retry_max_seconds=300.0, retry_jitter=0.0)
    assert [backoff(n, settings, random.Random(1)) for n in (1, 2, 3, 8, 9, 60)] == [
        2.0, 4.0, 8.0, 256.0, 300.0, 300.0]


async def test_a_notice_taken_but_not_answered_in_time_is_pushed_again_and_kept_once(
        lab: Lab) -> None:
    """The documented duplicate: the controller kept it, Loa did not hear so (or died before
    writing the cursor); the next push has the same key and the controller drops it."""
    sim = lab.sims["hue-park"]
    pusher = lab.pusher(timeout=0.3)
    identifier = await lab.level(2)
    sim.set_fault(Fault(fault="accept-timeout", count=1, delay=2.0))
    await pusher.step()
    assert (await lab.cursors())["hue-park"] == 0 and len(sim.notices) == 1
    lab.clock.now += 10
    await pusher.step()
    assert sim.identifiers == [identifier] and sim.stats.replays == 1
    assert (await lab.cursors())["hue-park"] == 1


async def test_the_emergency_stop_holds_alerts_and_lets_a_cancel_through(lab: Lab) -> None:
    sim = lab.sims["hue-park"]
    pusher = lab.pusher()
    await lab.level(2)
    await stop_all(lab.store, now=NOW, user="olga", reason="sai nội dung")
    await pusher.step()
    assert sim.notices == []
    await lift(lab.store, now=NOW, user="olga")
    await pusher.step()
    assert [n["msgType"] for n in sim.notices] == ["Alert"]
    await stop_all(lab.store, now=NOW, user="olga", reason="kết thúc")
    cancel = await lab.level(0)  # the publisher publishes Cancels during the stop; so is it pushed
    await pusher.step()
    assert sim.identifiers[-1] == cancel and sim.notices[-1]["msgType"] == MsgType.CANCEL
    assert sim.notices[-1]["message"] is None and sim.notices[-1]["level"] == 0


@pytest.fixture
async def redis_lab(redis_url: str, plan: Plan, province: Province,
                    sims: dict[str, WifiControllerSim]) -> AsyncIterator[Lab]:
    store = RedisStore(redis_url)
    try:
        async for found in _lab(store, plan, province, sims):
            yield found
    finally:
        await store.aclose()


def each_has(sims: dict[str, WifiControllerSim], n: int) -> Callable[[], bool]:
    return lambda: all(len(s.notices) >= n for s in sims.values())


async def until(done: Callable[[], bool | Awaitable[bool]], tries: int = 250) -> None:
    """Wait until ``done()`` is true: at most 250 tries, 20 ms apart."""
    for _ in range(tries):
        result = done()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("not done after the tries")


async def test_two_pushers_on_one_redis_push_each_notice_once_and_one_takes_over(
        redis_lab: Lab) -> None:
    lab, sims = redis_lab, redis_lab.sims
    one = lab.pusher("one", lease_seconds=5.0, interval=0.02)
    two = lab.pusher("two", lease_seconds=5.0, interval=0.02)
    stops = {one: asyncio.Event(), two: asyncio.Event()}
    identifiers = []
    async with asyncio.TaskGroup() as tasks:
        runs = {p: tasks.create_task(p.run(stop)) for p, stop in stops.items()}
        for level in (1, 2, 3):
            identifiers.append(await lab.level(level))
            await until(each_has(sims, len(identifiers)))
        [holder] = [p for p in (one, two) if p.held]
        other = two if holder is one else one
        stops[holder].set()  # the holder stops: it lets the lease go
        await runs[holder]
        identifiers.append(await lab.level(4))
        await until(each_has(sims, 4))
        assert other.held
        stops[other].set()
    for cid, sim in sims.items():
        assert sim.identifiers == identifiers, cid
        assert sim.stats.requests == 4 and sim.stats.replays == 0


async def test_a_pusher_that_died_holding_the_lease_is_replaced_after_it(
        redis_lab: Lab) -> None:
    lab, sims = redis_lab, redis_lab.sims
    dead = lab.pusher("dead", lease_seconds=0.5)
    first = await lab.level(2)
    await dead.step()  # pushed, holds the lease; then it is gone (no release)
    second = await lab.level(3)
    heir = lab.pusher("heir", lease_seconds=0.5)
    await heir.step()
    assert not heir.held and all(len(s.notices) == 1 for s in sims.values())
    assert gauge("loa_wifi_lag", "hue-park") == 1  # kept by a process that waits too

    async def heir_pushes() -> bool:
        await heir.step()
        return heir.held

    await until(heir_pushes)
    for sim in sims.values():
        assert sim.identifiers == [first, second]


def test_the_pushed_body_is_json_with_the_wire_names() -> None:
    from dispatcher.domain.wifi import PushedNotice  # noqa: PLC0415

    assert "msgType" in msgspec.json.schema(PushedNotice)["$defs"]["PushedNotice"]["properties"]
