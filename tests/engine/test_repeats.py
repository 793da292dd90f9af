"""No repeats to a person: the same text on the same channel reaches a phone once per window,
whatever mix of plan waves (a level's opening, its slots), Zalo→SMS fallback and retries would
have sent it; the fallback is capped per day and waits for the sending hours. Counted at the
SMSC simulator, by (number, text)."""

from __future__ import annotations

import datetime as dt
import itertools
import time
from collections import Counter
from pathlib import Path
from zoneinfo import ZoneInfo

import msgspec
import pytest

from adapters.base import Adapter
from adapters.memory import MemoryAdapter
from adapters.smpp.adapter import DEFAULT_LINK, LinkConfig, SmppAdapter
from adapters.smpp.simulator import Smsc, SmscConfig
from bench import audiencegen
from dispatcher.domain import repeats
from dispatcher.domain.model import (
    Batch,
    Campaign,
    CampaignState,
    Channel,
    Priority,
    Wave,
    WaveState,
)
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.domain.smstext import strip_diacritics
from dispatcher.engine import routing
from dispatcher.engine.fallback import SmsFallback, fallback_wave_id
from dispatcher.engine.level import set_level
from dispatcher.engine.process import Engine, wave_progress
from dispatcher.service.settings import EngineSettings, RetrySettings, Settings
from dispatcher.store import Store
from dispatcher.store.base import AudienceMeta, Completion
from tests.conftest import daytime, imported, run_engine_until
from tests.engine.test_fallback_and_pause import NotOnZalo

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
ROWS = 600
SETTINGS = Settings(engine=EngineSettings(batch_size=40, chunk_size=64, lease_seconds=2.0,
                                          state_refresh_seconds=0.1, reconcile_seconds=0.2),
                    retry=RetrySettings(max_attempts=8, base_seconds=0.05, max_seconds=0.2))


@pytest.fixture(scope="module")
def audience_file(tmp_path_factory: pytest.TempPathFactory, numbering: Numbering,
                  province: Province) -> Path:
    path = tmp_path_factory.mktemp("repeats") / "audience.csv"
    audiencegen.generate(path, ROWS, seed=21, numbering=numbering, province=province)
    return path


@pytest.fixture
async def meta(store: Store, audience_file: Path, numbering: Numbering,
               province: Province) -> AudienceMeta:
    return await imported(store, audience_file, numbering, province)


# -- the ledger ---------------------------------------------------------------------------------


async def test_the_ledger_lets_a_wave_retry_and_keeps_other_waves_out(store: Store) -> None:
    claim = store.ledger.claim
    a, b = repeats.tag("wave-a"), repeats.tag("wave-b")
    assert await claim("l", [1, 2, 70_000], now=1000, window=60, tag=a, ttl=600) == [True] * 3
    assert await claim("l", [1, 2, 70_000], now=1010, window=60, tag=a, ttl=600) == [True] * 3
    assert await claim("l", [2, 3], now=1020, window=60, tag=b, ttl=600) == [False, True]
    assert await claim("other", [2], now=1020, window=60, tag=b, ttl=600) == [True]
    # wave a's claim of 2 was renewed at 1010: the window counts from there
    assert await claim("l", [2], now=1069, window=60, tag=b, ttl=600) == [False]
    assert await claim("l", [2], now=1070, window=60, tag=b, ttl=600) == [True]
    assert await claim("l", [2], now=1071, window=60, tag=a, ttl=600) == [False]
    # two slots: two tags a day, not a third; the next day, again
    day = 739_000
    for wave, expected in (("z1", True), ("z2", True), ("z3", False), ("z1", True)):
        found = await claim("cap", [5], now=day, window=1, tag=repeats.tag(wave), slots=2,
                            ttl=600)
        assert found == [expected], wave
    assert await claim("cap", [5], now=day + 1, window=1, tag=repeats.tag("z3"), slots=2,
                       ttl=600) == [True]
    # scattered ids (read field by field) and neighbours (read as one range) share the layout
    for wave, both in (("z1", [True, True]), ("z2", [True, True]), ("z3", [False, False])):
        found = await claim("cap2", [5, 90_000] if wave != "z2" else [90_000, 5], now=day,
                            window=1, tag=repeats.tag(wave), slots=2, ttl=600)
        assert found == both, wave
    assert await claim("cap2", [5, 6], now=day, window=1, tag=repeats.tag("z3"), slots=2,
                       ttl=600) == [False, True]
    assert await claim("l", [], now=1, window=1, tag=a, ttl=600) == []


def test_plan_windows_are_most_of_the_gap_between_two_slots(plan: Plan) -> None:
    assert repeats.plan_window(plan, 4, Channel.SMS) == int(24 * 60 * 0.9)  # daily
    assert repeats.plan_window(plan, 3, Channel.SMS) == int(3 * 24 * 60 * 0.9)  # every 3 days
    assert repeats.plan_window(plan, 1, Channel.SMS) == int(7 * 24 * 60 * 0.9)  # weekly
    zalo = plan.level(4).rules[Channel.ZALO].cadence.slots
    gaps = sorted(t.hour * 60 + t.minute for _, t in zalo)
    shortest = min(b - a for a, b in itertools.pairwise(gaps))
    assert repeats.plan_window(plan, 4, Channel.ZALO) == int(shortest * 0.9)


