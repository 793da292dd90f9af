"""The SMSC simulator over loopback: conformance with an independent client (smpplib), then each
of its modes with raw sockets and the project's PDU codec."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import pytest
import smpplib.client
import smpplib.consts
import smpplib.exceptions
import smpplib.smpp

from adapters.base import Envelope
from adapters.smpp import pdu
from adapters.smpp.adapter import DEFAULT_LINK, LinkConfig, SmppAdapter
from adapters.smpp.pdu import (
    BIND_RECEIVER,
    BIND_TRANSCEIVER,
    BIND_TRANSMITTER,
    DELIVER_SM,
    ENQUIRE_LINK,
    GENERIC_NACK,
    RESP,
    SUBMIT_SM,
    TLV_MESSAGE_STATE,
    TLV_NETWORK_ERROR_CODE,
    TLV_RECEIPTED_MESSAGE_ID,
    UNBIND,
    Header,
    ShortMessage,
)
from adapters.smpp.receipt import TLV_BY_STATE, parse_receipt
from adapters.smpp.simulator import Smsc, SmscConfig
from dispatcher.domain.model import Channel
from dispatcher.domain.smstext import encode_parts, segment
from dispatcher.service.cli import main

WAIT = 3.0  # seconds: the longest any single wait may take
QUIET = 0.25  # seconds of silence that stand for "never answered"

VIETNAMESE = (
    "Thông báo khẩn của Ban Chỉ đạo phòng, chống dịch Covid-19 tỉnh Quảng Ninh: người dân "
    "thực hiện nghiêm thông điệp 5K, khai báo y tế trung thực, liên hệ ngay trạm y tế khi có "
    "triệu chứng sốt, ho."
)  # 193 UCS-2 units: 3 parts


# -- a raw ESME on the project's codec ----------------------------------------------------------


class Esme:
    """A minimal ESME over asyncio streams: send PDUs, read PDUs with a timeout."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.framer = pdu.Framer()
        self.frames: list[tuple[Header, bytes]] = []
        self.seq = 0

    @classmethod
    async def connect(cls, smsc: Smsc) -> Esme:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(smsc.host, smsc.port), WAIT)
        return cls(reader, writer)

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def send(self, *pdus: bytes) -> None:
        self.writer.write(b"".join(pdus))

    async def read(self, n: int = 1, timeout: float = WAIT) -> list[tuple[Header, bytes]]:
        """Exactly ``n`` PDUs (TimeoutError if they do not come in time)."""

        async def fill() -> None:
            while len(self.frames) < n:
                data = await self.reader.read(65536)
                if not data:
                    raise ConnectionError("the SMSC closed the connection")
                self.frames += self.framer.feed(data)

        await asyncio.wait_for(fill(), timeout)
        got, self.frames = self.frames[:n], self.frames[n:]
        return got

    async def silent(self, seconds: float = QUIET) -> bool:
        """Whether nothing at all arrives for ``seconds``."""
        try:
            await self.read(1, seconds)
        except TimeoutError:
            return True
        return False

    async def closed(self, timeout: float = WAIT) -> bool:
        """Read (and keep) PDUs until the SMSC closes the connection."""

        async def drain() -> None:
            while data := await self.reader.read(65536):
                self.frames += self.framer.feed(data)

        await asyncio.wait_for(drain(), timeout)
        return True

    async def bind(self, command_id: int = BIND_TRANSCEIVER, system_id: str = "loa",
                   password: str = "secret") -> int:
        self.send(pdu.encode_bind(command_id, self.next_seq(), pdu.Bind(system_id, password)))
        ((header, body),) = await self.read()
        assert header.command_id == command_id | RESP
        assert header.seq == self.seq
        if header.status == 0:
            assert pdu.parse_bind_resp(body) == "loa-smsc"
        return header.status

    def submit(self, destination: str, text: bytes = b"hello", *, data_coding: int = 0,
               esm_class: int = 0, registered_delivery: int = 1, source: str = "SYT") -> int:
        seq = self.next_seq()
        self.send(pdu.encode_short_message(SUBMIT_SM, seq, ShortMessage(
            destination_addr=destination, short_message=text, source_addr=source,
            source_addr_ton=pdu.TON_ALPHANUMERIC, esm_class=esm_class, data_coding=data_coding,
            registered_delivery=registered_delivery)))
        return seq

    def submit_text(self, destination: str, text: str, ref: int = 7) -> list[int]:
        seg = segment(text)
        payloads = encode_parts(seg, ref)
        esm = pdu.ESM_UDHI if len(payloads) > 1 else 0
        return [self.submit(destination, p, data_coding=seg.data_coding, esm_class=esm)
                for p in payloads]

    def ack(self, header: Header, status: int = 0) -> None:
        self.send(pdu.encode_deliver_sm_resp(header.seq, status))

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, TimeoutError):
            await asyncio.wait_for(self.writer.wait_closed(), WAIT)


