"""The plan's texts edited without a restart: proposed, approved by another user, in force from
the next wave made (waves already made keep their words), kept across restarts."""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from pathlib import Path
from zoneinfo import ZoneInfo

import msgspec
import pytest

from adapters.memory import MemoryAdapter
from bench import audiencegen
from dispatcher.domain import smstext, template
from dispatcher.domain.errors import InputError, PermissionDenied, StateError
from dispatcher.domain.model import Channel, WaveState
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan, next_slot
from dispatcher.domain.province import Province
from dispatcher.domain.situation import Situation
from dispatcher.domain.textedits import TextState
from dispatcher.engine import metrics, textedits
from dispatcher.engine.fallback import fallback_wave_id
from dispatcher.engine.level import set_level
from dispatcher.engine.process import Engine, wave_progress
from dispatcher.engine.reconciler import Reconciler
from dispatcher.engine.situation import set_situation
from dispatcher.store import Store
from dispatcher.store.base import AudienceMeta
from dispatcher.store.memory import MemoryStore
from dispatcher.store.redis import RedisStore
from tests.conftest import imported, run_engine_until
from tests.engine.test_engine_flow import make_engine
from tests.engine.test_fallback_and_pause import SETTINGS, NotOnZalo

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
DAY = dt.date(2024, 3, 5)  # a Tuesday
NEW_SMS = "Ha Long: rua tay, deo khau trang, goi {hotline} neu sot."


