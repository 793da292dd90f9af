"""Tests of adapters.smpp.pdu from bytes: hand-derived vectors of real PDUs (SMPP 3.4, sections
4 and 5), the framer, and properties (round trips; arbitrary bytes raise only PduError)."""

from __future__ import annotations

import contextlib
import struct

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.smpp import pdu
from adapters.smpp.pdu import Bind, Framer, Header, PduError, ShortMessage, SubmitTemplate
from dispatcher.domain.smstext import concat_udh, ucs2_encode


def h(text: str) -> bytes:
    """Hex with spaces and line breaks allowed."""
    return bytes.fromhex("".join(text.split()))


# -- hand-written vectors -----------------------------------------------------------------------

BIND_TRX = h("""
    00000020 00000009 00000000 00000001
    6c6f6100
    73656372657400
    00
    34 00 00
    00
""")  # command_length 32 = 16 header + "loa\0" 4 + "secret\0" 7 + "\0" 1 + 3 octets + "\0" 1

ENQUIRE_LINK = h("00000010 00000015 00000000 00000001")

# "Khẩn" in UCS-2 after a concatenation UDH (8-bit reference 0x2A, 2 parts, part 1)
KHAN_UDH = h("05 00 03 2a 02 01  004b 0068 1ea9 006e")

SUBMIT_SM = h("""
    0000003d 00000004 00000000 00000002
    00
    05 00 4c4f4100
    01 01 383439313233343536373800
    40 00 00
    00
    00
    01 00 08 00
    0e
    05 00 03 2a 02 01 004b 0068 1ea9 006e
""")  # 16 + service_type 1 + 2 + "LOA\0" 4 + 2 + 12 + 3 + 1 + 1 + 4 + sm_length 1 + 14 = 61

SUBMIT_SM_FIELDS = ShortMessage(
    destination_addr="84912345678", short_message=KHAN_UDH, source_addr="LOA",
    source_addr_ton=pdu.TON_ALPHANUMERIC, source_addr_npi=0, esm_class=pdu.ESM_UDHI,
    registered_delivery=1, data_coding=8)

SUBMIT_SM_RESP = h("00000019 80000004 00000000 00000002  3566336139633031 00")
GENERIC_NACK = h("00000010 80000000 00000003 00000007")
DELIVER_SM_RESP = h("00000011 80000005 00000000 00000009 00")
BIND_TRX_RESP = h("0000001a 80000009 00000000 00000001  534d534300  0210 0001 34")
BIND_TRX_RESP_ERR = h("00000010 80000009 0000000e 00000001")

# A TLV-only receipt: empty short_message, receipted_message_id, message_state (5 UNDELIV) and
# network_error_code (type 3 GSM, error 0x0022)
DELIVER_SM_RECEIPT = h("""
    00000048 00000005 00000000 0000000b
    00
    01 01 383439313233343536373800
    05 00 4c4f4100
    04 00 00
    00
    00
    00 00 00 00
    00
    001e 0009 356633613963303100
    0427 0001 05
    0423 0003 03 0022
""")  # 16 + 1 + 14 + 6 + 3 + 1 + 1 + 4 + sm_length 1 + TLVs 13 + 5 + 7 = 72


def test_bind_transceiver_bytes() -> None:
    bind = Bind(system_id="loa", password="secret", system_type="", interface_version=0x34)
    data = pdu.encode_bind(pdu.BIND_TRANSCEIVER, 1, bind)
    assert data == BIND_TRX
    assert len(data) == 32
    assert pdu.parse_bind(data[16:]) == bind


def test_bind_with_address_range() -> None:
    bind = Bind(system_id="loa", password="secret", system_type="SMS", addr_ton=5, addr_npi=0,
                address_range="LOA")
    data = pdu.encode_bind(pdu.BIND_TRANSMITTER, 0x7FFFFFFF, bind)
    assert data == h("""
        00000026 00000002 00000000 7fffffff
        6c6f6100 73656372657400 534d5300 34 05 00 4c4f4100
    """)
    assert pdu.parse_bind(data[16:]) == bind


@pytest.mark.parametrize(("field", "value"), [
    ("system_id", "x" * 16), ("password", "123456789"), ("system_type", "t" * 13),
    ("address_range", "1" * 41),
])
def test_bind_fields_over_their_limit(field: str, value: str) -> None:
    bind = msgspec.structs.replace(Bind(system_id="loa", password="secret"), **{field: value})
    with pytest.raises(PduError, match=field):
        pdu.encode_bind(pdu.BIND_TRANSCEIVER, 1, bind)


