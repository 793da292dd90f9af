"""The HTTP channel (app push) against its simulator: both modes, signatures, the status table,
per-message answers, idempotent retries, bounded concurrency, an endpoint that is down or slow."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import aiohttp
import msgspec
import pytest
from aiohttp import web

from adapters.base import Envelope, Progress
from adapters.http.signature import sign
from adapters.webhook import WebhookAdapter, WebhookConfig
from adapters.webhook.adapter import batch_key, message_key, outcome
from adapters.webhook.simulator import WebhookSim
from bench.localredis import free_port
from dispatcher.domain.errors import ChannelError, ConfigError
from dispatcher.domain.model import Channel

SECRET = "s3cr3t-shared-with-the-app"
TEXT = "Cấp độ dịch 3 tại Hạ Long: hạn chế tụ tập, đeo khẩu trang nơi công cộng."


def envelope(n: int, wave: str = "w-1", prefix: str = "u") -> Envelope:
    return Envelope(wave=wave, channel=Channel.APP, text=TEXT, subject="Thông báo khẩn",
                    addrs=[f"{prefix}{k}" for k in range(n)], route="app")


def config(sim: WebhookSim, **kw: object) -> WebhookConfig:
    return msgspec.structs.replace(WebhookConfig(url=sim.url, secret=SECRET), **kw)


@pytest.fixture
async def sim() -> AsyncIterator[WebhookSim]:
    async with WebhookSim(secret=SECRET, keep=True) as server:
        yield server


@pytest.fixture
async def adapters() -> AsyncIterator[list[WebhookAdapter]]:
    made: list[WebhookAdapter] = []
    yield made
    for adapter in made:
        await adapter.aclose()


def adapter_for(made: list[WebhookAdapter], cfg: WebhookConfig) -> WebhookAdapter:
    made.append(WebhookAdapter(cfg))
    return made[-1]


async def test_message_mode_one_signed_post_per_message(
        sim: WebhookSim, adapters: list[WebhookAdapter]) -> None:
    adapter = adapter_for(adapters, config(sim, mode="message"))
    results = await adapter.send(envelope(12))
    assert sorted(results.sent) == list(range(12))
    assert not (results.retry or results.failed or results.requeue)
    assert len(results.remote_ids) == 12 and all(r.startswith("sim-") for r in results.remote_ids)
    assert not results.receipts
    assert sim.requests == 12 and sim.received == {f"u{k}": 1 for k in range(12)}
    assert len(sim.connections) <= 8  # kept alive: at most one connection per slot
    await adapter.send(envelope(12, wave="w-2"))
    assert sim.requests == 24 and len(sim.connections) <= 8
    headers, body = sim.log[0]
    assert body == {"wave": "w-1", "channel": "app", "to": body["to"], "text": TEXT,
                    "subject": "Thông báo khẩn", "id": f"w-1:{body['to']}"}
    assert headers["Idempotency-Key"] == f"w-1:{body['to']}"
    assert headers["X-Loa-Signature"].startswith("sha256=")
    assert headers["Content-Type"].startswith("application/json")


async def test_batch_mode_splits_by_batch_size(sim: WebhookSim,
                                               adapters: list[WebhookAdapter]) -> None:
    adapter = adapter_for(adapters, config(sim, batch_size=7, headers={"X-App": "smart-qn"}))
    env = envelope(20)
    results = await adapter.send(env)
    assert sorted(results.sent) == list(range(20)) and results.remote_ids == []
    assert sim.requests == 3 and sim.received == {a: 1 for a in env.addrs}
    bodies = sorted((b for _, b in sim.log), key=lambda b: -len(b["messages"]))
    assert [len(b["messages"]) for b in bodies] == [7, 7, 6]
    first = bodies[0]
    assert {k: first[k] for k in ("wave", "channel", "text", "subject")} == {
        "wave": "w-1", "channel": "app", "text": TEXT, "subject": "Thông báo khẩn"}
    assert first["messages"][0] == {"to": first["messages"][0]["to"],
                                    "id": f"w-1:{first['messages'][0]['to']}"}
    headers = sim.log[0][0]
    assert headers["X-App"] == "smart-qn"
    chunk = [m["to"] for m in sim.log[0][1]["messages"]]
    assert headers["Idempotency-Key"] == batch_key("w-1", chunk)


def test_keys_are_stable() -> None:
    assert message_key("w-1", "u1") == "w-1:u1"
    assert batch_key("w-1", ["a", "b"]) == batch_key("w-1", ["b", "a"])
    assert batch_key("w-1", ["a", "b"]) != batch_key("w-2", ["a", "b"])
    assert batch_key("w-1", ["a", "b"]) != batch_key("w-1", ["a", "c"])
    assert sign("k", b"{}", 1) == sign("k", b"{}", 1) != sign("other", b"{}", 1)
    assert sign("k", b"{}", 1) != sign("k", b"{}", 2)  # the time is signed with the body


def test_status_table() -> None:
    sent, retry, failed = (outcome(s).value for s in (200, 503, 404))
    assert (sent, retry, failed) == ("sent", "retry", "failed")
    assert {outcome(s).value for s in (201, 202, 204)} == {"sent"}
    assert {outcome(s).value for s in (408, 425, 429, 500, 502, 504)} == {"retry"}
    assert {outcome(s).value for s in (301, 400, 410, 422)} == {"failed"}
    assert {outcome(s).value for s in (401, 403)} == {"requeue"}  # Loa is refused, not a message


@pytest.mark.parametrize("mode", ["message", "batch"])
async def test_wrong_secret_is_refused_and_waits(sim: WebhookSim,
                                                 adapters: list[WebhookAdapter],
                                                 mode: str) -> None:
    adapter = adapter_for(adapters, config(sim, mode=mode, secret="not-the-secret"))
    results = await adapter.send(envelope(3))
    assert results.sent == [] and sorted(i for i, _ in results.requeue) == [0, 1, 2]
    assert all(r.startswith("HTTP 401: ") and "bad signature" in r for _, r in results.requeue)
    assert all("not-the-secret" not in r for _, r in results.requeue)
    assert sim.bad_signatures >= 1 and sim.messages == 0


async def test_unsigned_request_is_refused(sim: WebhookSim,
                                           adapters: list[WebhookAdapter]) -> None:
    adapter = adapter_for(adapters, config(sim, secret=""))
    results = await adapter.send(envelope(2))
    assert [r for _, r in results.requeue] == ["HTTP 401: {\"error\": \"bad signature\"}"] * 2


async def test_throttled_and_unavailable_are_retried(sim: WebhookSim,
                                                     adapters: list[WebhookAdapter]) -> None:
    sim.status_by_addr = {"u1": 429, "u2": 503, "u3": 400}
    adapter = adapter_for(adapters, config(sim, mode="message"))
    results = await adapter.send(envelope(5))
    assert sorted(results.sent) == [0, 4]
    assert sorted(results.retry) == [(1, 'HTTP 429: {"error": "injected 429"}'),
                                     (2, 'HTTP 503: {"error": "injected 503"}')]
    assert results.failed == [(3, 'HTTP 400: {"error": "injected 400"}')]
    assert sim.received == {"u0": 1, "u4": 1}


async def test_batch_takes_the_outcome_of_its_request(sim: WebhookSim,
                                                      adapters: list[WebhookAdapter]) -> None:
    sim.status_by_addr = {"u8": 503}
    adapter = adapter_for(adapters, config(sim, batch_size=5))
    results = await adapter.send(envelope(12))
    assert sorted(results.sent) == [0, 1, 2, 3, 4, 10, 11]
    assert sorted(i for i, _ in results.retry) == [5, 6, 7, 8, 9]


async def test_reason_is_short_and_never_quotes_credentials(
        adapters: list[WebhookAdapter]) -> None:
    token = "Bearer abcdefghijklmnop"

    async def echo(request: web.Request) -> web.Response:
        text = f"bad request: {request.headers['Authorization']} {'x' * 1000}"
        return web.Response(status=422, text=text)

    app = web.Application()
    app.router.add_post("/", echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        adapter = adapter_for(adapters, WebhookConfig(
            url=f"http://127.0.0.1:{port}/?api_key=q", headers={"Authorization": token}))
        results = await adapter.send(envelope(1))
    finally:
        await runner.cleanup()
    [(_, reason)] = results.failed
    assert reason.startswith("HTTP 422: bad request: *** xxx") and len(reason) <= 220
    assert "abcdefghijklmnop" not in reason


async def test_per_item_results_of_a_batch(adapters: list[WebhookAdapter]) -> None:
    async with WebhookSim(secret=SECRET, item_results=True) as sim:
        sim.item_status = {"u1": "failed", "u3": "retry"}
        adapter = adapter_for(adapters, config(sim))
        results = await adapter.send(envelope(5))
    assert sorted(results.sent) == [0, 2, 4]
    assert len(results.remote_ids) == 3 and all(r.startswith("sim-") for r in results.remote_ids)
    assert results.failed == [(1, "injected failed")]
    assert results.retry == [(3, "injected retry")]
    assert sim.received == {"u0": 1, "u2": 1, "u4": 1}


async def test_each_message_is_told_as_its_answer_comes(
        sim: WebhookSim, adapters: list[WebhookAdapter]) -> None:
    sim.delays = {"u9": 0.5}  # one slow answer: the batch is still being sent
    adapter = adapter_for(adapters, config(sim, mode="message", concurrency=4))
    sim.status_by_addr = {"u3": 400}
    progress = Progress()
    sending = asyncio.create_task(adapter.send(msgspec.structs.replace(envelope(10),
                                                                       progress=progress)))
    for _ in range(400):
        if len(progress.sent) == 8 or sending.done():
            break
        await asyncio.sleep(0.005)
    assert sorted(progress.sent) == [0, 1, 2, 4, 5, 6, 7, 8] and not sending.done()
    results = await sending
    assert progress.sent == results.sent and sorted(results.sent) == [0, 1, 2, 4, 5, 6, 7, 8, 9]


async def test_per_item_results_missing_or_unknown_are_retried(
        adapters: list[WebhookAdapter]) -> None:
    async def answer(request: web.Request) -> web.Response:
        body = await request.json()
        first, second, *_ = (m["to"] for m in body["messages"])
        return web.json_response({"results": [
            {"to": first, "status": "sent", "id": "A"},
            {"to": second, "status": "queued"},
            {"to": "someone-else", "status": "sent"}]})

    app = web.Application()
    app.router.add_post("/", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        adapter = adapter_for(adapters, WebhookConfig(
            url=f"http://127.0.0.1:{runner.addresses[0][1]}/"))
        results = await adapter.send(envelope(3))
    finally:
        await runner.cleanup()
    assert results.sent == [0] and results.remote_ids == ["A"]
    assert sorted(results.retry) == [(1, "unknown status 'queued'"),
                                     (2, "no result for this address in the answer")]


async def test_retried_batch_is_not_counted_twice(sim: WebhookSim,
                                                  adapters: list[WebhookAdapter]) -> None:
    sim.delay = 0.6  # the endpoint takes the batch but answers too late
    adapter = adapter_for(adapters, config(sim, timeout=0.2))
    env = envelope(10)
    first = await adapter.send(env)
    assert first.sent == [] and sorted(i for i, _ in first.retry) == list(range(10))
    assert all("may have been delivered" in r for _, r in first.retry)
    assert adapter.stats.timeouts == 1 and adapter.stats.possible_duplicates == 10
    sim.delay = 0.0
    second = await adapter.send(env)  # the same batch again: the same idempotency key
    assert sorted(second.sent) == list(range(10))
    assert sim.replays == 1 and sim.received == {a: 1 for a in env.addrs}


async def test_message_timeout_is_retried(sim: WebhookSim,
                                          adapters: list[WebhookAdapter]) -> None:
    sim.delays = {"u2": 0.6}
    adapter = adapter_for(adapters, config(sim, mode="message", timeout=0.2))
    results = await adapter.send(envelope(4))
    assert sorted(results.sent) == [0, 1, 3]
    assert [i for i, _ in results.retry] == [2] and "no answer in 0.2 s" in results.retry[0][1]
    assert adapter.stats.possible_duplicates == 1
    sim.delays = {}
    again = await adapter.send(Envelope(wave="w-1", channel=Channel.APP, text=TEXT,
                                        addrs=["u2"]))
    assert again.sent == [0] and sim.received["u2"] == 1 and sim.replays == 1


async def test_concurrency_is_bounded_across_sends(sim: WebhookSim,
                                                   adapters: list[WebhookAdapter]) -> None:
    sim.delay = 0.02
    adapter = adapter_for(adapters, config(sim, mode="message", concurrency=3))
    both = await asyncio.gather(adapter.send(envelope(15, prefix="a")),
                                adapter.send(envelope(15, prefix="b")))
    assert [len(r.sent) for r in both] == [15, 15]
    assert sim.max_in_flight == 3 and sim.messages == 30


async def test_batches_in_flight_are_bounded(sim: WebhookSim,
                                             adapters: list[WebhookAdapter]) -> None:
    sim.delay = 0.02
    adapter = adapter_for(adapters, config(sim, batch_size=2, concurrency=2))
    results = await adapter.send(envelope(20))
    assert len(results.sent) == 20 and sim.requests == 10 and sim.max_in_flight == 2


@pytest.mark.parametrize("mode", ["message", "batch"])
async def test_connection_refused_requeues(adapters: list[WebhookAdapter], mode: str) -> None:
    adapter = adapter_for(adapters, WebhookConfig(url=f"http://127.0.0.1:{free_port()}/push",
                                                  mode=mode, batch_size=10, concurrency=4))
    results = await adapter.send(envelope(40))
    assert sorted(i for i, _ in results.requeue) == list(range(40))
    assert not (results.sent or results.retry or results.failed)
    assert all(r.startswith("cannot connect to 127.0.0.1:") for _, r in results.requeue)
    assert adapter.stats.requests <= 4  # found out once per worker, not once per message


async def test_config_from_settings_data_and_checks() -> None:
    cfg = msgspec.convert({"url": "https://push.smartquangninh.vn/v1/notify", "mode": "message",
                           "headers": {"Authorization": "Bearer x"}, "secret_env": "LOA_APP",
                           "concurrency": 16}, WebhookConfig)
    assert cfg.mode == "message" and cfg.batch_size == 500 and cfg.concurrency == 16
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"url": "https://x", "batchsize": 3}, WebhookConfig)
    with pytest.raises(ConfigError, match="mode"):
        WebhookAdapter(WebhookConfig(url="https://x", mode="stream"))
    with pytest.raises(ConfigError, match="url"):
        WebhookAdapter(WebhookConfig(url="ftp://x"))
    with pytest.raises(ConfigError, match="concurrency"):
        WebhookAdapter(WebhookConfig(url="https://x", concurrency=0))
    adapter = WebhookAdapter(cfg)
    await adapter.aclose()
    with pytest.raises(ChannelError):
        await adapter.send(envelope(1))


async def test_requests_carry_a_signed_time_and_a_replay_is_refused(
        sim: WebhookSim, adapters: list[WebhookAdapter]) -> None:
    adapter = adapter_for(adapters, config(sim, mode="message"))
    results = await adapter.send(envelope(1))
    assert len(results.sent) == 1
    headers, body = sim.log[0]
    stamp = headers["X-Loa-Timestamp"]
    assert stamp.isdigit() and abs(int(stamp) - time.time()) < 60
    raw = json.dumps(body).encode()
    assert headers["X-Loa-Signature"] != sign(SECRET, raw, int(stamp) + 1)
    # the same request captured and sent again later, with a new idempotency key: refused
    replay = {"X-Loa-Signature": headers["X-Loa-Signature"], "X-Loa-Timestamp": stamp,
              "Idempotency-Key": "another", "Content-Type": "application/json"}
    sim.clock = lambda: int(stamp) + sim.max_age_seconds + 1
    async with aiohttp.ClientSession() as session, \
            session.post(sim.url, data=raw, headers=replay) as answer:
        assert answer.status == 401 and "timestamp" in await answer.text()
    assert sim.stale == 1


async def test_a_sender_with_a_wrong_clock_is_refused(sim: WebhookSim,
                                                      adapters: list[WebhookAdapter]) -> None:
    adapter = WebhookAdapter(config(sim), clock=lambda: time.time() - 3600)
    adapters.append(adapter)
    results = await adapter.send(envelope(2))
    assert results.sent == [] and len(results.requeue) == 2
    assert sim.stale >= 1 and sim.messages == 0