def local(hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(DAY, dt.time(hour, minute), tzinfo=TZ)


@pytest.fixture(scope="module")
def audience_file(tmp_path_factory: pytest.TempPathFactory, numbering: Numbering,
                  province: Province) -> Path:
    path = tmp_path_factory.mktemp("plantexts") / "audience.csv"
    audiencegen.generate(path, 200, seed=9, numbering=numbering, province=province)
    return path


async def approved(store: Store, plan: Plan, text: str = NEW_SMS, level: int = 4,
                   channel: Channel = Channel.SMS) -> str:
    version = await textedits.propose(store, plan, level=level, channel=channel, text=text,
                                      reason="the hotline asks for it", by="olga", now=local(8))
    done = await textedits.approve(store, plan, version.id, by="carol", now=local(8, 5))
    assert done.state is TextState.APPROVED
    return done.id


@pytest.mark.parametrize(("body", "field", "words"), [
    ({"text": "Rua tay thuong xuyen."}, "text", "{hotline}"),
    ({"text": "Goi {hotline} ve {nothing}."}, "text", "{nothing}"),
    ({"text": "Goi {hotline}\x07 ngay."}, "text", "control"),
    ({"text": "Goi {hotline}. " + "Rua tay thuong xuyen. " * 40}, "text", "sms_max_parts"),
    ({"text": "  "}, "text", "empty"),
    ({"text": "Goi {hotline}.", "subject": "Tin"}, "subject", "e-mail"),
    ({"text": "Goi {hotline}.", "level": 9}, "level", "not a level"),
])
async def test_a_bad_text_is_refused_naming_the_field(plan: Plan, body: dict[str, object],
                                                      field: str, words: str) -> None:
    store = MemoryStore()
    args = {"level": 4, "channel": Channel.SMS, **body}
    with pytest.raises(InputError) as refused:
        await textedits.propose(store, plan, by="olga", now=local(8), **args)  # type: ignore[arg-type]
    assert refused.value.field == field
    assert words.lower() in str(refused.value).lower()
    assert "\n" not in str(refused.value)
    assert (await store.plan_texts.versions()).versions == []


async def test_a_text_the_situation_record_cannot_fill_is_refused_and_the_record_too(
        plan: Plan, province: Province) -> None:
    fields = msgspec.structs.replace(plan, situation_fields=("advice",))
    store = MemoryStore()
    record = Situation(cases_today=3, cases_total=40, date=DAY, hotline="1900 1234")
    await set_situation(store, record, province=province, plan=fields, by="olga",
                        now=local(7))
    with pytest.raises(InputError) as refused:
        await textedits.propose(store, fields, level=4, channel=Channel.SMS, by="olga",
                                text="{advice} Goi {hotline}.", now=local(8))
    assert refused.value.field == "text" and "{advice}" in str(refused.value)
    advice = msgspec.structs.replace(record, fields={"advice": "O nha."})
    await set_situation(store, advice, province=province, plan=fields, by="olga", now=local(8))
    version = await textedits.propose(store, fields, level=4, channel=Channel.SMS,
                                      text="{advice} Goi {hotline}.", by="olga", now=local(8))
    await textedits.approve(store, fields, version.id, by="carol", now=local(8, 1))
    # the approved text names {advice}: a record without it is refused, as for the file's
    with pytest.raises(InputError) as again:
        await set_situation(store, record, province=province, plan=fields, by="olga",
                            now=local(9))
    assert again.value.field == "fields.advice"


async def test_a_proposed_sms_naming_district_is_checked_in_the_longest_district_name(
        plan: Plan, province: Province) -> None:
    fields = msgspec.structs.replace(plan, situation_fields=("advice",), sms_max_parts=1)
    store = MemoryStore()
    longest = max((d.name for d in province.districts.values()), key=len)
    strip = fields.levels[4].rules[Channel.SMS].row.strip_diacritics
    written = "{district}: {advice} Goi {hotline}."

    def parts(district: str, advice: str) -> int:
        text = written.format(district=district, advice=advice, hotline="1900 1234")
        return len(smstext.segment(text, strip=strip).parts)

    advice = next("x" * k for k in range(300, 0, -1) if parts(template.NEUTRAL, "x" * k) == 1)
    assert parts(longest, advice) == 2
    record = Situation(cases_today=3, cases_total=40, date=DAY, hotline="1900 1234",
                       fields={"advice": advice})
    await set_situation(store, record, province=province, plan=fields, by="olga", now=local(7))
    with pytest.raises(InputError) as refused:
        await textedits.propose(store, fields, level=4, channel=Channel.SMS, by="olga",
                                text=written, now=local(8), province=province)
    assert refused.value.field == "text"
    assert str(refused.value).startswith(
        f"text: rendered with the situation in force in {longest}, 2 parts")
    assert (await store.plan_texts.versions()).versions == []


async def test_the_proposer_cannot_approve_and_a_decision_is_taken_once(plan: Plan) -> None:
    store = MemoryStore()
    version = await textedits.propose(store, plan, level=4, channel=Channel.SMS, text=NEW_SMS,
                                      by="olga", now=local(8))
    assert version.state is TextState.PROPOSED and version.replaces == ""
    assert "+Ha Long: rua tay" in version.diff
    assert version.replaced_text == plan.levels[4].rules[Channel.SMS].row.written
    with pytest.raises(PermissionDenied):
        await textedits.approve(store, plan, version.id, by="olga", now=local(8, 1))
    assert await store.plan_texts.in_force() == []
    done = await textedits.approve(store, plan, version.id, by="carol", now=local(8, 2))
    assert (done.decided_by, done.decided_at) == ("carol", local(8, 2))
    with pytest.raises(StateError):
        await textedits.reject(store, version.id, by="carol", now=local(8, 3))
    second = await textedits.propose(store, plan, level=4, channel=Channel.SMS,
                                     text="Goi {hotline} ngay.", by="olga", now=local(9))
    assert second.replaces == version.id and second.replaced_text == NEW_SMS
    rejected = await textedits.reject(store, second.id, by="carol", now=local(9, 1))
    assert rejected.state is TextState.REJECTED
    listed = (await store.plan_texts.versions(4, Channel.SMS)).versions
    assert [(v.id, v.state) for v in listed] == [(second.id, TextState.REJECTED),
                                                 (version.id, TextState.APPROVED)]
    assert [v.id for v in await store.plan_texts.in_force()] == [version.id]


async def test_the_next_wave_has_the_approved_text_the_ones_made_keep_theirs(
        store: Store, plan: Plan, audience_file: Path, numbering: Numbering,
        province: Province) -> None:
    await imported(store, audience_file, numbering, province)
    await set_level(store, plan, now=local(9), level=4)
    reconciler = Reconciler(store, plan)
    await reconciler.tick(local(9, 31))
    before = await store.waves.get(f"L4-sms-{DAY:%Y%m%d}T0930")
    assert before is not None and "Ha Long: rua tay" not in before.text
    await approved(store, plan)
    slot = next_slot(plan, 4, Channel.SMS, local(9, 32))
    assert slot is not None
    await reconciler.tick(slot.at + dt.timedelta(minutes=1))  # the next SMS slot of level 4
    later = await store.waves.get(slot.id)
    assert later is not None and later.text == NEW_SMS.replace("{hotline}", plan.hotline)
    again = await store.waves.get(before.id)
    assert again is not None and again.text == before.text  # made before: its own words


async def test_the_channel_receives_the_approved_text(
        plan: Plan, audience_file: Path, numbering: Numbering, province: Province) -> None:
    store = MemoryStore()
    meta: AudienceMeta = await imported(store, audience_file, numbering, province)
    now = dt.datetime.now(dt.UTC)
    await set_level(store, plan, now=now, level=4)
    await approved(store, plan)
    adapter = MemoryAdapter()
    ids = await Reconciler(store, plan).trigger_now(now)
    sms = [i for i in ids if "-sms-" in i]
    assert sms
    engine = make_engine(store, plan, province, numbering, {c: adapter for c in Channel},
                         reconcile=False)

    async def done() -> bool:
        states = await store.waves.states()
        return all(states.get(i) is WaveState.COMPLETED for i in ids)

    await run_engine_until(engine, done)
    words = NEW_SMS.replace("{hotline}", plan.hotline)
    received = Counter(text for (_, text), n in adapter.texts.items() for _ in range(n))
    wave = await store.waves.get(sms[0])
    assert wave is not None and wave.total > 0
    assert received[words] == wave.total  # every SMS recipient once, with the approved words
    assert meta.count >= wave.total


async def test_a_restart_keeps_the_approved_text(redis_url: str, plan: Plan,
                                                 audience_file: Path, numbering: Numbering,
                                                 province: Province) -> None:
    first = RedisStore(redis_url)
    try:
        await imported(first, audience_file, numbering, province)
        await set_level(first, plan, now=local(9), level=4)
        version = await approved(first, plan)
    finally:
        await first.aclose()
    second = RedisStore(redis_url)  # a new process on the same Redis
    try:
        await Reconciler(second, plan).tick(local(9, 31))
        wave = await second.waves.get(f"L4-sms-{DAY:%Y%m%d}T0930")
        assert wave is not None and wave.text == NEW_SMS.replace("{hotline}", plan.hotline)
        effective, versions, refused = await textedits.effective_plan(second, plan)
        assert versions == {(4, Channel.SMS): version} and refused == {}
        assert effective.levels[4].rules[Channel.SMS].row.written == NEW_SMS
    finally:
        await second.aclose()


LONG_SMS = ("Ha Long: rua tay thuong xuyen, deo khau trang noi cong cong, giu khoang cach, han "
            "che tu tap dong nguoi, khai bao y te trung thuc. Khi sot, ho, kho tho: goi ngay "
            "{hotline} hoac tram y te xa, phuong gan nhat.")  # 2 parts as sent


async def test_an_approved_text_a_restarted_plan_refuses_gives_way_to_the_files(
        redis_url: str, plan: Plan, audience_file: Path, numbering: Numbering,
        province: Province, caplog: pytest.LogCaptureFixture) -> None:
    first = RedisStore(redis_url)
    try:
        await imported(first, audience_file, numbering, province)
        await set_level(first, plan, now=local(9), level=4)
        version = await approved(first, plan, LONG_SMS)
    finally:
        await first.aclose()
    capped = msgspec.structs.replace(plan, sms_max_parts=1)  # the file changed: one part only
    second = RedisStore(redis_url)  # restarted with it, on the same Redis
    try:
        before = metrics.WAVE_TEXTS_DEGRADED.labels("sms", "approved_refused")._value.get()
        with caplog.at_level(logging.WARNING, logger="dispatcher.engine.reconciler"):
            reconciler = Reconciler(second, capped)
            await reconciler.tick(local(9, 31))
            await reconciler.tick(local(9, 32))  # said once
        wave = await second.waves.get(f"L4-sms-{DAY:%Y%m%d}T0930")
        file_text = plan.levels[4].rules[Channel.SMS].row.template
        assert wave is not None and wave.text == file_text  # the file's text, not the refused
        # every wave made with the level's SMS text says so: the SMS waves (the opening's and
        # the slot's) and the Zalo opening's SMS fallback
        # said once when the plan is loaded (the first tick), before any wave
        [loaded] = [r for r in caplog.records
                    if r.levelno == logging.WARNING and version in r.getMessage()]
        assert version in loaded.getMessage() and "as loaded" in loaded.getMessage()
        said = {r.getMessage().split(":")[0].removeprefix("wave "): r.getMessage()
                for r in caplog.records if version in r.getMessage()
                and r.levelno == logging.ERROR}
        assert wave.id in said and all("sms_max_parts" in m for m in said.values()), said
        zalo = [w for w in said if "-zalo-" in w]
        assert zalo, said
        for made in said:
            found = await second.waves.get(made)
            assert found is not None
            assert file_text in (found.text, found.fallback_text)
        after = metrics.WAVE_TEXTS_DEGRADED.labels("sms", "approved_refused")._value.get()
        assert after == before + len(said)
        effective, versions, refused = await textedits.effective_plan(second, capped)
        assert versions == {}
        assert refused[(4, Channel.SMS)].version == version
        assert "text:" in refused[(4, Channel.SMS)].reason
        assert "sms_max_parts" in refused[(4, Channel.SMS)].reason
        assert effective.levels[4].rules[Channel.SMS].row.template == file_text
        # still kept as approved: the plan file, put back, accepts it again
        assert [v.id for v in await second.plan_texts.in_force()] == [version]
        _, versions, refused = await textedits.effective_plan(second, plan)
        assert versions == {(4, Channel.SMS): version} and refused == {}
        # a new proposal replaces the file's text, the one in force
        new = await textedits.propose(second, capped, level=4, channel=Channel.SMS,
                                      text=NEW_SMS, by="olga", now=local(10))
        assert new.replaces == ""
        assert new.replaced_text == plan.levels[4].rules[Channel.SMS].row.written
    finally:
        await second.aclose()


async def test_a_zalo_waves_sms_fallback_sends_the_approved_sms_text(
        plan: Plan, audience_file: Path, numbering: Numbering, province: Province) -> None:
    store = MemoryStore()
    meta = await imported(store, audience_file, numbering, province)
    now = dt.datetime.now(dt.UTC)
    await set_level(store, plan, now=now, level=4)
    await approved(store, plan)  # the level's SMS text, not the Zalo one
    rule = plan.levels[4].rules[Channel.ZALO]
    assert rule.row.sms_fallback
    slot = next_slot(plan, 4, Channel.ZALO, now)
    assert slot is not None
    assert await Reconciler(store, plan).create_wave(rule, slot, meta, now, start_now=True)
    wave = await store.waves.get(slot.id)
    assert wave is not None and wave.total > 0
    zalo, sms = NotOnZalo(), MemoryAdapter()
    engine = Engine(store, plan, SETTINGS, province, {Channel.ZALO: zalo, Channel.SMS: sms},
                    numbering.carriers, reconcile=False, numbering=numbering)
    companion = fallback_wave_id(wave.id)

    async def done() -> bool:
        z = await wave_progress(store, wave)
        sent = await store.waves.get(companion)
        if z.queued or z.retrying or sent is None:
            return False
        s = await wave_progress(store, sent)
        return s.total == z.fallback and s.queued == 0 and s.retrying == 0

    await run_engine_until(engine, done)
    z = await wave_progress(store, wave)
    assert z.fallback > 0
    words = NEW_SMS.replace("{hotline}", plan.hotline)
    file_words = plan.levels[4].rules[Channel.SMS].row.template
    # the SMS channel got the fallback only: each with the approved words, none with the file's
    assert sum(n for (w, _), n in sms.received.items() if w == companion) == z.fallback
    received = Counter[str]()
    for (_, text), n in sms.texts.items():
        received[text] += n
    assert received == {words: z.fallback}
    assert file_words not in received
    assert all(text == wave.text != words for (_, text) in zalo.texts)  # Zalo: its own text
