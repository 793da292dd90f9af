"""The Zalo delivery webhook against Zalo's delivery model: retries of older events accepted once,
the delivery time read from ``message.delivery_time``, and an answer within Zalo's two seconds
whatever the store does."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import uvicorn
from litestar import Litestar
from litestar.testing import AsyncTestClient
from prometheus_client import REGISTRY

from adapters.base import Envelope
from adapters.zalo.adapter import ZaloAdapter
from adapters.zalo.api import SIGNATURE_HEADER, sign
from adapters.zalo.config import ZaloConfig
from adapters.zalo.simulator import ZaloSim, ZaloSimConfig
from adapters.zalo.tokens import MemoryTokenStore
from adapters.zalo.webhook import DeliveryEvent, ZaloEvent
from bench.localredis import free_port
from dispatcher.domain.errors import ConfigError
from dispatcher.domain.model import Channel
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.service.api import ApiConfig, create_app, create_webhook_app, load_api_config
from dispatcher.service.settings import Settings
from dispatcher.service.zalo_receipts import to_matcher
from dispatcher.store import MemoryStore, RedisStore, Store
from tests.conftest import loa_process

APP_ID, OA_SECRET = "zalo-app", "oa-secret"
PATH = "/zalo/webhook"


def ms(seconds: float) -> str:
    return str(int(seconds * 1000))


def event(msg_id: str, stamp: str, delivery_time: str | int | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"msg_id": msg_id, "tracking_id": "w1:84912345678"}
    if delivery_time is not None:
        message["delivery_time"] = delivery_time
    return {"event_name": "user_received_message", "app_id": APP_ID, "timestamp": stamp,
            "recipient": {"id": "84912345678"}, "message": message}


def signed(*events: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(events[0] if len(events) == 1 else list(events)).encode()
    stamp = events[0]["timestamp"]
    return body, {SIGNATURE_HEADER: "mac=" + sign(APP_ID, body, stamp, OA_SECRET),
                  "Content-Type": "application/json"}


def api_app(store: Store, tmp_path: Path, plan: Plan, province: Province, numbering: Numbering,
            got: list[ZaloEvent], **settings: Any) -> Litestar:
    api = ApiConfig(audit_log=str(tmp_path / "audit.jsonl"), zalo_app_id=APP_ID,
                    zalo_oa_secret=OA_SECRET, **settings)
    return create_app(store, Settings(), plan, province, numbering, api, on_zalo_events=got.extend,
                      clock=lambda: dt.datetime.now(dt.UTC))


async def close_on(client: AsyncTestClient[Litestar], store: Store) -> None:
    """Close ``store`` on the loop its app runs on."""
    await asyncio.to_thread(client.blocking_portal.call, store.aclose)


def zalo_config(sim: ZaloSim) -> ZaloConfig:
    return ZaloConfig(base_url=sim.url, oa_url=sim.url, oauth_url=sim.url,
                      app_id=sim.config.app_id, secret_key=sim.config.secret_key,
                      template_id="loa-alert", timeout=2.0, token_retry_after=0.0)


# -- Zalo's retries of older events ---------------------------------------------------------------


async def test_a_signed_event_twenty_minutes_old_is_taken_once(
        redis_url: str, tmp_path: Path, plan: Plan, province: Province,
        numbering: Numbering) -> None:
    store = RedisStore(redis_url)
    got: list[ZaloEvent] = []
    app = api_app(store, tmp_path, plan, province, numbering, got)
    old = ms(time.time() - 20 * 60)  # Zalo's third try comes 20 minutes after the first
    async with AsyncTestClient(app) as client:
        body, headers = signed(event("m-1", old))
        r = await client.post(PATH, content=body, headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["events"] == 1
        # the same event again (Zalo's next try, or a replay): 200, and not passed on twice
        r = await client.post(PATH, content=body, headers=headers)
        assert r.status_code == 200 and r.json()["events"] == 0
        await close_on(client, store)
    assert [e.msg_id for e in got] == ["m-1"]


async def test_an_event_older_than_the_age_window_is_refused(
        tmp_path: Path, plan: Plan, province: Province, numbering: Numbering) -> None:
    got: list[ZaloEvent] = []
    app = api_app(MemoryStore(), tmp_path, plan, province, numbering, got,
                  zalo_max_age_seconds=1800.0)
    async with AsyncTestClient(app) as client:
        body, headers = signed(event("m-1", ms(time.time() - 3600)))
        r = await client.post(PATH, content=body, headers=headers)
    assert r.status_code == 401 and "3600 s old (more than 1800 s)" in r.json()["detail"]
    assert got == []


def test_the_age_window_is_checked_when_read(tmp_path: Path) -> None:
    config = tmp_path / "loa.toml"
    for line, field in (("zalo_max_age_seconds = 0", "zalo_max_age_seconds"),
                        ("zalo_max_age_seconds = 100000", "zalo_max_age_seconds"),
                        ("zalo_webhook_wait_seconds = 2.5", "zalo_webhook_wait_seconds"),
                        ("zalo_webhook_queue = 0", "zalo_webhook_queue")):
        config.write_text(f"[api]\n{line}\n", encoding="utf-8")
        with pytest.raises(ConfigError, match=rf"api\.{field}"):
            load_api_config(config)


# -- the delivery time --------------------------------------------------------------------------


def delay_samples() -> tuple[float, float]:
    count = REGISTRY.get_sample_value("loa_zalo_delivery_delay_seconds_count") or 0.0
    total = REGISTRY.get_sample_value("loa_zalo_delivery_delay_seconds_sum") or 0.0
    return count, total


async def test_the_delivery_time_is_message_delivery_time(
        tmp_path: Path, plan: Plan, province: Province, numbering: Numbering) -> None:
    got: list[ZaloEvent] = []
    app = api_app(MemoryStore(), tmp_path, plan, province, numbering, got)
    now = time.time()
    sent = now - 5  # the event's timestamp: when Zalo posted it
    delivered = now - 600  # when the handset got the message: ten minutes before
    before = delay_samples()
    async with AsyncTestClient(app) as client:
        for body, headers in (signed(event("m-1", ms(sent), ms(delivered))),  # a string
                              signed(event("m-2", ms(sent), int(ms(delivered)))),  # a number
                              signed(event("m-3", ms(sent)))):  # none: the event's time
            r = await client.post(PATH, content=body, headers=headers)
            assert r.status_code == 200 and r.json()["events"] == 1, r.text
    by_id = {e.msg_id: e for e in got if isinstance(e, DeliveryEvent)}
    assert by_id["m-1"].delivered_at == pytest.approx(delivered, abs=0.01)
    assert by_id["m-2"].delivered_at == pytest.approx(delivered, abs=0.01)
    assert by_id["m-3"].delivered_at == pytest.approx(sent, abs=0.01)
    # the receipt handed to the matcher carries it
    receipts: list[Any] = []
    to_matcher(receipts.extend)(got)
    assert [r.delivered_at for r in receipts] == [e.delivered_at for e in by_id.values()]
    count, total = delay_samples()
    assert count - before[0] == 3
    assert total - before[1] == pytest.approx(600 + 600 + 5, abs=5)


# -- an answer within Zalo's two seconds, whatever the store does -------------------------------


def pause(redis_url: str, ms_: int) -> None:
    """Every client of the redis-server waits ``ms_`` milliseconds (CLIENT PAUSE ALL)."""
    client = redis.Redis.from_url(redis_url)
    try:
        client.client_pause(ms_, all=True)
    finally:
        client.close()


async def until(condition: Any, timeout: float = 5.0) -> None:
    """Wait until ``condition()`` holds (bounded: a bound on a hang, not a measure)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        await asyncio.sleep(0.02)


