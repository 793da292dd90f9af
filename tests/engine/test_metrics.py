"""The metrics: counters move by exactly a wave's outcomes, gauges read the store and the channels,
and no label ever carries a number or an id."""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
import re
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY, generate_latest

import adapters
import dispatcher
from adapters import metrics as adapter_metrics
from adapters.base import Adapter, Results
from adapters.cellbroadcast import metrics as cellbroadcast_metrics
from adapters.memory import MemoryAdapter
from adapters.smpp.adapter import LinkConfig, SmppAdapter
from adapters.smpp.simulator import Smsc
from adapters.zalo.tokens import Issued
from bench import audiencegen
from dispatcher.domain import incoming, outlet, wifi
from dispatcher.domain.audience import Validator
from dispatcher.domain.broadcast import Reason, State
from dispatcher.domain.cap import MsgType
from dispatcher.domain.model import CampaignState, Channel, LevelState, Priority, WaveState
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.engine import metrics, routing
from dispatcher.engine.campaigns import wave_id
from dispatcher.engine.importer import import_audience
from dispatcher.engine.process import Engine, wave_progress
from dispatcher.engine.receipts import ReceiptMatcher
from dispatcher.engine.wifi import SUPERSEDED
from dispatcher.service.settings import EngineSettings, RetrySettings, Settings
from dispatcher.store import MemoryStore, Store
from dispatcher.store.base import Completion, Entry
from tests.conftest import run_engine_until

ROWS = 1500
SETTINGS = Settings(
    retry=RetrySettings(max_attempts=3, base_seconds=0.02, max_seconds=0.1, jitter=0.1),
    engine=EngineSettings(batch_size=100, chunk_size=128, lease_seconds=1.0,
                          reconcile_seconds=0.2),
    rates={"zalo": 100_000.0},  # a throttled route: its waits are counted
)
PHONE = re.compile(r"84\d{9}")


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    """Counters are process-wide: one store implementation is enough here."""
    opened = MemoryStore()
    try:
        yield opened
    finally:
        await opened.aclose()


def total(name: str, **labels: str) -> float:
    """The sum of a sample over every label set that has ``labels``."""
    found = 0.0
    for family in REGISTRY.collect():
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v
                                           for k, v in labels.items()):
                found += sample.value
    return found


def snapshot() -> dict[tuple[str, str, str], float]:
    return {(ch.value, result, name): total(name, channel=ch.value, result=result)
            for ch in (Channel.SMS, Channel.ZALO) for result in metrics.RESULTS
            for name in ("loa_messages_total",)}


def delta(before: dict[tuple[str, str, str], float], channel: Channel) -> dict[str, float]:
    after = snapshot()
    return {result: after[(channel.value, result, "loa_messages_total")]
            - before[(channel.value, result, "loa_messages_total")]
            for result in metrics.RESULTS
            if after[(channel.value, result, "loa_messages_total")]
            != before[(channel.value, result, "loa_messages_total")]}


async def import_rows(store: Store, tmp_path: Path, numbering: Numbering,
                      province: Province) -> None:
    path = tmp_path / "audience.csv"
    audiencegen.generate(path, ROWS, seed=5, numbering=numbering, province=province)
    await import_audience(path, store, Validator(numbering, province), chunk_size=128)