def test_bind_fields_at_their_limit() -> None:
    bind = Bind(system_id="s" * 15, password="p" * 8, system_type="t" * 12,
                address_range="a" * 40)
    data = pdu.encode_bind(pdu.BIND_TRANSCEIVER, 1, bind)
    assert struct.unpack(">I", data[:4])[0] == len(data) == 16 + 16 + 9 + 13 + 3 + 41
    assert pdu.parse_bind(data[16:]) == bind


def test_bind_resp_bytes() -> None:
    assert pdu.encode_bind_resp(pdu.BIND_TRANSCEIVER, 1, "SMSC") == BIND_TRX_RESP
    assert pdu.parse_bind_resp(BIND_TRX_RESP[16:]) == "SMSC"
    assert pdu.encode_bind_resp(pdu.BIND_TRANSCEIVER, 1, "SMSC", status=0x0E) == BIND_TRX_RESP_ERR
    assert pdu.parse_bind_resp(b"") == ""


def test_enquire_link_bytes() -> None:
    data = pdu.encode(pdu.ENQUIRE_LINK, 1)
    assert data == ENQUIRE_LINK
    assert len(data) == 16
    assert Framer().feed(data) == [(Header(pdu.ENQUIRE_LINK, 0, 1), b"")]
    assert pdu.encode(pdu.ENQUIRE_LINK | pdu.RESP, 1) == h("00000010 80000015 00000000 00000001")


def test_submit_sm_brandname_ucs2_udh_bytes() -> None:
    assert concat_udh(0x2A, 2, 1) + ucs2_encode("Khẩn") == KHAN_UDH
    data = pdu.encode_short_message(pdu.SUBMIT_SM, 2, SUBMIT_SM_FIELDS)
    assert data == SUBMIT_SM
    assert len(data) == 0x3D
    [(header, body)] = Framer().feed(data)
    assert header == Header(pdu.SUBMIT_SM, 0, 2)
    assert pdu.parse_short_message(body) == SUBMIT_SM_FIELDS


def test_submit_template_is_byte_identical() -> None:
    template = SubmitTemplate(source_addr="LOA", source_addr_ton=pdu.TON_ALPHANUMERIC,
                              source_addr_npi=0, esm_class=pdu.ESM_UDHI, data_coding=8)
    assert template.encode(2, "84912345678", KHAN_UDH) == SUBMIT_SM


@settings(max_examples=200)
@given(
    source=st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20),
    ton=st.integers(0, 255), npi=st.integers(0, 255), esm_class=st.integers(0, 255),
    data_coding=st.integers(0, 255), registered=st.integers(0, 255),
    validity=st.text(st.characters(min_codepoint=0x30, max_codepoint=0x39), max_size=16),
    service_type=st.text(st.characters(min_codepoint=0x41, max_codepoint=0x5A), max_size=5),
    seq=st.integers(0, 0xFFFFFFFF),
    destination=st.text(st.characters(min_codepoint=0x30, max_codepoint=0x39), max_size=20),
    payload=st.binary(max_size=254),
)
def test_submit_template_matches_encode_short_message(
        source: str, ton: int, npi: int, esm_class: int, data_coding: int, registered: int,
        validity: str, service_type: str, seq: int, destination: str, payload: bytes) -> None:
    template = SubmitTemplate(source_addr=source, source_addr_ton=ton, source_addr_npi=npi,
                              esm_class=esm_class, data_coding=data_coding,
                              registered_delivery=registered, validity_period=validity,
                              service_type=service_type)
    fields = ShortMessage(destination_addr=destination, short_message=payload,
                          source_addr=source, source_addr_ton=ton, source_addr_npi=npi,
                          service_type=service_type, esm_class=esm_class,
                          validity_period=validity, registered_delivery=registered,
                          data_coding=data_coding)
    assert template.encode(seq, destination, payload) == pdu.encode_short_message(
        pdu.SUBMIT_SM, seq, fields)
    # the payload of the last call is remembered: another one, then the first again
    other = payload + b"x" if len(payload) < 254 else payload[:-1]
    assert template.encode(seq, destination, other) == pdu.encode_short_message(
        pdu.SUBMIT_SM, seq, msgspec.structs.replace(fields, short_message=other))
    assert template.encode(seq, destination, payload) == pdu.encode_short_message(
        pdu.SUBMIT_SM, seq, fields)