async def test_a_stalled_store_is_answered_from_the_queue_and_nothing_is_lost(
        redis_url: str, tmp_path: Path, plan: Plan, province: Province,
        numbering: Numbering) -> None:
    # a short socket timeout: the store's command times out while Redis still holds it; the
    # batch is sent again with the same tokens, so its events are taken once, not lost
    store = RedisStore(redis_url + "?socket_timeout=0.3")
    got: list[ZaloEvent] = []
    app = api_app(store, tmp_path, plan, province, numbering, got,
                  zalo_webhook_wait_seconds=0.2)
    async with AsyncTestClient(app) as client:
        body, headers = signed(event("m-1", ms(time.time())), event("m-2", ms(time.time())))
        pause(redis_url, 1200)
        r = await client.post(PATH, content=body, headers=headers)
        assert r.status_code == 200, r.text
        assert r.json() == {"status": "ok", "events": 0, "queued": 2}
        assert got == []  # Redis is still paused: the answer did not wait for it
        await until(lambda: len(got) == 2)
        # Zalo's next try of the same body: taken already, answered 200, not passed on again
        r = await client.post(PATH, content=body, headers=headers)
        assert r.status_code == 200 and r.json() == {"status": "ok", "events": 0, "queued": 0}
        await close_on(client, store)
    assert sorted(e.msg_id for e in got) == ["m-1", "m-2"]


