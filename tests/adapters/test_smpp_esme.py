"""The ESME against the project's SMSC simulator over loopback: binds, window, throttling,
receipts, multi-part texts, disconnects, and nothing lost."""

from __future__ import annotations

import asyncio

import pytest

from adapters.base import Envelope
from adapters.smpp import pdu
from adapters.smpp.adapter import LinkConfig, SmppAdapter
from adapters.smpp.receipt import Receipt
from adapters.smpp.session import BindConfig, EsmeSession
from adapters.smpp.simulator import Smsc
from dispatcher.domain.errors import ChannelError
from dispatcher.domain.model import Channel
from tests.conftest import VIETNAMESE


def link(smsc: Smsc, **changes: object) -> LinkConfig:
    base: dict[str, object] = {"host": "127.0.0.1", "port": smsc.port, "system_id": "loa",
                               "password": "pw", "window": 16, "response_timeout": 2.0,
                               "bind_wait": 2.0}
    base.update(changes)
    return LinkConfig(**base)  # type: ignore[arg-type]


def numbers(n: int, start: int = 0) -> list[str]:
    return [f"8491{i:07d}" for i in range(start, start + n)]


def envelope(addrs: list[str], text: str = "Deo khau trang",
             route: str = "sms.viettel") -> Envelope:
    return Envelope(wave="w1", channel=Channel.SMS, text=text, addrs=addrs, route=route)


async def wait_for(condition: object, timeout: float = 10.0) -> None:
    async def poll() -> None:
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.02)
    await asyncio.wait_for(poll(), timeout)


async def test_send_a_batch_exactly_once_with_receipts(smsc: Smsc) -> None:
    receipts: list[Receipt] = []
    adapter = SmppAdapter({"default": link(smsc, binds=2)}, on_receipt=receipts.extend)
    try:
        addrs = numbers(300)
        results = await adapter.send(envelope(addrs))
        assert sorted(results.sent) == list(range(300))
        assert results.retry == [] and results.failed == []
        assert results.receipts is True
        assert len(set(results.remote_ids)) == 300
        assert all(smsc.received[a] == 1 for a in addrs)
        await wait_for(lambda: len(receipts) == 300)
        assert {r.message_id for r in receipts} == set(results.remote_ids)
        assert all(r.delivered for r in receipts)
        assert sum(s.stats.submitted for s in adapter.links["default"].sessions) == 300
        assert all(s.stats.submitted > 0 for s in adapter.links["default"].sessions)
    finally:
        await adapter.aclose()
    assert smsc.stats.unbinds == 2  # a clean unbind on close


async def test_multipart_vietnamese_is_reassembled_at_the_smsc(smsc: Smsc) -> None:
    adapter = SmppAdapter({"default": link(smsc)})
    try:
        addrs = numbers(20)
        results = await adapter.send(envelope(addrs, VIETNAMESE))
        assert len(results.sent) == 20
        assert all(len(r.split(",")) == 2 for r in results.remote_ids)  # two UCS-2 parts
        assert smsc.stats.parts == 40 and smsc.stats.messages == 20
        for a in addrs:
            assert smsc.received[a] == 1
            assert smsc.texts[a] == [VIETNAMESE]
    finally:
        await adapter.aclose()


async def test_permanent_and_transient_statuses_map_by_table(smsc: Smsc) -> None:
    bad, busy = "84910000001", "84910000002"
    smsc.set_config(error_destinations={bad: 0x0B, busy: 0x08})
    adapter = SmppAdapter({"default": link(smsc)})
    try:
        results = await adapter.send(envelope(["84910000000", bad, busy]))
        assert results.sent == [0]
        assert results.failed == [(1, "ESME_RINVDSTADR (0x0000000B)")]
        assert results.retry == [(2, "ESME_RSYSERR (0x00000008)")]
    finally:
        await adapter.aclose()


