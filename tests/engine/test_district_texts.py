"""Texts naming ``{district}``: rendered once per district when the wave is made, sent batch by
batch (a batch is one district's), kept by retries, replays and the SMS fallback."""

from __future__ import annotations

import copy
import datetime as dt
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

import msgspec
import pytest

from adapters.base import Adapter, Envelope, Results
from adapters.memory import MemoryAdapter
from bench import audiencegen
from dispatcher.domain import repeats, template
from dispatcher.domain.audience import Recipient, Validator
from dispatcher.domain.config import default_path
from dispatcher.domain.errors import InputError
from dispatcher.domain.model import Campaign, CampaignState, Channel, Selector, Wave, WaveState
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan, plan_from_dict
from dispatcher.domain.province import Province
from dispatcher.engine import routing
from dispatcher.engine.campaigns import wave_id
from dispatcher.engine.fallback import fallback_wave_id
from dispatcher.engine.importer import import_audience
from dispatcher.engine.level import set_level
from dispatcher.engine.process import Engine, wave_progress
from dispatcher.engine.recipients import look_up
from dispatcher.engine.reconciler import Reconciler
from dispatcher.store import Store
from dispatcher.store.base import AudienceMeta
from tests.conftest import daytime, run_engine_until
from tests.engine.test_fallback_and_pause import SETTINGS, NotOnZalo
from tests.engine.test_situation_texts import DAY, local, record, set_record

SMS = "Nguoi dan {district}: deo khau trang."
ZALO = "Người dân {district}: đeo khẩu trang (Zalo)."


class RetryFirst(MemoryAdapter):
    """Asks for a retry of every address's first message: every recipient is sent from the
    retry schedule (batches regrouped from retried messages)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    async def send(self, envelope: Envelope) -> Results:
        first = [i for i, a in enumerate(envelope.addrs) if a not in self.seen]
        self.seen.update(envelope.addrs)
        if not first:
            return await super().send(envelope)
        later = [i for i in range(len(envelope.addrs)) if i not in set(first)]
        part = Envelope(wave=envelope.wave, channel=envelope.channel, text=envelope.text,
                        addrs=[envelope.addrs[i] for i in later], route=envelope.route)
        sent = await super().send(part) if later else Results()
        results = Results(sent=[later[k] for k in sent.sent], remote_ids=sent.remote_ids)
        results.retry = [(i, "throttled, try later") for i in first]
        return results


async def rows(store: Store, meta: AudienceMeta) -> list[Recipient]:
    chunks = await store.audiences.chunks(meta.version, [n for g in meta.groups
                                                         for n in g.chunks])
    return [r for c in chunks for r in c.recipients]


def names(province: Province) -> dict[str, str]:
    return {d.id: d.name for d in province.districts.values()}


def expected(texts: dict[str, str], neutral: str, found: list[Recipient],
             addr: str = "msisdn") -> Counter[tuple[str, str]]:
    """(address, text) -> 1 for each recipient: its district's text, the neutral one without."""
    return Counter({(getattr(r, addr), texts.get(r.district, neutral)): 1 for r in found})


async def audience(store: Store, tmp_path: Path, numbering: Numbering,
                   province: Province) -> AudienceMeta:
    path = tmp_path / "audience.csv"
    audiencegen.generate(path, 800, seed=11, numbering=numbering, province=province)
    await import_audience(path, store, Validator(numbering, province), chunk_size=64)
    meta = await store.audiences.meta()
    assert meta is not None
    return meta


async def made(store: Store, wave: Wave) -> Wave:
    await store.campaigns.create(Campaign(
        id="c", title="t", channels=[wave.channel], texts={wave.channel: wave.text},
        created_at=wave.created_at, created_by="a", state=CampaignState.RUNNING))
    await store.waves.create(wave, WaveState.CREATED)
    return wave


async def finished(store: Store, wave: Wave) -> bool:
    p = await wave_progress(store, wave)
    return not p.queued and not p.retrying