async def test_a_stopping_api_takes_the_queued_events_before_it_ends(
        redis_url: str, tmp_path: Path, plan: Plan, province: Province,
        numbering: Numbering) -> None:
    store = RedisStore(redis_url)
    got: list[ZaloEvent] = []
    app = api_app(store, tmp_path, plan, province, numbering, got,
                  zalo_webhook_wait_seconds=0.2)
    app.on_shutdown.insert(0, store.aclose)  # the hooks run last first: after the intake's
    async with AsyncTestClient(app) as client:
        body, headers = signed(event("m-1", ms(time.time())))
        pause(redis_url, 800)
        r = await client.post(PATH, content=body, headers=headers)
        assert r.status_code == 200 and r.json()["queued"] == 1
    # the shutdown waited (up to 2 s) for Redis to take the queued event
    assert [e.msg_id for e in got] == ["m-1"]


def queue_full() -> float:
    return REGISTRY.get_sample_value("loa_webhook_queue_full_total") or 0.0


async def test_a_full_queue_answers_503_and_zalo_sends_the_event_again(
        redis_url: str, tmp_path: Path, plan: Plan, province: Province,
        numbering: Numbering) -> None:
    store = RedisStore(redis_url)
    got: list[ZaloEvent] = []
    app = api_app(store, tmp_path, plan, province, numbering, got,
                  zalo_webhook_wait_seconds=0.2, zalo_webhook_queue=1)
    before = queue_full()
    async with AsyncTestClient(app) as client:
        first = signed(event("m-1", ms(time.time())))
        second = signed(event("m-2", ms(time.time())))
        pause(redis_url, 1000)
        r = await client.post(PATH, content=first[0], headers=first[1])
        assert r.status_code == 200 and r.json()["queued"] == 1
        r = await client.post(PATH, content=second[0], headers=second[1])
        assert r.status_code == 503, r.text
        assert r.json()["type"].endswith("webhook-busy")
        assert queue_full() - before == 1
        await until(lambda: len(got) == 1)
        r = await client.post(PATH, content=second[0], headers=second[1])  # Zalo's next try
        assert r.status_code == 200 and r.json()["events"] == 1
        await close_on(client, store)
    assert [e.msg_id for e in got] == ["m-1", "m-2"]


