"""The ESME against a hostile SMSC: the simulator's hostile mode sends, between its answers,
unknown commands, truncated PDUs, command_lengths no PDU has (short, or 0x7FFFFFFF) and receipts
for message ids it never gave. A wave still reaches every recipient exactly once, and every
hostile PDU is answered or survived and counted."""

from __future__ import annotations

import asyncio
import datetime as dt
import struct
import tracemalloc
from pathlib import Path

import msgspec
import pytest
from prometheus_client import REGISTRY

from adapters.smpp import pdu
from adapters.smpp.adapter import DEFAULT_LINK, LinkConfig, SmppAdapter
from adapters.smpp.session import BindConfig, EsmeSession
from adapters.smpp.simulator import HOSTILE_KINDS, Smsc, SmscConfig
from bench import audiencegen
from bench.cli.sim import _config
from dispatcher.domain.audience import Validator
from dispatcher.domain.errors import InputError
from dispatcher.domain.model import Campaign, CampaignState, Channel, Selector, Wave, WaveState
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.engine import routing
from dispatcher.engine.importer import import_audience
from dispatcher.engine.process import Engine, wave_progress
from dispatcher.engine.receipts import ReceiptMatcher
from dispatcher.service.cli import build_parser
from dispatcher.service.settings import EngineSettings, RetrySettings, Settings
from dispatcher.store import MemoryStore, RedisStore, Store
from tests.conftest import run_engine_until

TEXT = "Deo khau trang, rua tay"
SETTINGS = Settings(engine=EngineSettings(batch_size=100, chunk_size=128, lease_seconds=2.0,
                                          state_refresh_seconds=0.1),
                    retry=RetrySettings(max_attempts=10, base_seconds=0.05, max_seconds=0.2))


def metric(name: str, link: str = DEFAULT_LINK) -> float:
    return REGISTRY.get_sample_value(name, {"link": link}) or 0.0


async def wait_for(condition: object, timeout: float = 10.0) -> None:
    async def poll() -> None:
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.02)
    await asyncio.wait_for(poll(), timeout)


