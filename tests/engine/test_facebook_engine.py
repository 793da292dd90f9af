"""Facebook through the whole engine, against the Graph API simulator over loopback: a wave is
posted once on each page whatever is lost on the way (an answer that never came, a worker that
died between Facebook's answer and the sent bit), and a page stopped for its token keeps its
post queued until the token is renewed. Posts are counted at the simulator."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import AsyncIterator

import pytest

from adapters.facebook import FacebookAdapter, FacebookConfig, Page
from adapters.facebook.simulator import FacebookSim, FacebookSimConfig, SimPost
from dispatcher.domain.model import WAVE_FINAL, Campaign, CampaignState, Channel, Wave, WaveState
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.engine.process import Engine, wave_progress
from dispatcher.engine.settings import EngineSettings, RetrySettings
from dispatcher.service.settings import Settings
from dispatcher.store import Store
from tests.conftest import run_engine_until

TOKENS = {"1001": "tok-province", "1002": "tok-so", "1003": "tok-ha-long"}
PAGES = [Page(id="province", page_id="1001", token_env="T1", token="tok-province"),
         Page(id="so-tttt", page_id="1002", token_env="T2", token="tok-so"),
         Page(id="ha-long", page_id="1003", token_env="T3", token="tok-ha-long",
              district="ha-long")]
TEXT = "Thông báo khẩn của Ban Chỉ đạo phòng, chống dịch tỉnh Quảng Ninh."


@pytest.fixture
async def sim() -> AsyncIterator[FacebookSim]:
    server = FacebookSim(FacebookSimConfig(pages=TOKENS))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def settings(sim: FacebookSim, *, timeout: float = 2.0) -> Settings:
    return Settings(
        facebook=FacebookConfig(graph_url=sim.url, pages=PAGES, proxy="direct", timeout=timeout,
                                alert_probe_seconds=0.3, outage_pause_max=0.2),
        retry=RetrySettings(max_attempts=3, base_seconds=0.05, max_seconds=0.2, jitter=0.1),
        engine=EngineSettings(lease_seconds=1.0, state_refresh_seconds=0.05))


async def wave_of(store: Store, config: Settings) -> Wave:
    await store.campaigns.create(Campaign(
        id="c-fb", title="t", channels=[Channel.FACEBOOK], texts={Channel.FACEBOOK: TEXT},
        created_at=dt.datetime.now(dt.UTC), created_by="t", state=CampaignState.RUNNING))
    targets = config.targets(Channel.FACEBOOK)
    wave = Wave(id="c-fb-facebook", campaign_id="c-fb", channel=Channel.FACEBOOK, text=TEXT,
                created_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1),
                audience_version="v", total=len(targets), start_now=True, targets=targets)
    await store.waves.create(wave, WaveState.CREATED)
    return wave


def engine(store: Store, plan: Plan, province: Province, config: Settings,
           adapter: FacebookAdapter) -> Engine:
    return Engine(store, plan, config, province, {Channel.FACEBOOK: adapter}, [],
                  reconcile=False)


async def finished(store: Store, wave: Wave) -> bool:
    return (await store.waves.states([wave.id])).get(wave.id) in WAVE_FINAL


def posts(sim: FacebookSim) -> dict[str, list[str]]:
    return {page: sim.published(page) for page in TOKENS}


async def test_answers_lost_after_publishing_leave_one_post_per_page(
        store: Store, sim: FacebookSim, plan: Plan, province: Province) -> None:
    config = settings(sim, timeout=0.3)
    wave = await wave_of(store, config)
    adapter = FacebookAdapter(config.facebook)  # type: ignore[arg-type]
    sim.hang_after_publish = 1.0  # every post is made, its answer comes after the timeout

    async def recovered() -> bool:
        if adapter.stats.unanswered >= len(PAGES):
            sim.hang_after_publish = 0.0  # the retries' looks find the posts
        return await finished(store, wave)

    try:
        await run_engine_until(engine(store, plan, province, config, adapter), recovered)
    finally:
        await adapter.aclose()
    assert posts(sim) == {page: [TEXT] for page in TOKENS}
    assert adapter.stats.found == len(PAGES)
    p = await wave_progress(store, wave)
    assert (p.sent, p.failed, p.dead_letters) == (len(PAGES), 0, 0)


async def test_a_post_made_by_a_worker_that_died_before_its_sent_bit_is_not_made_again(
        store: Store, sim: FacebookSim, plan: Plan, province: Province) -> None:
    config = settings(sim)
    wave = await wave_of(store, config)
    # the dead worker's post reached the province's page; no sent bit was written for it
    sim.posts["1001"].append(SimPost("1001_0", TEXT, time.time()))
    adapter = FacebookAdapter(config.facebook)  # type: ignore[arg-type]
    try:
        await run_engine_until(engine(store, plan, province, config, adapter),
                               lambda: finished(store, wave))
    finally:
        await adapter.aclose()
    assert posts(sim) == {page: [TEXT] for page in TOKENS}
    assert adapter.stats.found == 1 and adapter.stats.posts == 2


async def test_a_page_with_an_expired_token_keeps_its_post_until_the_token_is_renewed(
        store: Store, sim: FacebookSim, plan: Plan, province: Province) -> None:
    config = settings(sim)
    wave = await wave_of(store, config)
    adapter = FacebookAdapter(config.facebook)  # type: ignore[arg-type]
    sim.expired.add("tok-so")

    async def renewed() -> bool:
        if adapter.stopped and sim.expired and sim.published("1001"):
            p = await wave_progress(store, wave)
            assert p.dead_letters == 0 and p.sent == 2  # the page's post waits, not lost
            sim.expired.clear()  # an operator gave the page a new token
        return await finished(store, wave)

    try:
        await run_engine_until(engine(store, plan, province, config, adapter), renewed)
    finally:
        await adapter.aclose()
    assert posts(sim) == {page: [TEXT] for page in TOKENS}
    assert adapter.stats.alerts >= 1 and adapter.stopped == {}
    p = await wave_progress(store, wave)
    assert (p.sent, p.dead_letters) == (len(PAGES), 0)
