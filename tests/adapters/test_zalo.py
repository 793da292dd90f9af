"""The Zalo channel: the adapter against the Zalo simulator over loopback, token renewal, quota
pause and resume, delivery webhooks (signature, layouts, duplicates) and the simulator itself."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp import web

from adapters.base import Envelope, Results
from adapters.zalo.adapter import ZaloAdapter
from adapters.zalo.api import (
    ERRORS,
    SIGNATURE_HEADER,
    Outcome,
    TokenAnswer,
    classify,
    sign,
    tracking_id,
    verify,
)
from adapters.zalo.config import ZaloConfig, next_quota_reset
from adapters.zalo.simulator import ZaloSim, ZaloSimConfig
from adapters.zalo.tokens import (
    FileTokenStore,
    MemoryTokenStore,
    TokenError,
    TokenManager,
    TokenStore,
)
from adapters.zalo.webhook import (
    Deduper,
    DeliveryEvent,
    WebhookRejected,
    WebhookVerifier,
)
from bench.baseline_clients import baseline_client
from bench.webhookreceiver import make_app
from dispatcher.domain.errors import ConfigError
from dispatcher.domain.model import Channel

WAIT = 5.0  # seconds: the longest any single wait may take
TEXT = "KHẨN: Covid-19 lây lan rộng tại Quảng Ninh. Chỉ ra ngoài khi thật cần thiết."
INITIAL = ("sim-access-token", "sim-refresh-token")


def phones(n: int, start: int = 0) -> list[str]:
    return [f"8491{i:07d}" for i in range(start, start + n)]


def envelope(addrs: list[str], wave: str = "w1") -> Envelope:
    return Envelope(wave=wave, channel=Channel.ZALO, text=TEXT, addrs=addrs, route="zalo")


def config(sim: ZaloSim, **changes: Any) -> ZaloConfig:
    fields: dict[str, Any] = {"base_url": sim.url, "oa_url": sim.url, "oauth_url": sim.url,
                              "app_id": sim.config.app_id, "secret_key": sim.config.secret_key,
                              "template_id": "loa-alert", "timeout": 2.0,
                              "token_retry_after": 0.0}
    fields.update(changes)
    return ZaloConfig(**fields)


def reasons(pairs: list[tuple[int, str]]) -> set[str]:
    return {reason for _, reason in pairs}


@pytest.fixture
async def adapter_for(sim: ZaloSim) -> AsyncIterator[Callable[..., ZaloAdapter]]:
    made: list[ZaloAdapter] = []

    def make(store: TokenStore | None = None, client: str = "loa", **changes: Any) -> ZaloAdapter:
        cfg = config(sim, **changes)
        adapter = ZaloAdapter(cfg, store or MemoryTokenStore(*INITIAL),
                              client=baseline_client(client, cfg.concurrency, cfg.timeout))
        made.append(adapter)
        return adapter

    try:
        yield make
    finally:
        for adapter in made:
            await adapter.aclose()


# -- the tables ----------------------------------------------------------------------------------


def answer(code: int, **data: Any) -> bytes:
    body: dict[str, Any] = {"error": code, "message": "x"}
    if data:
        body["data"] = data
    return json.dumps(body).encode()


@pytest.mark.parametrize(("status", "body", "expected"), [
    (200, answer(0, msg_id="m1"), Outcome.SENT),
    (200, answer(0), Outcome.RETRY),  # success without a message id
    (200, answer(-100), Outcome.RETRY),
    (200, answer(-108), Outcome.FAIL),
    (200, answer(-109), Outcome.CONFIGURATION),  # a template fault stops the route
    (200, answer(-111), Outcome.CONFIGURATION),
    (200, answer(-112), Outcome.CONFIGURATION),
    (200, answer(-115), Outcome.BALANCE),
    (200, answer(-133), Outcome.NIGHT),
    (200, answer(-141), Outcome.FALLBACK),
    (200, answer(-114), Outcome.FALLBACK),
    (200, answer(-118), Outcome.FALLBACK),
    (200, answer(-124), Outcome.REFRESH),
    (200, answer(-131), Outcome.CONFIGURATION),  # template not approved, not the quota
    (200, answer(-144), Outcome.QUOTA),
    (200, answer(-999), Outcome.RETRY),  # a code Loa does not know
    (200, b"<html>oops</html>", Outcome.RETRY),
    (429, b"", Outcome.RETRY),
    (500, b"", Outcome.RETRY),
    (503, b"", Outcome.RETRY),
    (400, b"", Outcome.FAIL),
    (404, b"", Outcome.FAIL),
])
def test_classify_by_table(status: int, body: bytes, expected: Outcome) -> None:
    result, reason = classify(status, body)
    assert result is expected
    assert (reason == "") == (expected is Outcome.SENT)


def test_error_table_names_every_policy_code() -> None:
    assert {c for c, (_, o) in ERRORS.items() if o is Outcome.FAIL} >= {-108, -106, -122}
    assert {c for c, (_, o) in ERRORS.items() if o is Outcome.CONFIGURATION} >= {
        -101, -102, -103, -104, -105, -109, -111, -112, -131}
    assert {c for c, (_, o) in ERRORS.items() if o is Outcome.BALANCE} >= {-115, -136, -137}
    assert {c for c, (_, o) in ERRORS.items() if o is Outcome.QUOTA} >= {-144, -147, -1441}
    assert {c for c, (_, o) in ERRORS.items() if o is Outcome.FALLBACK} >= {
        -114, -118, -119, -134, -139, -140, -141, -1471, -110}
    assert ERRORS[-133][1] is ERRORS[-234][1] is Outcome.NIGHT
    assert ERRORS[-124][1] is ERRORS[-220][1] is Outcome.REFRESH
    assert ERRORS[-100][1] is Outcome.RETRY


def test_signature_formula() -> None:
    body = b'{"event_name":"user_received_message"}'
    expected = hashlib.sha256(b"app" + body + b"1700000000000" + b"secret").hexdigest()
    assert sign("app", body, "1700000000000", "secret") == expected
    assert verify("app", body, 1700000000000, "secret", expected)
    assert verify("app", body, "1700000000000", "secret", f"mac={expected.upper()}")
    assert not verify("app", body, "1700000000001", "secret", expected)
    assert not verify("app", body + b" ", "1700000000000", "secret", expected)


def test_tracking_id_stays_within_zalo_limit() -> None:
    assert tracking_id("w1", "84912345678") == "w1:84912345678"
    long = tracking_id("L4-zalo-2026-11-26T07:00:00+07:00-slot-3", "84912345678")
    assert len(long) <= 48 and long.endswith(":84912345678")


# -- the adapter against the simulator -----------------------------------------------------------


async def test_sends_zns_with_msg_ids_and_counts_each_phone_once(
        sim: ZaloSim, adapter_for: Callable[..., ZaloAdapter]) -> None:
    adapter = adapter_for()
    addrs = phones(200)
    results = await adapter.send(envelope(addrs))
    assert sorted(results.sent) == list(range(200))
    assert len(set(results.remote_ids)) == 200 and all(results.remote_ids)
    assert results.receipts and not (results.retry or results.failed or results.requeue)
    assert sim.received == dict.fromkeys(addrs, 1) and sim.duplicates == 0
    assert sim.stats.accepted == 200 and adapter.stats.sent == 200


async def test_marked_messages_are_counted_apart(
        sim: ZaloSim, adapter_for: Callable[..., ZaloAdapter]) -> None:
    """`loa bench --urgent-at`: the urgent campaign's messages (their text has the mark) do not
    count as a second message to the routine wave's recipients."""
    sim.set_config(mark="TB-KHAN")
    adapter = adapter_for()
    addrs = phones(20)
    await adapter.send(envelope(addrs))
    before = time.time()
    await adapter.send(Envelope(wave="w2", channel=Channel.ZALO, text="KHẨN 01/TB-KHAN: ở nhà",
                                addrs=addrs[:5], route="zalo"))
    await adapter.send(Envelope(wave="w2", channel=Channel.ZALO, text="KHẨN 01/TB-KHAN: ở nhà",
                                addrs=addrs[:1], route="zalo"))
    stats = sim.snapshot()
    assert sim.received == dict.fromkeys(addrs, 1) and stats.duplicates == 0
    assert stats.marked == 6 and stats.marked_recipients == 5 and stats.marked_duplicates == 1
    assert before <= stats.first_marked_at <= stats.last_marked_at <= stats.last_request_at