async def start(**config: object) -> Smsc:
    smsc = Smsc(SmscConfig(**config))  # type: ignore[arg-type]
    await smsc.start()
    return smsc


@pytest.fixture
async def smsc() -> AsyncIterator[Smsc]:
    server = await start(keep_texts=True)
    try:
        yield server
    finally:
        await server.stop()


async def bound(smsc: Smsc, command_id: int = BIND_TRANSCEIVER) -> Esme:
    esme = await Esme.connect(smsc)
    assert await esme.bind(command_id) == 0
    return esme


def by_kind(frames: list[tuple[Header, bytes]]) -> tuple[list[tuple[Header, bytes]],
                                                         list[tuple[Header, bytes]]]:
    resps = [f for f in frames if f[0].command_id == SUBMIT_SM | RESP]
    receipts = [f for f in frames if f[0].command_id == DELIVER_SM]
    assert len(resps) + len(receipts) == len(frames)
    return resps, receipts


# -- conformance with smpplib -------------------------------------------------------------------


def _smpplib_session(port: int) -> dict[str, object]:
    """A whole transceiver session with smpplib (blocking: runs in a thread)."""
    sent: list[tuple[int, int, str]] = []
    received: list[object] = []
    client = smpplib.client.Client("127.0.0.1", port, timeout=WAIT,
                                   allow_unknown_opt_params=True)
    client.set_message_sent_handler(
        lambda pdu: sent.append((pdu.sequence, pdu.status, pdu.message_id.decode())))

    def on_message(pdu: object) -> None:  # smpplib calls it with pdu=...
        received.append(pdu)

    client.set_message_received_handler(on_message)
    client.connect()
    try:
        bind = client.bind_transceiver(system_id="loa", password="secret")
        result: dict[str, object] = {"bind_status": bind.status,
                                     "smsc_id": bind.system_id.decode()}
        submits = [
            ("84912000001", b"Hello from Loa", 0, 0),
            ("84912000002", "Xin chào".encode("utf-16-be"), 8, 0),
        ]
        seg = segment(VIETNAMESE)
        submits += [("84912000003", part, 8, 0x40) for part in encode_parts(seg, 42)]
        for destination, short_message, coding, esm in submits:
            client.send_message(source_addr_ton=5, source_addr_npi=0, source_addr="SYT",
                                dest_addr_ton=1, dest_addr_npi=1, destination_addr=destination,
                                short_message=short_message, data_coding=coding, esm_class=esm,
                                registered_delivery=1)
        deadline = time.monotonic() + WAIT
        while (len(sent) < len(submits) or len(received) < len(submits)) \
                and time.monotonic() < deadline:
            client.read_once(auto_send_enquire_link=False)
        link = smpplib.smpp.make_pdu("enquire_link", client=client)
        client.send_pdu(link)
        link_resp = client.read_pdu()
        result.update(parts=len(seg.parts), sent=sent, received=received,
                      link=(link_resp.command, link_resp.sequence == link.sequence))
        unbind = client.unbind()
        result["unbind"] = (unbind.command, unbind.status)
    finally:
        client.disconnect()
    return result