def test_submit_sm_limits() -> None:
    with pytest.raises(PduError, match="254"):
        pdu.encode_short_message(pdu.SUBMIT_SM, 1, ShortMessage("849", short_message=b"x" * 255))
    with pytest.raises(PduError, match="source_addr"):
        pdu.encode_short_message(pdu.SUBMIT_SM, 1, ShortMessage("849", source_addr="1" * 21))
    with pytest.raises(PduError, match="destination_addr"):
        pdu.encode_short_message(pdu.SUBMIT_SM, 1, ShortMessage("8" * 21))
    with pytest.raises(PduError, match="service_type"):
        pdu.encode_short_message(pdu.SUBMIT_SM, 1, ShortMessage("849", service_type="CMTxxx"))
    full = ShortMessage("8" * 20, short_message=b"x" * 254, source_addr="1" * 20)
    data = pdu.encode_short_message(pdu.SUBMIT_SM, 1, full)
    assert pdu.parse_short_message(data[16:]) == full


def test_submit_sm_resp_bytes() -> None:
    assert pdu.encode_submit_sm_resp(2, "5f3a9c01") == SUBMIT_SM_RESP
    [(header, body)] = Framer().feed(SUBMIT_SM_RESP)
    assert header == Header(pdu.SUBMIT_SM | pdu.RESP, 0, 2)
    assert pdu.parse_message_id(body) == "5f3a9c01"
    # an error response has no body
    throttled = pdu.encode_submit_sm_resp(3, "ignored", status=0x58)
    assert throttled == h("00000010 80000004 00000058 00000003")
    assert pdu.parse_message_id(throttled[16:]) == ""


def test_message_id_of_64_octets_and_over() -> None:
    assert pdu.parse_message_id(b"a" * 64 + b"\0") == "a" * 64
    with pytest.raises(PduError, match="message_id"):
        pdu.parse_message_id(b"a" * 65 + b"\0")
    with pytest.raises(PduError):
        pdu.parse_message_id(b"abc")  # no NUL


def test_generic_nack_bytes() -> None:
    assert pdu.encode_generic_nack(7, 0x03) == GENERIC_NACK
    assert Framer().feed(GENERIC_NACK) == [(Header(pdu.GENERIC_NACK, 0x03, 7), b"")]


def test_deliver_sm_resp_bytes() -> None:
    assert pdu.encode_deliver_sm_resp(9) == DELIVER_SM_RESP


def test_deliver_sm_receipt_tlvs_parse() -> None:
    assert struct.unpack(">I", DELIVER_SM_RECEIPT[:4])[0] == len(DELIVER_SM_RECEIPT) == 72
    [(header, body)] = Framer().feed(DELIVER_SM_RECEIPT)
    assert header == Header(pdu.DELIVER_SM, 0, 11)
    m = pdu.parse_short_message(body)
    assert m.esm_class & pdu.ESM_TYPE_MASK == pdu.ESM_RECEIPT
    assert (m.source_addr, m.source_addr_ton, m.source_addr_npi) == ("84912345678", 1, 1)
    assert (m.destination_addr, m.dest_addr_ton, m.dest_addr_npi) == ("LOA", 5, 0)
    assert m.short_message == b""
    assert m.tlvs == {
        pdu.TLV_RECEIPTED_MESSAGE_ID: b"5f3a9c01\0",
        pdu.TLV_MESSAGE_STATE: b"\x05",
        pdu.TLV_NETWORK_ERROR_CODE: b"\x03\x00\x22",
    }
    # and the encoder writes the same bytes back
    assert pdu.encode_short_message(pdu.DELIVER_SM, 11, m) == DELIVER_SM_RECEIPT


def test_tlvs() -> None:
    tlvs = {0x001E: b"abc\0", 0x0427: b"\x02", 0x1400: b""}
    data = pdu.encode_tlvs(tlvs)
    assert data == h("001e 0004 61626300  0427 0001 02  1400 0000")
    assert pdu.parse_tlvs(data) == tlvs
    assert pdu.parse_tlvs(b"") == {}
    with pytest.raises(PduError, match="truncated"):
        pdu.parse_tlvs(h("0427 00"))
    with pytest.raises(PduError, match="longer"):
        pdu.parse_tlvs(h("0427 0002 05"))