async def test_each_error_class_has_its_outcome(
        sim: ZaloSim, adapter_for: Callable[..., ZaloAdapter]) -> None:
    codes = {-100: "retry", -108: "fail", -109: "requeue", -111: "requeue", -112: "requeue",
             -114: "fallback", -118: "fallback", -999: "retry", -104: "requeue"}
    addrs = phones(len(codes) + 2)
    sim.set_config(error_phones=dict(zip(addrs, codes, strict=False)))
    results = await adapter_for().send(envelope(addrs))
    by_index: dict[int, tuple[str, str]] = {}
    for i, reason in results.retry:
        by_index[i] = ("retry", reason)
    for i, reason in results.requeue:  # a configuration fault: route paused, no attempt used
        by_index[i] = ("requeue", reason)
    for i, reason in results.failed:
        by_index[i] = ("fallback" if i in results.fallback else "fail", reason)
    for i, code in enumerate(codes):
        kind, reason = by_index[i]
        assert kind == codes[code], (code, reason)
        assert f"zalo {code}" in reason
    assert sorted(results.sent) == [len(codes), len(codes) + 1]
    assert results.count() == len(addrs)
    assert not any(sim.received[a] for a in addrs[:len(codes)])


async def test_invalid_phone_is_permanent_and_template_errors_stop_the_route(
        sim: ZaloSim, adapter_for: Callable[..., ZaloAdapter]) -> None:
    bad_phone = await adapter_for().send(envelope(["0912345678", "abc"]))
    assert reasons(bad_phone.failed) == {"zalo -108: phone number invalid"}
    no_template = adapter_for(template_id="nope")
    unknown = await no_template.send(envelope(phones(2)))
    assert reasons(unknown.requeue) == {"zalo -109: template id invalid"} and not unknown.failed
    assert no_template.pause_kind == "configuration" and unknown.pause_until > time.time()
    wrong_param = await adapter_for(template_param="body").send(envelope(phones(2)))
    assert reasons(wrong_param.requeue) == {"zalo -1122: template data missing a parameter"}
    assert sim.stats.accepted == 0