async def test_smpplib_transceiver_session(smsc: Smsc) -> None:
    result = await asyncio.wait_for(asyncio.to_thread(_smpplib_session, smsc.port), 10)
    assert result["bind_status"] == 0
    assert result["smsc_id"] == "loa-smsc"
    assert result["parts"] == 3
    sent = result["sent"]
    assert isinstance(sent, list)
    assert [status for _, status, _ in sent] == [0] * 5
    ids = [mid for _, _, mid in sent]
    assert len(set(ids)) == 5
    assert all(0 < len(mid) <= 64 for mid in ids)
    received = result["received"]
    assert isinstance(received, list)
    assert len(received) == 5
    for receipt_pdu in received:
        assert receipt_pdu.command == "deliver_sm"
        assert receipt_pdu.esm_class & 0x3C == pdu.ESM_RECEIPT
        receipt = parse_receipt(receipt_pdu.short_message, {})  # the text alone
        assert receipt.delivered and receipt.submitted is not None
        assert receipt_pdu.receipted_message_id.decode() == receipt.message_id
        assert receipt_pdu.message_state == TLV_BY_STATE["DELIVRD"]
        assert receipt_pdu.destination_addr == b"SYT"
    assert sorted(r.message_id for r in (parse_receipt(p.short_message, {})
                                         for p in received)) == sorted(ids)
    assert {p.source_addr.decode() for p in received} == {
        "84912000001", "84912000002", "84912000003"}
    assert result["link"] == ("enquire_link_resp", True)
    assert result["unbind"] == ("unbind_resp", 0)
    assert smsc.received == {"84912000001": 1, "84912000002": 1, "84912000003": 1}
    assert smsc.texts["84912000001"] == ["Hello from Loa"]
    assert smsc.texts["84912000002"] == ["Xin chào"]
    assert smsc.texts["84912000003"] == [VIETNAMESE]
    s = smsc.stats
    assert (s.binds, s.submits, s.parts, s.messages, s.unbinds) == (1, 5, 5, 3, 1)
    assert (s.receipts_sent, s.receipts_acked, s.enquire_links) == (5, 5, 1)


def _smpplib_split_binds(port: int) -> tuple[list[int], list[bytes]]:
    """smpplib as a transmitter and a receiver of one system_id: receipts come on the latter."""
    opts = {"timeout": WAIT, "allow_unknown_opt_params": True}
    tx = smpplib.client.Client("127.0.0.1", port, **opts)
    rx = smpplib.client.Client("127.0.0.1", port, **opts)
    statuses: list[int] = []
    receipts: list[bytes] = []
    tx.set_message_sent_handler(lambda pdu: statuses.append(pdu.status))
    rx.set_message_received_handler(lambda pdu: receipts.append(pdu.receipted_message_id))
    tx.connect()
    rx.connect()
    try:
        tx.bind_transmitter(system_id="split", password="pw")
        rx.bind_receiver(system_id="split", password="pw")
        for n in range(3):
            tx.send_message(source_addr_ton=5, source_addr="SYT", dest_addr_ton=1,
                            destination_addr=f"8498700000{n}", short_message=b"hi",
                            registered_delivery=1)
            tx.read_once(auto_send_enquire_link=False)
        while len(receipts) < 3:
            rx.read_once(auto_send_enquire_link=False)
        tx.unbind()
        rx.unbind()
    finally:
        tx.disconnect()
        rx.disconnect()
    return statuses, receipts


async def test_smpplib_transmitter_receipts_go_to_the_receiver(smsc: Smsc) -> None:
    statuses, receipts = await asyncio.wait_for(
        asyncio.to_thread(_smpplib_split_binds, smsc.port), 10)
    assert statuses == [0, 0, 0]
    assert len(set(receipts)) == 3
    assert smsc.stats.receipts_acked == 3


def _smpplib_bind_error(port: int) -> int:
    client = smpplib.client.Client("127.0.0.1", port, timeout=WAIT, allow_unknown_opt_params=True)
    client.connect()
    try:
        client.bind_transceiver(system_id="loa", password="wrong")
    except smpplib.exceptions.PDUError as exc:
        return int(exc.args[1])
    finally:
        client.disconnect()
    return 0


async def test_smpplib_sees_a_refused_bind() -> None:
    smsc = await start(credentials={"loa": "secret"})
    try:
        status = await asyncio.wait_for(asyncio.to_thread(_smpplib_bind_error, smsc.port), 10)
    finally:
        await smsc.stop()
    assert status == smpplib.consts.SMPP_ESME_RINVPASWD == 0x0E


# -- binds --------------------------------------------------------------------------------------


