"""Messages from subscribers over SMPP: deliver_sm that are not receipts and data_sm, in every
encoding, each acknowledged and handed on; a malformed one never takes the session down; a
receipt sent as data_sm is matched as a receipt."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator

import pytest
from prometheus_client import REGISTRY

from adapters.smpp import pdu
from adapters.smpp.mo import decode_text
from adapters.smpp.receipt import Receipt, format_receipt
from adapters.smpp.session import BindConfig, EsmeSession
from adapters.smpp.simulator import Smsc
from dispatcher.domain import smstext
from dispatcher.domain.incoming import BINARY, REPLY, UNREADABLE, Incoming
from dispatcher.domain.model import Channel

SENDER = "84912345678"


async def wait_for(condition: object, timeout: float = 10.0) -> None:
    async def poll() -> None:
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.02)
    await asyncio.wait_for(poll(), timeout)


class Bound:
    def __init__(self, session: EsmeSession, came: list[Incoming],
                 receipts: list[Receipt]) -> None:
        self.session, self.came, self.receipts = session, came, receipts


@pytest.fixture
async def bound(smsc: Smsc) -> AsyncIterator[Bound]:
    came: list[Incoming] = []
    receipts: list[Receipt] = []
    session = EsmeSession(BindConfig(host="127.0.0.1", port=smsc.port, system_id="loa"),
                          on_receipt=receipts.extend, on_incoming=came.extend)
    await session.start()
    await asyncio.wait_for(session.bound.wait(), 10)
    try:
        yield Bound(session, came, receipts)
    finally:
        await session.aclose()


async def test_replies_in_every_encoding_are_handed_on_and_acknowledged(
        smsc: Smsc, bound: Bound) -> None:
    udh = smstext.concat_udh(7, 2, 1)
    sent = [
        smsc.send_mo(SENDER, smstext.ucs2_encode("Từ chối nhận tin"), data_coding=8),
        smsc.send_mo(SENDER, smstext.gsm7_encode("HUY @ {ok}"), data_coding=0),
        smsc.send_mo(SENDER, "Hủy".encode("latin-1", "replace"), data_coding=3),
        smsc.send_mo(SENDER, bytes([0x00, 0xFF, 0x10]), data_coding=4),
        smsc.send_mo(SENDER, udh + smstext.ucs2_encode("Phần một"), data_coding=8,
                     esm_class=pdu.ESM_UDHI),
        smsc.send_mo(SENDER, b"\x00\x41\x00", data_coding=8),  # UCS-2 of odd length
        smsc.send_mo(SENDER, smstext.ucs2_encode("x") + b"\xd8\x00", data_coding=8),
    ]
    assert sent == [1] * 7
    await wait_for(lambda: smsc.stats.mo_acked == 7)
    await wait_for(lambda: len(bound.came) == 7)
    texts = [(i.kind, i.encoding, i.text) for i in bound.came]
    assert texts[0] == (REPLY, "ucs2", "Từ chối nhận tin")
    assert texts[1] == (REPLY, "gsm7", "HUY @ {ok}")
    assert texts[2] == (REPLY, "latin1", "H?y")
    assert texts[3] == (BINARY, "binary", "00 ff 10")
    assert texts[4] == (REPLY, "ucs2", "Phần một") and bound.came[4].part == "1/2#7"
    assert texts[5][0] == UNREADABLE and texts[5][2] == "00 41 00"
    assert texts[6] == (REPLY, "ucs2", "x\ufffd")  # a lone surrogate: replaced, storable
    assert all(i.channel is Channel.SMS and i.number == SENDER for i in bound.came)
    assert bound.session.is_bound and bound.session.stats.deliver_other == 7
    assert smsc.stats.mo_nacked == 0


async def test_a_malformed_deliver_sm_is_acknowledged_and_the_session_stays_up(
        smsc: Smsc, bound: Bound) -> None:
    good = pdu.encode_short_message(pdu.DELIVER_SM, 1, pdu.ShortMessage(
        destination_addr="8085", source_addr=SENDER, short_message=b"HUY"))
    broken_tlv = good[pdu.HEADER_SIZE:] + b"\x04\x24\x00\x09ab"  # a TLV longer than the body
    smsc.send_mo(SENDER, b"", body=broken_tlv)
    smsc.send_mo(SENDER, b"", body=b"\xff" * 40)  # no NUL anywhere
    smsc.send_mo(SENDER, b"", body=b"\x00\x01", data_sm=True)  # a data_sm that ends early
    smsc.send_mo(SENDER, b"still here")
    await wait_for(lambda: smsc.stats.mo_acked == 4)
    await wait_for(lambda: any(i.text == "still here" for i in bound.came))
    assert bound.session.is_bound and smsc.stats.disconnects == 0
    assert bound.session.stats.malformed >= 3
    unreadable = [i for i in bound.came if i.kind == UNREADABLE]
    assert [i.encoding for i in unreadable] == ["data_sm"]


def data_sm_receipts() -> float:
    return REGISTRY.get_sample_value("loa_incoming_total",
                                     {"channel": "sms", "kind": "data_sm_receipt"}) or 0.0


async def test_data_sm_messages_and_receipts(smsc: Smsc, bound: Bound) -> None:
    before = data_sm_receipts()
    smsc.send_mo(SENDER, smstext.ucs2_encode("Tôi ở Hạ Long"), data_coding=8, data_sm=True)
    now = dt.datetime(2026, 12, 7, 8, 0)
    text = format_receipt("00000000ab", "DELIVRD", submitted=now, done=now)
    smsc.send_mo(SENDER, text, esm_class=pdu.ESM_RECEIPT, data_sm=True)
    smsc.send_mo(SENDER, b"", esm_class=pdu.ESM_RECEIPT, data_sm=True, tlvs={
        pdu.TLV_RECEIPTED_MESSAGE_ID: b"00000000ac\0", pdu.TLV_MESSAGE_STATE: bytes([5])})
    await wait_for(lambda: smsc.stats.mo_acked == 3)
    await wait_for(lambda: len(bound.receipts) == 2 and len(bound.came) == 1)
    assert [(r.message_id, r.state) for r in bound.receipts] == [
        ("00000000ab", "DELIVRD"), ("00000000ac", "UNDELIV")]
    assert [(i.kind, i.text) for i in bound.came] == [(REPLY, "Tôi ở Hạ Long")]
    assert bound.session.stats.data_sm == 3
    assert data_sm_receipts() == before + 2


def test_decode_text_never_raises_on_any_coding() -> None:
    for coding in range(256):
        for data in (b"", b"\x1b", b"\xff\xfe\xfd", bytes(range(256))):
            text, _, kind = decode_text(data, coding)
            text.encode("utf-8")
            assert kind in (REPLY, UNREADABLE, BINARY)
