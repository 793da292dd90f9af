"""Per-PDU cost of the SMPP codec: Loa's (adapters.smpp.pdu, adapters.smpp.receipt) against
aiosmpplib 0.7.4's PDU classes, on the same bytes.

encode: one submit_sm of a Vietnamese alert part (brandname source, UCS-2, concatenation UDH),
        the payload already encoded once per wave, as the engine does;
decode: one deliver_sm carrying a text delivery receipt (10-digit dates, which aiosmpplib reads),
        from the PDU's bytes to the receipt's message id and state.

Run with ``.venv/bin/pytest bench/test_smpp_codec_bench.py --benchmark-only -p no:cacheprovider``.
aiosmpplib's codec needs no event loop: its PDU classes are dataclasses with ``pdu()`` and
``from_pdu()``; only the receipt's owning session (ESME) is asynchronous.
"""

from __future__ import annotations

import datetime as dt

import pytest
from aiosmpplib import NPI, TON, DeliverSm, PhoneNumber, SubmitSm
from aiosmpplib.protocol import SmppMessage
from pytest_benchmark.fixture import BenchmarkFixture

from adapters.smpp import pdu
from adapters.smpp.receipt import format_receipt, parse_receipt
from dispatcher.domain.smstext import encode_parts, segment

ALERT = ("KHẨN: Covid-19 lây lan rộng tại Quảng Ninh. Ở nhà khi không cần thiết, đeo khẩu trang. "
         "Sốt, ho, khó thở: gọi ngay y tế xã, phường.")
SEGMENTED = segment(ALERT)
PART_TEXT = SEGMENTED.parts[0]
PAYLOAD = encode_parts(SEGMENTED, 0x2A)[0]  # UDH + UCS-2: 140 octets
DESTINATION = "84912345678"
BRANDNAME = "LOA"
SEQ = 0x1234

TEMPLATE = pdu.SubmitTemplate(source_addr=BRANDNAME, source_addr_ton=pdu.TON_ALPHANUMERIC,
                              source_addr_npi=0, esm_class=pdu.ESM_UDHI, data_coding=8)
AIO_SOURCE = PhoneNumber(BRANDNAME, TON.ALPHANUMERIC, NPI.UNKNOWN)

RECEIPT_PDU = pdu.encode_short_message(pdu.DELIVER_SM, 77, pdu.ShortMessage(
    destination_addr=BRANDNAME, dest_addr_ton=pdu.TON_ALPHANUMERIC, dest_addr_npi=0,
    source_addr=DESTINATION, source_addr_ton=pdu.TON_INTERNATIONAL, source_addr_npi=pdu.NPI_ISDN,
    esm_class=pdu.ESM_RECEIPT,
    short_message=format_receipt("5F3A9C0112", "DELIVRD",
                                 submitted=dt.datetime(2026, 11, 26, 9, 30),
                                 done=dt.datetime(2026, 11, 26, 9, 31), text="KHAN: Covid-19")))

# The same receipt as TLVs only (empty text), which aiosmpplib refuses (see docs/decisions.md)
TLV_RECEIPT_PDU = pdu.encode_short_message(pdu.DELIVER_SM, 78, pdu.ShortMessage(
    destination_addr=BRANDNAME, dest_addr_ton=pdu.TON_ALPHANUMERIC, dest_addr_npi=0,
    source_addr=DESTINATION, source_addr_ton=pdu.TON_INTERNATIONAL, source_addr_npi=pdu.NPI_ISDN,
    esm_class=pdu.ESM_RECEIPT,
    tlvs={pdu.TLV_RECEIPTED_MESSAGE_ID: b"5F3A9C0112\0", pdu.TLV_MESSAGE_STATE: b"\x02"}))


def aiosmpplib_submit(seq: int) -> bytes:
    """What aiosmpplib does per message: a SubmitSm (the application's, or the clone the
    session makes of each part) given the encoded part, then ``pdu()``."""
    message = SubmitSm(short_message=PART_TEXT, source=AIO_SOURCE,
                       destination=PhoneNumber(DESTINATION, TON.INTERNATIONAL, NPI.ISDN),
                       esm_class=pdu.ESM_UDHI, encoding="ucs2", sequence_num=seq)
    message.set_encoded_message(PAYLOAD)
    data: bytes = message.pdu()
    return data


