"""Pushing to a public Wi-Fi controller (adapters/wifi) against its simulator over loopback: the
status table, the signature the controller checks, the idempotency key, and each fault (down,
slow, throttled, refused, rejected, 5xx, accepted and then too slow to answer)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
import urllib.request
from collections.abc import AsyncIterator
from email.utils import format_datetime

import pytest

from adapters.http.signature import verify
from adapters.wifi.client import WifiClient
from adapters.wifi.simulator import Fault, WifiControllerSim
from adapters.wifi.status import outcome, retry_after
from dispatcher.domain.errors import ConfigError
from dispatcher.domain.wifi import PushOutcome, WifiController, WifiSettings

SECRET = "k3y-of-the-hue-park-controller"
BODY = json.dumps({"identifier": "loa.level.L3-1", "msgType": "Alert", "level": 3,
                   "level_name": "Cấp độ III"}, ensure_ascii=False).encode()
KEY = "loa.level.L3-1:hue-park"


def controller(sim: WifiControllerSim, secret: str = SECRET) -> WifiController:
    return WifiController(id="hue-park", url=sim.url, secret_env="LOA_WIFI_HUE_SECRET",
                          secret=secret)


def settings(sim: WifiControllerSim, timeout: float = 10.0) -> WifiSettings:
    return WifiSettings(controllers=[controller(sim)], proxy="direct", timeout=timeout)


@pytest.fixture
async def sim() -> AsyncIterator[WifiControllerSim]:
    async with WifiControllerSim(secret=SECRET) as server:
        yield server


@pytest.fixture
async def client(sim: WifiControllerSim) -> AsyncIterator[WifiClient]:
    made = WifiClient(settings(sim, timeout=0.5))
    yield made
    await made.aclose()


def test_the_status_table() -> None:
    table = {200: PushOutcome.PUSHED, 202: PushOutcome.PUSHED, 204: PushOutcome.PUSHED,
             401: PushOutcome.REFUSED, 403: PushOutcome.REFUSED, 429: PushOutcome.THROTTLED,
             408: PushOutcome.ERROR, 425: PushOutcome.ERROR, 500: PushOutcome.ERROR,
             502: PushOutcome.ERROR, 503: PushOutcome.ERROR, 400: PushOutcome.REJECTED,
             404: PushOutcome.REJECTED, 413: PushOutcome.REJECTED, 422: PushOutcome.REJECTED,
             301: PushOutcome.REJECTED, 101: PushOutcome.REJECTED, 999: PushOutcome.ERROR}
    assert {status: outcome(status) for status in table} == table


def test_retry_after_is_seconds_or_a_date() -> None:
    now = dt.datetime(2026, 3, 1, 1, 0, tzinfo=dt.UTC)
    assert retry_after("120", now) == 120.0
    assert retry_after(" 7 ", now) == 7.0
    assert retry_after(format_datetime(now + dt.timedelta(seconds=30), usegmt=True), now) == 30
    assert retry_after(format_datetime(now - dt.timedelta(hours=1), usegmt=True), now) == 0.0
    for useless in ("", "soon", "-5", "1.5", "99999999999"):
        assert retry_after(useless, now) is None, useless


async def test_a_push_is_signed_and_the_controller_keeps_it(
        sim: WifiControllerSim, client: WifiClient) -> None:
    result = await client.push(controller(sim), BODY, KEY)
    assert (result.outcome, result.status) == (PushOutcome.PUSHED, 200)
    assert sim.identifiers == ["loa.level.L3-1"] and sim.notices[0]["level_name"] == "Cấp độ III"
    headers = sim.headers[0]
    assert headers["idempotency-key"] == KEY
    assert headers["content-type"] == "application/json; charset=utf-8"
    # what the docs tell a controller to do: the HMAC of "<timestamp>.<raw body>"
    assert verify(SECRET, BODY, headers["x-loa-timestamp"], headers["x-loa-signature"],
                  now=time.time()) is None
    assert verify("another", BODY, headers["x-loa-timestamp"], headers["x-loa-signature"],
                  now=time.time()) == "bad signature"


async def test_a_wrong_secret_is_refused_and_nothing_is_kept(sim: WifiControllerSim) -> None:
    wrong = WifiClient(settings(sim))
    try:
        result = await wrong.push(controller(sim, secret="an-old-secret"), BODY, KEY)
    finally:
        await wrong.aclose()
    assert (result.outcome, result.status) == (PushOutcome.REFUSED, 401)
    assert "bad signature" in result.reason and "an-old-secret" not in result.reason
    assert sim.stats.bad_signatures == 1 and sim.notices == []


async def test_a_push_signed_long_ago_is_refused(sim: WifiControllerSim) -> None:
    late = WifiClient(settings(sim), clock=lambda: time.time() - 600)  # a replay, or a bad clock
    try:
        result = await late.push(controller(sim), BODY, KEY)
    finally:
        await late.aclose()
    assert result.outcome is PushOutcome.REFUSED and "timestamp" in result.reason
    assert sim.stats.stale == 1 and sim.notices == []


async def test_a_repeat_is_answered_by_its_key_and_kept_once(
        sim: WifiControllerSim, client: WifiClient) -> None:
    for _ in range(3):
        assert (await client.push(controller(sim), BODY, KEY)).outcome is PushOutcome.PUSHED
    assert len(sim.notices) == 1 and sim.stats.replays == 2
    other = await client.push(controller(sim), BODY, "loa.level.L3-1:bai-chay")
    assert other.outcome is PushOutcome.PUSHED and len(sim.notices) == 2


@pytest.mark.parametrize(("fault", "expected", "status"), [
    ("500", PushOutcome.ERROR, 500), ("429", PushOutcome.THROTTLED, 429),
    ("401", PushOutcome.REFUSED, 401), ("403", PushOutcome.REFUSED, 403),
    ("400", PushOutcome.REJECTED, 400)])
async def test_each_injected_status_has_its_outcome_and_keeps_nothing(
        sim: WifiControllerSim, client: WifiClient, fault: str, expected: PushOutcome,
        status: int) -> None:
    sim.set_fault(Fault(fault=fault, count=1, retry_after="7"))
    result = await client.push(controller(sim), BODY, KEY)
    assert (result.outcome, result.status) == (expected, status)
    assert result.reason.startswith(f"HTTP {status}")
    assert result.retry_after == (7.0 if fault == "429" else None)
    assert sim.notices == [] and sim.stats.faults == 1
    # the fault was for one push: the next is taken
    assert (await client.push(controller(sim), BODY, KEY)).outcome is PushOutcome.PUSHED
    assert len(sim.notices) == 1


async def test_a_controller_that_is_down_is_unreachable_until_it_comes_back(
        sim: WifiControllerSim, client: WifiClient) -> None:
    await sim.go_down()
    result = await client.push(controller(sim), BODY, KEY)
    assert result.outcome is PushOutcome.UNREACHABLE and "cannot connect" in result.reason
    await sim.come_up()
    assert (await client.push(controller(sim), BODY, KEY)).outcome is PushOutcome.PUSHED
    assert sim.identifiers == ["loa.level.L3-1"]


async def test_a_slow_controller_times_out(sim: WifiControllerSim,
                                           client: WifiClient) -> None:
    sim.set_fault(Fault(fault="slow", count=1, delay=3.0))
    result = await client.push(controller(sim), BODY, KEY)
    assert result.outcome is PushOutcome.TIMEOUT and "may have arrived" in result.reason
    assert (await client.push(controller(sim), BODY, KEY)).outcome is PushOutcome.PUSHED
    assert len(sim.notices) == 1


async def test_accepted_then_too_slow_a_retry_with_the_key_is_not_kept_twice(
        sim: WifiControllerSim, client: WifiClient) -> None:
    """The duplicate Loa may cause: the controller kept the notice and Loa did not hear it.
    Loa pushes it again, with the same key, and the controller keeps it once."""
    sim.set_fault(Fault(fault="accept-timeout", count=1, delay=3.0))
    assert (await client.push(controller(sim), BODY, KEY)).outcome is PushOutcome.TIMEOUT
    assert len(sim.notices) == 1
    assert (await client.push(controller(sim), BODY, KEY)).outcome is PushOutcome.PUSHED
    assert len(sim.notices) == 1 and sim.stats.replays == 1


async def test_the_fault_is_set_over_http_and_a_wrong_one_is_refused(
        sim: WifiControllerSim) -> None:
    def post(body: dict[str, object]) -> int:
        request = urllib.request.Request(f"http://127.0.0.1:{sim.port}/sim/fault",
                                         json.dumps(body).encode(), method="POST")
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    assert await asyncio.to_thread(post, {"fault": "teapot"}) == 400
    assert await asyncio.to_thread(post, {"fault": "500", "count": 2}) == 200
    client = WifiClient(settings(sim))
    try:
        outcomes = [(await client.push(controller(sim), BODY, KEY)).outcome for _ in range(3)]
    finally:
        await client.aclose()
    assert outcomes == [PushOutcome.ERROR, PushOutcome.ERROR, PushOutcome.PUSHED]


def test_a_wrong_proxy_or_ca_file_is_a_config_error(tmp_path: object) -> None:
    base = WifiSettings(controllers=[WifiController(id="a", url="https://wifi.example.vn/n",
                                                    secret_env="S", secret="x")])
    with pytest.raises(ConfigError, match=r"^wifi\.proxy: a password is not written"):
        WifiClient(WifiSettings(proxy="http://user:pw@proxy.example:3128"))
    with pytest.raises(ConfigError, match=r"^wifi\.ca_file: cannot read /nonexistent/ca.pem"):
        WifiClient(WifiSettings(controllers=base.controllers, ca_file="/nonexistent/ca.pem"))


async def test_down_for_a_while_then_back_by_itself(sim: WifiControllerSim,
                                                    client: WifiClient) -> None:
    sim.set_fault(Fault(fault="down", down_seconds=0.3))
    for _ in range(50):  # the port closes as the downtime starts
        if sim.down:
            break
        await asyncio.sleep(0.01)
    assert (await client.push(controller(sim), BODY, KEY)).outcome is PushOutcome.UNREACHABLE
    outcomes = []
    for _ in range(50):  # bounded: 5 s at most
        outcomes.append((await client.push(controller(sim), BODY, KEY)).outcome)
        if outcomes[-1] is PushOutcome.PUSHED:
            break
        await asyncio.sleep(0.1)
    assert outcomes[-1] is PushOutcome.PUSHED and sim.identifiers == ["loa.level.L3-1"]