async def test_credentials_and_bind_states() -> None:
    smsc = await start(credentials={"loa": "secret"})
    try:
        esme = await Esme.connect(smsc)
        assert await esme.bind(password="wrong") == 0x0E
        assert await esme.bind(system_id="nobody") == 0x0F
        seq = esme.submit("84912000001")
        ((header, _),) = await esme.read()
        assert (header.command_id, header.seq, header.status) == (SUBMIT_SM | RESP, seq, 0x04)
        assert await esme.bind() == 0
        assert await esme.bind() == 0x05  # already bound
        receiver = await Esme.connect(smsc)
        assert await receiver.bind(BIND_RECEIVER) == 0
        receiver.submit("84912000001")
        ((header, _),) = await receiver.read()
        assert header.status == 0x04  # a receiver may not submit
        smsc.set_config(refuse_binds=True)  # at runtime: new binds fail, bound ones go on
        late = await Esme.connect(smsc)
        assert await late.bind() == 0x0D
        esme.submit("84912000001")
        ((header, _), _receipt) = await esme.read(2)
        assert header.status == 0
        assert (smsc.stats.binds, smsc.stats.bind_failures) == (2, 4)
        for e in (esme, receiver, late):
            await e.close()
    finally:
        await smsc.stop()


async def test_enquire_link_unbound_and_unbind_closes(smsc: Smsc) -> None:
    esme = await Esme.connect(smsc)
    esme.send(pdu.encode(ENQUIRE_LINK, 9))
    ((header, body),) = await esme.read()
    assert (header.command_id, header.seq, header.status, body) == (ENQUIRE_LINK | RESP, 9, 0, b"")
    assert await esme.bind() == 0
    esme.send(pdu.encode(UNBIND, 10))
    assert await esme.closed()
    ((header, _),) = await esme.read()
    assert (header.command_id, header.seq, header.status) == (UNBIND | RESP, 10, 0)
    assert smsc.stats.unbinds == 1 and smsc.stats.disconnects == 0


# -- submits and receipts -----------------------------------------------------------------------


async def test_tps_cap_throttles_above_it() -> None:
    smsc = await start(tps_per_bind=5)
    try:
        esme = await bound(smsc)
        for n in range(20):
            esme.submit(f"849120000{n:02d}", registered_delivery=0)
        resps, _ = by_kind(await esme.read(20))
        statuses = [h.status for h, _ in resps]
        assert statuses == [0] * 5 + [0x58] * 15
        assert smsc.stats.throttled == 15
        assert sum(smsc.received.values()) == 5  # throttled submits are not delivered
        other = await bound(smsc)  # the cap is per bind
        other.submit("84912999999", registered_delivery=0)
        ((header, _),) = await other.read()
        assert header.status == 0
        await esme.close()
        await other.close()
    finally:
        await smsc.stop()


async def test_injected_errors_by_ratio_and_destination() -> None:
    smsc = await start(error_ratio=0.5, error_status=0x45, seed=3,
                       error_destinations={"84912000666": 0x0B})
    try:
        esme = await bound(smsc)
        esme.submit("84912000666")
        ((header, _),) = await esme.read()
        assert header.status == 0x0B
        for n in range(40):
            esme.submit(f"849130000{n:02d}", registered_delivery=0)
        resps, _ = by_kind(await esme.read(40))
        statuses = [h.status for h, _ in resps]
        assert set(statuses) == {0, 0x45}
        assert 8 <= statuses.count(0x45) <= 32
        assert smsc.stats.errors_injected == statuses.count(0x45) + 1
        assert sum(smsc.received.values()) == statuses.count(0)
        assert "84912000666" not in smsc.received
        await esme.close()
    finally:
        await smsc.stop()
    again = await start(error_ratio=0.5, error_status=0x45, seed=3,
                        error_destinations={"84912000666": 0x0B})
    try:  # the same seed gives the same answers
        esme = await bound(again)
        esme.submit("84912000666")
        for n in range(40):
            esme.submit(f"849130000{n:02d}", registered_delivery=0)
        resps, _ = by_kind(await esme.read(41))
        assert [h.status for h, _ in resps[1:]] == statuses
        await esme.close()
    finally:
        await again.stop()


