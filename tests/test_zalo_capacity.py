"""Zalo's daily ZNS quota through the engine against the Zalo simulator: the quota read before a
wave, the policy of a wave whose audience exceeds it (the rest by SMS at once, or wait for the
reset), and the reset time."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from adapters.base import Adapter
from adapters.memory import MemoryAdapter
from adapters.zalo.simulator import ZaloSim
from dispatcher import audiencegen, routing
from dispatcher.audience import Validator
from dispatcher.engine import Engine, wave_progress
from dispatcher.fallback import fallback_wave_id
from dispatcher.importer import import_audience
from dispatcher.model import (
    Campaign,
    CampaignState,
    Channel,
    Priority,
    Selector,
    Wave,
    WaveState,
)
from dispatcher.msisdn import Numbering
from dispatcher.plan import Plan
from dispatcher.province import Province
from dispatcher.store import Store
from tests.test_zalo_codes import SETTINGS, run, store, until, zalo

__all__ = ["store"]  # the fixture

QUOTA = 100  # of an audience of about 280 on Zalo


async def zalo_wave(store: Store, tmp_path: Path, numbering: Numbering, province: Province,
                    *, priority: Priority = Priority.NORMAL, **fields: object) -> Wave:
    path = tmp_path / "audience.csv"
    audiencegen.generate(path, 300, seed=17, numbering=numbering, province=province)
    await import_audience(path, store, Validator(numbering, province), chunk_size=64)
    meta = await store.audiences.meta()
    assert meta is not None
    now = dt.datetime.now(dt.UTC)
    await store.campaigns.create(Campaign(id="c", title="t", channels=[Channel.ZALO],
                                          texts={Channel.ZALO: "Zalo"}, created_at=now,
                                          created_by="a", state=CampaignState.RUNNING))
    wave = Wave(id="w-zalo", campaign_id="c", channel=Channel.ZALO, text="Zalo",
                created_at=now, audience_version=meta.version, priority=priority,
                total=routing.reach(meta, Selector(), Channel.ZALO), start_now=True,
                fallback_text="Deo khau trang (SMS)", **fields)  # type: ignore[arg-type]
    await store.waves.create(wave, WaveState.CREATED)
    return wave


async def test_an_urgent_wave_over_the_quota_sends_the_rest_by_sms_at_once(
        store: Store, sim: ZaloSim, tmp_path: Path, plan: Plan, numbering: Numbering,
        province: Province) -> None:
    """Zalo takes QUOTA messages today and answers -144 after; the wave is urgent (as a level 4
    wave is) with SMS fallback: the phones beyond the quota are received by the SMS side now,
    not at midnight, nobody twice, nobody dead-lettered. Zalo user ids (no number for an SMS)
    wait for the reset, and go then."""
    wave = await zalo_wave(store, tmp_path, numbering, province, priority=Priority.URGENT)
    sim.set_config(daily_quota=QUOTA)
    adapter, sms = zalo(sim), MemoryAdapter()
    adapters: dict[Channel, Adapter] = {Channel.ZALO: adapter, Channel.SMS: sms}
    engine = Engine(store, plan, SETTINGS, province, adapters, numbering.carriers,
                    reconcile=False, numbering=numbering)
    companion = fallback_wave_id(wave.id)

    async def body() -> None:
        async def by_sms() -> bool:  # the quota is spent: the rest by SMS, user ids wait
            z = await wave_progress(store, wave)
            other = await store.waves.get(companion)
            if z.queued or other is None or z.sent + z.fallback + z.retrying < wave.total:
                return False
            s = await wave_progress(store, other)
            return s.total == z.fallback and s.queued == 0 and s.retrying == 0
        await until(by_sms, timeout=10)
        z = await wave_progress(store, wave)
        assert (z.sent, z.expired) == (QUOTA, 0) and z.fallback == z.failed > 0
        assert sum(sim.received.values()) == QUOTA  # nothing more was taken by Zalo
        sent_by_sms = {a for (w, a), n in sms.received.items() if w == companion and n}
        assert len(sent_by_sms) == z.fallback and all(a.startswith("84") for a in sent_by_sms)
        sim.reset_quota()  # a new day: the user ids go by Zalo

        async def finished() -> bool:
            z = await wave_progress(store, wave)
            return z.retrying == 0 and z.queued == 0 and z.sent + z.fallback == wave.total
        await until(finished, timeout=10)

    try:
        await run(engine, body)
    finally:
        await adapter.aclose()
    z = await wave_progress(store, wave)
    by_sms = {a for (w, a), n in sms.received.items() if w == companion and n}
    assert len(by_sms) == z.fallback and sms.duplicates == 0 and sim.duplicates == 0
    assert not by_sms & set(sim.received)
    assert len(by_sms) + len(sim.received) == wave.total and z.expired == 0

