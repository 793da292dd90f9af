"""The emergency stop: kept in the store, set and lifted by the API and the CLI with a reason,
obeyed by every worker within ``state_refresh_seconds`` (what still leaves is what was on the
wire), through a restart, and lifted without a loss or a duplicate."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.base import Abort, Adapter
from adapters.smpp import pdu
from adapters.smpp.adapter import DEFAULT_LINK, LinkConfig, SmppAdapter
from adapters.smpp.session import HALTED_STATUS, BindConfig, EsmeSession
from adapters.smpp.simulator import Smsc
from bench import audiencegen
from dispatcher.domain.audience import Validator
from dispatcher.domain.model import Campaign, CampaignState, Channel, Selector, Wave, WaveState
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.engine import routing
from dispatcher.engine.importer import import_audience
from dispatcher.engine.process import Engine, wave_progress
from dispatcher.engine.stop import is_stopped, lift, stop_all
from dispatcher.service.audit import read_audit
from dispatcher.service.cli import main
from dispatcher.service.settings import EngineSettings, Settings
from dispatcher.store import RedisStore, Store
from tests.service.test_api import Env, _env, auth

NOW = dt.datetime(2024, 3, 5, 3, 0, tzinfo=dt.UTC)
REFRESH = 0.1
WINDOW, BINDS, TPS = 8, 2, 150.0  # a bind: 8 in flight, 150 submit_sm a second
TEXT = "Deo khau trang, rua tay, giu khoang cach."


# -- the store ------------------------------------------------------------------------------------


async def test_the_stop_is_kept_with_its_history(store: Store) -> None:
    assert await store.stop.get() is None
    assert not await is_stopped(store)
    on = await stop_all(store, now=NOW, user="olga", reason="báo động nhầm")
    assert await store.stop.get() == on and on.active and on.reason == "báo động nhầm"
    assert await is_stopped(store)
    off = await lift(store, now=NOW + dt.timedelta(minutes=5), user="carol")
    assert await store.stop.get() == off and not off.active
    assert await store.stop.history() == [off, on]
    assert await store.stop.history(1) == [off]


async def test_a_set_or_lift_wakes_whoever_watches_at_once(store: Store) -> None:
    mark, none = await store.stop.watch("", 5.0)  # the mark of now, at once
    assert none is None
    started = time.monotonic()
    assert await store.stop.watch(mark, 0.2) == (mark, None)  # nothing came: waited, answered
    assert time.monotonic() - started >= 0.15
    watching = asyncio.create_task(store.stop.watch(mark, 5.0))
    await asyncio.sleep(0.05)
    on = await stop_all(store, now=NOW, user="olga", reason="báo động nhầm")
    started = time.monotonic()
    seen, state = await watching
    assert state == on and seen != mark
    assert time.monotonic() - started < 1.0  # woken by the set, not by the 5 s timeout
    # a stop and its lift made while nobody watched: the newest is what counts
    again = await stop_all(store, now=NOW, user="olga", reason="lần hai")
    off = await lift(store, now=NOW + dt.timedelta(minutes=1), user="carol")
    newest, state = await store.stop.watch(seen, 5.0)
    assert state == off and state != again
    assert await store.stop.watch(newest, 0.05) == (newest, None)


async def test_a_stop_without_a_reason_is_refused(store: Store) -> None:
    with pytest.raises(Exception, match="reason: say why"):
        await stop_all(store, now=NOW, user="olga", reason="  ")
    assert await store.stop.get() is None


# -- the API --------------------------------------------------------------------------------------


@pytest.fixture
async def env(tmp_path: Path, plan: Plan, province: Province, numbering: Numbering,
              tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Env]:
    path = tmp_path_factory.mktemp("stop-api") / "audience.csv"
    audiencegen.generate(path, 50, seed=5, numbering=numbering, province=province)
    async for e in _env(tmp_path, plan, province, numbering, path, Settings()):
        yield e


async def test_the_api_stops_and_lifts_with_a_reason_and_audits_both(env: Env) -> None:
    c = env.client
    r = await c.get("/v1/stop", headers=auth("vic"))
    assert r.status_code == 200 and r.json()["active"] is False
    assert (await c.post("/v1/stop", json={"reason": "x"}, headers=auth("vic"))).status_code \
        == 403
    r = await c.post("/v1/stop", json={}, headers=auth("olga"))
    assert r.status_code == 400 and "reason" in r.json()["detail"]
    r = await c.post("/v1/stop", json={"reason": ""}, headers=auth("olga"))
    assert r.status_code == 400 and "reason" in r.json()["detail"]
    r = await c.post("/v1/stop", json={"reason": "tin nhắn sai"}, headers=auth("olga"))
    assert r.status_code == 200, r.text
    assert r.json()["active"] is True and r.json()["by"] == "olga"
    assert await is_stopped(env.services.store)
    r = await c.get("/v1/stop", headers=auth("vic"))
    assert r.json()["active"] is True and r.json()["reason"] == "tin nhắn sai"

    r = await c.request("DELETE", "/v1/stop", json={"reason": "đã sửa"}, headers=auth("carol"))
    assert r.status_code == 200 and r.json()["active"] is False
    assert not await is_stopped(env.services.store)
    r = await c.delete("/v1/stop", headers=auth("olga"))  # no body: lifted without a reason
    assert r.status_code == 200

    records = [(x.action, x.who, x.detail.get("reason"), x.outcome)
               for x in read_audit(env.audit)]
    assert ("stop", "olga", "tin nhắn sai", "ok") in records
    assert ("stop.lift", "carol", "đã sửa", "ok") in records


async def test_a_plan_campaign_is_paused_and_cancelled_through_the_api_with_a_reason(
        env: Env) -> None:
    store = env.services.store
    plan_campaign = Campaign(id="plan-L4-sms", title="Cấp độ IV", channels=[Channel.SMS],
                             texts={Channel.SMS: TEXT}, created_at=NOW, created_by="plan",
                             state=CampaignState.RUNNING, approved_by="plan", level=4)
    await store.campaigns.create(plan_campaign)
    await store.waves.create(Wave(id="L4-sms-x", campaign_id=plan_campaign.id,
                                  channel=Channel.SMS, text=TEXT, created_at=NOW,
                                  audience_version="v", level=4), WaveState.SENDING)
    c = env.client
    r = await c.post("/v1/campaigns/plan-L4-sms/pause", headers=auth("olga"))
    assert r.status_code == 400 and "reason" in r.json()["detail"]
    r = await c.post("/v1/campaigns/plan-L4-sms/pause", json={"reason": "sai chính tả"},
                     headers=auth("olga"))
    assert r.status_code == 200 and r.json()["state"] == "paused"
    assert r.json()["state_reason"] == "sai chính tả" and r.json()["state_by"] == "olga"
    r = await c.post("/v1/campaigns/plan-L4-sms/resume", headers=auth("olga"))
    assert r.status_code == 200 and r.json()["state"] == "running"
    r = await c.post("/v1/campaigns/plan-L4-sms/resume", headers=auth("olga"))
    assert r.status_code == 409 and "only a paused campaign" in r.json()["detail"]
    r = await c.post("/v1/campaigns/plan-L4-sms/cancel", json={"reason": "báo động nhầm"},
                     headers=auth("olga"))
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    assert await store.waves.states(["L4-sms-x"]) == {"L4-sms-x": WaveState.CANCELLED}
    actions = [(x.action, x.detail.get("reason")) for x in read_audit(env.audit)]
    assert ("campaign.cancel", "báo động nhầm") in actions


# -- the CLI --------------------------------------------------------------------------------------


def test_the_cli_stops_shows_and_lifts(capsys: pytest.CaptureFixture[str], redis_url: str,
                                       monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LOA_REDIS_URL", raising=False)
    monkeypatch.chdir(tmp_path)  # the audit log of --admin-direct (loa-audit.jsonl)
    assert main(["stop", "--redis", redis_url]) == 2
    assert "--reason" in capsys.readouterr().err
    assert main(["stop", "--reason", "tin sai", "--user", "olga", "--admin-direct", "--redis",
                 redis_url]) == 0
    assert "ON" in capsys.readouterr().out
    assert main(["stop", "--show", "--json", "--redis", redis_url]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["active"] is True and shown["stop"]["reason"] == "tin sai"
    assert main(["stop", "--lift", "--reason", "đã sửa", "--user", "olga", "--admin-direct",
                 "--redis",
                 redis_url]) == 0
    assert "lifted" in capsys.readouterr().out
    assert main(["stop", "--show", "--redis", redis_url]) == 0
    out = capsys.readouterr().out
    assert "off" in out and "tin sai" in out and "đã sửa" in out


# -- the ESME -------------------------------------------------------------------------------------


async def test_a_halted_submit_writes_nothing_after_its_window(smsc: Smsc) -> None:
    session = EsmeSession(BindConfig(host="127.0.0.1", port=smsc.port, system_id="loa",
                                     window=WINDOW, tps=TPS))
    await session.start()
    try:
        await asyncio.wait_for(session.bound.wait(), 5)
        template = pdu.SubmitTemplate(source_addr="Loa", source_addr_ton=5, source_addr_npi=0,
                                      esm_class=0, data_coding=0)
        items = [(i, f"8491{i:07d}", b"x") for i in range(300)]  # 2 s at 150/s
        abort = Abort()
        task = asyncio.create_task(session.submit(template, items, abort=abort))
        await asyncio.sleep(0.3)
        abort.halted = True
        written = session.stats.submitted
        statuses, _ = await task
        assert session.stats.submitted <= written + WINDOW
        assert statuses.count(HALTED_STATUS) >= 300 - written - WINDOW
        assert all(s in (0, HALTED_STATUS) for s in statuses)
    finally:
        await session.aclose()


async def test_an_urgent_submit_takes_the_window_before_routine_ones(smsc: Smsc) -> None:
    session = EsmeSession(BindConfig(host="127.0.0.1", port=smsc.port, system_id="loa",
                                     window=WINDOW, tps=TPS))
    await session.start()
    try:
        await asyncio.wait_for(session.bound.wait(), 5)
        template = pdu.SubmitTemplate(source_addr="Loa", source_addr_ton=5, source_addr_npi=0,
                                      esm_class=0, data_coding=0)
        urgent = pdu.SubmitTemplate(source_addr="Loa", source_addr_ton=5, source_addr_npi=0,
                                    esm_class=0, data_coding=0, priority_flag=1)
        routine = [asyncio.create_task(session.submit(
            template, [(i, f"8491{b}{i:06d}", b"r") for i in range(150)])) for b in range(3)]
        await asyncio.sleep(0.2)  # 450 routine messages queued at 150/s: 3 s of work
        before = session.stats.submitted
        statuses, _ = await session.submit(urgent, [(i, f"8498{i:07d}", b"u")
                                                    for i in range(30)], urgent=True)
        assert statuses == [0] * 30
        # while the urgent ones waited, no routine message took their place: at most what was
        # already waiting for the rate and the window got in between
        assert session.stats.submitted - before <= 30 + WINDOW
        assert not all(t.done() for t in routine)
        await asyncio.gather(*routine)
        assert smsc.stats.priority_parts == 30
    finally:
        await session.aclose()


# -- end to end: two workers over SMPP, on Redis --------------------------------------------------


async def _audience(store: Store, tmp_path: Path, numbering: Numbering, province: Province,
                    rows: int) -> Wave:
    path = tmp_path / "audience.csv"
    audiencegen.generate(path, rows, seed=9, numbering=numbering, province=province)
    await import_audience(path, store, Validator(numbering, province), chunk_size=128)
    meta = await store.audiences.meta()
    assert meta is not None
    wave = Wave(id="w-stop", campaign_id="c-stop", channel=Channel.SMS, text=TEXT,
                created_at=dt.datetime.now(dt.UTC), audience_version=meta.version,
                total=routing.reach(meta, Selector(), Channel.SMS), start_now=True)
    await store.campaigns.create(Campaign(id="c-stop", title="t", channels=[Channel.SMS],
                                          texts={Channel.SMS: TEXT}, created_at=wave.created_at,
                                          created_by="a", state=CampaignState.RUNNING))
    await store.waves.create(wave, WaveState.CREATED)
    return wave


class Worker:
    """An engine with its own SMPP binds, as a `loa worker` process would have."""

    def __init__(self, store: Store, plan: Plan, province: Province, numbering: Numbering,
                 smsc: Smsc, name: str, *, refresh: float = REFRESH) -> None:
        settings = Settings(engine=EngineSettings(batch_size=50, chunk_size=128,
                                                  state_refresh_seconds=refresh,
                                                  lease_seconds=3.0, consumers_per_route=2))
        self.sms = SmppAdapter({DEFAULT_LINK: LinkConfig(
            host="127.0.0.1", port=smsc.port, system_id="loa", binds=BINDS, window=WINDOW,
            tps=TPS)})
        adapters: dict[Channel, Adapter] = {Channel.SMS: self.sms}
        self.engine = Engine(store, plan, settings, province, adapters, numbering.carriers,
                             reconcile=False, name=name)
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(self.engine.run(self.stop))

    async def close(self) -> None:
        self.stop.set()
        await self.task
        await self.sms.aclose()


async def _parts_after(smsc: Smsc, seconds: float) -> int:
    await asyncio.sleep(seconds)
    return smsc.stats.parts


async def test_every_worker_obeys_the_stop_through_a_restart_and_the_lift_loses_nothing(
        redis_url: str, smsc: Smsc, tmp_path: Path, plan: Plan, numbering: Numbering,
        province: Province) -> None:
    store = RedisStore(redis_url)
    wave = await _audience(store, tmp_path, numbering, province, 3000)
    # the wave states are read every 5 s: the stop reaches the workers as it is made
    workers = [Worker(store, plan, province, numbering, smsc, f"w{i}", refresh=5.0)
               for i in range(2)]
    try:
        while smsc.stats.parts < 400:  # two workers, each 2 binds at 150/s: ~600/s
            await asyncio.sleep(0.02)
        await stop_all(store, now=dt.datetime.now(dt.UTC), user="olga", reason="test")
        at_stop = smsc.stats.parts
        # every worker halts at once: only what was on the wire still arrives
        settled = await _parts_after(smsc, 0.6)
        assert settled - at_stop <= 2 * BINDS * WINDOW
        assert await _parts_after(smsc, 1.0) == settled  # nothing more while it is on
        assert settled < wave.total

        # a worker restarted during the stop sends nothing either
        await workers[1].close()
        workers[1] = Worker(store, plan, province, numbering, smsc, "w1", refresh=5.0)
        assert await _parts_after(smsc, 1.0) == settled

        await lift(store, now=dt.datetime.now(dt.UTC), user="olga")
        deadline = time.monotonic() + 30
        while (await store.waves.states([wave.id])).get(wave.id) is not WaveState.COMPLETED:
            assert time.monotonic() < deadline, await wave_progress(store, wave)
            await asyncio.sleep(0.1)
    finally:
        for worker in workers:
            await worker.close()
        await store.aclose()
    p = await wave_progress(RedisStore(redis_url), wave)
    assert p.sent == wave.total and p.failed == p.expired == 0
    assert smsc.stats.messages == wave.total  # every number once: nothing lost, no duplicate
    assert smsc.stats.duplicates == 0 and len(smsc.received) == wave.total
