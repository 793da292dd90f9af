"""Zalo's answers the engine acts on: SMS fallback for recipients not on Zalo, and a channel's
"no more until ..." (quota) pausing its route with nothing lost."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import msgspec
import pytest

from adapters.base import Adapter, Envelope, Results
from adapters.memory import MemoryAdapter
from bench import audiencegen
from dispatcher.domain.audience import Validator
from dispatcher.domain.model import (
    Batch,
    Campaign,
    CampaignState,
    Channel,
    Selector,
    Wave,
    WaveState,
)
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.engine import routing
from dispatcher.engine.campaigns import Campaigns
from dispatcher.engine.fallback import fallback_wave_id
from dispatcher.engine.importer import import_audience
from dispatcher.engine.process import Engine, wave_progress
from dispatcher.service.settings import EngineSettings, RetrySettings, Settings
from dispatcher.store import Store
from dispatcher.store.base import Completion, Entry
from tests.conftest import run_engine_until

SETTINGS = Settings(engine=EngineSettings(batch_size=50, chunk_size=64, lease_seconds=2.0,
                                          state_refresh_seconds=0.1),
                    retry=RetrySettings(max_attempts=3, base_seconds=0.05, max_seconds=0.2))


class NotOnZalo(MemoryAdapter):
    """Answers "not a Zalo account" (-118) for every address ending in 7."""

    async def send(self, envelope: Envelope) -> Results:
        results = await super().send(envelope)
        refused = [i for i in results.sent if envelope.addrs[i].endswith("7")]
        for i in refused:
            self.received[(envelope.wave, envelope.addrs[i])] -= 1
        keep = [(i, r) for i, r in zip(results.sent, results.remote_ids, strict=True)
                if i not in refused]
        results.sent = [i for i, _ in keep]
        results.remote_ids = [r for _, r in keep]
        for i in refused:
            results.fail_over(i, "fallback: -118 not a Zalo account")
        return results


class RefusedTwoWays(MemoryAdapter):
    """Refuses every address ending in 7 as a failure SMS may cure (``Results.fallback``, with
    a reason that does not say so) and every one ending in 3 as a plain failure whose reason
    begins "fallback:"."""

    async def send(self, envelope: Envelope) -> Results:
        results = await super().send(envelope)
        refused = {i: envelope.addrs[i][-1] for i in results.sent
                   if envelope.addrs[i][-1] in "37"}
        for i in refused:
            self.received[(envelope.wave, envelope.addrs[i])] -= 1
        keep = [(i, r) for i, r in zip(results.sent, results.remote_ids, strict=True)
                if i not in refused]
        results.sent = [i for i, _ in keep]
        results.remote_ids = [r for _, r in keep]
        for i, last in refused.items():
            if last == "7":
                results.fail_over(i, "zalo -118: not a Zalo account")
            else:
                results.failed.append((i, "fallback: of no use, a plain failure"))
        return results


class Quota(MemoryAdapter):
    """Takes ``quota`` messages, then answers "quota exhausted" until ``reset`` is called."""

    def __init__(self, quota: int) -> None:
        super().__init__()
        self.left = quota

    def reset(self, quota: int) -> None:
        self.left = quota

    async def send(self, envelope: Envelope) -> Results:
        take = min(self.left, len(envelope.addrs))
        self.left -= take
        part = Envelope(wave=envelope.wave, channel=envelope.channel, text=envelope.text,
                        addrs=envelope.addrs[:take], route=envelope.route)
        results = await super().send(part) if take else Results()
        if take < len(envelope.addrs):
            results.requeue = [(i, "zalo -144: OA over its daily ZNS limit")
                               for i in range(take, len(envelope.addrs))]
            results.pause_until = time.time() + 0.5
        return results


async def setup(store: Store, tmp_path: Path, numbering: Numbering, province: Province,
                fallback: bool) -> Wave:
    path = tmp_path / "audience.csv"
    audiencegen.generate(path, 800, seed=11, numbering=numbering, province=province)
    await import_audience(path, store, Validator(numbering, province), chunk_size=64)
    meta = await store.audiences.meta()
    assert meta is not None
    now = dt.datetime.now(dt.UTC)
    await store.campaigns.create(Campaign(id="c", title="t", channels=[Channel.ZALO],
                                          texts={Channel.ZALO: "Zalo"}, created_at=now,
                                          created_by="a", state=CampaignState.RUNNING))
    wave = Wave(id="w-zalo", campaign_id="c", channel=Channel.ZALO, text="Zalo",
                created_at=now, audience_version=meta.version,
                total=routing.reach(meta, Selector(), Channel.ZALO), start_now=True,
                fallback_text="Deo khau trang (SMS)" if fallback else "")
    await store.waves.create(wave, WaveState.CREATED)
    return wave


@pytest.mark.parametrize("allowed", [True, False])
async def test_recipients_not_on_zalo_get_one_sms_when_the_wave_allows(
        store: Store, tmp_path: Path, plan: Plan, numbering: Numbering, province: Province,
        allowed: bool) -> None:
    wave = await setup(store, tmp_path, numbering, province, fallback=allowed)
    zalo, sms = NotOnZalo(), MemoryAdapter()
    adapters: dict[Channel, Adapter] = {Channel.ZALO: zalo, Channel.SMS: sms}
    engine = Engine(store, plan, SETTINGS, province, adapters, numbering.carriers,
                    reconcile=False, numbering=numbering)
    sms_wave = fallback_wave_id(wave.id)

    async def done() -> bool:
        z = await wave_progress(store, wave)
        if z.queued or z.retrying:
            return False
        if not allowed:
            return True
        companion = await store.waves.get(sms_wave)
        if companion is None:
            return False
        s = await wave_progress(store, companion)
        return s.total == z.fallback and s.queued == 0 and s.retrying == 0

    await run_engine_until(engine, done)
    z = await wave_progress(store, wave)
    refused = {a for (_, a), n in zalo.received.items() if n == 0}
    assert z.failed == len(refused) > 0
    assert z.sent + z.failed == wave.total
    if allowed:  # an OA user id gets the SMS at the phone of its audience row
        meta = await store.audiences.meta(wave.audience_version)
        assert meta is not None
        rows = {r.zalo_uid: r.msisdn for c in await store.audiences.chunks(
            meta.version, [n for g in meta.groups for n in g.chunks]) for r in c.recipients}
        phones = {rows.get(a, a) for a in refused}
        assert any(not a.startswith("84") for a in refused)
        assert z.fallback == len(phones) == len(refused)
        assert {a for (w, a), n in sms.received.items() if w == sms_wave and n} == phones
        assert sms.duplicates == 0
        s = await wave_progress(store, await store.waves.get(sms_wave))  # type: ignore[arg-type]
        assert (s.total, s.sent) == (len(phones), len(phones))
    else:
        assert sms.messages == 0


async def test_the_sms_fallback_takes_the_failures_the_channel_marks_not_the_reason_words(
        store: Store, tmp_path: Path, plan: Plan, numbering: Numbering,
        province: Province) -> None:
    wave = await setup(store, tmp_path, numbering, province, fallback=True)
    zalo, sms = RefusedTwoWays(), MemoryAdapter()
    engine = Engine(store, plan, SETTINGS, province, {Channel.ZALO: zalo, Channel.SMS: sms},
                    numbering.carriers, reconcile=False, numbering=numbering)
    sms_wave = fallback_wave_id(wave.id)

    async def done() -> bool:
        z = await wave_progress(store, wave)
        companion = await store.waves.get(sms_wave)
        if z.queued or z.retrying or companion is None:
            return False
        s = await wave_progress(store, companion)
        return s.total == z.fallback and s.queued == 0 and s.retrying == 0

    await run_engine_until(engine, done)
    z = await wave_progress(store, wave)
    refused = {a for (_, a), n in zalo.received.items() if n == 0}
    marked = {a for a in refused if a.endswith("7")}
    assert marked and refused - marked
    assert z.failed == len(refused)  # both kinds are failed on Zalo, dead-lettered
    meta = await store.audiences.meta(wave.audience_version)
    assert meta is not None
    rows = {r.zalo_uid: r.msisdn for c in await store.audiences.chunks(
        meta.version, [n for g in meta.groups for n in g.chunks]) for r in c.recipients}
    phones = {rows.get(a, a) for a in marked}
    assert z.fallback == len(phones) == len(marked)
    assert {a for (w, a), n in sms.received.items() if w == sms_wave and n} == phones
    dead = {d.reason for d in await store.queue.dead_letters("zalo", limit=10_000)}
    assert dead == {"zalo -118: not a Zalo account", "fallback: of no use, a plain failure"}


async def test_a_quota_pauses_the_route_and_nothing_is_lost(
        store: Store, tmp_path: Path, plan: Plan, numbering: Numbering,
        province: Province) -> None:
    wave = await setup(store, tmp_path, numbering, province, fallback=False)
    zalo = Quota(300)
    engine = Engine(store, plan, SETTINGS, province, {Channel.ZALO: zalo}, numbering.carriers,
                    reconcile=False)

    async def paused() -> bool:
        return (await wave_progress(store, wave)).sent == 300

    async def finished() -> bool:
        p = await wave_progress(store, wave)
        return p.sent == wave.total and p.retrying == 0

    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))
    try:
        async def until(check: Callable[[], Awaitable[bool]]) -> None:
            while not await check():
                await asyncio.sleep(0.05)
        await asyncio.wait_for(until(paused), 30)
        await asyncio.sleep(1.0)
        assert zalo.messages == 300  # the route waited; requeued messages used no attempt
        zalo.reset(10_000)  # the quota resets at midnight
        await asyncio.wait_for(until(finished), 30)
    finally:
        stop.set()
        await task
    p = await wave_progress(store, wave)
    assert p.sent == wave.total and p.expired == 0 and p.failed == 0
    assert zalo.duplicates == 0 and zalo.messages == wave.total


async def test_a_recipient_refused_twice_gets_one_sms(
        store: Store, tmp_path: Path, plan: Plan, numbering: Numbering,
        province: Province) -> None:
    wave = await setup(store, tmp_path, numbering, province, fallback=True)
    sms = MemoryAdapter()
    engine = Engine(store, plan, SETTINGS, province, {Channel.SMS: sms}, numbering.carriers,
                    reconcile=False, numbering=numbering)
    assert engine.worker.fallback is not None
    batch = Batch(wave.id, Channel.ZALO, [5, 6], ["84912345677", "84912345687"])
    for entry in ("1-0", "2-0"):  # the same Zalo answer processed twice
        done = Completion()
        await engine.worker.fallback.reroute(wave, batch, [0, 1], done)
        await store.queue.complete("zalo", Entry(entry), done)
    companion = fallback_wave_id(wave.id)

    async def finished() -> bool:
        w = await store.waves.get(companion)
        return w is not None and (await wave_progress(store, w)).queued == 0 and (
            await wave_progress(store, w)).retrying == 0

    await run_engine_until(engine, finished)
    assert sms.messages == 2 and sms.duplicates == 0
    p = await wave_progress(store, await store.waves.get(companion))  # type: ignore[arg-type]
    assert (p.total, p.sent, p.skipped) == (2, 2, 2)


async def test_a_campaigns_fallback_wave_is_paused_with_it_but_not_listed_as_a_channel(
        store: Store, tmp_path: Path, numbering: Numbering, province: Province) -> None:
    wave = await setup(store, tmp_path, numbering, province, fallback=True)
    companion = msgspec.structs.replace(wave, id=fallback_wave_id(wave.id), channel=Channel.SMS)
    await store.waves.create(companion, WaveState.SENDING)
    campaigns = Campaigns(store, SETTINGS, province)
    assert [w.id for w in await campaigns.waves("c")] == [wave.id]
    assert {w.id for w in await campaigns.waves("c", companions=True)} == {wave.id,
                                                                           companion.id}
    await campaigns.pause("c")
    states = await store.waves.states([wave.id, companion.id])
    assert set(states.values()) == {WaveState.PAUSED}
