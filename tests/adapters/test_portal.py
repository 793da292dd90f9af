"""The portal channel against its simulator, over loopback: both profiles, what each request
carries, a wave never published twice (a lost answer included), and every fault of the error
table: down, slow, throttled, credentials refused, 5xx, an invalid post, a wrong URL, answers Loa
does not know."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable

import msgspec
import pytest
from prometheus_client import REGISTRY

from adapters.base import HALTED, Abort, Envelope
from adapters.http.signature import verify
from adapters.portal import PortalAdapter, PortalConfig, Site
from adapters.portal import post as portal_post
from adapters.portal.simulator import PortalSim, WpAccount
from dispatcher.domain.model import Channel

ACCOUNT = WpAccount()
SECRET = "sim-portal-secret"
WAVE = "L4-portal-20240305T1030"
TEXT = ("KHẨN: dịch Covid-19 đang lây lan rộng trên địa bàn tỉnh Quảng Ninh. Người dân chỉ ra "
        "ngoài khi thật cần thiết, đeo khẩu trang <và> giữ khoảng cách.\n\nĐường dây nóng: "
        "1900 9095.")
WP, DVC = "qn-portal", "dichvucong"


class Clock:
    """The adapter's clock: the real one, moved on by ``skip`` (a hold ends without waiting)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def skip(self, seconds: float) -> None:
        self.offset += seconds


def envelope(*addrs: str, wave: str = WAVE, subject: str = "",
             abort: Abort | None = None) -> Envelope:
    return Envelope(wave=wave, channel=Channel.PORTAL, text=TEXT, subject=subject,
                    addrs=list(addrs or (WP, DVC)), route="portal", abort=abort)


def sites(sim: PortalSim, **wordpress: object) -> list[Site]:
    wp = Site(id=WP, profile="wordpress", url=sim.site_url(), user=ACCOUNT.user,
              password=ACCOUNT.password, category=12)
    return [msgspec.structs.replace(wp, **wordpress),
            Site(id=DVC, profile="signed_json", url=sim.endpoint(), secret=SECRET,
                 district="ha-long")]


@pytest.fixture
async def sim() -> AsyncIterator[PortalSim]:
    async with PortalSim() as server:
        yield server


@pytest.fixture
async def make() -> AsyncIterator[Callable[..., PortalAdapter]]:
    made: list[PortalAdapter] = []

    def build(sim: PortalSim, clock: Clock | None = None, wordpress: dict[str, object] | None
              = None, **config: object) -> PortalAdapter:
        cfg = PortalConfig(sites=sites(sim, **(wordpress or {})), proxy="direct",
                           **config)  # type: ignore[arg-type]
        made.append(PortalAdapter(cfg, clock=clock or Clock()))
        return made[-1]

    yield build
    for adapter in made:
        await adapter.aclose()


def paused(site: str, reason: str) -> float | None:
    return REGISTRY.get_sample_value("loa_portal_site_paused", {"site": site, "reason": reason})


# -- both profiles -----------------------------------------------------------------------------


async def test_a_wave_is_one_post_on_each_site_with_what_each_profile_carries(
        sim: PortalSim, make: Callable[..., PortalAdapter]) -> None:
    adapter = make(sim)
    results = await adapter.send(envelope(subject="Cấp độ IV – KHẨN"))
    assert sorted(results.sent) == [0, 1] and not (results.retry or results.failed
                                                   or results.requeue)
    assert not results.receipts
    ids = dict(zip((envelope().addrs[i] for i in results.sent), results.remote_ids,
                   strict=True))
    [made] = sim.posts[WP]
    assert ids[WP] == str(made.id)
    assert made.title == "Cấp độ IV – KHẨN" and made.status == "publish"
    assert made.categories == [12]
    assert made.slug == portal_post.slug(WAVE, WP) and made.slug.startswith("loa-l4-portal-")
    # escaped, one paragraph per block, nothing of the text read as markup
    assert made.content.startswith("<p>KHẨN: dịch Covid-19") and "&lt;và&gt;" in made.content
    assert made.content.count("<p>") == 2
    [notice] = sim.notices[DVC]
    assert ids[DVC].startswith("notice-")
    assert notice["id"] == f"{WAVE}:{DVC}" and notice["wave"] == WAVE
    assert notice["title"] == "Cấp độ IV – KHẨN" and notice["text"] == TEXT
    assert notice["district"] == "ha-long" and notice["published_at"].endswith("+00:00")