async def test_no_response_modes() -> None:
    smsc = await start(no_response_destinations=frozenset({"84912000404"}))
    try:
        esme = await bound(smsc)
        esme.submit("84912000404")
        assert await esme.silent()
        esme.submit("84912000001")
        (header, _), (receipt, _) = await esme.read(2)
        assert header.command_id == SUBMIT_SM | RESP and receipt.command_id == DELIVER_SM
        smsc.set_config(no_response=True)
        for n in range(3):
            esme.submit(f"8491200010{n}")
        assert await esme.silent()
        esme.send(pdu.encode(ENQUIRE_LINK, 99))  # the link itself still answers
        ((header, _),) = await esme.read()
        assert header.command_id == ENQUIRE_LINK | RESP
        assert smsc.stats.unanswered == 4
        assert sum(smsc.received.values()) == 5  # accepted: delivered, just never answered
        await esme.close()
    finally:
        await smsc.stop()


async def test_window_abuse_with_delayed_responses() -> None:
    smsc = await start(response_delay=0.3, window_limit=2, window_reject=True)
    try:
        esme = await bound(smsc)
        started = time.monotonic()
        seqs = [esme.submit(f"8491200000{n}", registered_delivery=0) for n in range(3)]
        ((header, _),) = await esme.read()
        assert (header.seq, header.status) == (seqs[2], 0x14)  # at once: over the window
        later = await esme.read(2)
        assert time.monotonic() - started >= 0.25
        assert [(h.seq, h.status) for h, _ in later] == [(seqs[0], 0), (seqs[1], 0)]
        assert smsc.stats.window_abuse == 1
        await esme.close()
    finally:
        await smsc.stop()


async def test_receipt_delay_and_before_response_order() -> None:
    smsc = await start(receipt_delay=0.2)
    try:
        esme = await bound(smsc)
        started = time.monotonic()
        esme.submit("84912000001")
        ((resp, body),) = await esme.read()
        assert resp.command_id == SUBMIT_SM | RESP
        assert await esme.silent(0.1)
        ((receipt, rbody),) = await esme.read()
        assert receipt.command_id == DELIVER_SM
        assert time.monotonic() - started >= 0.19
        sm = pdu.parse_short_message(rbody)
        assert parse_receipt(sm.short_message, sm.tlvs).message_id == pdu.parse_message_id(body)
        esme.ack(receipt)
        smsc.set_config(receipt_delay=0.0, receipt_before_response=True)
        esme.submit("84912000002")
        (first, fbody), (second, sbody) = await esme.read(2)
        assert (first.command_id, second.command_id) == (DELIVER_SM, SUBMIT_SM | RESP)
        sm = pdu.parse_short_message(fbody)
        assert parse_receipt(sm.short_message, sm.tlvs).message_id == \
            pdu.parse_message_id(sbody)
        await esme.close()
    finally:
        await smsc.stop()


async def test_tlv_only_receipts_and_stat_mix() -> None:
    smsc = await start(receipt_format="tlv", stat_mix={"UNDELIV": 1.0})
    try:
        esme = await bound(smsc)
        esme.submit("84912000001")
        (_, body), (receipt, rbody) = await esme.read(2)
        sm = pdu.parse_short_message(rbody)
        assert sm.short_message == b""
        assert sm.esm_class == pdu.ESM_RECEIPT
        assert sm.tlvs[TLV_RECEIPTED_MESSAGE_ID] == body  # the id, NUL-terminated
        assert sm.tlvs[TLV_MESSAGE_STATE] == bytes((TLV_BY_STATE["UNDELIV"],))
        assert TLV_NETWORK_ERROR_CODE in sm.tlvs
        parsed = parse_receipt(sm.short_message, sm.tlvs)
        assert (parsed.state, parsed.delivered, parsed.error) == ("UNDELIV", False, "1")
        esme.ack(receipt)
        smsc.set_config(receipt_format="text", stat_mix={"DELIVRD": 0.5, "EXPIRED": 0.5})
        for n in range(40):
            esme.submit(f"849130000{n:02d}")
        _, receipts = by_kind(await esme.read(80))
        states = []
        for _, rb in receipts:
            sm = pdu.parse_short_message(rb)
            assert sm.tlvs == {}
            states.append(parse_receipt(sm.short_message, {}).state)
        assert set(states) == {"DELIVRD", "EXPIRED"}
        await esme.close()
    finally:
        await smsc.stop()


