"""The Facebook channel against the Graph API simulator, over loopback: one post per page, each
fault of the table handled (down, slow, throttled, token expired, blocked, unknown codes), and
a publication whose answer was lost found on the page instead of being posted twice. Posts are
counted at the far end."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest
from prometheus_client import REGISTRY

from adapters.base import HALTED, Abort, Envelope, Results
from adapters.facebook import FacebookAdapter, FacebookConfig, Page
from adapters.facebook.codes import CODES, Outcome, lookup
from adapters.facebook.simulator import FacebookSim, FacebookSimConfig
from dispatcher.domain.model import Channel
from dispatcher.service.cli import main

TOKENS = {"1001": "tok-province", "1002": "tok-so", "1003": "tok-ha-long"}
PAGES = [Page(id="province", page_id="1001", token_env="T1", token="tok-province"),
         Page(id="so-tttt", page_id="1002", token_env="T2", token="tok-so"),
         Page(id="ha-long", page_id="1003", token_env="T3", token="tok-ha-long",
              district="ha-long")]
IDS = [p.id for p in PAGES]


@pytest.fixture
async def sim() -> AsyncIterator[FacebookSim]:
    server = FacebookSim(FacebookSimConfig(pages=TOKENS))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def config(sim: FacebookSim, **changes: object) -> FacebookConfig:
    base = FacebookConfig(graph_url=sim.url, pages=PAGES, proxy="direct", timeout=2.0,
                          throttle_pause=30.0, alert_probe_seconds=0.3)
    return msgspec.structs.replace(base, **changes)


@pytest.fixture
async def adapter(sim: FacebookSim) -> AsyncIterator[FacebookAdapter]:
    made = FacebookAdapter(config(sim))
    try:
        yield made
    finally:
        await made.aclose()


def envelope(text: str = "Tin khẩn về dịch Covid-19", addrs: list[str] | None = None, *,
             wave: str = "w-1", created_at: float | None = None,
             abort: Abort | None = None) -> Envelope:
    return Envelope(wave=wave, channel=Channel.FACEBOOK, text=text,
                    addrs=IDS if addrs is None else addrs, route="facebook", abort=abort,
                    created_at=time.time() - 1 if created_at is None else created_at)


def gauge(name: str, **labels: str) -> float:
    value = REGISTRY.get_sample_value(name, labels)
    return value or 0.0


# -- the table -----------------------------------------------------------------------------------


def test_the_table_says_what_each_code_of_the_issue_calls_for() -> None:
    assert {c for c in (4, 17, 613, 341) if CODES[c].outcome is Outcome.THROTTLE} == {
        4, 17, 613, 341}
    assert CODES[32].outcome is CODES[80001].outcome is Outcome.PAGE_THROTTLE
    assert CODES[190].outcome is CODES[102].outcome is Outcome.TOKEN
    assert CODES[10].outcome is Outcome.PERMISSION
    assert lookup(200) is not None and lookup(299) is not None
    assert lookup(250).outcome is Outcome.PERMISSION  # type: ignore[union-attr]
    assert CODES[368].outcome is Outcome.BLOCKED
    assert CODES[100].outcome is Outcome.FAIL
    assert lookup(12345) is None


def test_the_docs_list_every_code_of_the_table() -> None:
    text = (Path(__file__).parents[2] / "docs" / "channels.md").read_text(encoding="utf-8")
    section = text.split("### The Graph API's codes", 1)[1].split("\n## ", 1)[0]
    listed: set[int] = set()
    for line in section.splitlines():
        first = line.split("|")[1].strip() if line.startswith("| ") else ""
        for item in first.split(", "):
            low, _, high = item.partition("-")
            if low.isdigit():
                listed.update(range(int(low), int(high or low) + 1))
    assert listed == set(CODES) | set(range(200, 300))


# -- posting -------------------------------------------------------------------------------------


async def test_each_page_gets_one_post_of_the_text(sim: FacebookSim,
                                                   adapter: FacebookAdapter) -> None:
    results = await adapter.send(envelope())
    assert sorted(results.sent) == [0, 1, 2] and not results.retry and not results.failed
    assert all(rid.startswith(pid) for pid in TOKENS for rid in results.remote_ids
               if rid.startswith(pid))
    assert {page: sim.published(page) for page in TOKENS} == {
        page: ["Tin khẩn về dịch Covid-19"] for page in TOKENS}
    assert sim.looks == 3  # each post was looked for first
    assert not results.receipts


async def test_a_page_not_configured_fails_naming_it(sim: FacebookSim,
                                                     adapter: FacebookAdapter) -> None:
    results = await adapter.send(envelope(addrs=["province", "gone"]))
    assert results.sent == [0]
    assert results.failed == [(1, "facebook: no page 'gone' in [facebook] pages")]


async def test_a_halted_envelope_posts_nothing(sim: FacebookSim,
                                               adapter: FacebookAdapter) -> None:
    abort = Abort()
    abort.halted = True
    results = await adapter.send(envelope(abort=abort))
    assert sorted(results.requeue) == [(i, HALTED) for i in range(3)]
    assert sim.requests == 0


# -- never twice -----------------------------------------------------------------------------------


async def test_a_post_whose_answer_was_lost_is_found_not_posted_again(
        sim: FacebookSim) -> None:
    adapter = FacebookAdapter(config(sim, timeout=0.3))
    try:
        sim.hang_after_publish = 2.0  # published, then the answer comes after the timeout
        first = await adapter.send(envelope())
        # tried again later (every request timed out: Facebook seems away, no attempt used)
        assert sorted(i for i, _ in first.retry + first.requeue) == [0, 1, 2]
        assert not first.sent and adapter.stats.unanswered == 3
        sim.hang_after_publish = 0.0
        again = await adapter.send(envelope())  # the retry, as the engine sends it
        assert sorted(again.sent) == [0, 1, 2]
        assert adapter.stats.found == 3 and adapter.stats.posts == 0
        assert {page: len(sim.published(page)) for page in TOKENS} == dict.fromkeys(TOKENS, 1)
        assert sorted(again.remote_ids) == sorted(p.id for ps in sim.posts.values() for p in ps)
    finally:
        await adapter.aclose()


async def test_the_same_text_posted_before_the_wave_is_posted_again(
        sim: FacebookSim) -> None:
    """Only what was posted since the wave was made counts as its post: yesterday's slot with
    the same text does not stop today's (Facebook's own 506 refuses a direct repeat)."""
    sim.duplicates = False
    adapter = FacebookAdapter(config(sim, clock_skew=0.0))
    try:
        await adapter.send(envelope(wave="yesterday", created_at=time.time() - 1))
        await asyncio.sleep(1.1)  # the look reads whole seconds
        await adapter.send(envelope(wave="today", created_at=time.time()))
        assert {page: len(sim.published(page)) for page in TOKENS} == dict.fromkeys(TOKENS, 2)
        assert adapter.stats.found == 0
    finally:
        await adapter.aclose()


async def test_the_text_of_the_pages_last_post_counts_sent_and_is_not_posted_again(
        sim: FacebookSim) -> None:
    """Facebook refuses a post identical to the page's last one (506): the page shows the text
    already, and a plan text repeated the same day is not a dead letter."""
    adapter = FacebookAdapter(config(sim, clock_skew=0.0))
    try:
        await adapter.send(envelope(addrs=["province"], wave="a", created_at=time.time() - 1))
        await asyncio.sleep(1.1)
        results = await adapter.send(envelope(addrs=["province"], wave="b",
                                              created_at=time.time()))
        assert results.sent == [0] and not results.failed
        assert sim.published("1001") == ["Tin khẩn về dịch Covid-19"]
        assert sim.answered[506] == 1 and adapter.stats.duplicates == 1
    finally:
        await adapter.aclose()


# -- faults ----------------------------------------------------------------------------------------


async def test_facebook_down_requeues_and_pauses_the_route(sim: FacebookSim,
                                                           adapter: FacebookAdapter) -> None:
    sim.down = True
    results = await adapter.send(envelope())
    assert sorted(i for i, _ in results.requeue) == [0, 1, 2] and not results.retry
    assert results.pause_until > time.time()
    assert adapter.stats.outage_pauses == 1
    sim.down = False
    assert sorted((await adapter.send(envelope())).sent) == [0, 1, 2]


async def test_no_connection_requeues_without_an_attempt(sim: FacebookSim) -> None:
    adapter = FacebookAdapter(config(sim, graph_url="http://127.0.0.1:9"))  # nothing listens
    try:
        results = await adapter.send(envelope())
        assert sorted(i for i, _ in results.requeue) == [0, 1, 2]
        assert not results.retry and not results.failed
    finally:
        await adapter.aclose()


async def test_a_slow_graph_api_is_waited_for(sim: FacebookSim,
                                              adapter: FacebookAdapter) -> None:
    sim.delay = 0.3  # under the client's timeout of 2 s
    results = await adapter.send(envelope())
    assert sorted(results.sent) == [0, 1, 2]
    assert sum(len(p) for p in sim.posts.values()) == 3


@pytest.mark.parametrize("code", [4, 17, 613])
async def test_an_application_rate_limit_backs_the_route_off(
        sim: FacebookSim, adapter: FacebookAdapter, code: int) -> None:
    sim.throttle_code, sim.throttle_left = code, 10
    results = await adapter.send(envelope())
    assert not results.sent and not results.retry and not results.failed
    assert sorted(i for i, _ in results.requeue) == [0, 1, 2]  # no attempt used
    assert f"facebook {code} " in results.requeue[0][1]
    assert results.pause_until == pytest.approx(time.time() + 30.0, abs=2)
    assert not results.urgent_passes
    asked = sim.requests
    held = await adapter.send(envelope())  # while paused: nothing is asked of Facebook
    assert sorted(i for i, _ in held.requeue) == [0, 1, 2] and sim.requests == asked


async def test_a_page_over_its_limit_waits_alone(sim: FacebookSim,
                                                 adapter: FacebookAdapter) -> None:
    sim.error_pages["1002"] = 32
    results = await adapter.send(envelope())
    assert sorted(results.sent) == [0, 2]
    assert [i for i, _ in results.requeue] == [1]
    assert results.pause_until == 0.0  # the other pages went: the route goes on
    del sim.error_pages["1002"]
    again = await adapter.send(envelope(addrs=["so-tttt"]))
    assert again.requeue and again.pause_until > time.time()  # backing off, without asking
    assert again.urgent_passes


async def test_an_expired_token_stops_its_page_with_an_alert_until_it_is_renewed(
        sim: FacebookSim, adapter: FacebookAdapter) -> None:
    alerts = gauge("loa_facebook_alerts_total", reason="token")
    sim.expired.add("tok-so")
    results = await adapter.send(envelope())
    assert sorted(results.sent) == [0, 2]  # the other pages are posted
    assert [i for i, _ in results.requeue] == [1]  # kept, not lost, no attempt used
    assert "facebook 190/463" in results.requeue[0][1]
    assert adapter.stopped == {"so-tttt": "token"}
    assert gauge("loa_facebook_page_stopped", page="so-tttt", reason="token") == 1
    assert gauge("loa_facebook_alerts_total", reason="token") == alerts + 1
    # its next batch waits for the next try, and pauses the route meanwhile (but for urgent)
    held = await adapter.send(envelope(addrs=["so-tttt"], wave="w-2"))
    assert held.requeue and held.pause_until > time.time() and held.urgent_passes
    sim.expired.clear()  # an operator renewed it
    await asyncio.sleep(0.35)  # alert_probe_seconds
    tried = await adapter.send(envelope(addrs=["so-tttt"]))
    assert tried.sent == [0] and adapter.stopped == {}
    assert gauge("loa_facebook_page_stopped", page="so-tttt", reason="token") == 0
    assert sim.published("1002") == ["Tin khẩn về dịch Covid-19"]


async def test_a_missing_permission_stops_the_page(sim: FacebookSim,
                                                   adapter: FacebookAdapter) -> None:
    sim.error_pages["1001"] = 10
    results = await adapter.send(envelope())
    assert [i for i, _ in results.requeue] == [0]
    assert adapter.stopped == {"province": "permission"}


async def test_a_post_blocked_for_policy_fails_with_its_reason_and_an_alert(
        sim: FacebookSim, adapter: FacebookAdapter) -> None:
    alerts = gauge("loa_facebook_alerts_total", reason="blocked")
    sim.error_pages["1003"] = 368
    results = await adapter.send(envelope())
    assert sorted(results.sent) == [0, 1]
    assert [i for i, _ in results.failed] == [2]
    assert "368 (temporarily blocked for policy violations)" in results.failed[0][1]
    assert gauge("loa_facebook_alerts_total", reason="blocked") == alerts + 1
    assert adapter.stopped == {}


async def test_an_invalid_parameter_fails(sim: FacebookSim, adapter: FacebookAdapter) -> None:
    sim.error_pages["1001"] = 100
    results = await adapter.send(envelope(addrs=["province"]))
    assert results.failed and "facebook 100 (invalid parameter)" in results.failed[0][1]


async def test_unknown_codes_are_retried_then_stop_the_route(sim: FacebookSim) -> None:
    adapter = FacebookAdapter(config(sim, unknown_code_limit=4))
    try:
        sim.error_pages.update(dict.fromkeys(TOKENS, 4242))
        first = await adapter.send(envelope())
        assert sorted(i for i, _ in first.retry) == [0, 1, 2]  # retried, attempts used
        second = await adapter.send(envelope())
        assert second.requeue and adapter.route_stop == "unknown"
        assert second.pause_until > time.time()
        sim.error_pages.clear()
        await asyncio.sleep(0.35)  # alert_probe_seconds: the next batch is tried
        assert sorted((await adapter.send(envelope())).sent) == [0, 1, 2]
        assert adapter.route_stop == ""
    finally:
        await adapter.aclose()


async def test_5xx_on_part_of_a_batch_is_retried(sim: FacebookSim) -> None:
    sim.http_5xx_ratio = 0.5
    adapter = FacebookAdapter(config(sim))
    try:
        seen_retry = False
        for n in range(20):
            results = await adapter.send(envelope(text=f"Tin {n}", wave=f"w-{n}"))
            assert len(results.sent) + len(results.retry) + len(results.requeue) == 3
            seen_retry = seen_retry or bool(results.retry)
        assert seen_retry
    finally:
        await adapter.aclose()


# -- settings --------------------------------------------------------------------------------------


def test_the_config_refuses_what_cannot_work() -> None:
    page = {"id": "province", "page_id": "1001", "token_env": "T"}
    for pages, words in (
            ([page, page], "id 'province' is given twice"),
            ([{**page, "id": "Trang Tỉnh"}], "id 'Trang Tỉnh' must be"),
            ([{**page, "page_id": "province"}], "is not a Facebook page id"),
            ([{**page, "token_env": ""}], "token_env must name")):
        with pytest.raises(msgspec.ValidationError, match=words):
            msgspec.convert({"pages": pages}, FacebookConfig)
    with pytest.raises(msgspec.ValidationError, match="api_version"):
        msgspec.convert({"api_version": "21"}, FacebookConfig)
    made = msgspec.convert({"pages": [{**page, "district": "co-to", "name": "Cô Tô"}]},
                           FacebookConfig)
    assert [(t.id, t.name, t.district) for t in made.targets()] == [("province", "Cô Tô",
                                                                      "co-to")]


# -- loa sim facebook ------------------------------------------------------------------------------


def test_loa_sim_facebook_serves_until_sigterm_and_prints_its_counters() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "dispatcher.service.cli", "sim", "facebook", "--port", "0",
         "--page", "1001=tok-province", "--page", "1002=tok-so", "--error-page", "1002=368",
         "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("Facebook Graph API simulator listening on http://127.0.0.1:")
        url = line.split()[-1]

        async def post() -> Results:
            pages = [msgspec.structs.replace(PAGES[0]), msgspec.structs.replace(PAGES[1])]
            adapter = FacebookAdapter(FacebookConfig(graph_url=url, pages=pages,
                                                     proxy="direct"))
            try:
                return await adapter.send(envelope(addrs=["province", "so-tttt"]))
            finally:
                await adapter.aclose()

        results = asyncio.run(post())
        assert results.sent == [0] and [i for i, _ in results.failed] == [1]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    stats = json.loads(out.strip().splitlines()[-1])
    assert stats["posts"] == 1 and stats["by_page"] == {"1001": 1, "1002": 0}
    assert stats["answered"] == {"368": 1}


@pytest.mark.parametrize(("argv", "words"), [
    (["--error-page", "1001=999"], "--error-page: 999 is not a code of the Graph API table"),
    (["--page", "1001"], "--page: '1001' is not PAGE_ID=TOKEN"),
    (["--throttle-code", "7"], "--throttle-code: 7 is not a code"),
    (["--error-ratio", "2"], "error_ratio must be between 0 and 1"),
])
def test_loa_sim_facebook_refuses_bad_options_in_one_line(
        argv: list[str], words: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "facebook", "--port", "0", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and "\n" not in err