async def test_a_campaign_moves_the_counters_by_exactly_its_outcomes(
        store: Store, tmp_path: Path, plan: Plan, province: Province,
        numbering: Numbering) -> None:
    await import_rows(store, tmp_path, numbering, province)
    engine = Engine(store, plan, SETTINGS, province, {}, numbering.carriers)  # for campaigns
    campaign = await engine.campaigns.create(
        title="t", channels=[Channel.SMS, Channel.ZALO],
        texts={Channel.SMS: "Deo khau trang", Channel.ZALO: "Đeo khẩu trang"},
        created_by="alice", now=engine.clock(), priority=Priority.URGENT)
    # recipients' addresses, to pick a few that fail or retry
    meta = await store.audiences.meta()
    assert meta is not None
    chunks = await store.audiences.chunks(meta.version, [n for g in meta.groups for n in g.chunks])
    people = [r for c in chunks for r in c.recipients]
    sms_addrs = [a for r in people if (a := routing.address(Channel.SMS, r)) is not None]
    zalo_addrs = [a for r in people if (a := routing.address(Channel.ZALO, r)) is not None]
    fail = frozenset(sms_addrs[10:17])  # 7 permanent failures
    retry = frozenset(zalo_addrs[3:8])  # 5 that retry until their attempts run out
    sms, zalo = MemoryAdapter(fail_addrs=fail), MemoryAdapter(retry_addrs=retry)
    engine = Engine(store, plan, SETTINGS, province,
                    dict[Channel, Adapter]({Channel.SMS: sms, Channel.ZALO: zalo}),
                    numbering.carriers)
    before = snapshot()
    batches_before = total("loa_batch_seconds_count")
    throttle_before = total("loa_throttle_wait_seconds_total", route="zalo")

    async def completed() -> bool:
        c = await store.campaigns.get(campaign.id)
        return c is not None and c.state is CampaignState.COMPLETED

    await run_engine_until(engine, completed)
    sms_wave = await store.waves.get(wave_id(campaign.id, Channel.SMS))
    zalo_wave = await store.waves.get(wave_id(campaign.id, Channel.ZALO))
    assert sms_wave is not None and zalo_wave is not None

    attempts = SETTINGS.retry.max_attempts
    assert delta(before, Channel.SMS) == {"sent": len(sms_addrs) - 7, "failed": 7}
    assert delta(before, Channel.ZALO) == {"sent": len(zalo_addrs) - 5,
                                           "retry": 5 * (attempts - 1), "expired": 5}
    # one observation per adapter call, not per message
    assert total("loa_batch_seconds_count") - batches_before == sms.batches + zalo.batches
    assert total("loa_throttle_wait_seconds_total", route="zalo") >= throttle_before
    # the per-route split adds up to the progress the store keeps
    for wave in (sms_wave, zalo_wave):
        p = await wave_progress(store, wave)
        assert p.sent == sms.messages if wave is sms_wave else zalo.messages

    # the collector: one pass, on demand (the engine runs it every few seconds)
    await store.level.set(LevelState(level=3, at=engine.clock()))
    await engine.collector.collect()
    assert total("loa_dead_letters", route="zalo") == 5
    assert sum(total("loa_dead_letters", route=r)
               for r in routing.routes(Channel.SMS, numbering.carriers, SETTINGS)) == 7
    assert total("loa_queue_retries") == 0
    assert total("loa_level") == 3
    assert total("loa_waves", state="completed") == 2
    assert total("loa_wave_messages") == 0  # no live wave is left

    labels = " ".join(re.findall(r"\{[^}]*\}", generate_latest(REGISTRY).decode()))
    assert "loa_messages_total" in generate_latest(REGISTRY).decode()
    assert not PHONE.search(labels), "a phone number in a label"
    assert campaign.id not in labels and sms_wave.id not in labels


async def test_the_collector_reports_live_waves(
        store: Store, tmp_path: Path, plan: Plan, province: Province,
        numbering: Numbering) -> None:
    await import_rows(store, tmp_path, numbering, province)
    engine = Engine(store, plan, SETTINGS, province, {}, numbering.carriers)
    campaign = await engine.campaigns.create(
        title="t", channels=[Channel.SMS], texts={Channel.SMS: "x"}, created_by="alice",
        now=engine.clock(), priority=Priority.URGENT)
    await engine.campaigns.start(campaign.id, engine.clock())
    wave = await store.waves.get(wave_id(campaign.id, Channel.SMS))
    assert wave is not None
    await engine.collector.collect()
    assert total("loa_wave_messages", channel="sms", state="total") == wave.total > 0
    assert total("loa_wave_messages", channel="sms", state="queued") == wave.total
    assert total("loa_waves", state="created") == 1
    await store.waves.set_state(wave.id, WaveState.CANCELLED)
    await engine.collector.collect()
    assert total("loa_wave_messages", channel="sms", state="total") == 0


async def test_a_failing_collection_is_counted_and_does_not_stop_the_engine(
        monkeypatch: pytest.MonkeyPatch) -> None:
    broken = MemoryStore()

    async def depth(route: str) -> tuple[int, int, int]:
        raise RuntimeError("no store")

    monkeypatch.setattr(broken.queue, "depth", depth)
    collector = metrics.Collector(broken, ["sms.x"], wave_progress, interval=0.01)
    before = total("loa_collector_errors_total")
    stop = asyncio.Event()
    task = asyncio.create_task(collector.run(stop))
    await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 2)
    assert total("loa_collector_errors_total") > before