async def hostile_wave(store: Store, tmp_path: Path, plan: Plan, numbering: Numbering,
                       province: Province, rows: int, every: int) -> None:
    """A wave of ``rows`` subscribers through the engine and the real SMPP adapter (two
    transceiver binds) against a simulator sending every hostile kind, one per ``every``
    submits; checks exactly-once delivery and every counter against what was injected."""
    smsc = Smsc(SmscConfig(hostile=frozenset(HOSTILE_KINDS), hostile_every=every, seed=5))
    await smsc.start()
    path = tmp_path / "audience.csv"
    audiencegen.generate(path, rows, seed=4, numbering=numbering, province=province)
    await import_audience(path, store, Validator(numbering, province), chunk_size=128)
    meta = await store.audiences.meta()
    assert meta is not None
    wave = Wave(id="w-hostile", campaign_id="c", channel=Channel.SMS, text=TEXT,
                created_at=dt.datetime.now(dt.UTC), audience_version=meta.version,
                total=routing.reach(meta, Selector(), Channel.SMS), start_now=True)
    matcher = ReceiptMatcher(store, hold_seconds=1.0, interval=0.05)
    sms = SmppAdapter({DEFAULT_LINK: LinkConfig(host="127.0.0.1", port=smsc.port,
                                                system_id="loa", binds=2, window=16,
                                                response_timeout=2.0, bind_wait=5.0)},
                      on_receipt=matcher.add)
    engine = Engine(store, plan, SETTINGS, province, {Channel.SMS: sms}, numbering.carriers,
                    reconcile=False, receipts=matcher)
    await store.waves.create(wave, WaveState.CREATED)
    await store.campaigns.create(Campaign(id="c", title="t", channels=[Channel.SMS],
                                          texts={Channel.SMS: TEXT}, created_at=wave.created_at,
                                          created_by="a", state=CampaignState.RUNNING))
    sessions = sms.links[DEFAULT_LINK].all_sessions
    s = smsc.stats

    def total(field: str) -> int:
        return sum(getattr(session.stats, field) for session in sessions)

    def all_counted() -> bool:
        return (total("unknown_commands") == s.hostile_unknown_commands
                and total("oversized") == s.hostile_oversized
                and total("malformed") == s.hostile_truncated + s.hostile_bad_lengths
                and s.hostile_answered == s.hostile_unknown_commands + s.hostile_truncated)

    async def done() -> bool:
        p = await wave_progress(store, wave)
        return (p.sent == wave.total and p.delivered == wave.total
                and matcher.stats.unmatched == s.hostile_unknown_receipts and all_counted())

    try:
        await run_engine_until(engine, done, timeout=60)
        p = await wave_progress(store, wave)
        assert p.failed == 0 and p.expired == 0
        # every recipient exactly once, although binds were cut while submits were in flight
        assert s.messages == wave.total == len(smsc.received)
        assert all(n == 1 for n in smsc.received.values()) and s.duplicates == 0
        # every kind was sent, more than once, interleaved with the wave
        assert min(s.hostile_unknown_commands, s.hostile_truncated, s.hostile_bad_lengths,
                   s.hostile_oversized, s.hostile_unknown_receipts) >= 2
        assert s.nacks_received == s.hostile_unknown_commands  # each answered generic_nack
        assert total("receipts_malformed") == s.hostile_truncated
        # a broken stream is the ESME's to close: the simulator hung up on nobody
        assert s.disconnects == 0
        # submits written after a break were neither delivered nor answered: lost, sent again
        assert total("lost") > 0
        # the receipts before a break were acknowledged before the ESME hung up
        assert s.receipts_requeued == 0 and s.receipts_acked == s.receipts_sent
        assert total("reconnects") >= s.hostile_bad_lengths + s.hostile_oversized
        # receipts for ids never given are passed on, then unmatched after the hold
        assert total("receipts") == wave.total + s.hostile_unknown_receipts
        assert matcher.stats.matched == wave.total
        assert matcher.stats.unmatched == s.hostile_unknown_receipts
        assert metric("loa_smpp_unknown_commands_total") == s.hostile_unknown_commands
        assert metric("loa_smpp_oversized_total") == s.hostile_oversized
        assert metric("loa_smpp_malformed_total") == s.hostile_truncated + s.hostile_bad_lengths
    finally:
        await sms.aclose()
        await smsc.stop()
    assert metric("loa_smpp_malformed_total") == 0  # a closed adapter is no longer reported


async def test_a_wave_survives_a_hostile_smsc_and_is_delivered_exactly_once(
        tmp_path: Path, plan: Plan, numbering: Numbering, province: Province) -> None:
    store = MemoryStore()
    try:
        await hostile_wave(store, tmp_path, plan, numbering, province, rows=500, every=25)
    finally:
        await store.aclose()


@pytest.mark.slow
async def test_a_large_wave_survives_a_hostile_smsc_on_redis(
        redis_url: str, tmp_path: Path, plan: Plan, numbering: Numbering,
        province: Province) -> None:
    store = RedisStore(redis_url)
    try:
        await hostile_wave(store, tmp_path, plan, numbering, province, rows=5000, every=40)
    finally:
        await store.aclose()


# -- one kind at a time, one bind ------------------------------------------------------------------

TEMPLATE = pdu.SubmitTemplate(source_addr="LOA", source_addr_ton=5, source_addr_npi=0,
                              esm_class=0, data_coding=0, registered_delivery=1)


