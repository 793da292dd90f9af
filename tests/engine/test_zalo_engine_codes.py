"""Every code of Zalo's table (adapters/zalo/codes.py) through the engine against the Zalo
simulator over loopback: what each outcome does to a wave, counted at the far ends (the
simulator's ``received``, the SMS channel's ``received``), not from what Loa believes.

* retry: tried ``max_attempts`` times, then dead-lettered with the code; a recovery sends all;
* fail: dead-lettered at once with the code and its meaning;
* fallback: the refused recipients get the SMS of the companion wave, once;
* refresh: the token is renewed once and every message goes;
* quota, configuration, balance: the route pauses (``loa_zalo_route_paused{reason}`` 1),
  nothing is dead-lettered, and the route resumes by itself when Zalo accepts again;
* night: an urgent wave goes by SMS at once, a routine one is held;
* a code not in the table: a bounded number of retries, then a pause (``reason="unknown"``).
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import re
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from adapters.base import Adapter
from adapters.memory import MemoryAdapter
from adapters.zalo.adapter import ZaloAdapter
from adapters.zalo.codes import CODES, Outcome
from adapters.zalo.config import ZaloConfig
from adapters.zalo.oa import OA_PATHS
from adapters.zalo.simulator import ZaloSim, ZaloSimConfig
from adapters.zalo.tokens import MemoryTokenStore
from bench import audiencegen
from bench.cli.simzalo import _config as _zalo_config
from dispatcher.domain.audience import Validator
from dispatcher.domain.errors import InputError
from dispatcher.domain.model import (
    VN,
    Campaign,
    CampaignState,
    Channel,
    Priority,
    Selector,
    Wave,
    WaveState,
)
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.engine import routing
from dispatcher.engine.fallback import fallback_wave_id
from dispatcher.engine.importer import import_audience
from dispatcher.engine.process import Engine, Progress, wave_progress
from dispatcher.service.cli import build_parser
from dispatcher.service.settings import EngineSettings, RetrySettings, Settings
from dispatcher.store import RedisStore, Store

N = 30  # recipients of each wave
ATTEMPTS = 3
SETTINGS = Settings(engine=EngineSettings(batch_size=50, chunk_size=64, lease_seconds=2.0,
                                          state_refresh_seconds=0.05),
                    retry=RetrySettings(max_attempts=ATTEMPTS, base_seconds=0.02,
                                        max_seconds=0.05))
PROBE = 0.05  # seconds between the tries of a paused route
UNKNOWN_LIMIT = 5


def codes(*outcomes: Outcome) -> list[int]:
    return sorted((c for c, code in CODES.items() if c and code.outcome in outcomes),
                  reverse=True)


PAUSES = {Outcome.QUOTA: "quota", Outcome.CONFIGURATION: "configuration",
          Outcome.BALANCE: "balance"}


def test_every_code_of_the_table_is_driven_through_the_engine() -> None:
    """The parametrizations below cover the table, whatever is added to it."""
    driven = (codes(Outcome.RETRY) + codes(Outcome.FAIL) + codes(Outcome.FALLBACK)
              + list(REFRESH) + [c for _, _, chunk in PAUSE_RUNS for c in chunk]
              + codes(Outcome.NIGHT))
    assert sorted(driven) == sorted(c for c in CODES if c)
    assert set(REFRESH) == set(codes(Outcome.REFRESH))


def test_the_docs_name_a_test_of_this_file_for_each_outcome() -> None:
    text = (Path(__file__).parents[2] / "docs" / "channels.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`(test_\w+)`", text))
    assert len(named) >= 10 and named <= {n for n in globals() if n.startswith("test_")}


# -- the set-up ----------------------------------------------------------------------------------


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[Store]:
    opened = RedisStore(redis_url)
    try:
        yield opened
    finally:
        await opened.aclose()


class World:
    """An audience of N imported, the campaign, and an engine with Zalo (against ``sim``) and a
    MemoryAdapter for SMS."""

    def __init__(self, store: Store, sim: ZaloSim, plan: Plan, numbering: Numbering,
                 province: Province, *, access_token: str = "sim-access-token") -> None:
        self.store, self.sim, self.numbering, self.province = store, sim, numbering, province
        config = ZaloConfig(base_url=sim.url, oa_url=sim.url, oauth_url=sim.url,
                            app_id=sim.config.app_id, secret_key=sim.config.secret_key,
                            template_id="loa-alert", mode="auto", timeout=2.0,
                            token_retry_after=0.0, quota_probe_seconds=PROBE,
                            alert_probe_seconds=PROBE, unknown_code_limit=UNKNOWN_LIMIT)
        self.zalo = ZaloAdapter(config, MemoryTokenStore(access_token, "sim-refresh-token"))
        self.sms = MemoryAdapter()
        adapters: dict[Channel, Adapter] = {Channel.ZALO: self.zalo, Channel.SMS: self.sms}
        self.engine = Engine(store, plan, SETTINGS, province, adapters, numbering.carriers,
                             reconcile=False, numbering=numbering)
        self.version = ""
        self.total = 0
        self.phones: list[str] = []  # the recipients Zalo reaches by phone (ZNS)
        self.uids: list[str] = []  # ... by OA user id

    async def audience(self, tmp_path: Path, *, oa: bool | None = None) -> None:
        """N generated recipients, most on Zalo by phone (ZNS), some by OA user id; ``oa``
        True: each by an OA user id, False: each by phone."""
        path = tmp_path / "audience.csv"
        audiencegen.generate(path, N, seed=17, numbering=self.numbering,
                             province=self.province)
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        for n, row in enumerate(rows[1:]):
            if oa:
                row[1] = f"7{n:011d}"
            elif oa is False and row[1] != "0":
                row[1] = "1"
            if row[1] == "1":
                self.phones.append(self.numbering.normalize(row[0])[0])
            elif row[1] != "0":
                self.uids.append(row[1])
        with path.open("w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(rows)
        await import_audience(path, self.store, Validator(self.numbering, self.province),
                              chunk_size=64)
        meta = await self.store.audiences.meta()
        assert meta is not None
        self.version = meta.version
        self.total = routing.reach(meta, Selector(), Channel.ZALO)
        assert self.total == len(self.phones) + len(self.uids)

    async def wave(self, wave_id: str = "w", *, urgent: bool = False) -> Wave:
        """A Zalo wave of a campaign of its own, with the SMS fallback."""
        now = dt.datetime.now(dt.UTC)
        await self.store.campaigns.create(Campaign(
            id=f"c-{wave_id}", title="t", channels=[Channel.ZALO],
            texts={Channel.ZALO: "Zalo"}, created_at=now, created_by="a",
            state=CampaignState.RUNNING))
        wave = Wave(id=wave_id, campaign_id=f"c-{wave_id}", channel=Channel.ZALO, text="Zalo",
                    created_at=now, audience_version=self.version,
                    total=self.total, start_now=True, fallback_text="Deo khau trang (SMS)",
                    priority=Priority.URGENT if urgent else Priority.NORMAL)
        await self.store.waves.create(wave, WaveState.CREATED)
        return wave

    async def run(self, body: Callable[[], Awaitable[None]]) -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(self.engine.run(stop))
        try:
            await body()
        finally:
            stop.set()
            await task
            await self.zalo.aclose()

    async def progress(self, wave: Wave) -> Progress:
        return await wave_progress(self.store, wave)

    async def dead(self) -> list[tuple[int, str]]:
        """(attempts, reason) of every dead letter of the Zalo route."""
        return [(d.attempts, d.reason) for d in await self.store.queue.dead_letters("zalo")]

    def sms_to(self, wave: Wave) -> dict[str, int]:
        """Address -> SMS received in ``wave``'s companion SMS wave, at the far end."""
        companion = fallback_wave_id(wave.id)
        return {a: n for (w, a), n in self.sms.received.items() if w == companion and n}