async def test_wordpress_requests_authenticate_with_the_application_password(
        sim: PortalSim, make: Callable[..., PortalAdapter]) -> None:
    sim.keep = True
    await make(sim).send(envelope(WP))
    seen = [headers for _, _, headers, _ in sim.log]
    assert [method for _, method, _, _ in sim.log] == ["GET", "POST"]  # the look, the post
    expected = base64.b64encode(f"{ACCOUNT.user}:{ACCOUNT.password}".encode()).decode()
    assert all(h["authorization"] == f"Basic {expected}" for h in seen)


async def test_signed_json_is_signed_and_keyed_by_wave_and_site(
        sim: PortalSim, make: Callable[..., PortalAdapter]) -> None:
    sim.keep = True
    await make(sim).send(envelope(DVC))
    bodies = [(headers, body) for _, _, headers, body in sim.log]
    [(headers, raw)] = bodies
    assert headers["idempotency-key"] == f"{WAVE}:{DVC}"
    assert verify(SECRET, raw, headers["x-loa-timestamp"], headers["x-loa-signature"],
                  now=time.time()) is None
    assert verify("another", raw, headers["x-loa-timestamp"], headers["x-loa-signature"],
                  now=time.time()) == "bad signature"
    assert json.loads(raw)["id"] == f"{WAVE}:{DVC}"


# -- never twice -------------------------------------------------------------------------------


async def test_the_same_wave_sent_again_is_not_published_again(
        sim: PortalSim, make: Callable[..., PortalAdapter]) -> None:
    adapter = make(sim)
    first = await adapter.send(envelope())
    again = await make(sim).send(envelope())  # another worker, after a crash
    assert sorted(again.sent) == [0, 1]
    assert sorted(again.remote_ids) == sorted(first.remote_ids)  # the same posts
    assert sim.slugs() == {portal_post.slug(WAVE, WP): 1}
    assert sim.waves() == {WAVE: 1} and sim.stats.replays == 1
    other = await adapter.send(envelope(wave="L4-portal-20240305T1330"))
    assert sorted(other.sent) == [0, 1]
    assert len(sim.posts[WP]) == 2 and len(sim.notices[DVC]) == 2


async def test_an_answer_lost_after_publishing_never_publishes_twice(
        sim: PortalSim, make: Callable[..., PortalAdapter]) -> None:
    clock = Clock()
    adapter = make(sim, clock, timeout=0.3)
    sim.hang_after_publish = 1.0  # the portal keeps the post and answers too late
    lost = await adapter.send(envelope())
    assert lost.sent == [] and sorted(i for i, _ in lost.requeue) == [0, 1]
    assert all("may have been published" in why for _, why in lost.requeue)
    assert adapter.stats.unanswered == 2
    assert len(sim.posts[WP]) == 1 and len(sim.notices[DVC]) == 1  # both were published
    sim.hang_after_publish = 0.0
    clock.skip(2)  # the sites' holds (1 s) are over
    retried = await adapter.send(envelope())
    assert sorted(retried.sent) == [0, 1]
    assert adapter.stats.found == 1  # WordPress: the look found the post
    assert sim.stats.replays == 1  # signed JSON: the key was answered again
    assert sim.slugs() == {portal_post.slug(WAVE, WP): 1} and sim.waves() == {WAVE: 1}
    assert retried.remote_ids[retried.sent.index(0)] == str(sim.posts[WP][0].id)


async def test_a_halted_envelope_publishes_nothing(
        sim: PortalSim, make: Callable[..., PortalAdapter]) -> None:
    abort = Abort()
    abort.halted = True
    results = await make(sim).send(envelope(abort=abort))
    assert sorted(results.requeue) == [(0, HALTED), (1, HALTED)]
    assert sim.stats.requests == 0


