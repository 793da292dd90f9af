"""The SMS channel end to end: engine, Redis, the ESME and the SMSC simulator over loopback,
with receipts matched back to waves."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import msgspec
import pytest

from adapters.base import Adapter
from adapters.smpp.adapter import DEFAULT_LINK, LinkConfig, SmppAdapter
from adapters.smpp.simulator import Smsc
from bench import audiencegen
from dispatcher.domain import template
from dispatcher.domain.audience import Validator
from dispatcher.domain.model import Campaign, CampaignState, Channel, Selector, Wave, WaveState
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.engine import routing
from dispatcher.engine.importer import import_audience
from dispatcher.engine.process import Engine, wave_progress
from dispatcher.engine.receipts import FULL_AFTER, ReceiptMatcher
from dispatcher.service.settings import EngineSettings, RetrySettings, Settings
from dispatcher.store import RedisStore, Store, receiptindex
from dispatcher.store.base import Completion, Entry
from tests.conftest import VIETNAMESE, run_engine_until

SETTINGS = Settings(engine=EngineSettings(batch_size=100, chunk_size=128, lease_seconds=2.0,
                                          state_refresh_seconds=0.1),
                    retry=RetrySettings(max_attempts=4, base_seconds=0.05, max_seconds=0.2))


async def sms_wave(store: Store, tmp_path: Path, numbering: Numbering, province: Province,
                   rows: int, text: str) -> Wave:
    path = tmp_path / "audience.csv"
    audiencegen.generate(path, rows, seed=4, numbering=numbering, province=province)
    await import_audience(path, store, Validator(numbering, province), chunk_size=128)
    meta = await store.audiences.meta()
    assert meta is not None
    wave = Wave(id="w-sms", campaign_id="c", channel=Channel.SMS, text=text,
                created_at=dt.datetime.now(dt.UTC), audience_version=meta.version,
                total=routing.reach(meta, Selector(), Channel.SMS), start_now=True)
    return wave


@pytest.mark.parametrize("before_response", [False, True])
async def test_a_wave_over_smpp_is_sent_once_and_its_receipts_are_counted(
        store: Store, smsc: Smsc, tmp_path: Path, plan: Plan, numbering: Numbering,
        province: Province, before_response: bool) -> None:
    smsc.set_config(stat_mix={"DELIVRD": 0.9, "UNDELIV": 0.1}, seed=3,
                    receipt_before_response=before_response)
    wave = await sms_wave(store, tmp_path, numbering, province, 1200, VIETNAMESE)
    matcher = ReceiptMatcher(store, interval=0.05)
    sms = SmppAdapter({DEFAULT_LINK: LinkConfig(host="127.0.0.1", port=smsc.port,
                                                system_id="loa", binds=2)},
                      on_receipt=matcher.add)
    adapters: dict[Channel, Adapter] = {Channel.SMS: sms}
    engine = Engine(store, plan, SETTINGS, province, adapters, numbering.carriers,
                    reconcile=False, receipts=matcher)
    await store.waves.create(wave, WaveState.CREATED)
    await store.campaigns.create(Campaign(id="c", title="t", channels=[Channel.SMS],
                                          texts={Channel.SMS: VIETNAMESE},
                                          created_at=wave.created_at, created_by="a",
                                          state=CampaignState.RUNNING))

    async def receipts_in() -> bool:
        p = await wave_progress(store, wave)
        return p.delivered + p.undelivered == wave.total

    try:
        await run_engine_until(engine, receipts_in)
    finally:
        await sms.aclose()
    p = await wave_progress(store, wave)
    assert p.sent == wave.total and p.failed == 0
    assert 0 < p.undelivered < p.delivered
    assert smsc.stats.messages == wave.total
    assert all(n == 1 for n in smsc.received.values())
    assert all(texts == [VIETNAMESE] for texts in smsc.texts.values())
    assert matcher.stats.unmatched == 0
    assert matcher.stats.matched == 2 * wave.total  # a receipt per part, each matched


async def test_receipts_wait_for_their_message_then_go_unmatched(store: Store) -> None:
    clock = [1000.0]  # the hold is counted on this clock, not on how fast the machine is
    matcher = ReceiptMatcher(store, hold_seconds=0.3, clock=lambda: clock[0])

    class R:
        def __init__(self, message_id: str, state: str) -> None:
            self.message_id, self.state = message_id, state

    matcher.add([R("early", "DELIVRD"), R("never", "DELIVRD"), R("part2", "DELIVRD"),
                 R("slow", "ENROUTE")])
    assert matcher.stats.not_final == 1
    await matcher.match_now()
    assert matcher.pending == 3 and matcher.stats.matched == 0

    done = Completion(remote={"early": ("w", 7, 0), "part2": ("w", 7, 1)})
    await store.queue.enqueue("sms.x", "w", 0, [])
    await store.queue.complete("sms.x", Entry("0-1"), done)
    await matcher.match_now()
    assert matcher.stats.matched == 2 and matcher.pending == 1
    assert (await store.waves.progress("w")).get("delivered") == 1  # the first part counts
    clock[0] += 0.29
    await matcher.match_now()
    assert matcher.stats.unmatched == 0 and matcher.pending == 1
    clock[0] += 0.02
    await matcher.match_now()
    assert matcher.stats.unmatched == 1 and matcher.pending == 0


async def test_the_smsc_dropping_connections_mid_wave_loses_nothing(
        store: Store, smsc: Smsc, tmp_path: Path, plan: Plan, numbering: Numbering,
        province: Province) -> None:
    smsc.set_config(disconnect_after=250)  # every connection is cut after 250 submits
    wave = await sms_wave(store, tmp_path, numbering, province, 1500, "Deo khau trang")
    sms = SmppAdapter({DEFAULT_LINK: LinkConfig(host="127.0.0.1", port=smsc.port,
                                                system_id="loa", response_timeout=1.0)})
    # A cut every 250 submits is far harsher than any carrier: give messages more attempts.
    settings = msgspec.structs.replace(
        SETTINGS, retry=msgspec.structs.replace(SETTINGS.retry, max_attempts=12))
    engine = Engine(store, plan, settings, province, {Channel.SMS: sms}, numbering.carriers,
                    reconcile=False)
    await store.waves.create(wave, WaveState.CREATED)
    await store.campaigns.create(Campaign(id="c", title="t", channels=[Channel.SMS],
                                          texts={Channel.SMS: "Deo khau trang"},
                                          created_at=wave.created_at, created_by="a",
                                          state=CampaignState.RUNNING))

    async def all_sent() -> bool:
        return (await wave_progress(store, wave)).sent == wave.total

    try:
        await run_engine_until(engine, all_sent, timeout=60)
    finally:
        await sms.aclose()
    session = sms.links[DEFAULT_LINK].sessions[0]
    assert session.stats.reconnects >= 3
    reached = [a for a, n in smsc.received.items() if n >= 1]
    assert len(reached) == wave.total, "every recipient got the message"
    duplicates = sum(n - 1 for n in smsc.received.values())
    # Only messages whose response was lost with a connection can go out twice.
    assert duplicates <= session.stats.lost + session.stats.timeouts


async def test_early_receipts_cost_a_pipeline_or_two_per_pass_and_one_full_lookup(
        redis_url: str) -> None:
    store = RedisStore(redis_url)
    matcher = ReceiptMatcher(store)

    class R:
        def __init__(self, message_id: str) -> None:
            self.message_id, self.state = message_id, "DELIVRD"

    try:
        ids = [f"early-{n}" for n in range(1000)]
        shards = len({receiptindex.shard(i) for i in ids})
        matcher.add([R(i) for i in ids])
        await store.client.config_resetstat()
        for _ in range(5):
            await matcher.match_now()  # among the recent ids only
        stats = await store.client.info("commandstats")
        # this hour and the one before, one HMGET per shard in one pipeline each
        assert stats["cmdstat_hmget"]["calls"] == 5 * 2 * shards
        assert matcher.pending == 1000
        await asyncio.sleep(FULL_AFTER)
        await matcher.match_now()  # once over the whole validity period
        await matcher.match_now()
        stats = await store.client.info("commandstats")
        # the full lookup reads each hour's shards and its hash from before the shards
        assert stats["cmdstat_hmget"]["calls"] == (
            6 * 2 * shards + (receiptindex.HOURS + 1) * (shards + 1))
    finally:
        await store.aclose()


async def test_a_wave_with_a_text_per_district_reaches_the_smsc_in_each_district_s_words(
        store: Store, smsc: Smsc, tmp_path: Path, plan: Plan, numbering: Numbering,
        province: Province) -> None:
    """Counted at the SMSC: each recipient got its district's text once, the messages the
    SMSC answered with a transient error too (retried in their district)."""
    smsc.set_config(error_ratio=0.1, error_status=0x58, seed=5)  # throttled: retried
    wave = await sms_wave(store, tmp_path, numbering, province, 600, "")
    given = template.values(None, "")
    written = "Người dân {district}: đeo khẩu trang."
    texts = template.per_district(written, given,
                                  {d.id: d.name for d in province.districts.values()})
    wave = msgspec.structs.replace(wave, text=template.render(written, given)[0],
                                   district_texts=texts)
    sms = SmppAdapter({DEFAULT_LINK: LinkConfig(host="127.0.0.1", port=smsc.port,
                                                system_id="loa", binds=2)})
    engine = Engine(store, plan, SETTINGS, province, {Channel.SMS: sms}, numbering.carriers,
                    reconcile=False)
    await store.waves.create(wave, WaveState.CREATED)
    await store.campaigns.create(Campaign(id="c", title="t", channels=[Channel.SMS],
                                          texts={Channel.SMS: written},
                                          created_at=wave.created_at, created_by="a",
                                          state=CampaignState.RUNNING))

    async def sent() -> bool:
        p = await wave_progress(store, wave)
        return p.sent + p.failed + p.expired == wave.total

    try:
        await run_engine_until(engine, sent)
    finally:
        await sms.aclose()
    p = await wave_progress(store, wave)
    assert p.sent == wave.total
    assert smsc.stats.submits > smsc.stats.parts == wave.total  # some were answered 0x58
    meta = await store.audiences.meta(wave.audience_version)
    assert meta is not None
    rows = [r for c in await store.audiences.chunks(
        meta.version, [n for g in meta.groups for n in g.chunks]) for r in c.recipients]
    want = {r.msisdn: [texts.get(r.district, wave.text)] for r in rows}
    assert len({t for (t,) in want.values()}) > 3  # several districts, and visitors
    assert [wave.text] in want.values()
    assert smsc.texts == want