def test_truncated_bodies() -> None:
    for cut in range(len(SUBMIT_SM) - 16):  # short_message is last: every cut is short
        with pytest.raises(PduError):
            pdu.parse_short_message(SUBMIT_SM[16:16 + cut])
    for cut in range(len(BIND_TRX) - 16):
        with pytest.raises(PduError):
            pdu.parse_bind(BIND_TRX[16:16 + cut])


def test_c_string_without_nul_within_its_limit() -> None:
    rest = SUBMIT_SM[16 + 7:]  # the body after service_type, source TON/NPI and "LOA\0"
    # source_addr is at most 20 octets and its NUL: 21 octets before the NUL are refused
    with pytest.raises(PduError, match="source_addr"):
        pdu.parse_short_message(b"\0\x05\x00" + b"A" * 21 + b"\0" + rest)
    assert pdu.parse_short_message(b"\0\x05\x00" + b"A" * 20 + b"\0" + rest).source_addr == "A" * 20


# -- framer -------------------------------------------------------------------------------------

STREAM = [ENQUIRE_LINK, SUBMIT_SM, SUBMIT_SM_RESP, GENERIC_NACK, DELIVER_SM_RECEIPT, BIND_TRX]


def _expected(pdus: list[bytes]) -> list[tuple[Header, bytes]]:
    out = []
    for data in pdus:
        _, command_id, status, seq = pdu.HEADER.unpack_from(data)
        out.append((Header(command_id, status, seq), data[16:]))
    return out


def test_framer_one_byte_at_a_time() -> None:
    framer = Framer()
    found: list[tuple[Header, bytes]] = []
    stream = b"".join(STREAM)
    for i in range(len(stream)):
        found += framer.feed(stream[i:i + 1])
    assert found == _expected(STREAM)
    assert framer.pending == 0


def test_framer_several_pdus_in_one_chunk() -> None:
    framer = Framer()
    assert framer.feed(b"".join(STREAM)) == _expected(STREAM)
    assert framer.pending == 0


def test_framer_pdu_split_across_chunks() -> None:
    framer = Framer()
    stream = b"".join(STREAM[:3])
    cut = len(ENQUIRE_LINK) + 20  # inside the submit_sm body
    assert framer.feed(stream[:cut]) == _expected(STREAM[:1])
    assert framer.pending == 20
    assert framer.feed(stream[cut:cut + 30]) == []
    assert framer.feed(stream[cut + 30:]) == _expected(STREAM[1:3])
    assert framer.pending == 0
    # a header split in the middle
    assert framer.feed(GENERIC_NACK[:7]) == []
    assert framer.pending == 7
    assert framer.feed(GENERIC_NACK[7:]) == _expected([GENERIC_NACK])


@pytest.mark.parametrize("length", [0, 1, 15, pdu.MAX_PDU + 1, 0xFFFFFFFF])
def test_framer_refuses_command_length(length: int) -> None:
    with pytest.raises(PduError, match="command_length"):
        Framer().feed(struct.pack(">IIII", length, pdu.ENQUIRE_LINK, 0, 1))


def test_framer_max_pdu() -> None:
    framer = Framer(max_pdu=64)
    assert framer.feed(SUBMIT_SM) == _expected([SUBMIT_SM])  # 61 octets
    with pytest.raises(PduError):
        framer.feed(struct.pack(">IIII", 65, pdu.SUBMIT_SM, 0, 1))
    # a whole 16-octet header is needed before the length is judged
    assert Framer().feed(struct.pack(">I", 3)) == []


# -- properties ---------------------------------------------------------------------------------


def cstrings(max_size: int) -> st.SearchStrategy[str]:
    """C-octet strings as SMPP allows them: latin-1 without NUL, up to max_size octets."""
    return st.text(st.characters(min_codepoint=1, max_codepoint=255), max_size=max_size)


octets = st.integers(0, 255)
tlv_dicts = st.dictionaries(st.integers(0, 0xFFFF), st.binary(max_size=70), max_size=4)

short_messages = st.builds(
    ShortMessage,
    destination_addr=cstrings(20), short_message=st.binary(max_size=254),
    source_addr=cstrings(20), source_addr_ton=octets, source_addr_npi=octets,
    dest_addr_ton=octets, dest_addr_npi=octets, service_type=cstrings(5), esm_class=octets,
    protocol_id=octets, priority_flag=octets, schedule_delivery_time=cstrings(16),
    validity_period=cstrings(16), registered_delivery=octets, replace_if_present_flag=octets,
    data_coding=octets, sm_default_msg_id=octets, tlvs=tlv_dicts)