# -- faults ------------------------------------------------------------------------------------


@pytest.mark.parametrize("site", [WP, DVC])
async def test_a_site_that_is_down_holds_its_posts_and_loses_none(
        sim: PortalSim, make: Callable[..., PortalAdapter], site: str) -> None:
    clock = Clock()
    adapter = make(sim, clock)
    await sim.stop()  # connection refused
    results = await adapter.send(envelope(site))
    assert results.sent == [] and results.retry == [] and results.failed == []
    [(index, why)] = results.requeue
    assert index == 0 and "cannot connect" in why
    assert results.pause_until > clock()  # nothing of the batch could go: the route waits
    assert results.urgent_passes
    assert adapter.paused == {site: "down"} and paused(site, "down") == 1.0
    held = await adapter.send(envelope(site))  # still held: no request
    assert held.requeue and adapter.stats.requests == 1
    clock.skip(1.5)
    again = await adapter.send(envelope(site))  # down again: held twice as long
    assert again.requeue and "held 2 s" in again.requeue[0][1]


async def test_a_slow_site_is_held_then_its_post_goes_once(
        sim: PortalSim, make: Callable[..., PortalAdapter]) -> None:
    clock = Clock()
    adapter = make(sim, clock, timeout=0.3)
    sim.delay = 1.0  # every answer (the look included) comes after the client gave up
    slow = await adapter.send(envelope(WP))
    assert slow.requeue and "no answer in 0.3 s" in slow.requeue[0][1]
    assert slow.sent == [] and adapter.paused == {WP: "down"}
    await asyncio.sleep(1.0)  # the simulator answers what it was asked
    sim.delay = 0.0
    clock.skip(2)
    done = await adapter.send(envelope(WP))
    assert done.sent == [0] and adapter.paused == {} and paused(WP, "down") is None
    assert len(sim.posts[WP]) == 1


@pytest.mark.parametrize("site", [WP, DVC])
async def test_429_holds_the_site_for_its_retry_after(
        sim: PortalSim, make: Callable[..., PortalAdapter], site: str) -> None:
    clock = Clock()
    adapter = make(sim, clock)
    sim.throttle_count, sim.retry_after = 1, 7
    results = await adapter.send(envelope(site))
    [(_, why)] = results.requeue
    assert "HTTP 429" in why and "held 7 s" in why
    assert clock() + 6 < results.pause_until <= clock() + 7.5
    assert adapter.paused == {site: "throttle"} and adapter.stats.throttled == 1
    requests = sim.stats.requests
    assert (await adapter.send(envelope(site))).requeue and sim.stats.requests == requests
    clock.skip(8)
    assert (await adapter.send(envelope(site))).sent == [0]
    assert adapter.paused == {}