async def test_receipts_are_counted_matched_and_unmatched(store: Store) -> None:
    class R:
        def __init__(self, message_id: str, state: str) -> None:
            self.message_id, self.state = message_id, state

    matched, unmatched = (total("loa_receipts_total", result=r) for r in ("matched", "unmatched"))
    matcher = ReceiptMatcher(store, hold_seconds=0.0)
    await store.queue.enqueue("sms.x", "w", 0, [])
    await store.queue.complete("sms.x", Entry("0-1"), Completion(remote={"a": ("w", 1, 0),
                                                                  "b": ("w", 2, 0)}))
    matcher.add([R("a", "DELIVRD"), R("b", "UNDELIV"), R("zz", "DELIVRD"), R("c", "ENROUTE")])
    await matcher.match_now()
    assert total("loa_receipts_total", result="matched") - matched == 2
    assert total("loa_receipts_total", result="unmatched") - unmatched == 1


async def test_smpp_links_are_read_at_scrape_time(smsc: Smsc) -> None:
    link = LinkConfig(host="127.0.0.1", port=smsc.port, system_id="loa", binds=2, tps=500)
    sms = SmppAdapter({"viettel": link})
    await sms.start()
    try:
        for _ in range(100):
            if total("loa_smpp_bind_up", link="viettel") == 2:
                break
            await asyncio.sleep(0.02)
        assert total("loa_smpp_bind_up", link="viettel") == 2
        assert total("loa_smpp_binds", link="viettel") == 2
        assert total("loa_smpp_tps", link="viettel") == 1000
        assert total("loa_smpp_window_in_flight", link="viettel") == 0
        assert total("loa_smpp_reconnects_total", link="viettel") == 0
    finally:
        await sms.aclose()
    assert total("loa_smpp_binds", link="viettel") == 0  # closed: no longer reported


def present(name: str, **labels: str) -> bool:
    return REGISTRY.get_sample_value(name, labels) is not None


async def test_a_worker_holding_none_of_a_links_binds_reports_none_up_and_the_grant() -> None:
    """Leased binds: this worker holds no slot of ``mobifone`` (another worker may hold them
    all). It reports 0 binds up and open, present so that the sum over workers exists (the
    link-down alert sums it), and the binds the carrier granted, the same in every worker."""
    link = LinkConfig(host="127.0.0.1", port=1, system_id="loa", binds=3)
    sms = SmppAdapter({"mobifone": link}, leased=True)
    await sms.start()
    try:
        assert present("loa_smpp_bind_up", link="mobifone")
        assert total("loa_smpp_bind_up", link="mobifone") == 0
        assert total("loa_smpp_binds", link="mobifone") == 0
        assert total("loa_smpp_binds_granted", link="mobifone") == 3
    finally:
        await sms.aclose()
    assert not present("loa_smpp_binds_granted", link="mobifone")


def test_zalo_quota_is_read_at_scrape_time() -> None:
    class Tokens:
        issued = Issued(time.time() - 7200, 90000)
        failures = 3

    class Schedule:
        failing = True

    class Zalo:
        remaining_quota: int | None = 1234
        paused_until = time.time() + 60
        pause_kind = "balance"
        alert = "balance"
        tokens = Tokens()
        schedule = Schedule()

    zalo = Zalo()
    adapter_metrics.track_zalo(zalo)
    try:
        assert total("loa_zalo_remaining_quota") == 1234
        assert total("loa_zalo_paused") == 1
        assert total("loa_zalo_route_paused", reason="balance") == 1
        assert total("loa_zalo_route_paused", reason="quota") == 0
        # between two tries of the stopped route (its pause ran out, the next try not yet
        # answered) the alert stays: it ends when Zalo accepts a message again
        zalo.paused_until, zalo.pause_kind = 0.0, ""
        assert total("loa_zalo_route_paused", reason="balance") == 1
        zalo.alert = ""
        assert total("loa_zalo_route_paused", reason="balance") == 0
        assert 7200 <= total("loa_zalo_refresh_token_age_seconds") < 7200 + 600
        assert 7200 <= total("loa_zalo_access_token_age_seconds") < 7200 + 600
        assert total("loa_zalo_token_refresh_failures_total") == 3
        assert total("loa_zalo_token_renewal_failing") == 1
    finally:
        adapter_metrics.untrack_zalo(zalo)