@pytest.fixture
async def world(store: Store, sim: ZaloSim, plan: Plan, numbering: Numbering,
                province: Province) -> World:
    return World(store, sim, plan, numbering, province)


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 15) -> None:
    async def wait() -> None:
        while not await check():
            await asyncio.sleep(0.02)
    await asyncio.wait_for(wait(), timeout)


async def paused_by(world: World, code: int) -> None:
    """Wait until the Zalo route is paused by ``code``."""
    await until(lambda: _true(f"zalo {code}:" in world.zalo.pause_reason))


def paused(reason: str) -> float | None:
    return REGISTRY.get_sample_value("loa_zalo_route_paused", {"reason": reason})


async def settled(world: World, wave: Wave) -> bool:
    """Every message of ``wave`` has an outcome, and its companion SMS wave (if any) too."""
    p = await world.progress(wave)
    if p.queued or p.retrying or p.sent + p.failed + p.expired < wave.total:
        return False
    if not p.fallback:
        return True
    other = await world.store.waves.get(fallback_wave_id(wave.id))
    if other is None:
        return False
    s = await world.progress(other)
    return s.total == p.fallback and s.queued == 0 and s.retrying == 0


# -- retry ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", codes(Outcome.RETRY))
async def test_a_retry_code_is_tried_every_attempt_then_dead_lettered_with_the_code(
        world: World, tmp_path: Path, code: int) -> None:
    await world.audience(tmp_path)
    wave = await world.wave()
    world.sim.set_config(error_ratio=1.0, error_code=code)
    await world.run(lambda: until(lambda: settled(world, wave)))
    p = await world.progress(wave)
    assert (p.sent, p.failed, p.expired, p.fallback) == (0, 0, wave.total, 0), p
    dead = await world.dead()
    assert len(dead) == p.dead_letters == wave.total
    assert all(n == ATTEMPTS and f"zalo {code}" in why for n, why in dead), dead[:3]
    assert world.sim.stats.requests == world.sim.answered[code] == ATTEMPTS * wave.total
    assert world.sim.stats.accepted == 0 and world.sms.messages == 0