@pytest.mark.parametrize("kind", HOSTILE_KINDS)
async def test_each_hostile_kind_is_survived_and_counted(kind: str) -> None:
    smsc = Smsc(SmscConfig(hostile=frozenset({kind}), hostile_every=5))
    await smsc.start()
    receipts: list[str] = []
    session = EsmeSession(BindConfig(host="127.0.0.1", port=smsc.port, system_id="loa",
                                     window=8, response_timeout=2.0, reconnect_min=0.05),
                          on_receipt=lambda rs: receipts.extend(r.message_id for r in rs))
    await session.start()
    try:
        await asyncio.wait_for(session.bound.wait(), 5)
        todo = [f"8491200{i:04d}" for i in range(20)]
        for _ in range(20):  # send again what a cut connection lost, as the engine would
            await asyncio.wait_for(session.bound.wait(), 5)
            statuses, _ = await asyncio.wait_for(
                session.submit(TEMPLATE, [(k, d, b"hi") for k, d in enumerate(todo)]), 10)
            todo = [d for d, status in zip(todo, statuses, strict=True) if status != 0]
            if not todo:
                break
        assert todo == []
        assert all(smsc.received[f"8491200{i:04d}"] == 1 for i in range(20))
        s = smsc.stats
        stats = session.stats
        await wait_for(lambda: len(receipts) == 20 + s.hostile_unknown_receipts)
        if kind == "unknown_command":
            await wait_for(lambda: s.hostile_answered == s.hostile_unknown_commands == 4)
            assert stats.unknown_commands == 4 and s.nacks_received == 4
        elif kind == "truncated":
            await wait_for(lambda: s.hostile_answered == s.hostile_truncated == 4)
            assert stats.malformed == stats.receipts_malformed == 4
        elif kind == "unknown_receipt":
            assert s.hostile_unknown_receipts == 4
            assert sorted(receipts)[-4:] == [f"x{n:09d}" for n in range(1, 5)]
        else:
            counted = stats.oversized if kind == "oversized" else stats.malformed
            injected = s.hostile_oversized if kind == "oversized" else s.hostile_bad_lengths
            assert counted == injected >= 1
            assert stats.reconnects >= injected and s.disconnects == 0
            assert stats.lost == stats.submitted - 20  # lost, then sent again
        assert session.is_bound or kind in ("bad_length", "oversized")
    finally:
        await session.aclose()
        await smsc.stop()


async def test_an_oversized_length_is_refused_without_allocating_it() -> None:
    """A command_length of 0x7FFFFFFF: the ESME closes the connection on the header alone,
    holding no more than what it read, and binds again."""
    binds = 0

    async def smsc_side(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal binds
        framer = pdu.Framer()
        while data := await reader.read(4096):
            for cid, _, seq, _ in framer.frames(data):
                if cid == pdu.BIND_TRANSCEIVER:
                    binds += 1
                    writer.write(pdu.encode_bind_resp(cid, seq, "evil"))
                    if binds == 1:
                        writer.write(struct.pack(">IIII", 0x7FFFFFFF, pdu.DELIVER_SM, 0, 1)
                                     + b"\0" * 4000)
                elif cid == pdu.UNBIND:
                    writer.write(pdu.encode(pdu.UNBIND | pdu.RESP, seq))
        writer.close()

    server = await asyncio.start_server(smsc_side, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    session = EsmeSession(BindConfig(host="127.0.0.1", port=port, system_id="loa",
                                     reconnect_min=0.05))
    tracemalloc.start()
    try:
        await session.start()
        await wait_for(lambda: binds == 2 and session.is_bound)
        _, peak = tracemalloc.get_traced_memory()
        assert peak < 16 << 20  # far from the 2 GiB claimed
        assert session.stats.oversized == 1 and session.stats.reconnects == 1
    finally:
        tracemalloc.stop()
        await session.aclose()
        server.close()
        await server.wait_closed()


# -- the command line ------------------------------------------------------------------------------


def test_loa_sim_smsc_hostile_flag() -> None:
    def config(*argv: str) -> SmscConfig:
        return _config(build_parser().parse_args(["sim", "smsc", *argv]))

    assert config().hostile == frozenset()
    assert config("--hostile").hostile == frozenset(HOSTILE_KINDS)
    chosen = config("--hostile", "unknown-command,oversized", "--hostile-every", "7")
    assert chosen.hostile == {"unknown_command", "oversized"} and chosen.hostile_every == 7
    with pytest.raises(InputError, match="unknown kind"):
        config("--hostile", "teapot")
    with pytest.raises(InputError, match="hostile_every"):
        config("--hostile", "--hostile-every", "0")
    assert msgspec.structs.asdict(Smsc(config("--hostile")).stats)["hostile_oversized"] == 0