async def test_each_recipient_gets_its_districts_text_also_when_retried(
        store: Store, tmp_path: Path, plan: Plan, numbering: Numbering,
        province: Province) -> None:
    meta = await audience(store, tmp_path, numbering, province)
    given = template.values(None, "")
    texts = template.per_district(SMS, given, names(province))
    neutral = template.render(SMS, given)[0]
    assert neutral == "Nguoi dan toàn tỉnh: deo khau trang."
    wave = await made(store, Wave(
        id="w-sms", campaign_id="c", channel=Channel.SMS, text=neutral,
        created_at=dt.datetime.now(dt.UTC), audience_version=meta.version,
        total=routing.reach(meta, Selector(), Channel.SMS), start_now=True,
        district_texts=texts))
    sms = RetryFirst()
    engine = Engine(store, plan, SETTINGS, province, {Channel.SMS: sms}, numbering.carriers,
                    reconcile=False, numbering=numbering)
    await run_engine_until(engine, lambda: finished(store, wave))
    found = await rows(store, meta)
    assert any(not r.district for r in found) and len({r.district for r in found}) > 3
    assert sms.texts == expected(texts, neutral, found)  # counted at the far end
    p = await wave_progress(store, wave)
    assert (p.sent, p.failed, p.expired) == (wave.total, 0, 0)


async def test_the_sms_fallback_of_a_zalo_wave_sends_the_districts_text(
        store: Store, tmp_path: Path, plan: Plan, numbering: Numbering,
        province: Province) -> None:
    meta = await audience(store, tmp_path, numbering, province)
    given = template.values(None, "")
    zalo_texts = template.per_district(ZALO, given, names(province))
    sms_texts = template.per_district(SMS, given, names(province))
    wave = await made(store, Wave(
        id="w-zalo", campaign_id="c", channel=Channel.ZALO, text=template.render(ZALO, given)[0],
        created_at=dt.datetime.now(dt.UTC), audience_version=meta.version,
        total=routing.reach(meta, Selector(), Channel.ZALO), start_now=True,
        fallback_text=template.render(SMS, given)[0], district_texts=zalo_texts,
        fallback_district_texts=sms_texts))
    zalo, sms = NotOnZalo(), MemoryAdapter()
    adapters: dict[Channel, Adapter] = {Channel.ZALO: zalo, Channel.SMS: sms}
    engine = Engine(store, plan, SETTINGS, province, adapters, numbering.carriers,
                    reconcile=False, numbering=numbering)
    companion = fallback_wave_id(wave.id)

    async def done() -> bool:
        z = await wave_progress(store, wave)
        if z.queued or z.retrying:
            return False
        other = await store.waves.get(companion)
        return other is not None and await finished(store, other) and \
            (await wave_progress(store, other)).sent == z.fallback

    await run_engine_until(engine, done)
    found = await rows(store, meta)
    by_addr = {routing.address(Channel.ZALO, r): r for r in found}
    refused = {a for (_, a), n in zalo.received.items() if n == 0}
    assert refused and sms.messages == len(refused)
    # each refused Zalo recipient got its district's SMS text, at its audience row's phone
    assert sms.texts == expected(sms_texts, wave.fallback_text,
                                 [by_addr[a] for a in refused])
    reached = [r for a, r in by_addr.items() if a is not None]  # the refused ones too
    assert zalo.texts == Counter({(routing.address(Channel.ZALO, r),
                                    zalo_texts.get(r.district, wave.text)): 1 for r in reached})
    # "did this citizen get it?" shows the words of the recipient's district
    r = next(by_addr[a] for a in sorted(refused) if by_addr[a].district)
    view = await look_up(store, r.msisdn)
    assert view is not None
    [seen] = view.waves
    assert (seen.text, seen.fallback, seen.fallback_text) == (
        zalo_texts[r.district], "sent", sms_texts[r.district])


async def test_a_campaign_naming_district_makes_waves_with_a_text_per_district(
        store: Store, tmp_path: Path, plan: Plan, numbering: Numbering,
        province: Province) -> None:
    meta = await audience(store, tmp_path, numbering, province)
    sms = MemoryAdapter()
    day = daytime()  # a routine campaign: its wave starts inside the sending hours
    engine = Engine(store, plan, SETTINGS, province, {Channel.SMS: sms}, numbering.carriers,
                    reconcile=False, numbering=numbering, clock=lambda: day)
    chosen = sorted(province.districts)[:3]
    campaign = await engine.campaigns.create(
        title="Theo huyện", channels=[Channel.SMS], texts={Channel.SMS: SMS}, created_by="olga",
        now=dt.datetime.now(dt.UTC), selector=Selector(districts=chosen))
    await engine.campaigns.start(campaign.id, dt.datetime.now(dt.UTC))
    wave = await store.waves.get(wave_id(campaign.id, Channel.SMS))
    assert wave is not None
    assert wave.district_texts == {d: f"Nguoi dan {province.districts[d].name}: deo khau trang."
                                   for d in chosen}  # the selector's districts only
    assert wave.text == "Nguoi dan toàn tỉnh: deo khau trang."
    await run_engine_until(engine, lambda: finished(store, wave))
    found = [r for r in await rows(store, meta) if r.district in chosen]
    assert sms.texts == expected(wave.district_texts, wave.text, found)