async def test_after_minus_100_every_message_goes_once_zalo_accepts_again(
        world: World, tmp_path: Path) -> None:
    await world.audience(tmp_path)
    wave = await world.wave()
    sim = world.sim
    sim.set_config(error_ratio=1.0, error_code=-100)

    async def body() -> None:
        await until(lambda: _true(sim.stats.errors_injected >= wave.total))
        sim.set_config(error_ratio=0.0)  # Zalo is well again: the retries go
        await until(lambda: settled(world, wave))

    await world.run(body)
    p = await world.progress(wave)
    assert (p.sent, p.failed) == (wave.total, 0) and await world.dead() == []
    assert len(sim.received) == wave.total and sim.duplicates == 0
    assert sim.stats.errors_injected >= wave.total  # each was refused once at least


async def _true(value: bool) -> bool:
    return value


# -- fail ----------------------------------------------------------------------------------------


def spread(phones: list[str], codes_: list[int]) -> dict[str, int]:
    """Each code of ``codes_`` to one phone or more, in turn."""
    assert len(phones) >= len(codes_)
    return {phone: codes_[n % len(codes_)] for n, phone in enumerate(phones)}


async def test_every_fail_code_dead_letters_its_message_at_once_with_the_code_and_meaning(
        world: World, tmp_path: Path) -> None:
    """One engine, one wave; each phone answered one of the fail codes, every code at least
    once; the other recipients (OA user ids) are sent."""
    await world.audience(tmp_path)
    wave = await world.wave()
    refused = spread(world.phones, codes(Outcome.FAIL))
    world.sim.set_config(error_phones=refused)
    await world.run(lambda: until(lambda: settled(world, wave)))
    p = await world.progress(wave)
    assert (p.sent, p.failed, p.fallback) == (wave.total - len(refused), len(refused), 0)
    dead = await world.dead()
    assert len(dead) == len(refused) and all(n == 1 for n, _ in dead)  # at once
    assert sorted(why for _, why in dead) == sorted(
        f"zalo {code}: {CODES[code].english}" for code in refused.values())
    assert world.sim.stats.requests == wave.total  # asked once each
    assert world.sim.answered == Counter(refused.values())
    assert set(world.sim.received) == set(world.uids) and world.sms.messages == 0


# -- fallback to SMS -------------------------------------------------------------------------