async def test_throttled_answers_slow_the_bind_and_are_requeued(smsc: Smsc) -> None:
    smsc.set_config(tps_per_bind=50)
    adapter = SmppAdapter({"default": link(smsc, window=64)})
    try:
        results = await adapter.send(envelope(numbers(200)))
        assert results.requeue and not results.retry, "the SMSC answered 0x58 above its cap"
        assert all("ESME_RTHROTTLED" in reason for _, reason in results.requeue)
        session = adapter.links["default"].sessions[0]
        assert session.rate.decreases >= 1 and session.rate.rate > 0
        assert adapter.stats.throttled == len(results.requeue)
        # What was not accepted is accepted later, at the slower rate: everything once.
        pending = [numbers(200)[i] for i, _ in results.requeue]
        for _ in range(20):
            if not pending:
                break
            again = await adapter.send(envelope(pending))
            pending = [pending[i] for i, _ in again.requeue]
        assert pending == []
        assert all(smsc.received[a] == 1 for a in numbers(200))
    finally:
        await adapter.aclose()


async def test_window_bounds_unanswered_submits(smsc: Smsc) -> None:
    smsc.set_config(response_delay=0.05, window_limit=8)
    adapter = SmppAdapter({"default": link(smsc, window=8)})
    try:
        results = await adapter.send(envelope(numbers(64)))
        assert len(results.sent) == 64
        assert smsc.stats.window_abuse == 0
    finally:
        await adapter.aclose()


async def test_no_response_is_a_retry_and_a_possible_duplicate(smsc: Smsc) -> None:
    silent = "84910000005"
    smsc.set_config(no_response_destinations=frozenset({silent}))
    adapter = SmppAdapter({"default": link(smsc, response_timeout=0.5)})
    try:
        results = await adapter.send(envelope(["84910000004", silent]))
        assert results.sent == [0]
        assert results.retry == [(1, "no submit_sm_resp in time")]
        assert adapter.stats.possible_duplicates == 1
    finally:
        await adapter.aclose()


async def test_a_link_that_stays_down_raises_a_retryable_error(smsc: Smsc) -> None:
    smsc.set_config(refuse_binds=True)
    adapter = SmppAdapter({"default": link(smsc, bind_wait=0.5)})
    try:
        with pytest.raises(ChannelError) as info:
            await adapter.send(envelope(numbers(3)))
        assert info.value.retryable
        assert "down" in str(info.value)
    finally:
        await adapter.aclose()


async def test_wrong_password_is_refused_for_good(smsc: Smsc) -> None:
    smsc.set_config(credentials={"loa": "right"})
    adapter = SmppAdapter({"default": link(smsc, password="wrong", bind_wait=1.0)})
    try:
        with pytest.raises(ChannelError, match="bind refused"):
            await adapter.send(envelope(numbers(1)))
    finally:
        await adapter.aclose()


async def test_disconnect_mid_batch_loses_nothing_and_rebinds(smsc: Smsc) -> None:
    smsc.set_config(disconnect_after=40)
    adapter = SmppAdapter({"default": link(smsc)})
    try:
        addrs = numbers(100)
        pending = list(addrs)
        rounds = 0
        while pending and rounds < 30:
            rounds += 1
            try:
                results = await adapter.send(envelope(pending))
            except ChannelError:
                continue
            assert not results.failed
            pending = [pending[i] for i, _ in results.retry + results.requeue]
        assert pending == []
        assert all(smsc.received[a] >= 1 for a in addrs), "every message reached the SMSC"
        session = adapter.links["default"].sessions[0]
        assert session.stats.reconnects >= 1
        # Lost responses are retried: a message the SMSC accepted but whose response was
        # lost with the connection is sent again (the duplicate bound of docs/engine.md).
        duplicates = sum(smsc.received[a] - 1 for a in addrs)
        assert duplicates <= session.stats.lost
    finally:
        await adapter.aclose()


async def test_receipt_before_response_and_tlv_only_receipts(smsc: Smsc) -> None:
    smsc.set_config(receipt_before_response=True, receipt_format="tlv")
    receipts: list[Receipt] = []
    adapter = SmppAdapter({"default": link(smsc)}, on_receipt=receipts.extend)
    try:
        results = await adapter.send(envelope(numbers(50)))
        assert len(results.sent) == 50
        await wait_for(lambda: len(receipts) == 50)
        assert {r.message_id for r in receipts} == set(results.remote_ids)
    finally:
        await adapter.aclose()


