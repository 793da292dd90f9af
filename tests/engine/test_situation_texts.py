"""Texts naming the situation record's fields: rendered once when the wave is made (a plan
wave by the reconciler, a campaign's at its start), kept by the wave, sent as such."""

from __future__ import annotations

import copy
import datetime as dt
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest

from adapters.memory import MemoryAdapter
from bench import audiencegen
from dispatcher.domain import template
from dispatcher.domain.config import default_path
from dispatcher.domain.errors import InputError
from dispatcher.domain.model import CampaignState, Channel, Priority
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan, plan_from_dict
from dispatcher.domain.province import Province
from dispatcher.domain.situation import Situation, SituationVersion
from dispatcher.engine import metrics
from dispatcher.engine.campaigns import wave_id
from dispatcher.engine.level import set_level
from dispatcher.engine.reconciler import Reconciler
from dispatcher.store import Store
from dispatcher.store.base import AudienceMeta
from tests.conftest import imported
from tests.engine.test_engine_flow import _is, make_engine, running, until

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
DAY = dt.date(2024, 3, 5)  # a Tuesday
SMS = "KHAN {date}: {new_cases} ca moi, tong {cases} ca, tai {areas}. {advice} Goi {hotline}."


def local(hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(DAY, dt.time(hour, minute), tzinfo=TZ)


def record(today: int = 7, total: int = 120, areas: list[str] | None = None,
           **fields: str) -> Situation:
    return Situation(cases_today=today, cases_total=total, date=DAY, hotline="1900 1234",
                     areas=["Hạ Long", "Cẩm Phả"] if areas is None else areas,
                     fields=fields or {"advice": "O nha."})


async def set_record(store: Store, situation: Situation) -> None:
    await store.situation.set(SituationVersion(situation, local(8), "olga"))


@pytest.fixture(scope="module")
def audience_file(tmp_path_factory: pytest.TempPathFactory, numbering: Numbering,
                  province: Province) -> Path:
    path = tmp_path_factory.mktemp("situation") / "audience.csv"
    audiencegen.generate(path, 300, seed=5, numbering=numbering, province=province)
    return path


@pytest.fixture
async def meta(store: Store, audience_file: Path, numbering: Numbering,
               province: Province) -> AudienceMeta:
    return await imported(store, audience_file, numbering, province)


@pytest.fixture
def plan_with_figures() -> Plan:
    """The shipped plan, its level 4 SMS naming the record's fields (and the free ``advice``)."""
    with default_path("plan.toml").open("rb") as f:
        data: dict[str, Any] = copy.deepcopy(tomllib.load(f))
    data["situation_fields"] = ["advice"]
    data["levels"][3]["channels"]["sms"]["template"] = SMS
    plan = plan_from_dict(data, source="plan.toml")
    return msgspec.structs.replace(plan, catch_up=dt.timedelta(minutes=60))


def degraded(reason: str) -> float:
    return float(metrics.WAVE_TEXTS_DEGRADED.labels("sms", reason)._value.get())


# -- plan waves -----------------------------------------------------------------------------------


async def test_a_plan_wave_is_rendered_once_from_the_record_in_force(
        store: Store, plan_with_figures: Plan, meta: AudienceMeta) -> None:
    await set_level(store, plan_with_figures, now=local(9), level=4)
    await set_record(store, record())
    await Reconciler(store, plan_with_figures).tick(local(9, 31))
    wave = await store.waves.get(f"L4-sms-{DAY:%Y%m%d}T0930")
    assert wave is not None
    assert wave.text == ("KHAN 05/03/2024: 7 ca moi, tong 120 ca, tai Hạ Long, Cẩm Phả. O nha. "
                         "Goi 1900 1234.")
    await set_record(store, record(today=9, total=129))  # later figures: the wave keeps its own
    again = await store.waves.get(wave.id)
    assert again is not None and again.text == wave.text


async def test_without_a_record_a_plan_wave_still_goes_logged_and_counted(
        store: Store, plan_with_figures: Plan, meta: AudienceMeta,
        caplog: pytest.LogCaptureFixture) -> None:
    before = degraded("missing_field")
    await set_level(store, plan_with_figures, now=local(9), level=4)
    await Reconciler(store, plan_with_figures).tick(local(9, 31))
    wave = await store.waves.get(f"L4-sms-{DAY:%Y%m%d}T0930")
    assert wave is not None
    assert wave.text.startswith(f"KHAN {template.MISSING}: {template.MISSING} ca moi")
    assert wave.text.endswith("Goi 1900 9095.")  # the plan file's hotline
    assert degraded("missing_field") >= before + 1
    assert any("the situation record does not give (none is set)" in r.getMessage()
               for r in caplog.records)


async def test_a_plan_sms_over_the_cap_lists_fewer_areas(
        store: Store, plan_with_figures: Plan, meta: AudienceMeta, province: Province) -> None:
    plan = msgspec.structs.replace(plan_with_figures, sms_max_parts=1)
    everywhere = [d.name for d in province.districts.values()]
    await set_level(store, plan, now=local(9), level=4)
    await set_record(store, record(areas=everywhere, advice="O nha."))
    before = degraded("over_parts")
    await Reconciler(store, plan).tick(local(9, 31))
    wave = await store.waves.get(f"L4-sms-{DAY:%Y%m%d}T0930")
    assert wave is not None
    assert "nơi khác" in wave.text and "Hạ Long" in wave.text
    assert degraded("over_parts") == before  # it fits: nothing to count


# -- campaigns ------------------------------------------------------------------------------------


async def test_a_campaign_sends_the_words_of_the_record_in_force_at_its_start(
        store: Store, meta: AudienceMeta, plan: Plan, province: Province,
        numbering: Numbering) -> None:
    adapter = MemoryAdapter()
    engine = make_engine(store, plan, province, numbering, {Channel.SMS: adapter})
    await set_record(store, record())
    campaign = await engine.campaigns.create(
        title="Tin ngày", channels=[Channel.SMS], texts={Channel.SMS: SMS}, created_by="olga",
        now=dt.datetime.now(dt.UTC), priority=Priority.URGENT)
    assert campaign.texts[Channel.SMS] == SMS  # the campaign keeps the template
    await set_record(store, record(today=9, total=129))  # set before the start: this one goes
    async with running(engine) as task:
        await until(task, lambda: _is(store, campaign.id, CampaignState.COMPLETED),
                    "the campaign to complete")
    words = ("KHAN 05/03/2024: 9 ca moi, tong 129 ca, tai Hạ Long, Cẩm Phả. O nha. "
             "Goi 1900 1234.")
    assert Counter(text for (_, text), n in adapter.texts.items() for _ in range(n)) == {
        words: meta.count}  # every recipient once, with the words of the start
    wave = await store.waves.get(wave_id(campaign.id, Channel.SMS))
    assert wave is not None and wave.text == words


async def test_a_campaign_whose_free_field_is_gone_at_its_start_is_cancelled(
        store: Store, meta: AudienceMeta, plan: Plan, province: Province,
        numbering: Numbering) -> None:
    engine = make_engine(store, plan, province, numbering, {Channel.SMS: MemoryAdapter()})
    await set_record(store, record())
    campaign = await engine.campaigns.create(
        title="Tin ngày", channels=[Channel.SMS], texts={Channel.SMS: SMS}, created_by="olga",
        now=dt.datetime.now(dt.UTC))
    await set_record(store, record(other="x"))
    started = await engine.campaigns.start(campaign.id, dt.datetime.now(dt.UTC))
    assert started.state is CampaignState.CANCELLED
    assert started.state_reason == ("not started: texts.sms: names {advice}, which the "
                                    "situation record in force does not give")
    assert await store.waves.all() == []


@pytest.mark.parametrize(("text", "has_record", "message"), [
    ("{case} ca moi", True, "texts.sms: unknown field {case}: a text may name {cases}, "
                            "{new_cases}, {areas}, {hotline}, {date}, {district}, "
                            "{advice}"),
    ("Tai {district} {town}", True, "texts.sms: unknown field {town}"),
    ("{cases} ca", False, "texts.sms: names {cases} but no situation is set"),
    ("{advice} " * 3 + "x" * 150, True, "texts.sms: rendered with the situation in force, "
                                        "2 parts (GSM-7, 162 characters) is more than "
                                        "max_parts 1"),
])
async def test_a_campaign_text_that_cannot_be_rendered_is_refused(
        store: Store, meta: AudienceMeta, plan: Plan, province: Province,
        numbering: Numbering, text: str, has_record: bool, message: str) -> None:
    engine = make_engine(store, plan, province, numbering, {Channel.SMS: MemoryAdapter()})
    if has_record:
        await set_record(store, record(advice="Ok."))
    with pytest.raises(InputError) as caught:
        await engine.campaigns.create(
            title="Tin", channels=[Channel.SMS], texts={Channel.SMS: text}, created_by="olga",
            now=dt.datetime.now(dt.UTC), max_parts=1)
    assert str(caught.value).startswith(message)
    assert await store.campaigns.all() == []