async def test_every_fallback_code_sends_its_recipient_the_sms_once(
        world: World, tmp_path: Path) -> None:
    """One engine, one wave; each phone but a few answered one of the fallback codes, every code
    at least once: those get the companion wave's SMS, once; the rest are sent on Zalo."""
    await world.audience(tmp_path)
    wave = await world.wave()
    sim = world.sim
    refused = spread(world.phones[:-3], codes(Outcome.FALLBACK))
    sim.set_config(error_phones=refused)
    await world.run(lambda: until(lambda: settled(world, wave)))
    p = await world.progress(wave)
    assert p.failed == p.fallback == len(refused) and p.sent == wave.total - len(refused)
    assert world.sms_to(wave) == dict.fromkeys(refused, 1)  # each refused got one SMS
    assert world.sms.duplicates == 0 and sim.duplicates == 0
    assert set(sim.received) == set(world.phones[-3:]) | set(world.uids)
    assert sim.answered == Counter(refused.values())
    dead = await world.dead()
    assert sorted(why for _, why in dead) == sorted(
        f"fallback: zalo {code}: {CODES[code].english}" for code in refused.values())


async def test_a_share_of_refused_phones_gets_the_sms(world: World, tmp_path: Path) -> None:
    """The simulator's ``refusals``: a fixed share of phones answered -141."""
    await world.audience(tmp_path)
    wave = await world.wave()
    sim = world.sim
    sim.set_config(refusals={-141: 0.4})
    await world.run(lambda: until(lambda: settled(world, wave)))
    refused = set(sim.refused)
    assert refused and set(sim.refused.values()) == {-141}
    p = await world.progress(wave)
    assert p.failed == p.fallback == len(refused) and p.sent == wave.total - len(refused)
    assert world.sms_to(wave) == dict.fromkeys(refused, 1)
    assert len(sim.received) == wave.total - len(refused) and not refused & set(sim.received)


# -- refresh -------------------------------------------------------------------------------------


REFRESH = {-124: ("expired", False), -216: ("unknown", True), -220: ("expired", True)}


@pytest.mark.parametrize("code", sorted(REFRESH, reverse=True))
async def test_a_refused_token_is_renewed_once_and_every_message_goes(
        store: Store, sim: ZaloSim, plan: Plan, numbering: Numbering, province: Province,
        tmp_path: Path, code: int) -> None:
    """-124 (ZNS: the token expired), -216 (OA: a token Zalo does not know), -220 (OA: the
    token expired)."""
    token, oa = REFRESH[code]
    world = World(store, sim, plan, numbering, province,
                  access_token="stale-token" if token == "unknown" else "sim-access-token")
    await world.audience(tmp_path, oa=oa)
    wave = await world.wave()
    if token == "expired":
        sim.expire_token()
    await world.run(lambda: until(lambda: settled(world, wave)))
    p = await world.progress(wave)
    assert (p.sent, p.failed) == (wave.total, 0) and await world.dead() == []
    assert sim.stats.token_rejected >= 1 and sim.stats.refreshes == 1
    # the API's own code for this token (-124 also from the quota read at the wave's start,
    # which is ZNS's API)
    assert sim.answered[code] >= 1 and set(sim.answered) - {-124} <= {code}
    assert len(sim.received) == wave.total and sim.duplicates == 0
    assert all(a.startswith("7") == oa for a in sim.received)


# -- quota, configuration, balance: the route pauses, the audience is kept ------------------------


def api_codes(outcome: Outcome, oa: bool) -> list[int]:
    """The codes of ``outcome`` of the OA API (-2xx) or of ZNS."""
    return [c for c in codes(outcome) if (c <= -200) == oa]


CHUNK = 16  # codes driven through one engine


PAUSE_RUNS = [(o, oa, tuple(api_codes(o, oa)[at:at + CHUNK])) for o in PAUSES
              for oa in (False, True) for at in range(0, len(api_codes(o, oa)), CHUNK)]


@pytest.mark.parametrize(("outcome", "oa", "chunk"), PAUSE_RUNS,
                         ids=[f"{o.value}-{'oa' if oa else 'zns'}{c[0]}"
                              for o, oa, c in PAUSE_RUNS])