async def test_twelve_digit_dates() -> None:
    smsc = await start(twelve_digit_dates=True, receipt_format="text")
    try:
        esme = await bound(smsc)
        esme.submit("84912000001")
        _, (_, rbody) = await esme.read(2)
        text = pdu.parse_short_message(rbody).short_message.decode()
        submit_date = text.split("submit date:")[1].split()[0]
        done_date = text.split("done date:")[1].split()[0]
        assert len(submit_date) == len(done_date) == 12 and submit_date.isdigit()
        receipt = parse_receipt(text.encode(), {})
        assert receipt.submitted is not None and receipt.done is not None
        assert receipt.done >= receipt.submitted
        await esme.close()
    finally:
        await smsc.stop()


async def test_registered_delivery_and_receipt_switch(smsc: Smsc) -> None:
    esme = await bound(smsc)
    esme.submit("84912000001", registered_delivery=0)
    esme.submit("84912000002", registered_delivery=2)  # on failure only: DELIVRD sends none
    assert len(await esme.read(2)) == 2
    smsc.set_config(receipts=False)
    esme.submit("84912000003")
    assert len(await esme.read(1)) == 1
    assert await esme.silent()
    assert smsc.stats.receipts_sent == 0
    await esme.close()


# -- garbage and disconnects --------------------------------------------------------------------


async def test_garbage_is_answered_and_the_server_survives(smsc: Smsc) -> None:
    esme = await bound(smsc)
    esme.send(pdu.encode(0x12345678, 5))  # unknown command: generic_nack, connection kept
    ((header, _),) = await esme.read()
    assert (header.command_id, header.seq, header.status) == (GENERIC_NACK, 5, 0x03)
    esme.send(pdu.encode(SUBMIT_SM, 6, b"\x01\x02\x03"))  # a body that is not a submit_sm
    ((header, _),) = await esme.read()
    assert (header.command_id, header.seq, header.status) == (SUBMIT_SM | RESP, 6, 0x02)
    esme.send(b"\xff" * 40)  # a command_length no PDU has: generic_nack, then closed
    assert await esme.closed()
    ((header, _),) = await esme.read()
    assert (header.command_id, header.status) == (GENERIC_NACK, 0x02)
    late = await bound(smsc)  # good PDUs before a bad length in one read are still answered
    late.send(pdu.encode(ENQUIRE_LINK, 3) + b"\0\0\0\x01" + b"\0" * 12)
    assert await late.closed()
    (link, _), (nack, _) = await late.read(2)
    assert (link.command_id, link.seq) == (ENQUIRE_LINK | RESP, 3)
    assert (nack.command_id, nack.status) == (GENERIC_NACK, 0x02)
    raw = socket.create_connection((smsc.host, smsc.port), timeout=WAIT)
    raw.sendall(os.urandom(7))  # less than a header, then gone
    raw.close()
    fresh = await bound(smsc)
    fresh.submit("84912000001")
    (header, _), _ = await fresh.read(2)
    assert header.status == 0
    assert smsc.stats.malformed == 3
    assert smsc.stats.disconnects == 2
    assert smsc.received == {"84912000001": 1}
    await fresh.close()


async def test_disconnect_after_n_submits() -> None:
    smsc = await start(disconnect_after=3, receipts=False)
    try:
        esme = await bound(smsc)
        for n in range(5):
            esme.submit(f"8491200000{n}")
        assert await esme.closed()
        statuses = [h.status for h, _ in await esme.read(3)]
        assert statuses == [0, 0, 0]
        assert esme.frames == []
        assert smsc.stats.disconnects == 1
        assert sum(smsc.received.values()) == 3
        again = await bound(smsc)  # counted per connection
        again.submit("84912000009")
        assert (await again.read())[0][0].status == 0
        await again.close()
    finally:
        await smsc.stop()


async def test_unacked_receipts_come_again_after_a_drop(smsc: Smsc) -> None:
    esme = await bound(smsc)
    esme.submit("84912000001")
    esme.submit("84912000002")
    _, receipts = by_kind(await esme.read(4))
    esme.ack(receipts[0][0])  # the second one is never acknowledged
    await asyncio.sleep(0.05)
    assert await smsc.drop_all() == 1
    assert await esme.closed()
    assert smsc.receipts_outstanding == 1  # kept for the next receiver bind
    again = await bound(smsc)
    ((header, body),) = await again.read()
    assert header.command_id == DELIVER_SM and body == receipts[1][1]
    again.ack(header)
    await asyncio.sleep(0.05)
    assert smsc.receipts_outstanding == 0
    assert (smsc.stats.receipts_requeued, smsc.stats.receipts_acked) == (1, 2)
    assert smsc.stats.disconnects == 1
    await again.close()