async def test_an_expired_password_stops_the_site_with_an_alert_and_the_other_goes_on(
        sim: PortalSim, make: Callable[..., PortalAdapter],
        caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    adapter = make(sim, clock)
    sim.revoked.add(WP)
    with caplog.at_level(logging.ERROR, logger="adapters.portal.adapter"):
        results = await adapter.send(envelope())
    assert results.sent == [1]  # the signed JSON CMS took its notice
    [(index, why)] = results.requeue
    assert index == 0 and "incorrect_password" in why and "stopped" in why
    assert results.pause_until == 0.0  # the batch was not all held
    alerts = [r.getMessage() for r in caplog.records if r.getMessage().startswith("ALERT")]
    assert len(alerts) == 1 and "portal qn-portal stopped (credentials)" in alerts[0]
    assert paused(WP, "credentials") == 1.0 and adapter.stats.alerts == 1
    clock.skip(301)  # the next try: still refused, still stopped
    assert (await adapter.send(envelope(WP))).requeue and paused(WP, "credentials") == 1.0
    sim.revoked.clear()  # an operator gave it a new application password
    clock.skip(301)
    assert (await adapter.send(envelope(WP))).sent == [0]
    assert paused(WP, "credentials") is None and len(sim.posts[WP]) == 1


async def test_a_wrong_secret_stops_the_signed_site(
        sim: PortalSim, make: Callable[..., PortalAdapter]) -> None:
    sim.revoked.add(DVC)
    results = await make(sim).send(envelope(DVC))
    assert results.requeue and "HTTP 401" in results.requeue[0][1]
    assert results.pause_until > time.time() and sim.notices[DVC] == []


async def test_5xx_holds_the_site_and_the_post_goes_afterwards(
        sim: PortalSim, make: Callable[..., PortalAdapter]) -> None:
    clock = Clock()
    adapter = make(sim, clock)
    sim.error_count = 2
    results = await adapter.send(envelope())
    assert results.sent == [] and len(results.requeue) == 2
    assert all("HTTP 500 internal_server_error" in why for _, why in results.requeue)
    clock.skip(2)
    assert sorted((await adapter.send(envelope())).sent) == [0, 1]
    assert len(sim.posts[WP]) == 1 and len(sim.notices[DVC]) == 1


async def test_an_invalid_post_is_dead_lettered_with_the_portal_s_reason(
        sim: PortalSim, make: Callable[..., PortalAdapter]) -> None:
    adapter = make(sim, wordpress={"category": 99})  # a category the site does not have
    results = await adapter.send(envelope(WP))
    [(index, why)] = results.failed
    assert index == 0
    assert why == ("portal qn-portal answered HTTP 400 rest_invalid_param: Invalid "
                   "parameter(s): categories")
    assert adapter.paused == {} and sim.posts[WP] == []


async def test_a_wrong_url_stops_the_site_as_configuration(
        sim: PortalSim, make: Callable[..., PortalAdapter]) -> None:
    adapter = make(sim, wordpress={"url": f"{sim.url}/no-such-site"})
    results = await adapter.send(envelope(WP))
    assert results.requeue and "HTTP 404" in results.requeue[0][1]
    assert adapter.paused == {WP: "configuration"} and paused(WP, "configuration") == 1.0


async def test_answers_loa_does_not_know_are_retried_then_stop_the_site(
        sim: PortalSim, make: Callable[..., PortalAdapter]) -> None:
    adapter = make(sim, unknown_code_limit=2)
    sim.error_count, sim.error_status = 2, 418
    first = await adapter.send(envelope(WP))
    assert first.retry and "418" in first.retry[0][1] and adapter.paused == {}
    second = await adapter.send(envelope(WP))
    assert second.requeue and "2 answers in a row Loa does not know" in second.requeue[0][1]
    assert adapter.paused == {WP: "unknown"}


async def test_a_target_that_is_not_configured_fails(
        sim: PortalSim, make: Callable[..., PortalAdapter]) -> None:
    results = await make(sim).send(envelope("nowhere"))
    assert results.failed == [(0, "portal: no site 'nowhere' in [portal] sites")]



# -- loa sim portal ----------------------------------------------------------------------------


def test_loa_sim_portal_serves_both_profiles_until_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "dispatcher.service.cli", "sim", "portal", "--port", "0",
         "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("Portal simulator listening on http://127.0.0.1:"), line
        urls = {}
        for _ in range(2):  # "  wordpress qn-portal: url = http://..."
            words = proc.stdout.readline().split()
            urls[words[1].rstrip(":")] = words[-1]
        assert set(urls) == {WP, DVC}

        async def publish() -> list[int]:
            config = PortalConfig(proxy="direct", sites=[
                Site(id=WP, profile="wordpress", url=urls[WP], user=ACCOUNT.user,
                     password=ACCOUNT.password, category=12),
                Site(id=DVC, profile="signed_json", url=urls[DVC], secret=SECRET)])
            adapter = PortalAdapter(config)
            try:
                first = await adapter.send(envelope())
                again = await adapter.send(envelope())
                return sorted(first.sent + again.sent)
            finally:
                await adapter.aclose()

        assert asyncio.run(publish()) == [0, 0, 1, 1]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    stats = json.loads(out.strip().splitlines()[-1])
    assert stats["created"] == 1 and stats["notices"] == 1 and stats["replays"] == 1
    assert stats["looks"] == 2