async def test_each_wave_wide_code_pauses_the_route_keeps_the_audience_and_resumes(
        world: World, tmp_path: Path, outcome: Outcome, oa: bool,
        chunk: tuple[int, ...]) -> None:
    """One engine per outcome, API and chunk of codes: Zalo answers each code to every message
    in turn; each pauses the route (the metric, the code in the pause), nothing is sent, failed
    or dead-lettered; when Zalo accepts again the route resumes by itself and every message goes
    once. A non-urgent wave without a level: a quota waits for the reset."""
    await world.audience(tmp_path, oa=oa)
    wave = await world.wave()
    sim, reason = world.sim, PAUSES[outcome]

    async def body() -> None:
        for code in chunk:
            sim.set_config(error_ratio=1.0, error_code=code)
            await paused_by(world, code)
            assert sim.answered[code] >= 1
            assert paused(reason) == 1  # the alert
        p = await world.progress(wave)
        assert (p.sent, p.failed, p.expired) == (0, 0, 0)
        sim.set_config(error_ratio=0.0)  # topped up, fixed, the quota reset
        await until(lambda: settled(world, wave))

    await world.run(body)
    p = await world.progress(wave)
    assert (p.sent, p.failed, p.expired) == (wave.total, 0, 0) and await world.dead() == []
    assert len(sim.received) == wave.total and sim.duplicates == 0
    assert world.sms.messages == 0
    assert not paused(reason)


async def test_the_balance_spent_mid_wave_pauses_the_route_until_topped_up(
        world: World, tmp_path: Path) -> None:
    """The simulator answers -115 once its balance of messages is spent."""
    await world.audience(tmp_path)
    wave = await world.wave()
    sim = world.sim
    sim.set_config(balance=10)

    async def body() -> None:
        await until(lambda: _true(paused("balance") == 1))
        assert sim.stats.balance_refused >= 1 and sim.spent == 10
        p = await world.progress(wave)
        assert (p.failed, p.expired) == (0, 0)
        sim.top_up(100)
        await until(lambda: settled(world, wave))

    await world.run(body)
    p = await world.progress(wave)
    assert (p.sent, p.failed) == (wave.total, 0) and await world.dead() == []
    assert len(sim.received) == wave.total and sim.duplicates == 0


# -- night -----------------------------------------------------------------------------------


def at_vietnam(hour: int) -> float:
    return dt.datetime(2026, 12, 7, hour, 30, tzinfo=VN).timestamp()


async def night(store: Store, plan: Plan, numbering: Numbering, province: Province,
                tmp_path: Path, code: int, *, late: bool) -> None:
    """At 23:30 in Vietnam by the simulator's clock: -133 for the template flagged for the
    night rule (ZNS, phones), -234 for OA messages (user ids). An urgent wave goes by SMS at
    once, then a routine wave is held until 06:00 (none lost); ``late``: the routine wave
    first, the urgent one once the route waits for the morning."""
    config = ZaloSimConfig(night_templates=frozenset({"loa-alert"})) if code == -133 else \
        ZaloSimConfig(oa_night="clock", oa_night_types=frozenset(OA_PATHS))
    async with ZaloSim(config, clock=lambda: at_vietnam(23)) as sim:
        world = World(store, sim, plan, numbering, province)
        await world.audience(tmp_path, oa=code == -234)  # -133: phones only

        async def body() -> None:
            if late:
                await world.wave("w")
                await until(lambda: _true(paused("night") == 1))
            urgent = await world.wave("u", urgent=True)
            await until(lambda: settled(world, urgent), timeout=2 if late else 15)
            if not late:
                assert not paused("night")  # an urgent message never holds the route
                await world.wave("w")
                await until(lambda: _true(paused("night") == 1))

        await world.run(body)
    urgent, routine = await store.waves.get("u"), await store.waves.get("w")
    assert urgent is not None and routine is not None
    u, r = await world.progress(urgent), await world.progress(routine)
    assert (u.sent, u.failed) == (0, urgent.total) and sim.stats.accepted == 0
    assert set(sim.answered) == {code} and sim.stats.night_refused == sim.answered[code]
    # every one gets the SMS, once: a phone at its number, an OA user id at its row's phone
    sms = world.sms_to(urgent)
    assert u.fallback == urgent.total == len(sms) and set(sms.values()) == {1}
    assert set(world.phones) <= set(sms)
    assert all(f"fallback: zalo {code}:" in why for _, why in await world.dead())
    assert (r.sent, r.failed, r.fallback, r.expired) == (0, 0, 0, 0)
    assert r.queued + r.retrying == r.total  # held for the morning
    assert world.sms_to(routine) == {} and world.sms.duplicates == 0
    morning = dt.datetime.fromtimestamp(world.zalo.paused_until, VN)
    assert (morning.hour, morning.minute) == (6, 0)