async def test_receipts_wait_for_a_receiver_bind(smsc: Smsc) -> None:
    tx = await bound(smsc, BIND_TRANSMITTER)
    tx.submit("84912000001")
    ((header, _),) = await tx.read()
    assert header.status == 0
    assert await tx.silent()  # no receipts on a transmitter
    rx = await bound(smsc, BIND_RECEIVER)
    ((header, body),) = await rx.read()
    assert header.command_id == DELIVER_SM
    sm = pdu.parse_short_message(body)
    assert (sm.source_addr, sm.destination_addr) == ("84912000001", "SYT")
    for e in (tx, rx):
        await e.close()


# -- counting messages --------------------------------------------------------------------------


async def test_multipart_messages_count_once_with_their_text(smsc: Smsc) -> None:
    esme = await bound(smsc)
    gsm_long = "Canh bao: " + "giu khoang cach 2m, deo khau trang. " * 6
    sent = esme.submit_text("84912000001", VIETNAMESE, ref=1)
    sent += esme.submit_text("84912000002", VIETNAMESE, ref=1)  # same ref, other recipient
    sent += esme.submit_text("84912000003", gsm_long, ref=200)
    sent += esme.submit_text("84912000004", "ngắn")
    resps, _ = by_kind(await esme.read(2 * len(sent)))
    assert [h.status for h, _ in resps] == [0] * len(sent)
    vn_parts, gsm_parts = len(segment(VIETNAMESE).parts), len(segment(gsm_long).parts)
    assert vn_parts == 3 and gsm_parts == 2
    assert smsc.received == {"84912000001": 1, "84912000002": 1, "84912000003": 1,
                             "84912000004": 1}
    assert smsc.texts == {"84912000001": [VIETNAMESE], "84912000002": [VIETNAMESE],
                          "84912000003": [gsm_long], "84912000004": ["ngắn"]}
    assert (smsc.stats.parts, smsc.stats.messages) == (len(sent), 4)
    assert len(set(pdu.parse_message_id(b) for _, b in resps)) == len(sent)
    # parts out of order and interleaved still make one message each
    seg = segment(VIETNAMESE)
    first, second = encode_parts(seg, 9), encode_parts(seg, 10)
    for a, b in zip(reversed(first), second, strict=True):
        esme.submit("84912000005", a, data_coding=8, esm_class=pdu.ESM_UDHI)
        esme.submit("84912000005", b, data_coding=8, esm_class=pdu.ESM_UDHI)
    await esme.read(12)
    assert smsc.received["84912000005"] == 2
    assert smsc.texts["84912000005"] == [VIETNAMESE, VIETNAMESE]
    assert smsc.stats.duplicates == 1  # the second copy, once for its three parts
    await esme.close()


async def test_duplicates_are_a_text_a_destination_already_got(smsc: Smsc) -> None:
    esme = await bound(smsc)
    sent = [esme.submit("84912000001", b"hello"), esme.submit("84912000002", b"hello"),
            esme.submit("84912000001", b"other text"),
            esme.submit("84912000001", b"hello", data_coding=8)]  # same octets, other coding
    await esme.read(2 * len(sent))
    assert smsc.stats.duplicates == 0 and smsc.received["84912000001"] == 3
    sent = [esme.submit("84912000001", b"hello"), esme.submit("84912000001", b"other text"),
            esme.submit("84912000002", b"hello"), esme.submit("84912000002", b"hello")]
    await esme.read(2 * len(sent))
    assert smsc.stats.duplicates == 4
    assert smsc.received == {"84912000001": 5, "84912000002": 3}
    assert smsc.received["84912000009"] == 0 and "84912000009" not in smsc.received
    # a part sent twice is a duplicate part; the message counts when complete, once
    parts = encode_parts(segment(VIETNAMESE), 11)
    for payload in (parts[0], parts[0], parts[1], parts[2]):
        esme.submit("84912000003", payload, data_coding=8, esm_class=pdu.ESM_UDHI)
    await esme.read(8)
    assert (smsc.stats.duplicate_parts, smsc.stats.duplicates) == (1, 4)
    assert smsc.received["84912000003"] == 1
    esme.submit_text("84912000003", VIETNAMESE, ref=12)  # the whole message again
    await esme.read(6)
    assert smsc.stats.duplicates == 5 and smsc.received["84912000003"] == 2
    assert smsc.stats.messages == 10
    await esme.close()