def loa_submit(seq: int) -> bytes:
    return pdu.encode_short_message(pdu.SUBMIT_SM, seq, pdu.ShortMessage(
        destination_addr=DESTINATION, short_message=PAYLOAD, source_addr=BRANDNAME,
        source_addr_ton=pdu.TON_ALPHANUMERIC, source_addr_npi=0, esm_class=pdu.ESM_UDHI,
        registered_delivery=1, data_coding=8))


def aiosmpplib_receipt(data: bytes) -> tuple[str, str]:
    header = SmppMessage.parse_header(data)
    message = DeliverSm.from_pdu(data, header, "gsm0338")  # the ESME's default alphabet
    assert isinstance(message, DeliverSm)
    receipt = message.parse_receipt()
    return str(receipt["id"]), str(receipt["stat"])


def loa_receipt(data: bytes) -> tuple[str, str]:
    pdu.HEADER.unpack_from(data)
    message = pdu.parse_short_message(data[pdu.HEADER_SIZE:])
    receipt = parse_receipt(message.short_message, message.tlvs)
    return receipt.message_id, receipt.state


def test_same_bytes() -> None:
    """The four encoders write the same PDU, and both decoders read the same receipt."""
    expected = TEMPLATE.encode(SEQ, DESTINATION, PAYLOAD)
    assert len(PAYLOAD) == 140
    assert aiosmpplib_submit(SEQ) == expected
    assert loa_submit(SEQ) == expected
    assert aiosmpplib_receipt(RECEIPT_PDU) == loa_receipt(RECEIPT_PDU) == ("5F3A9C0112",
                                                                           "DELIVRD")
    assert loa_receipt(TLV_RECEIPT_PDU) == ("5F3A9C0112", "DELIVRD")
    with pytest.raises(ValueError, match="short_message or message_payload"):
        aiosmpplib_receipt(TLV_RECEIPT_PDU)


@pytest.mark.benchmark(group="submit_sm encode")
def test_encode_aiosmpplib_submit_sm(benchmark: BenchmarkFixture) -> None:
    assert benchmark(aiosmpplib_submit, SEQ) == TEMPLATE.encode(SEQ, DESTINATION, PAYLOAD)


@pytest.mark.benchmark(group="submit_sm encode")
def test_encode_aiosmpplib_pdu_only(benchmark: BenchmarkFixture) -> None:
    """Serialization alone: ``pdu()`` of a SubmitSm built beforehand."""
    message = SubmitSm(short_message=PART_TEXT, source=AIO_SOURCE,
                       destination=PhoneNumber(DESTINATION, TON.INTERNATIONAL, NPI.ISDN),
                       esm_class=pdu.ESM_UDHI, encoding="ucs2", sequence_num=SEQ)
    message.set_encoded_message(PAYLOAD)
    assert benchmark(message.pdu) == TEMPLATE.encode(SEQ, DESTINATION, PAYLOAD)


@pytest.mark.benchmark(group="submit_sm encode")
def test_encode_loa_encode_short_message(benchmark: BenchmarkFixture) -> None:
    assert benchmark(loa_submit, SEQ) == TEMPLATE.encode(SEQ, DESTINATION, PAYLOAD)


@pytest.mark.benchmark(group="submit_sm encode")
def test_encode_loa_submit_template(benchmark: BenchmarkFixture) -> None:
    expected = loa_submit(SEQ)
    assert benchmark(TEMPLATE.encode, SEQ, DESTINATION, PAYLOAD) == expected


@pytest.mark.benchmark(group="deliver_sm receipt decode")
def test_decode_aiosmpplib_receipt(benchmark: BenchmarkFixture) -> None:
    assert benchmark(aiosmpplib_receipt, RECEIPT_PDU) == ("5F3A9C0112", "DELIVRD")


@pytest.mark.benchmark(group="deliver_sm receipt decode")
def test_decode_loa_receipt(benchmark: BenchmarkFixture) -> None:
    assert benchmark(loa_receipt, RECEIPT_PDU) == ("5F3A9C0112", "DELIVRD")


@pytest.mark.benchmark(group="deliver_sm receipt decode")
def test_decode_loa_receipt_tlvs(benchmark: BenchmarkFixture) -> None:
    assert benchmark(loa_receipt, TLV_RECEIPT_PDU) == ("5F3A9C0112", "DELIVRD")