async def test_a_campaign_sms_over_the_cap_in_its_longest_district_is_refused(
        store: Store, tmp_path: Path, plan: Plan, numbering: Numbering,
        province: Province) -> None:
    await audience(store, tmp_path, numbering, province)
    engine = Engine(store, plan, SETTINGS, province, {Channel.SMS: MemoryAdapter()},
                    numbering.carriers, reconcile=False, numbering=numbering)
    longest = max((d.name for d in province.districts.values()), key=len)
    text = "Tai {district}: " + "x" * (160 - len("Tai : ") - len(longest) + 1)
    assert len(text.replace("{district}", template.NEUTRAL)) <= 160  # fits with "toàn tỉnh"
    with pytest.raises(InputError) as caught:
        await engine.campaigns.create(
            title="T", channels=[Channel.SMS], texts={Channel.SMS: text}, created_by="olga",
            now=dt.datetime.now(dt.UTC), max_parts=1, strip_diacritics=True)
    assert str(caught.value).startswith(f"texts.sms: rendered for {longest}, 2 parts")
    assert await store.campaigns.all() == []


async def test_a_plan_wave_naming_district_carries_a_text_per_district(
        store: Store, tmp_path: Path, numbering: Numbering, province: Province) -> None:
    with default_path("plan.toml").open("rb") as f:
        data: dict[str, Any] = copy.deepcopy(tomllib.load(f))
    data["levels"][3]["channels"]["sms"]["template"] = ("{district}: {new_cases} ca moi. "
                                                        "Goi {hotline}.")
    plan = msgspec.structs.replace(plan_from_dict(data, source="plan.toml"),
                                   catch_up=dt.timedelta(minutes=60))
    await audience(store, tmp_path, numbering, province)
    await set_level(store, plan, now=local(9), level=4)
    await set_record(store, record(today=7))
    await Reconciler(store, plan, province).tick(local(9, 31))
    wave = await store.waves.get(f"L4-sms-{DAY:%Y%m%d}T0930")
    assert wave is not None
    assert wave.text == "toàn tỉnh: 7 ca moi. Goi 1900 1234."
    assert wave.district_texts == {d.id: f"{d.name}: 7 ca moi. Goi 1900 1234."
                                   for d in province.districts.values()}
    # the repeat ledger is the wave's text, the same for every district's rendering
    assert repeats.ledger(wave) == repeats.ledger(msgspec.structs.replace(
        wave, district_texts={}))


async def test_a_campaign_whose_sms_grows_past_the_cap_in_a_district_is_not_started(
        store: Store, tmp_path: Path, plan: Plan, numbering: Numbering,
        province: Province) -> None:
    await audience(store, tmp_path, numbering, province)
    engine = Engine(store, plan, SETTINGS, province, {Channel.SMS: MemoryAdapter()},
                    numbering.carriers, reconcile=False, numbering=numbering)
    longest = max((d.name for d in province.districts.values()), key=len)
    await set_record(store, record(advice="x"))
    room = 160 - len("Tai : ") - len(longest)  # GSM-7, one part
    campaign = await engine.campaigns.create(
        title="T", channels=[Channel.SMS], texts={Channel.SMS: "Tai {district}: {advice}"},
        created_by="olga", now=dt.datetime.now(dt.UTC), max_parts=1, strip_diacritics=True)
    await set_record(store, record(advice="x" * (room + 1)))  # fits "toàn tỉnh", not longest
    started = await engine.campaigns.start(campaign.id, dt.datetime.now(dt.UTC))
    assert started.state is CampaignState.CANCELLED
    assert started.state_reason.startswith(
        f"not started: texts.sms: rendered for {longest}, 2 parts")
    assert await store.waves.all() == []