async def test_not_zalo_share_fails_with_fallback_reason(
        sim: ZaloSim, adapter_for: Callable[..., ZaloAdapter]) -> None:
    sim.set_config(not_zalo_share=0.3)
    addrs = phones(300)
    results = await adapter_for().send(envelope(addrs))
    expected = {i for i, a in enumerate(addrs) if sim.not_zalo(a)}
    assert 50 < len(expected) < 130  # about 30%, by hash
    assert {i for i, _ in results.failed} == set(results.fallback) == expected
    assert reasons(results.failed) == {"fallback: zalo -118: not a Zalo account (or disabled)"}
    assert set(results.sent) == set(range(300)) - expected
    # the same phones in a second run: the share is deterministic
    again = await adapter_for().send(envelope(addrs, wave="w2"))
    assert {i for i, _ in again.failed} == expected
    # a campaign without SMS fallback codes: permanent, no prefix
    plain = await adapter_for(sms_fallback_codes=frozenset()).send(
        envelope([addrs[min(expected)]], wave="w3"))
    assert reasons(plain.failed) == {"zalo -118: not a Zalo account (or disabled)"}
    assert not plain.fallback


async def test_a_batch_that_finds_zalo_down_waits_without_using_attempts(
        sim: ZaloSim, adapter_for: Callable[..., ZaloAdapter]) -> None:
    adapter = adapter_for()
    sim.set_config(http_429_ratio=1.0)
    throttled = await adapter.send(envelope(phones(10)))
    assert not throttled.retry and len(throttled.requeue) == 10
    assert reasons(throttled.requeue) == {"Zalo is down: HTTP 429 too many requests"}
    first = throttled.pause_until - time.time()
    assert 0.5 < first <= 1.0
    sim.set_config(http_429_ratio=0.0, http_5xx_ratio=1.0)
    broken = await adapter.send(envelope(phones(10)))
    assert reasons(broken.requeue) == {"Zalo is down: HTTP 503"}
    assert 1.5 < broken.pause_until - time.time() <= 2.0  # the pause doubles while it lasts
    assert adapter.stats.outage_pauses == 2
    sim.set_config(http_5xx_ratio=0.0)
    healthy = await adapter.send(envelope(phones(10)))
    assert len(healthy.sent) == 10 and healthy.pause_until == 0.0
    sim.set_config(http_5xx_ratio=1.0)
    again = await adapter.send(envelope(phones(10)))
    assert again.pause_until - time.time() <= 1.0  # a healthy batch ended the outage


async def test_some_http_429_and_5xx_in_a_batch_are_retried(
        sim: ZaloSim, adapter_for: Callable[..., ZaloAdapter]) -> None:
    adapter = adapter_for()
    sim.set_config(http_429_ratio=0.2, http_5xx_ratio=0.2, seed=3)
    mixed = await adapter.send(envelope(phones(100)))
    assert 20 < len(mixed.retry) < 50 and len(mixed.sent) == 100 - len(mixed.retry)
    assert reasons(mixed.retry) == {"HTTP 429 too many requests", "HTTP 503"}
    assert mixed.pause_until == 0.0
    assert sim.stats.accepted == len(mixed.sent)
    assert adapter.stats.http_errors == len(mixed.retry)


CLIENTS = ["loa", "aiohttp", "httpx"]  # the product's, and the comparison's (bench/)


@pytest.mark.parametrize("client", CLIENTS)
async def test_both_clients_send(sim: ZaloSim, adapter_for: Callable[..., ZaloAdapter],
                                 client: str) -> None:
    results = await adapter_for(client=client).send(envelope(phones(30)))
    assert len(results.sent) == 30 and sim.received == dict.fromkeys(phones(30), 1)