# -- the simulator's webhooks: Zalo's layout and its tries again ---------------------------------


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def test_the_simulator_tries_a_refused_webhook_again_with_the_same_event(
        tmp_path: Path) -> None:
    port = free_port()
    sim = ZaloSim(ZaloSimConfig(webhook_url=f"http://127.0.0.1:{port}{PATH}",
                                webhook_delay=0.0, webhook_retry_schedule=(0.2,) * 20))
    await sim.start()
    adapter = ZaloAdapter(zalo_config(sim), MemoryTokenStore("sim-access-token",
                                                             "sim-refresh-token"))
    got: list[ZaloEvent] = []
    api = ApiConfig(audit_log=str(tmp_path / "audit.jsonl"), zalo_app_id=sim.config.app_id,
                    zalo_oa_secret=sim.config.oa_secret)
    server = _Server(uvicorn.Config(create_webhook_app(MemoryStore(), api,
                                                       on_zalo_events=got.extend),
                                    host="127.0.0.1", port=port, loop="none", lifespan="on",
                                    log_config=None, access_log=False))
    serving: asyncio.Task[None] | None = None
    try:
        sent = await adapter.send(Envelope(wave="w1", channel=Channel.ZALO, text="KHẨN",
                                           addrs=[f"8491000000{i}" for i in range(3)],
                                           route="zalo"))
        await until(lambda: sim.stats.webhook_failures >= 3)  # no receiver yet: refused
        receiver_up = time.time()
        serving = asyncio.create_task(server.serve())
        assert await sim.flush_webhooks(5.0)
    finally:
        server.should_exit = True
        if serving is not None:
            await serving
        await adapter.aclose()
        await sim.stop()
    assert sorted(e.msg_id for e in got) == sorted(sent.remote_ids)
    assert sim.stats.webhooks_sent == 3 and sim.stats.webhooks_given_up == 0
    for e in got:  # the tries again carry the event as first posted, and its delivery time
        assert isinstance(e, DeliveryEvent)
        assert e.timestamp < receiver_up and e.delivered_at <= e.timestamp + 0.01


async def test_the_simulator_gives_a_webhook_up_after_its_schedule() -> None:
    port = free_port()  # nothing listens there
    sim = ZaloSim(ZaloSimConfig(webhook_url=f"http://127.0.0.1:{port}{PATH}",
                                webhook_retry_schedule=(0.01, 0.02)))
    await sim.start()
    adapter = ZaloAdapter(zalo_config(sim), MemoryTokenStore("sim-access-token",
                                                             "sim-refresh-token"))
    try:
        await adapter.send(Envelope(wave="w1", channel=Channel.ZALO, text="KHẨN",
                                    addrs=["84910000001", "84910000002"], route="zalo"))
        assert await sim.flush_webhooks(5.0)
    finally:
        await adapter.aclose()
        await sim.stop()
    assert sim.stats.webhook_failures == 6 and sim.stats.webhooks_given_up == 2


# -- through `loa api`: Zalo's two seconds on the public listener --------------------------------


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """POST as Zalo does: it waits 2 s for the answer (a timeout fails the test)."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=2.0) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


async def test_loa_api_answers_zalo_within_two_seconds_while_redis_is_paused(
        redis_url: str, tmp_path: Path) -> None:
    port, webhook_port = free_port(), free_port()
    config = tmp_path / "loa.toml"
    config.write_text(f'[api]\nport = {port}\nwebhook_port = {webhook_port}\n'
                      f'zalo_app_id = "{APP_ID}"\nzalo_oa_secret_env = "LOA_TEST_OA_SECRET"\n'
                      '[channels]\nsimulate = ["sms", "zalo", "email", "app", "facebook", '
                      '"loudspeaker", "cell_broadcast"]\n',
                      encoding="utf-8")
    hook = f"http://127.0.0.1:{webhook_port}{PATH}"
    taken = redis.Redis.from_url(redis_url)
    with loa_process(["api", "--config", str(config)], cwd=tmp_path,
                     ready=[f"http://127.0.0.1:{port}/healthz", hook],
                     env=os.environ | {"LOA_REDIS_URL": redis_url,
                                       "LOA_TEST_OA_SECRET": OA_SECRET}) as proc:
        body, headers = signed(event("m-1", ms(time.time() - 20 * 60)))  # a try of 20 min ago
        pause(redis_url, 1800)  # longer than the wait (1.5 s), shorter than Zalo's 2 s
        status, answer = await asyncio.to_thread(post, hook, body, headers)
        assert (status, answer) == (200, {"status": "ok", "events": 0, "queued": 1})
        # once Redis answers again, the event is taken: its id is in the store's dedup
        await until(lambda: any(taken.hexists(k, "m-1") for k in taken.keys("*seen:webhook*")),
                    timeout=10.0)
        status, answer = await asyncio.to_thread(post, hook, body, headers)
        assert (status, answer) == (200, {"status": "ok", "events": 0, "queued": 0})
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    proc.communicate()
    taken.close()