async def test_unreadable_receipts_are_still_acknowledged() -> None:
    """A hand-driven SMSC: after the bind it sends a receipt without id or state, a receipt
    with a 13-digit date and a good one; the ESME answers deliver_sm_resp to all three."""
    answered: list[int] = []
    done = asyncio.Event()

    async def smsc_side(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        framer = pdu.Framer()
        while not done.is_set():
            data = await reader.read(4096)
            if not data:
                break
            for header, _ in framer.feed(data):
                if header.command_id == pdu.BIND_TRANSCEIVER:
                    writer.write(pdu.encode_bind_resp(header.command_id, header.seq, "test"))
                    for seq, text in ((1, b"id: stat:"),
                                      (2, b"id:9 submit date:2611261030123 stat:DELIVRD"),
                                      (3, b"id:10 stat:DELIVRD err:000")):
                        receipt = pdu.ShortMessage(destination_addr="LOA", short_message=text,
                                                   esm_class=pdu.ESM_RECEIPT)
                        writer.write(pdu.encode_short_message(pdu.DELIVER_SM, seq, receipt))
                elif header.command_id == pdu.DELIVER_SM | pdu.RESP:
                    answered.append(header.seq)
                    if len(answered) == 3:
                        done.set()
                elif header.command_id == pdu.UNBIND:
                    writer.write(pdu.encode(pdu.UNBIND | pdu.RESP, header.seq))
        writer.close()

    server = await asyncio.start_server(smsc_side, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    good: list[Receipt] = []
    session = EsmeSession(BindConfig(host="127.0.0.1", port=port, system_id="loa"),
                          on_receipt=good.extend)
    await session.start()
    try:
        await asyncio.wait_for(done.wait(), 10)
        assert sorted(answered) == [1, 2, 3]
        assert session.stats.receipts_malformed == 2
        assert [r.message_id for r in good] == ["10"]
    finally:
        await session.aclose()
        server.close()
        await server.wait_closed()


async def test_enquire_link_keeps_an_idle_bind(smsc: Smsc) -> None:
    session = EsmeSession(BindConfig(host="127.0.0.1", port=smsc.port, system_id="loa",
                                     enquire_link_seconds=0.2, response_timeout=1.0))
    await session.start()
    try:
        await asyncio.wait_for(session.bound.wait(), 5)
        await wait_for(lambda: smsc.stats.enquire_links >= 2)
        assert session.bound.is_set() and session.stats.reconnects == 0
    finally:
        await session.aclose()


async def test_transmitter_and_receiver_pairs(smsc: Smsc) -> None:
    receipts: list[Receipt] = []
    adapter = SmppAdapter({"default": link(smsc, bind_type="pair", binds=2)},
                          on_receipt=receipts.extend)
    try:
        results = await adapter.send(envelope(numbers(100)))
        assert len(results.sent) == 100
        await wait_for(lambda: len(receipts) == 100)
        assert {r.message_id for r in receipts} == set(results.remote_ids)
        receivers = adapter.links["default"].receivers
        assert len(receivers) == 2 and sum(r.stats.receipts for r in receivers) == 100
        assert sum(s.stats.receipts for s in adapter.links["default"].sessions) == 0
        assert smsc.stats.binds == 4
    finally:
        await adapter.aclose()


async def test_receipts_feed_the_delivery_latency_histogram(smsc: Smsc) -> None:
    from prometheus_client import REGISTRY  # noqa: PLC0415

    def count() -> float:
        return REGISTRY.get_sample_value("loa_delivery_seconds_count", {"channel": "sms"}) or 0.0

    before = count()
    receipts: list[Receipt] = []
    adapter = SmppAdapter({"default": link(smsc)}, on_receipt=receipts.extend)
    try:
        await adapter.send(envelope(numbers(20)))
        await wait_for(lambda: len(receipts) == 20)
    finally:
        await adapter.aclose()
    assert count() - before == 20