@pytest.mark.parametrize("client", CLIENTS)
async def test_slow_answers_beyond_the_timeout_are_retried_as_possible_duplicates(
        sim: ZaloSim, adapter_for: Callable[..., ZaloAdapter], client: str) -> None:
    sim.set_config(delay=0.6)
    adapter = adapter_for(timeout=0.15, client=client)
    started = time.monotonic()
    some = await adapter.send(envelope(phones(4)))  # fewer than make an outage
    assert len(some.retry) == 4 and reasons(some.retry) == {"no answer in 0.15 s"}
    results = await adapter.send(envelope(phones(20)))  # a whole batch: Zalo is down
    assert time.monotonic() - started < 0.8
    assert len(results.requeue) == 20 and results.pause_until > time.time()
    assert reasons(results.requeue) == {"Zalo is down: no answer in 0.15 s"}
    assert adapter.stats.possible_duplicates == 24


@pytest.mark.parametrize("client", CLIENTS)
async def test_no_connection_requeues_without_an_attempt(client: str) -> None:
    server = ZaloSim()
    await server.start()
    url = server.url
    await server.stop()  # nothing listens there any more
    adapter = ZaloAdapter(ZaloConfig(base_url=url, oauth_url=url, template_id="t", timeout=1.0),
                          MemoryTokenStore(*INITIAL), client=baseline_client(client, 64, 1.0))
    try:
        results = await adapter.send(envelope(phones(5)))
    finally:
        await adapter.aclose()
    assert len(results.requeue) == 5 and not results.retry
    assert all(r.startswith("cannot connect to Zalo") for r in reasons(results.requeue))


async def test_a_cancelled_send_sends_no_more_of_its_batch(
        sim: ZaloSim, adapter_for: Callable[..., ZaloAdapter]) -> None:
    sim.set_config(delay=0.2)
    adapter = adapter_for(concurrency=2)
    task = asyncio.create_task(adapter.send(envelope(phones(10))))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.35)  # the two in flight are answered; nothing else goes
    assert sim.stats.requests == 2
    sim.set_config(delay=0.0)
    after = await adapter.send(envelope(phones(3, start=10)))  # the route still works
    assert len(after.sent) == 3


async def test_oa_and_auto_modes(sim: ZaloSim, adapter_for: Callable[..., ZaloAdapter]) -> None:
    users = [str(10**17 + i) for i in range(5)]
    oa = await adapter_for(mode="oa").send(envelope(users))
    assert sorted(oa.sent) == list(range(5)) and all(oa.remote_ids)
    others = [str(2 * 10**17 + i) for i in range(5)]
    alone = await adapter_for(mode="oa", template_id="").send(envelope(others, wave="w1"))
    assert sorted(alone.sent) == list(range(5))  # OA alone needs no ZNS template
    mixed = users[:2] + phones(2) + ["not-a-user"]
    auto = await adapter_for(mode="auto").send(envelope(mixed, wave="w2"))
    assert sorted(auto.sent) == [0, 1, 2, 3]
    assert [i for i, _ in auto.failed] == [4]
    assert sim.received[users[0]] == 2 and sim.received[phones(1)[0]] == 1


# -- tokens --------------------------------------------------------------------------------------


async def test_expired_token_is_renewed_once_for_50_concurrent_sends_and_persisted(
        sim: ZaloSim, adapter_for: Callable[..., ZaloAdapter], tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path / "zalo-token.json", initial=INITIAL)
    adapter = adapter_for(store)
    first = await adapter.send(envelope(phones(1)))
    assert first.sent == [0]
    sim.expire_token()
    addrs = phones(50, start=1)
    answers = await asyncio.gather(*(adapter.send(envelope([a])) for a in addrs))
    assert all(r.sent == [0] for r in answers), [r.retry for r in answers if r.retry]
    assert sim.stats.refreshes == 1 and adapter.tokens.refreshes == 1
    assert sim.stats.token_rejected >= 1
    saved = json.loads((tmp_path / "zalo-token.json").read_text())
    assert saved["refresh_token"] != INITIAL[1] and saved["access_token"] in sim.access_tokens
    # the old refresh token is spent: only the persisted one renews again
    sim.expire_token()
    fresh = adapter_for(FileTokenStore(tmp_path / "zalo-token.json"))
    again = await fresh.send(envelope(phones(20, start=100)))
    assert len(again.sent) == 20 and sim.stats.refreshes == 2 and sim.duplicates == 0


async def test_refused_renewal_retries_with_a_clear_reason(
        sim: ZaloSim, adapter_for: Callable[..., ZaloAdapter]) -> None:
    adapter = adapter_for(MemoryTokenStore("sim-access-token", "stolen"),
                          token_retry_after=30.0)
    sim.expire_token()
    results = await adapter.send(envelope(phones(40)))
    assert len(results.retry) == 40
    assert reasons(results.retry) == {
        "zalo -124: access token invalid or expired; "
        "token refresh refused: -14014 Invalid refresh token"}
    assert sim.stats.refresh_refused == 1  # once for all, then not again for a while
    assert adapter.tokens.failures == 1