binds = st.builds(
    Bind, system_id=cstrings(15), password=cstrings(8), system_type=cstrings(12),
    interface_version=octets, addr_ton=octets, addr_npi=octets, address_range=cstrings(40))


@settings(max_examples=500)
@given(short_messages, st.sampled_from([pdu.SUBMIT_SM, pdu.DELIVER_SM]),
       st.integers(0, 0xFFFFFFFF))
def test_short_message_round_trip(m: ShortMessage, command_id: int, seq: int) -> None:
    data = pdu.encode_short_message(command_id, seq, m)
    [(header, body)] = Framer().feed(data)
    assert header == Header(command_id, 0, seq)
    assert pdu.parse_short_message(body) == m


@settings(max_examples=300)
@given(binds, st.sampled_from(sorted(pdu.BINDS)), st.integers(0, 0xFFFFFFFF))
def test_bind_round_trip(bind: Bind, command_id: int, seq: int) -> None:
    data = pdu.encode_bind(command_id, seq, bind)
    [(header, body)] = Framer().feed(data)
    assert header == Header(command_id, 0, seq)
    assert pdu.parse_bind(body) == bind


@settings(max_examples=200)
@given(st.lists(short_messages, min_size=1, max_size=6), st.data())
def test_framer_any_cut(messages: list[ShortMessage], data: st.DataObject) -> None:
    pdus = [pdu.encode_short_message(pdu.SUBMIT_SM, i, m) for i, m in enumerate(messages)]
    stream = b"".join(pdus)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    framer = Framer()
    found: list[tuple[Header, bytes]] = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        found += framer.feed(stream[start:end])
    assert found == _expected(pdus)
    assert framer.pending == 0


@settings(max_examples=1000)
@given(st.binary(max_size=400))
def test_parsers_raise_only_pdu_error(data: bytes) -> None:
    for parse in (pdu.parse_short_message, pdu.parse_bind, pdu.parse_tlvs,
                  pdu.parse_message_id, pdu.parse_bind_resp):
        with contextlib.suppress(PduError):
            parse(data)


@settings(max_examples=500)
@given(short_messages)
def test_deliver_essentials_agree_with_the_full_parse(m: ShortMessage) -> None:
    body = pdu.encode_short_message(pdu.DELIVER_SM, 1, m)[16:]
    assert pdu.parse_deliver_essentials(body) == (m.esm_class, m.short_message, m.tlvs)


@settings(max_examples=1000)
@given(st.binary(max_size=400))
def test_deliver_essentials_raise_only_pdu_error(data: bytes) -> None:
    try:
        esm_class, text, tlvs = pdu.parse_deliver_essentials(data)
    except PduError:
        with pytest.raises(PduError):
            pdu.parse_short_message(data)
        return
    full = pdu.parse_short_message(data)
    assert (full.esm_class, full.short_message, full.tlvs) == (esm_class, text, tlvs)


def test_framer_frames_are_flat_and_keep_what_is_incomplete() -> None:
    framer = Framer()
    stream = b"".join(STREAM)
    assert framer.frames(stream[:-3]) == [(h.command_id, h.status, h.seq, b)
                                          for h, b in _expected(STREAM[:-1])]
    assert framer.pending == len(STREAM[-1]) - 3
    assert framer.frames(stream[-3:-1]) == [] and framer.pending == len(STREAM[-1]) - 1
    assert framer.feed(stream[-1:]) == _expected(STREAM[-1:]) and framer.pending == 0


@settings(max_examples=300)
@given(short_messages, st.integers(0, 300))
def test_parse_short_message_of_truncated_body(m: ShortMessage, cut: int) -> None:
    body = pdu.encode_short_message(pdu.SUBMIT_SM, 1, m)[16:]
    try:
        parsed = pdu.parse_short_message(body[:cut])
    except PduError:
        return
    # a cut inside the TLVs cannot parse; a cut at a TLV boundary drops the TLVs after it
    assert parsed.short_message == m.short_message
    assert parsed.tlvs.items() <= m.tlvs.items()


@settings(max_examples=500)
@given(st.lists(st.binary(max_size=80), max_size=20), st.integers(16, 200))
def test_framer_raises_only_pdu_error(chunks: list[bytes], max_pdu: int) -> None:
    framer = Framer(max_pdu=max_pdu)
    for chunk in chunks:
        try:
            for header, body in framer.feed(chunk):
                assert len(body) <= max_pdu - 16
                assert 0 <= header.command_id <= 0xFFFFFFFF
        except PduError:
            return