@pytest.mark.parametrize("code", codes(Outcome.NIGHT))
async def test_at_night_an_urgent_wave_goes_by_sms_at_once_and_a_routine_one_waits(
        store: Store, plan: Plan, numbering: Numbering, province: Province, tmp_path: Path,
        code: int) -> None:
    await night(store, plan, numbering, province, tmp_path, code, late=False)


@pytest.mark.parametrize("code", codes(Outcome.NIGHT))
async def test_at_night_an_urgent_wave_after_the_route_was_held_goes_by_sms_at_once(
        store: Store, plan: Plan, numbering: Numbering, province: Province, tmp_path: Path,
        code: int) -> None:
    """A routine wave held the route until 06:00; an urgent one that comes later is still
    taken (the pause holds routine batches only) and goes by SMS at once."""
    await night(store, plan, numbering, province, tmp_path, code, late=True)


def test_the_simulator_tells_night_by_vietnam_time() -> None:
    sim = ZaloSim(clock=lambda: at_vietnam(21))
    assert not sim.night()
    sim.clock = lambda: at_vietnam(22)
    assert sim.night()
    sim.clock = lambda: at_vietnam(5)
    assert sim.night()
    sim.clock = lambda: at_vietnam(6)
    assert not sim.night()


# -- a code not in the table -----------------------------------------------------------------


async def test_an_unknown_code_is_retried_a_bounded_number_of_times_then_pauses_the_route(
        world: World, tmp_path: Path) -> None:
    await world.audience(tmp_path)
    wave = await world.wave()
    sim = world.sim
    sim.set_config(error_ratio=1.0, error_code=-999)

    async def body() -> None:
        await until(lambda: _true(paused("unknown") == 1))
        await until(lambda: _true(sim.stats.requests >= 3 * N))  # the probes go on
        p = await world.progress(wave)
        assert (p.sent, p.failed, p.expired) == (0, 0, 0)
        sim.set_config(error_ratio=0.0)
        await until(lambda: settled(world, wave))

    await world.run(body)
    p = await world.progress(wave)
    assert (p.sent, p.failed) == (wave.total, 0) and await world.dead() == []
    assert len(sim.received) == wave.total and sim.duplicates == 0


# -- the simulator's command line ---------------------------------------------------------------


PARSER = build_parser()


def sim_config(*argv: str) -> ZaloSimConfig:
    return _zalo_config(PARSER.parse_args(["sim", "zalo", *argv]))


def test_sim_cli_answers_any_code_of_the_table_and_names_one_that_is_not() -> None:
    for code in (c for c in CODES if c):
        assert sim_config("--error-ratio", "1", "--error-code", str(code)).error_code == code
        assert sim_config(f"--refusal={code}=0.1").refusals == {code: 0.1}
    for bad in ("-999", "-1440", "x"):
        with pytest.raises(InputError, match=rf"^--error-code: .*{bad}.*$"):
            sim_config("--error-code", bad)
    with pytest.raises(InputError, match=r"^--refusal: -999 is not a code of Zalo's table"):
        sim_config("--refusal=-999=0.1")
    with pytest.raises(InputError, match=r"^--error-phone: -7 is not a code of Zalo's table"):
        sim_config("--error-phone", "84912345678=-7")
    with pytest.raises(InputError, match=r"^--refusal: the shares add up to more than 1$"):
        sim_config("--refusal=-141=0.6", "--refusal=-119=0.6")


def test_sim_cli_sets_the_balance_and_the_night_rule() -> None:
    config = sim_config("--balance", "5000", "--night-template", "loa-alert",
                        "--night-template", "loa-routine", "--oa-night", "clock")
    assert config.balance == 5000 and config.oa_night == "clock"
    assert config.night_templates == {"loa-alert", "loa-routine"}
    with pytest.raises(InputError, match=r"^balance must not be negative$"):
        sim_config("--balance", "-1")