async def test_token_refused_again_after_renewal_is_retried(
        sim: ZaloSim, adapter_for: Callable[..., ZaloAdapter]) -> None:
    addr = phones(1)[0]
    sim.set_config(error_phones={addr: -124})
    results = await adapter_for().send(envelope([addr]))
    assert reasons(results.retry) == {
        "zalo -124: access token invalid or expired: refused again after a renewal"}
    assert sim.stats.refreshes == 1


async def test_token_manager_single_flight_and_stale_callers() -> None:
    calls: list[str] = []
    store = MemoryTokenStore("a0", "r0")

    async def exchange(refresh: str) -> TokenAnswer:
        calls.append(refresh)
        await asyncio.sleep(0.05)
        return TokenAnswer(access_token=f"a{len(calls)}", refresh_token=f"r{len(calls)}")

    tokens = TokenManager(store, exchange)
    assert await tokens.token() == "a0"
    got = await asyncio.gather(*(tokens.refresh("a0") for _ in range(50)))
    assert set(got) == {"a1"} and calls == ["r0"] and store.saves == 1
    assert await tokens.refresh("a0") == "a1"  # a stale caller gets the new one, no call
    assert calls == ["r0"]


async def test_token_manager_backs_off_after_a_failure() -> None:
    async def exchange(refresh: str) -> Any:
        raise TokenError("OAuth: cannot connect")

    tokens = TokenManager(MemoryTokenStore("a0", "r0"), exchange, retry_after=60.0)
    await tokens.token()
    for _ in range(3):
        with pytest.raises(TokenError, match="cannot connect"):
            await tokens.refresh("a0")
    assert tokens.failures == 1


