"""The suppression list at the far end: a routine wave over SMPP never reaches a suppressed
number (the SMSC simulator never receives it), a public-safety campaign's wave does, and a
number the SMSC refuses as an invalid destination joins the list."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import msgspec

from adapters.base import Adapter
from adapters.smpp.adapter import DEFAULT_LINK, LinkConfig, SmppAdapter
from adapters.smpp.simulator import Smsc
from dispatcher.domain.model import Campaign, CampaignState, Channel, Wave, WaveState
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.domain.suppression import DEAD_LETTER, Suppression
from dispatcher.engine.process import Engine, wave_progress
from dispatcher.store import Store
from tests.conftest import run_engine_until
from tests.engine.test_smpp_engine import SETTINGS, sms_wave

ESME_RINVDSTADR = 0x0B


async def numbers(store: Store, wave: Wave) -> list[str]:
    meta = await store.audiences.meta(wave.audience_version)
    assert meta is not None
    chunks = await store.audiences.chunks(meta.version, [n for g in meta.groups for n in g.chunks])
    return [r.msisdn for c in chunks for r in c.recipients]


async def run(store: Store, smsc: Smsc, plan: Plan, numbering: Numbering, province: Province,
              waves: list[Wave]) -> None:
    sms = SmppAdapter({DEFAULT_LINK: LinkConfig(host="127.0.0.1", port=smsc.port,
                                                system_id="loa", binds=1)})
    adapters: dict[Channel, Adapter] = {Channel.SMS: sms}
    engine = Engine(store, plan, SETTINGS, province, adapters, numbering.carriers,
                    reconcile=False)
    for wave in waves:
        await store.waves.create(wave, WaveState.CREATED)
        await store.campaigns.create(Campaign(
            id=wave.campaign_id, title="t", channels=[Channel.SMS],
            texts={Channel.SMS: wave.text}, created_at=wave.created_at, created_by="a",
            state=CampaignState.RUNNING, public_safety=wave.public_safety))

    async def completed() -> bool:
        states = await store.waves.states([w.id for w in waves])
        return all(states.get(w.id) is WaveState.COMPLETED for w in waves)

    try:
        await run_engine_until(engine, completed)
    finally:
        await sms.aclose()


async def test_a_routine_wave_skips_a_suppressed_number_a_public_safety_one_reaches_it(
        store: Store, smsc: Smsc, tmp_path: Path, plan: Plan, numbering: Numbering,
        province: Province) -> None:
    routine = await sms_wave(store, tmp_path, numbering, province, 300, "Deo khau trang")
    routine = msgspec.structs.replace(routine, id="w-plan", campaign_id="plan-l2", level=2)
    everyone = await numbers(store, routine)
    quiet, opted = everyone[7], everyone[123]
    await store.suppressions.add([
        Suppression(Channel.SMS, quiet, 'keyword "TU CHOI"', 1.0, source="opt_out"),
        Suppression(Channel.SMS, opted, "asked at the hotline", 2.0, by="an"),
        Suppression(Channel.ZALO, everyone[9], "zalo unfollow", 3.0, source="opt_out")])
    await run(store, smsc, plan, numbering, province, [routine])
    assert smsc.received[quiet] == 0 and smsc.received[opted] == 0
    assert smsc.received[everyone[9]] == 1  # on the Zalo list only
    assert smsc.stats.messages == routine.total - 2
    p = await wave_progress(store, routine)
    assert p.suppressed == 2 and p.sent == routine.total - 2 and p.queued == 0

    alert = msgspec.structs.replace(routine, id="w-alert", campaign_id="c-alert",
                                    level=None, text="Canh bao lu quet", public_safety=True)
    await run(store, smsc, plan, numbering, province, [alert])
    assert smsc.received[quiet] == 1 and smsc.received[opted] == 1
    p = await wave_progress(store, alert)
    assert p.suppressed == 0 and p.sent == alert.total


async def test_a_number_refused_as_an_invalid_destination_joins_the_list(
        store: Store, smsc: Smsc, tmp_path: Path, plan: Plan, numbering: Numbering,
        province: Province) -> None:
    first = await sms_wave(store, tmp_path, numbering, province, 200, "Deo khau trang")
    everyone = await numbers(store, first)
    invalid = everyone[42]
    smsc.set_config(error_destinations={invalid: ESME_RINVDSTADR, everyone[43]: 0x08})
    await run(store, smsc, plan, numbering, province, [first])
    found = await store.suppressions.lookup(invalid)
    assert [(e.channel, e.source, e.wave) for e in found] == [
        (Channel.SMS, DEAD_LETTER, first.id)]
    assert "ESME_RINVDSTADR" in found[0].reason
    assert await store.suppressions.lookup(everyone[43]) == []  # a transient error: not listed
    p = await wave_progress(store, first)
    assert p.failed == 1

    second = msgspec.structs.replace(first, id="w-next", campaign_id="c-next",
                                     created_at=dt.datetime.now(dt.UTC))
    submits = smsc.stats.submits
    await run(store, smsc, plan, numbering, province, [second])
    p = await wave_progress(store, second)
    assert p.suppressed == 1 and p.failed == 0
    assert smsc.stats.submits - submits < second.total + 8  # the invalid one is not tried