async def test_many_recipients_exactly_once(smsc: Smsc) -> None:
    smsc.set_config(keep_texts=False)
    esme = await bound(smsc)
    template = pdu.SubmitTemplate(source_addr="SYT", source_addr_ton=5, source_addr_npi=0,
                                  esm_class=0, data_coding=0)
    n = 2000
    esme.send(*(template.encode(i + 1, f"849{i:08d}", b"hello") for i in range(n)))
    frames = await esme.read(2 * n)
    resps, receipts = by_kind(frames)
    assert len(resps) == len(receipts) == n
    esme.send(*(pdu.encode_deliver_sm_resp(h.seq) for h, _ in receipts))
    assert len(smsc.received) == n and set(smsc.received.values()) == {1}
    assert smsc.texts == {}
    await asyncio.sleep(0.05)
    assert smsc.stats.receipts_acked == n and smsc.receipts_outstanding == 0
    await esme.close()


# -- configuration and the command line ---------------------------------------------------------


@pytest.mark.parametrize("bad", [
    {"stat_mix": {"DELIVERED": 1.0}}, {"stat_mix": {"DELIVRD": 0.0}}, {"error_ratio": 1.5},
    {"receipt_delay": -1.0}, {"system_id": "x" * 16}, {"receipt_format": "xml"},
])
def test_config_is_checked(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        SmscConfig(**bad)  # type: ignore[arg-type]


def test_cli_runs_until_sigterm_and_prints_stats() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from dispatcher.service.cli import main; sys.exit(main())",
         "sim", "smsc", "--port", "0", "--json", "--tps", "100", "--stat-mix",
         "DELIVRD=0.9,UNDELIV=0.1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("SMSC simulator listening on 127.0.0.1:")
        port = int(line.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
            sock.sendall(pdu.encode_bind(BIND_TRANSCEIVER, 1, pdu.Bind("loa", "x")))
            header = pdu.HEADER.unpack(sock.recv(16))
            assert header[1:3] == (BIND_TRANSCEIVER | RESP, 0)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    stats = json.loads(out.strip().splitlines()[-1])
    assert stats["binds"] == 1 and stats["connections"] == 1 and stats["duplicates"] == 0


def test_cli_port_in_use_is_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status = main(["sim", "smsc", "--port", str(port)])
    _, err = capsys.readouterr()
    assert status != 0
    assert err.startswith("loa: error: ") and str(port) in err
    assert len(err.strip().splitlines()) == 1


async def test_marked_messages_are_counted_apart_in_each_encoding() -> None:
    """`loa bench --urgent-at`: texts with the mark (UCS-2 or GSM-7, one part or several) are
    counted apart, with the time the first and last came."""
    smsc = await start(mark="TB-KHAN")
    sms = SmppAdapter({DEFAULT_LINK: LinkConfig(host="127.0.0.1", port=smsc.port,
                                                system_id="loa")})
    addrs = [f"8491{i:07d}" for i in range(4)]
    try:
        before = time.time()
        for text, to in (("Cảnh báo thường kỳ: đeo khẩu trang.", addrs),
                         ("KHẨN 01/TB-KHAN: ở nhà.", addrs[:2]),
                         ("KHAN 01/TB-KHAN: o nha.", addrs[2:3]),
                         ("KHẨN 01/TB-KHAN: " + "ở nhà, đeo khẩu trang. " * 8, addrs[3:]),
                         ("KHẨN 01/TB-KHAN: ở nhà.", addrs[:1])):
            results = await sms.send(Envelope(wave="w", channel=Channel.SMS, text=text,
                                              addrs=to, route="sms.viettel"))
            assert len(results.sent) == len(to)
        stats = smsc.stats
        assert stats.messages == 9 and stats.duplicates == 1
        assert stats.marked_messages == 5 and stats.marked_duplicates == 1
        assert before <= stats.first_marked_at <= stats.last_marked_at
        assert before <= stats.last_submit_at
    finally:
        await sms.aclose()
        await smsc.stop()
