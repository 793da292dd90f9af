"""A campaign to an uploaded list, end to end (memory store, Redis, Redis Cluster): the list is
stored beside the province's audience, the campaign's waves read the list's chunks, and the
SMSC simulator receives exactly the list's valid numbers, each once; the recipient lookup finds
the list's wave for a number on the list."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from adapters.base import Adapter
from adapters.smpp.adapter import DEFAULT_LINK, LinkConfig, SmppAdapter
from adapters.smpp.simulator import Smsc
from bench import audiencegen
from dispatcher.domain import numberlist
from dispatcher.domain.audience import Validator
from dispatcher.domain.model import CampaignState, Channel, Priority, WaveState
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.engine import numberlists
from dispatcher.engine.campaigns import Campaigns
from dispatcher.engine.importer import import_audience
from dispatcher.engine.process import Engine, wave_progress
from dispatcher.engine.recipients import look_up
from dispatcher.store import Store
from tests.conftest import run_engine_until
from tests.engine.test_smpp_engine import SETTINGS

TEXT = "Ban da den quan bar X toi 3/12: o nha, goi y te phuong."


async def test_a_list_campaign_reaches_exactly_the_list(
        store: Store, smsc: Smsc, tmp_path: Path, plan: Plan, numbering: Numbering,
        province: Province) -> None:
    audience = tmp_path / "audience.csv"
    audiencegen.generate(audience, 400, seed=9, numbering=numbering, province=province)
    await import_audience(audience, store, Validator(numbering, province), chunk_size=128)
    province_meta = await store.audiences.meta()
    assert province_meta is not None
    listed = [f"0912 {i:03d} {i * 7 % 1000:03d}" for i in range(150)]  # not from the audience
    rows = ["msisdn", *listed, "0203 3825 123", listed[3], "12345"]
    path = tmp_path / "list.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    expected = {numbering.normalize(n)[0] for n in listed}
    version = numberlists.list_id(numberlists.new_digest().digest())
    report = await numberlists.import_list(
        path, numberlist.CSV, store, numberlist.validator(numbering, province),
        version=version, name="list.csv", chunk_size=64)
    assert (report.valid, report.duplicates, report.rejected) == (150, 1, 2)
    assert [r.line for r in report.rejects] == [152, 153, 154]
    current = await store.audiences.meta()
    assert current is not None and current.version == province_meta.version

    campaigns = Campaigns(store, SETTINGS, province)
    now = dt.datetime.now(dt.UTC)
    campaign = await campaigns.create(title="Quán bar X", channels=[Channel.SMS],
                                      texts={Channel.SMS: TEXT}, created_by="olga", now=now,
                                      priority=Priority.URGENT, audience_list=version)
    assert campaign.state is CampaignState.APPROVED and campaign.audience_size == 150
    await campaigns.start(campaign.id, now)
    (wave,) = await campaigns.waves(campaign.id)
    assert wave.audience_version == version and wave.total == 150

    sms = SmppAdapter({DEFAULT_LINK: LinkConfig(host="127.0.0.1", port=smsc.port,
                                                system_id="loa", binds=1)})
    adapters: dict[Channel, Adapter] = {Channel.SMS: sms}
    engine = Engine(store, plan, SETTINGS, province, adapters, numbering.carriers,
                    reconcile=False)

    async def done() -> bool:
        return (await store.waves.states([wave.id])).get(wave.id) is WaveState.COMPLETED

    try:
        await run_engine_until(engine, done)
    finally:
        await sms.aclose()
    p = await wave_progress(store, wave)
    assert p.sent == 150 and p.failed == 0
    assert set(smsc.received) == expected
    assert all(n == 1 for n in smsc.received.values())

    number = sorted(expected)[0]
    view = await look_up(store, number, now=dt.datetime.now(dt.UTC))
    assert view is not None and view.row.audience_version == version
    assert [(w.wave, w.outcome) for w in view.waves] == [(wave.id, "sent")]