async def test_file_token_store(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "t.json"
    with pytest.raises(ConfigError, match="no Zalo token file"):
        await FileTokenStore(path).get()
    store = FileTokenStore(path, initial=("a", "r"))
    assert await store.get() == ("a", "r")
    await store.save("a2", "r2")
    assert await FileTokenStore(path).get() == ("a2", "r2")
    assert [p.name for p in path.parent.iterdir()] == ["t.json"]  # no temporary file left
    path.write_text("{}")
    with pytest.raises(ConfigError, match="not a Zalo token file"):
        await store.get()


async def test_two_renewers_of_one_token_file_spend_its_refresh_token_once(
        tmp_path: Path) -> None:
    """``loa zalo refresh-token`` next to a running ``loa run`` on the same file (two stores, as
    two processes would open it): the second renews after the first, under the file's lock,
    finds the pair it saved and exchanges nothing."""
    path = tmp_path / "t.json"
    await FileTokenStore(path).save("a0", "r0")
    spent: list[str] = []

    async def exchange(refresh: str) -> TokenAnswer:
        spent.append(refresh)
        await asyncio.sleep(0.2)  # the exchange is in flight while the other asks
        return TokenAnswer(access_token=f"a{len(spent)}", refresh_token=f"r{len(spent)}",
                           expires_in=90000)

    first = TokenManager(FileTokenStore(path), exchange)
    second = TokenManager(FileTokenStore(path), exchange)
    await first.token()
    await second.token()
    got = await asyncio.gather(first.refresh("a0"), second.refresh("a0"))
    assert spent == ["r0"]  # without the lock both spend r0, and Zalo refuses the second
    assert list(got) == ["a1", "a1"]
    assert await FileTokenStore(path).get() == ("a1", "r1")


# -- quota ---------------------------------------------------------------------------------------


async def test_quota_pauses_requeues_and_resumes_exactly_once(
        sim: ZaloSim, adapter_for: Callable[..., ZaloAdapter]) -> None:
    sim.set_config(daily_quota=100)
    adapter = adapter_for()
    addrs = phones(150)
    results = await adapter.send(envelope(addrs))
    assert len(results.sent) == 100 and len(results.requeue) == 50
    assert not results.retry and not results.failed
    now = time.time()
    assert adapter.paused_until == next_quota_reset(now) > now
    # the route waits until the next try of a batch (a quota raised during the day)
    probe = min(now + adapter.config.quota_probe_seconds, adapter.paused_until)  # or midnight
    assert results.pause_until == pytest.approx(probe, abs=2)
    assert adapter.remaining_quota == 0 and adapter.daily_quota == 100
    assert all("quota" in reason and "paused until" in reason for reason in reasons(
        results.requeue))
    # while paused nothing reaches Zalo
    requests = sim.stats.requests
    held = await adapter.send(envelope(addrs[:10], wave="w2"))
    assert len(held.requeue) == 10 and sim.stats.requests == requests
    # a new day
    sim.reset_quota()
    adapter.resume()
    rest = [addrs[i] for i, _ in results.requeue]
    after = await adapter.send(envelope(rest))
    assert len(after.sent) == 50 and after.pause_until == 0.0
    assert sim.received == dict.fromkeys(addrs, 1)
    assert adapter.remaining_quota == 50
    # a pause whose time has come ends by itself
    adapter._pause("test")
    adapter.paused_until = time.time() - 1
    assert len((await adapter.send(envelope(phones(1, start=500)))).sent) == 1
    assert adapter.paused_until == 0.0


async def test_a_quota_raised_during_the_day_is_found_by_the_next_try(
        sim: ZaloSim, adapter_for: Callable[..., ZaloAdapter]) -> None:
    sim.set_config(daily_quota=10)
    adapter = adapter_for(concurrency=1, quota_probe_seconds=0.2)
    first = await adapter.send(envelope(phones(20)))
    assert len(first.sent) == 10 and len(first.requeue) == 10
    assert first.pause_until == pytest.approx(time.time() + 0.2, abs=0.1)
    await asyncio.sleep(0.25)
    requests = sim.stats.requests
    still = await adapter.send(envelope(phones(10, start=10)))  # tried: still no quota
    assert len(still.requeue) == 10 and sim.stats.requests == requests + 1
    assert adapter.paused_until == next_quota_reset(time.time())  # midnight, at any hour
    sim.set_config(daily_quota=100)  # the OA's quota was raised
    await asyncio.sleep(0.25)
    raised = await adapter.send(envelope(phones(10, start=10)))
    assert len(raised.sent) == 10 and adapter.paused_until == 0.0


async def test_quota_code_answered_by_zalo_pauses_too(
        sim: ZaloSim, adapter_for: Callable[..., ZaloAdapter]) -> None:
    sim.set_config(daily_quota=5)
    sim.quota_used = 5  # spent by another sender before this one started
    adapter = adapter_for(concurrency=1)
    results = await adapter.send(envelope(phones(8)))
    assert [i for i, _ in results.requeue] == list(range(8))
    assert next(iter(reasons(results.requeue))).startswith("zalo -144: OA over its daily ZNS limit")
    assert sim.stats.quota_refused == 1 and adapter.stats.quota_pauses == 1


def test_next_quota_reset_is_midnight_in_vietnam() -> None:
    # 2026-11-26 23:30 in Hà Nội is 16:30 UTC
    now = dt.datetime(2026, 11, 26, 16, 30, tzinfo=dt.UTC).timestamp()
    assert next_quota_reset(now) == dt.datetime(2026, 11, 26, 17, 0, tzinfo=dt.UTC).timestamp()


# -- webhooks ------------------------------------------------------------------------------------

APP, OA_SECRET = "sim-app", "sim-oa-secret"


def signed(event: dict[str, Any] | list[dict[str, Any]], *, secret: str = OA_SECRET,
           stamp: str | None = None) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(event).encode()
    first = event[0] if isinstance(event, list) else event
    ts = stamp if stamp is not None else str(first["timestamp"])
    return body, {SIGNATURE_HEADER: "mac=" + sign(APP, body, ts, secret)}


def now_ms() -> str:
    return str(int(time.time() * 1000))


def nested(msg_id: str, tracking: str = "w1:84912345678") -> dict[str, Any]:
    return {"app_id": APP, "event_name": "user_received_message", "timestamp": now_ms(),
            "sender": {"id": "1"}, "recipient": {"id": "42"},
            "message": {"msg_id": msg_id, "tracking_id": tracking, "delivery_time": now_ms()}}


def flat(msg_id: str, tracking: str = "") -> dict[str, Any]:
    return {"app_id": APP, "event_name": "user_received_message",
            "timestamp": int(now_ms()), "msg_id": msg_id, "tracking_id": tracking}


def test_verifier_accepts_flat_nested_and_lists() -> None:
    verifier = WebhookVerifier(APP, OA_SECRET)
    [one] = verifier.parse(*signed(nested("m1")))
    assert (one.msg_id, one.tracking_id, one.user_id) == ("m1", "w1:84912345678", "42")
    assert abs(one.timestamp - time.time()) < 5
    [two] = verifier.parse(*signed(flat("m2", "w1:84900000000")))
    assert (two.msg_id, two.tracking_id) == ("m2", "w1:84900000000")
    many = verifier.parse(*signed([nested("m3"), flat("m4"), {**flat("m5"),
                                                               "event_name": "follow"}]))
    assert [e.msg_id for e in many] == ["m3", "m4"]
    # lower-case header names (plain dicts) are read too
    body, headers = signed(flat("m6"))
    assert verifier.parse(body, {k.lower(): v for k, v in headers.items()})[0].msg_id == "m6"


@pytest.mark.parametrize(("case", "status", "match"), [
    ("missing", 401, "no X-ZEvent-Signature"),
    ("wrong secret", 401, "does not match"),
    ("tampered", 401, "does not match"),
    ("stale", 401, "s old"),
    ("other app", 401, "another app"),
    ("bad json", 400, "not a Zalo event"),
])
def test_verifier_rejects(case: str, status: int, match: str) -> None:
    verifier = WebhookVerifier(APP, OA_SECRET, max_age_seconds=300)
    event = nested("m1")
    if case == "stale":
        event["timestamp"] = str(int((time.time() - 3600) * 1000))
    if case == "other app":
        event["app_id"] = "someone-else"
    body, headers = signed(event, secret="guess" if case == "wrong secret" else OA_SECRET)
    if case == "missing":
        headers = {}
    if case == "tampered":
        body = body.replace(b"m1", b"m9")
    if case == "bad json":
        body = b"{not json"
    with pytest.raises(WebhookRejected, match=match) as info:
        verifier.parse(body, headers)
    assert info.value.status == status


@pytest.mark.parametrize("stamp", ["nan", "NaN", "inf", "-inf", "1e400", "-1700000000000",
                                   "0", "", "12abc", "99999999999999999999"])
def test_verifier_refuses_a_signed_timestamp_that_is_not_a_time(stamp: str) -> None:
    verifier = WebhookVerifier(APP, OA_SECRET, max_age_seconds=300)
    event = {**nested("m1"), "timestamp": stamp}
    with pytest.raises(WebhookRejected, match="timestamp") as info:
        verifier.parse(*signed(event))
    assert info.value.status == 401


def test_verifier_refuses_a_far_future_timestamp() -> None:
    verifier = WebhookVerifier(APP, OA_SECRET, max_age_seconds=300)
    event = {**nested("m1"), "timestamp": str(int((time.time() + 3600) * 1000))}
    with pytest.raises(WebhookRejected, match="timestamp") as info:
        verifier.parse(*signed(event))
    assert info.value.status == 401


def test_verifier_checks_the_age_of_every_event_of_a_list() -> None:
    verifier = WebhookVerifier(APP, OA_SECRET, max_age_seconds=300)
    old = {**flat("m2"), "timestamp": int((time.time() - 3600) * 1000)}
    with pytest.raises(WebhookRejected, match="event 2") as info:
        verifier.parse(*signed([nested("m1"), old]))
    assert info.value.status == 401
    nan = {**flat("m3"), "timestamp": "nan"}
    with pytest.raises(WebhookRejected, match="event 2"):
        verifier.parse(*signed([nested("m1"), nan]))


def test_deduper_passes_each_key_once_per_hour() -> None:
    clock = [0.0]
    dedup = Deduper(ttl=3600, max_keys=3, clock=lambda: clock[0])
    assert dedup.first("a") and not dedup.first("a")
    clock[0] = 3599
    assert not dedup.first("a")
    clock[0] = 3601
    assert dedup.first("a")  # an hour later it is new again
    for key in "bcd":
        assert dedup.first(key)
    assert len(dedup) == 3


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/zalo/webhook"


async def test_handler_answers_and_deduplicates() -> None:
    got: list[DeliveryEvent] = []
    runner, url = await serve(make_app(WebhookVerifier(APP, OA_SECRET), got.extend))
    try:
        async with aiohttp.ClientSession() as session:
            async def post(body: bytes, headers: dict[str, str]) -> int:
                async with session.post(url, data=body, headers=headers) as resp:
                    return resp.status

            body, headers = signed(nested("m1"))
            assert await post(body, headers) == 200
            assert await post(body, headers) == 200  # Zalo's retry: passed on once
            assert await post(*signed(flat("m2"))) == 200
            assert await post(body, {}) == 401
            assert await post(*signed(nested("m3"), secret="guess")) == 401
            assert await post(b"[}", headers) == 400
    finally:
        await runner.cleanup()
    assert [e.msg_id for e in got] == ["m1", "m2"]


async def test_simulator_webhooks_are_signed_and_match_the_sends_end_to_end() -> None:
    got: list[DeliveryEvent] = []
    arrived = asyncio.Event()

    def on_events(events: list[DeliveryEvent]) -> None:
        got.extend(events)
        if len(got) >= 60:
            arrived.set()

    runner, url = await serve(make_app(WebhookVerifier(APP, OA_SECRET), on_events))
    sim = ZaloSim(ZaloSimConfig(webhook_url=url, webhook_delay=0.05, webhook_repeat_ratio=0.5,
                                seed=7))
    await sim.start()
    adapter = ZaloAdapter(config(sim), MemoryTokenStore(*INITIAL))
    try:
        addrs = phones(40)
        first = await adapter.send(envelope(addrs))
        sim.set_config(webhook_layout="flat")
        second = await adapter.send(envelope(phones(20, start=40), wave="w2"))
        await asyncio.wait_for(arrived.wait(), WAIT)
        assert await sim.flush_webhooks(WAIT)
    finally:
        await adapter.aclose()
        await sim.stop()
        await runner.cleanup()
    sent_ids = set(first.remote_ids) | set(second.remote_ids)
    assert len(got) == 60 and {e.msg_id for e in got} == sent_ids
    expected = {tracking_id("w1", a) for a in addrs} | {
        tracking_id("w2", a) for a in phones(20, start=40)}
    assert {e.tracking_id for e in got} == expected
    assert sim.stats.webhooks_repeated > 0  # Zalo's retries arrived and were passed on once
    assert sim.stats.webhooks_sent == 60 + sim.stats.webhooks_repeated
    assert sim.stats.webhook_failures == 0


async def test_simulator_webhooks_with_a_wrong_secret_are_refused() -> None:
    got: list[DeliveryEvent] = []
    runner, url = await serve(make_app(WebhookVerifier(APP, "another-secret"), got.extend))
    sim = ZaloSim(ZaloSimConfig(webhook_url=url))
    await sim.start()
    adapter = ZaloAdapter(config(sim), MemoryTokenStore(*INITIAL))
    try:
        await adapter.send(envelope(phones(3)))
        assert await sim.flush_webhooks(WAIT)
    finally:
        await adapter.aclose()
        await sim.stop()
        await runner.cleanup()
    assert not got and sim.stats.webhook_failures == 9  # each tried three times


# -- the simulator -------------------------------------------------------------------------------


async def test_simulator_counts_duplicates_and_serves_its_stats(
        sim: ZaloSim, adapter_for: Callable[..., ZaloAdapter]) -> None:
    adapter = adapter_for()
    addrs = phones(10)
    await adapter.send(envelope(addrs))
    await adapter.send(envelope(addrs[:3], wave="w2"))
    assert sim.duplicates == 3 and sim.received[addrs[0]] == 2 and sim.received[addrs[9]] == 1
    async with aiohttp.ClientSession() as session, session.get(sim.url + "/sim/stats") as resp:
        stats = msgspec.json.decode(await resp.read())
    assert stats["accepted"] == 13 and stats["recipients"] == 10 and stats["duplicates"] == 3


async def test_simulator_rejects_unknown_tokens_and_bad_oauth(sim: ZaloSim) -> None:
    async with aiohttp.ClientSession() as session:
        body = msgspec.json.encode({"phone": "84912345678", "template_id": "loa-alert",
                                    "template_data": {"content": "x"}})
        async with session.post(sim.url + "/message/template", data=body,
                                headers={"access_token": "forged"}) as resp:
            assert (await resp.json())["error"] == -124
        form = {"app_id": "sim-app", "grant_type": "refresh_token",
                "refresh_token": "sim-refresh-token"}
        async with session.post(sim.url + "/v4/oa/access_token", data=form,
                                headers={"secret_key": "wrong"}) as resp:
            assert (await resp.json())["error_name"] == "Invalid secret key"
        async with session.post(sim.url + "/v4/oa/access_token", data=form,
                                headers={"secret_key": "sim-app-secret"}) as resp:
            tokens = await resp.json()
        assert tokens["access_token"] in sim.access_tokens and tokens["refresh_token"]
        async with session.post(sim.url + "/v4/oa/access_token", data=form,
                                headers={"secret_key": "sim-app-secret"}) as resp:
            assert (await resp.json())["error_name"] == "Invalid refresh token"  # used once
    assert sim.stats.token_rejected == 1 and sim.stats.refreshes == 1
    assert sim.stats.refresh_refused == 2


async def test_simulator_token_ttl_expires_tokens() -> None:
    sim = ZaloSim(ZaloSimConfig(token_ttl=0.5))
    await sim.start()
    adapter = ZaloAdapter(config(sim), MemoryTokenStore(*INITIAL))
    try:
        assert len((await adapter.send(envelope(phones(2)))).sent) == 2
        before = sim.stats.refreshes  # 0, or 1 on a machine slow to get here within the ttl
        await asyncio.sleep(0.6)  # whichever token it holds has expired
        results = await adapter.send(envelope(phones(2, start=2)))
        assert len(results.sent) == 2 and sim.stats.refreshes == before + 1
        assert sim.stats.token_rejected >= 1
    finally:
        await adapter.aclose()
        await sim.stop()


def test_cli_runs_until_sigterm_and_prints_stats() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "dispatcher.service.cli", "sim", "zalo", "--port", "0",
         "--daily-quota", "1", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("Zalo simulator listening on http://127.0.0.1:"), line
        url = line.split()[-1]

        async def two() -> Results:
            adapter = ZaloAdapter(ZaloConfig(base_url=url, oauth_url=url, template_id="loa-alert"),
                                  MemoryTokenStore(*INITIAL))
            try:
                return await adapter.send(envelope(phones(2)))
            finally:
                await adapter.aclose()

        results = asyncio.run(two())
        assert len(results.sent) == 1 and len(results.requeue) == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=WAIT)
    assert proc.returncode == 0, err
    stats = json.loads(out.strip().splitlines()[-1])
    assert stats["accepted"] == 1 and stats["recipients"] == 1 and stats["duplicates"] == 0
