"""A level's opening: when a level comes into force (up or down), each channel of the new level
sends its opening wave on the first tick, once, damped against flapping; inside the sending
hours unless the level is urgent; never late beyond the catch-up window."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import msgspec
import pytest

from adapters.memory import MemoryAdapter
from bench import audiencegen
from dispatcher.domain import template
from dispatcher.domain.audience import Validator
from dispatcher.domain.config import default_path, read_toml
from dispatcher.domain.errors import ConfigError
from dispatcher.domain.model import Channel, OpeningOutcome, Priority, WaveState
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan, load_plan, plan_from_dict
from dispatcher.domain.province import Province
from dispatcher.engine import opening
from dispatcher.engine.importer import import_audience
from dispatcher.engine.level import set_level
from dispatcher.engine.process import Engine
from dispatcher.engine.reconciler import Reconciler, plan_campaign_id
from dispatcher.store import Store, open_store
from dispatcher.store.base import AudienceMeta
from tests.conftest import imported
from tests.engine.test_engine_flow import SETTINGS, _step
from tests.service.test_cli_words import bullets, run

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
DAY = dt.date(2026, 12, 2)  # a Wednesday
STAMP = f"{DAY:%Y%m%d}"


def local(hour: int, minute: int = 0, second: int = 0, day: dt.date = DAY) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute, second), tzinfo=TZ)


def opened(plan: Plan, level: int, at: dt.datetime) -> list[str]:
    return sorted(opening.opening_wave_id(level, c, at, plan) for c in plan.level(level).rules)


@pytest.fixture(scope="module")
def audience_file(tmp_path_factory: pytest.TempPathFactory, numbering: Numbering,
                  province: Province) -> Path:
    path = tmp_path_factory.mktemp("opening") / "audience.csv"
    audiencegen.generate(path, 300, seed=14, numbering=numbering, province=province)
    return path


@pytest.fixture
async def meta(store: Store, audience_file: Path, numbering: Numbering,
               province: Province) -> AudienceMeta:
    return await imported(store, audience_file, numbering, province)


async def waves_of(store: Store) -> dict[str, WaveState]:
    return dict(sorted((await store.waves.states()).items()))


async def test_a_level_set_opens_every_channel_on_the_first_tick(
        store: Store, plan: Plan, meta: AudienceMeta) -> None:
    """Level 1 on a Wednesday at 10:00: its first regular SMS is next Tuesday, its Zalo
    tomorrow morning; the opening says it within the tick, on every channel."""
    await set_level(store, plan, now=local(10), level=1, user="alice")
    report = await Reconciler(store, plan).tick(local(10, 0, 5))
    ids = opened(plan, 1, local(10))
    assert sorted(report.opened) == ids and report.created == []
    assert ids[0].startswith("L1-") and f"-opening-{STAMP}T100000" in ids[0]
    for channel, rule in plan.level(1).rules.items():
        wave = await store.waves.get(opening.opening_wave_id(1, channel, local(10), plan))
        assert wave is not None
        # a text naming {district} keeps its words for the whole province (each district's
        # are the wave's district_texts)
        neutral = rule.row.template.replace("{district}", template.NEUTRAL)
        assert wave.text == neutral and wave.slot_at == local(10)
        assert wave.priority is Priority.NORMAL and not wave.start_now  # level 1 is not urgent
        assert wave.campaign_id == plan_campaign_id(1, channel) and wave.level == 1
    for record in await store.openings.all():
        assert record.outcome is OpeningOutcome.SENT and record.since == local(10)
        assert record.last_sent == local(10) and record.wave == record.last_wave


async def test_the_urgent_level_opens_in_the_urgent_lane(store: Store, plan: Plan,
                                                         meta: AudienceMeta) -> None:
    assert [n for n, level in plan.levels.items() if level.urgent] == [4]  # the shipped plan
    await set_level(store, plan, now=local(9, 31), level=4)
    report = await Reconciler(store, plan).tick(local(9, 31, 2))
    assert sorted(report.opened) == opened(plan, 4, local(9, 31))
    for wave_id in report.opened:
        wave = await store.waves.get(wave_id)
        assert wave is not None and wave.priority is Priority.URGENT


async def test_going_down_opens_the_lower_level_and_cancels_the_higher(
        store: Store, plan: Plan, meta: AudienceMeta) -> None:
    reconciler = Reconciler(store, plan)
    await set_level(store, plan, now=local(9), level=4)
    await reconciler.tick(local(9, 0, 1))
    await set_level(store, plan, now=local(11), level=3)
    report = await reconciler.tick(local(11, 0, 1))
    assert sorted(report.opened) == opened(plan, 3, local(11))
    states = await waves_of(store)
    assert {states[w] for w in opened(plan, 4, local(9))} == {WaveState.CANCELLED}
    assert {states[w] for w in opened(plan, 3, local(11))} == {WaveState.CREATED}


async def test_flapping_levels_open_once_per_damping(store: Store, plan: Plan,
                                                     meta: AudienceMeta) -> None:
    """3 → 4 → 3 → 4 within minutes: one level-3 and one level-4 opening per channel; the
    level 4 set again after the damping opens again."""
    assert plan.opening_damping == dt.timedelta(hours=6)
    reconciler = Reconciler(store, plan)
    reports = []
    for minute, level in ((0, 3), (5, 4), (10, 3), (15, 4)):
        await set_level(store, plan, now=local(9, minute), level=level)
        reports.append(await reconciler.tick(local(9, minute, 3)))
    assert [sorted(r.opened) for r in reports] == [
        opened(plan, 3, local(9)), opened(plan, 4, local(9, 5)), [], []]
    made = [w.id for w in await store.waves.all() if "-opening-" in w.id]
    assert sorted(made) == sorted(opened(plan, 3, local(9)) + opened(plan, 4, local(9, 5)))
    for record in await store.openings.all():
        assert record.outcome is OpeningOutcome.DAMPED and record.wave == ""
        assert record.last_sent == (local(9) if record.level == 3 else local(9, 5))
    # a level 3 for six hours, then level 4 again: measured from 09:05, it opens again
    await set_level(store, plan, now=local(10), level=3)
    await reconciler.tick(local(10, 0, 1))
    await set_level(store, plan, now=local(15, 5), level=4)
    report = await reconciler.tick(local(15, 5, 1))
    assert sorted(report.opened) == opened(plan, 4, local(15, 5))


async def test_a_restart_during_the_opening_sends_it_once(store: Store, plan: Plan,
                                                          meta: AudienceMeta) -> None:
    await set_level(store, plan, now=local(10), level=3)
    level = await store.level.get()
    assert level is not None
    # a reconciler decided the SMS opening, then died before it created the wave
    decided = await opening.decide(store.openings, plan, level, Channel.SMS, local(10, 0, 1))
    assert decided.outcome is OpeningOutcome.SENT and await store.waves.get(decided.wave) is None
    # two reconcilers come up at once: each opening wave is made once, the SMS one included
    reports = await asyncio.gather(*(Reconciler(store, plan).tick(local(10, 0, 9))
                                     for _ in range(2)))
    assert sorted(reports[0].opened + reports[1].opened) == opened(plan, 3, local(10))
    assert sorted(w.id for w in await store.waves.all()) == opened(plan, 3, local(10))
    assert await store.waves.get(decided.wave) is not None
    # and a later one does nothing more
    again = await Reconciler(store, plan).tick(local(10, 5))
    assert again.opened == [] and len(await store.waves.all()) == len(plan.level(3).rules)


async def test_a_level_set_before_the_catch_up_window_is_missed_not_sent(
        store: Store, plan: Plan, meta: AudienceMeta) -> None:
    plan60 = msgspec.structs.replace(plan, catch_up=dt.timedelta(minutes=60))
    await set_level(store, plan60, now=local(6), level=2)
    report = await Reconciler(store, plan60).tick(local(9, 31))
    assert report.opened == []
    assert not any("-opening-" in w.id for w in await store.waves.all())
    assert {r.outcome for r in await store.openings.all()} == {OpeningOutcome.MISSED}


async def test_the_opening_waits_for_the_sending_hours_unless_the_level_is_urgent(
        store: Store, plan: Plan, meta: AudienceMeta, province: Province,
        numbering: Numbering) -> None:
    night = local(22, 30)
    adapters = {c: MemoryAdapter() for c in Channel}
    engine = Engine(store, plan, SETTINGS, province, dict(adapters), numbering.carriers,
                    reconcile=False, clock=lambda: night)
    await set_level(store, plan, now=night, level=3)
    await engine.reconciler.tick(night)
    assert await _step(engine) is None
    level3 = opened(plan, 3, night)
    assert {(await store.waves.states())[w] for w in level3} == {WaveState.CREATED}
    await set_level(store, plan, now=night + dt.timedelta(minutes=1), level=4)
    engine.clock = lambda: night + dt.timedelta(minutes=1)
    await engine.reconciler.tick(engine.clock())
    assert await _step(engine) is None
    states = await store.waves.states()
    assert {states[w] for w in opened(plan, 4, engine.clock())} <= {
        WaveState.FANNING_OUT, WaveState.SENDING, WaveState.COMPLETED}
    assert {states[w] for w in level3} == {WaveState.CANCELLED}


def test_urgent_and_damping_in_the_plan_file() -> None:
    raw = read_toml(default_path("plan.toml"))
    raw["opening_damping_hours"] = 2
    for level in raw["levels"]:
        level.pop("urgent", None)
    raw["levels"][1]["urgent"] = True
    plan = plan_from_dict(raw)
    assert plan.opening_damping == dt.timedelta(hours=2)
    assert [n for n, level in plan.levels.items() if level.urgent] == [2, 4]  # 4: the highest
    raw["levels"][3]["urgent"] = False
    assert [n for n, level in plan_from_dict(raw).levels.items() if level.urgent] == [2]
    raw["opening_damping_hours"] = -1
    with pytest.raises(ConfigError, match="opening_damping_hours"):
        plan_from_dict(raw)


def test_plan_show_says_what_the_level_sent_on_opening(
        capsys: pytest.CaptureFixture[str], redis_url: str, audience_file: Path,
        numbering: Numbering, province: Province, plan: Plan, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the audit log of --admin-direct (loa-audit.jsonl)
    async def reconcile() -> None:
        store = open_store(redis_url)
        try:
            if await store.audiences.meta() is None:
                await import_audience(audience_file, store, Validator(numbering, province),
                                      chunk_size=64)
            await Reconciler(store, plan).tick(dt.datetime.now(dt.UTC))
        finally:
            await store.aclose()

    out = run(capsys, "plan", "show", "--level", "4")[1]
    assert ("Khi chuyển cấp (tăng hoặc giảm), mỗi kênh của cấp mới gửi tin mở đầu ngay lần quét "
            "tới, trong giờ gửi; cấp 4: gửi ngay, kể cả ngoài giờ; mỗi cấp mở đầu một kênh "
            "nhiều nhất 1 lần trong 6 giờ") in " ".join(out.split())
    assert run(capsys, "level", "set", "--level", "4", "--reason", "r", "--user", "u",
               "--admin-direct", "--redis", redis_url)[0] == 0
    out = run(capsys, "plan", "show", "--redis", redis_url, "--level", "4")[1]
    assert bullets(out, "Tin mở đầu cấp 4:") == [
        "SMS: chưa gửi, sẽ gửi ở lần quét tới", "Zalo: chưa gửi, sẽ gửi ở lần quét tới",
        "Thư điện tử: chưa gửi, sẽ gửi ở lần quét tới",
        "Ứng dụng Smart Quảng Ninh: chưa gửi, sẽ gửi ở lần quét tới",
        "Facebook: chưa gửi, sẽ gửi ở lần quét tới",
        "Cổng thông tin: chưa gửi, sẽ gửi ở lần quét tới",
        "Loa thông minh: chưa gửi, sẽ gửi ở lần quét tới",
        "Tin nhắn quảng bá theo vùng (cell broadcast): chưa gửi, sẽ gửi ở lần quét tới"]
    asyncio.run(reconcile())
    out = run(capsys, "plan", "show", "--redis", redis_url, "--lang", "en")[1]
    sent = bullets(out, "Opening messages of level 4:")
    assert [item.split(":")[0] for item in sent] == ["SMS", "Zalo", "E-mail",
                                                     "Smart Quảng Ninh app", "Facebook",
                                                     "Portal",
                                                     "Smart loudspeakers", "Cell broadcast"]
    assert all(re.search(r": wave L4-\w+-opening-\d{8}T\d{6}, created .* \(urgent\) — "
                         r"fanning out|waiting|sending|completed", item) for item in sent)
    assert "0/300 sent" in sent[0]
    # 4 → 3 → 4 at once: level 3 opens; level 4 again is damped, and says when it opened
    for level in ("3", "4"):
        assert run(capsys, "level", "set", "--level", level, "--reason", "r", "--user", "u",
                   "--admin-direct", "--redis", redis_url)[0] == 0
        asyncio.run(reconcile())
    out = run(capsys, "plan", "show", "--redis", redis_url, "--json")[1]
    doc = json.loads(out)
    assert [o["outcome"] for o in doc["openings"]] == ["damped"] * len(doc["openings"])
    assert len(doc["openings"]) == len(load_plan().level(4).rules)
    out = run(capsys, "plan", "show", "--redis", redis_url)[1]
    damped = bullets(out, "Tin mở đầu cấp 4:")
    assert damped[0].startswith("SMS: không gửi lại — cấp 4 đã mở đầu lúc ")
    assert damped[0].endswith(", chưa quá 6 giờ")