# -- at the SMSC --------------------------------------------------------------------------------


async def test_no_phone_gets_the_same_sms_twice_from_opening_slot_fallback_and_retries(
        store: Store, meta: AudienceMeta, plan: Plan, numbering: Numbering,
        province: Province) -> None:
    """Level 4: its opening SMS and Zalo (with SMS fallback) waves, then the day's slot waves
    made at once; the SMSC answers 5% of submits "throttled", so messages are retried. Every
    phone gets the level-4 SMS text once."""
    smsc = Smsc(SmscConfig(keep_texts=True, error_ratio=0.05, error_status=0x58, seed=3))
    await smsc.start()
    sms = SmppAdapter({DEFAULT_LINK: LinkConfig(host="127.0.0.1", port=smsc.port,
                                                system_id="loa", binds=2, window=16)})
    zalo = NotOnZalo()
    adapters: dict[Channel, Adapter] = {Channel.SMS: sms, Channel.ZALO: zalo,
                                        Channel.EMAIL: MemoryAdapter(),
                                        Channel.APP: MemoryAdapter()}
    now = daytime()
    started = time.monotonic()
    engine = Engine(store, plan, SETTINGS, province, adapters, numbering.carriers,
                    reconcile=False, numbering=numbering,
                    clock=lambda: now + dt.timedelta(seconds=time.monotonic() - started))
    await set_level(store, plan, now=now, level=4)
    opened = (await engine.reconciler.tick(now)).opened
    slots = await engine.reconciler.trigger_now(now)
    sms_waves = [w for w in opened + slots if "-sms-" in w]
    zalo_waves = [w for w in opened + slots if "-zalo-" in w]
    assert len(sms_waves) == len(zalo_waves) == 2
    everything = opened + slots
    fallbacks = [fallback_wave_id(w) for w in zalo_waves]

    async def done() -> bool:
        for wave_id in everything + fallbacks:
            wave = await store.waves.get(wave_id)
            if wave is None:
                if wave_id in fallbacks:
                    continue  # made by the first refusal: none if its Zalo wave sent nothing
                return False
            p = await wave_progress(store, wave)
            if p.queued or p.retrying:
                return False
        return True

    try:
        await run_engine_until(engine, done, timeout=60)
    finally:
        await sms.aclose()
        await smsc.stop()
    row = plan.level(4).rules[Channel.SMS].row
    assert row.strip_diacritics  # the plan's SMS policy: one GSM-7 part
    text = strip_diacritics(row.template)
    got = Counter(t for texts in smsc.texts.values() for t in texts)
    assert set(got) == {text}  # a one-part GSM-7 text: what the SMSC decoded is the template
    phones = [n for n, texts in smsc.texts.items() if texts]
    assert smsc.stats.duplicates == 0
    assert all(len(texts) == 1 for texts in smsc.texts.values())  # (number, text) once
    assert smsc.stats.errors_injected > 0  # retries did happen
    sms_audience = meta.count  # every recipient has a phone and is in the SMS rows
    assert len(phones) == sms_audience
    waves = [w for w in [await store.waves.get(w) for w in everything + fallbacks] if w]
    progress = {w.id: await wave_progress(store, w) for w in waves}
    first, second = (progress[w] for w in sms_waves)
    fallback = [progress[w] for w in fallbacks if w in progress]
    assert first.sent + second.sent + sum(p.sent for p in fallback) == sms_audience
    assert first.sent > 0 and second.repeats > 0  # the day's slot: the opening's text again
    assert sum(p.expired + p.failed for w, p in progress.items() if "-sms-" in w) == 0
    assert sum(p.total for p in fallback) > 0  # some were not on Zalo
    assert all(p.sent + p.repeats == p.total for p in fallback)
    # the Zalo slot half an hour after the opening has the same text: each account is tried
    # by one of the two waves (whichever reached it first), held back by the other
    tried = [progress[w] for w in zalo_waves]
    assert sum(p.sent + p.failed for p in tried) == sum(p.repeats for p in tried) == tried[0].total


# -- the fallback: capped per day, inside the sending hours -------------------------------------


def zalo_wave(meta: AudienceMeta, wave_id: str, priority: Priority = Priority.NORMAL) -> Wave:
    return Wave(id=wave_id, campaign_id="c", channel=Channel.ZALO, text="Zalo",
                created_at=dt.datetime.now(dt.UTC), audience_version=meta.version,
                priority=priority, fallback_text="Deo khau trang (SMS)")