def test_labels_stay_in_bounded_sets() -> None:
    allowed = {
        "channel": {c.value for c in Channel},
        "result": set(metrics.RESULTS) | {"matched", "unmatched", "malformed"},
        "state": {s.value for s in WaveState} | set(metrics.WAVE_FIELDS),
        "simulated": {"true", "false"},
        "kind": set(incoming.KINDS) | {incoming.DATA_SM_RECEIPT},
        "reason": {"missing", "unknown", "expired", "limited"}
        | set(adapter_metrics.ZALO_PAUSE_REASONS) | set(adapter_metrics.FACEBOOK_ALERT_REASONS)
        | set(adapter_metrics.LOUDSPEAKER_ALERT_REASONS) | set(cellbroadcast_metrics.ALERT_REASONS)
        | {r.value for r in Reason}  # why a cell broadcast was withdrawn
        | set(adapter_metrics.PORTAL_PAUSE_REASONS) | set(metrics.TEXT_DEGRADED_REASONS),
        "origin": {"level", "campaign", "wave"},  # CAP messages
        "msg_type": {m.value for m in MsgType},
        "data": set(metrics.RETENTION_DATA),  # what the retention pass removes
    }
    for family in REGISTRY.collect():
        if not family.name.startswith("loa_"):
            continue
        for sample in family.samples:
            for key, value in sample.labels.items():
                assert not PHONE.search(value), (sample.name, key, value)
                if key in allowed:
                    assert value in allowed[key], (sample.name, key, value)
                elif key == "route":
                    others = "|".join(c.value for c in Channel if c is not Channel.SMS)
                    assert re.fullmatch(rf"(sms(\.[a-z0-9_]+)?|{others})", value), value
                elif key == "status" and sample.name.startswith("loa_cell_broadcast"):
                    assert value in {st.value for st in State}, value  # a broadcast's state
                elif key == "carrier":  # a configured carrier's id in [cell_broadcast]
                    assert outlet.ID.fullmatch(value), value
                elif key == "status":
                    assert re.fullmatch(r"[1-5][0-9][0-9]", value), value
                elif key == "system":  # a loudspeaker system's id in the settings
                    assert re.fullmatch(r"[a-z0-9][a-z0-9_.-]{0,63}", value), value
                elif key == "link":
                    assert re.fullmatch(r"[A-Za-z0-9_-]+", value), value
                elif key in ("page", "site"):  # a configured Facebook page's, portal site's id
                    assert outlet.ID.fullmatch(value), value
                elif key == "controller":  # a configured Wi-Fi controller's id
                    assert wifi.CONTROLLER_ID.fullmatch(value), value
                elif key == "outcome":  # a Wi-Fi push's
                    assert value in {o.value for o in wifi.PushOutcome} | {SUPERSEDED}, value
                else:
                    assert key == "le", (sample.name, key)  # histogram buckets


#: Every label name the test above checks the values of.
CHECKED = {"channel", "result", "state", "simulated", "kind", "reason", "origin", "msg_type",
           "data", "route", "status", "carrier", "system", "link", "page", "site",
           "controller", "outcome", "le"}


def test_every_label_of_loa_s_metrics_is_checked() -> None:
    """A metric with a label the test above does not know fails here, whatever ran before (the
    test above sees only the samples that exist in this process)."""
    for module in pkgutil.walk_packages(dispatcher.__path__, "dispatcher."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    for module in pkgutil.walk_packages(adapters.__path__, "adapters."):
        importlib.import_module(module.name)
    names = {name for collector in list(REGISTRY._names_to_collectors.values())
             if getattr(collector, "_name", "").startswith("loa_")
             for name in getattr(collector, "_labelnames", ())}
    assert names and names <= CHECKED, names - CHECKED


def test_the_hot_path_costs_microseconds_per_batch() -> None:
    """What a worker adds per batch: one count, one observe, one throttle inc."""
    m = metrics.for_route("sms.bench")
    results = Results(sent=list(range(480)), retry=[(k, "x") for k in range(10)],
                      failed=[(k, "y") for k in range(10)])
    n = 20_000
    start = time.perf_counter()
    for _ in range(n):
        t = time.perf_counter()
        m.throttle.inc(time.perf_counter() - t)
        m.batch.observe(time.perf_counter() - t)
        m.count(results, 2)
    per_batch = (time.perf_counter() - start) / n * 1e6
    print(f"metrics per batch: {per_batch:.2f} µs")
    assert per_batch < 50  # a few µs here; the bound only catches a per-message regression


def test_a_worker_without_the_api_serves_its_metrics() -> None:
    server = metrics.serve(0, "127.0.0.1")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as r:
            body = r.read().decode()
    finally:
        server.close()
    assert "# TYPE loa_messages_total counter" in body
    body_, content_type = metrics.exposition()
    assert b"loa_level" in body_ and content_type.startswith("text/plain")