async def test_the_fallback_waits_for_the_sending_hours_and_is_capped_per_day(
        store: Store, meta: AudienceMeta, plan: Plan, numbering: Numbering) -> None:
    night = dt.datetime(2026, 12, 2, 22, 30, tzinfo=TZ)
    clock = [night]
    fallback = SmsFallback(store, SETTINGS, numbering, plan, clock=lambda: clock[0])
    phone = numbering.normalize("0912345678")[0]
    batch = Batch(wave="x", channel=Channel.ZALO, ids=[7, 8], addrs=[phone, phone])

    async def reroute(wave: Wave) -> Completion:
        completion = Completion()
        await fallback.reroute(wave, Batch(wave=wave.id, channel=batch.channel, ids=batch.ids,
                                           addrs=batch.addrs), [0, 1], completion)
        return completion

    first = await reroute(zalo_wave(meta, "z-evening"))
    dues = {due for items in first.reroute.values() for due, _ in items}
    assert dues == {dt.datetime(2026, 12, 3, 7, 0, tzinfo=TZ).timestamp()}  # not at 22:30
    assert first.counts["z-evening"]["fallback"] == 2
    urgent = await reroute(zalo_wave(meta, "z-urgent", Priority.URGENT))
    assert urgent.counts["z-urgent"] == {"fallback_capped": 2}  # the day's one is used
    assert not urgent.reroute
    again = await reroute(zalo_wave(meta, "z-evening"))  # its batch processed twice: same claim
    assert again.counts["z-evening"]["fallback"] == 2
    clock[0] = night + dt.timedelta(hours=10)  # the next day, 08:30: inside the hours
    urgent = await reroute(zalo_wave(meta, "z-urgent", Priority.URGENT))
    assert urgent.counts["z-urgent"]["fallback"] == 2
    assert {due for items in urgent.reroute.values() for due, _ in items} == {
        clock[0].timestamp()}


# -- a cancelled wave gives back what it claimed and did not send -------------------------------


async def test_the_ledger_frees_the_claims_of_a_wave_that_did_not_send(store: Store) -> None:
    a, b = repeats.tag("wave-a"), repeats.tag("wave-b")
    assert await store.ledger.claim("l", [1, 2, 3, 90_000], now=1000, window=600, tag=a,
                                    ttl=600) == [True] * 4
    await store.ledger.release("l", [2, 90_000, 5], tag=a)  # 5: never claimed, stays free
    await store.ledger.release("l", [1], tag=b)  # not b's: a keeps it
    assert await store.ledger.claim("l", [1, 2, 3, 90_000, 5], now=1001, window=600, tag=b,
                                    ttl=600) == [False, True, False, True, True]
    await store.ledger.release("nothing", [1], tag=a)  # a ledger never written: no error


TEXT = "Deo khau trang noi cong cong."


async def sms_wave(store: Store, meta: AudienceMeta, wave_id: str) -> Wave:
    """A plan-like SMS wave (scope "plan": its text is not repeated within 10 hours), of a
    running campaign of its own."""
    await store.campaigns.create(Campaign(
        id=f"c-{wave_id}", title="t", channels=[Channel.SMS], texts={Channel.SMS: TEXT},
        created_at=dt.datetime.now(dt.UTC), created_by="plan", state=CampaignState.RUNNING))
    return Wave(id=wave_id, campaign_id=f"c-{wave_id}", channel=Channel.SMS, text=TEXT,
                created_at=dt.datetime.now(dt.UTC), audience_version=meta.version,
                total=meta.count, start_now=True, repeat_scope=repeats.PLAN_SCOPE,
                repeat_window=600)


async def test_a_cancelled_wave_does_not_hold_back_those_it_never_reached(
        store: Store, meta: AudienceMeta, plan: Plan, numbering: Numbering,
        province: Province) -> None:
    """A wave is cancelled while its batches wait for the route's rate (claimed in the ledger,
    not sent); a later wave with the same text reaches everyone the first did not. Counted at
    the channel: every phone gets the text exactly once."""
    routes = routing.routes(Channel.SMS, numbering.carriers, SETTINGS)
    settings = msgspec.structs.replace(SETTINGS, rates=dict.fromkeys(routes, 100.0))
    sms = MemoryAdapter()
    engine = Engine(store, plan, settings, province, {Channel.SMS: sms}, numbering.carriers,
                    reconcile=False, numbering=numbering)
    first, second = await sms_wave(store, meta, "w-first"), await sms_wave(store, meta, "w-2")
    await store.waves.create(first, WaveState.CREATED)

    async def settled(wave: Wave) -> bool:
        p = await wave_progress(store, wave)
        return p.queued == 0 and p.retrying == 0

    async def cancel_mid_way() -> bool:
        if sms.messages >= 20 and (await store.waves.states([first.id])).get(
                first.id) is not WaveState.CANCELLED:
            await store.waves.set_state(first.id, WaveState.CANCELLED)
        return sms.messages >= 20 and await settled(first)

    await run_engine_until(engine, cancel_mid_way, timeout=30)
    before = await wave_progress(store, first)
    assert 0 < before.sent < meta.count and before.cancelled > 0

    await store.waves.create(second, WaveState.CREATED)
    await run_engine_until(engine, lambda: settled(second), timeout=60)
    after = await wave_progress(store, second)
    assert after.repeats == before.sent  # held back: only those the first wave reached
    assert after.sent == meta.count - before.sent
    assert sms.messages == meta.count and set(sms.texts.values()) == {1}
    assert len({addr for addr, _ in sms.texts}) == meta.count
