"""Tests of adapters.smpp.receipt: delivery receipts from the text (SMPP 3.4 appendix B), from
TLVs, or both; malformed receipts raise ReceiptError and nothing else."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.base import Receipt as ChannelReceipt
from adapters.smpp import pdu, receipt
from adapters.smpp.receipt import (
    FINAL,
    STATE_BY_TLV,
    TLV_BY_STATE,
    Receipt,
    ReceiptError,
    format_receipt,
    parse_receipt,
)
from adapters.zalo.receipts import receipts as zalo_receipts
from adapters.zalo.webhook import DeliveryEvent
from dispatcher.engine.receipts import ReceiptMatcher
from dispatcher.store import Store
from dispatcher.store.base import Completion, Entry

SUBMITTED = dt.datetime(2026, 11, 26, 9, 30)
DONE = dt.datetime(2026, 11, 26, 9, 31, 7)

TEN = (b"id:5f3a9c01 sub:001 dlvrd:001 submit date:2611260930 done date:2611260931 "
       b"stat:DELIVRD err:000 text:Khan: o nha")
TWELVE = (b"id:0A1B2C3D4E sub:001 dlvrd:000 submit date:261126093000 done date:261126093107 "
          b"stat:UNDELIV err:034 text:")


def test_ten_digit_dates() -> None:
    r = parse_receipt(TEN, {})
    assert r == Receipt(message_id="5f3a9c01", state="DELIVRD", error="000",
                        submitted=SUBMITTED, done=dt.datetime(2026, 11, 26, 9, 31))
    assert r.final and r.delivered


def test_twelve_digit_dates() -> None:
    r = parse_receipt(TWELVE, {})
    assert r == Receipt(message_id="0A1B2C3D4E", state="UNDELIV", error="034",
                        submitted=SUBMITTED, done=DONE)
    assert r.final and not r.delivered


@pytest.mark.parametrize("text", [
    b"ID:abc SUB:001 DLVRD:001 SUBMIT DATE:2611260930 DONE DATE:2611260931 STAT:DELIVRD "
    b"ERR:000 TEXT:hello",
    b"id:abc sub:001 dlvrd:001 Submit Date:2611260930 Done Date:2611260931 Stat:delivrd Err:000",
    b"id: abc sub: 001 dlvrd: 001 submit date: 2611260930 done date: 2611260931 stat: DELIVRD "
    b"err: 000 text: hello",
    b"id:abc  sub:001  dlvrd:001  submit date:2611260930  done date:2611260931  stat:DELIVRD  "
    b"err:000",
    b"id:abc sub:001 dlvrd:001 submit date:2611260930 done date:2611260931 stat:DELIVRD err:000 "
    b"Text:",
    # no space before a field (seen from some SMSCs), fields out of order
    b"stat:DELIVRD id:abc err:000 done date:2611260931submit date:2611260930",
])
def test_case_and_spacing(text: bytes) -> None:
    r = parse_receipt(text, {})
    assert (r.message_id, r.state, r.error) == ("abc", "DELIVRD", "000")
    assert r.submitted == SUBMITTED
    assert r.done == dt.datetime(2026, 11, 26, 9, 31)


@pytest.mark.parametrize("tail", [
    "text:Khẩn: ở nhà lúc 10:30",
    "text:id:zzz stat:EXPIRED err:999",
    "text:Covid: submit date:9999999999",
    "text:" + "a:b:" * 10,
])
def test_trailing_text_with_colons_or_vietnamese(tail: str) -> None:
    for data in (tail.encode("utf-8"), tail.encode("latin-1", "replace")):
        r = parse_receipt(b"id:abc sub:001 dlvrd:001 submit date:2611260930 done date:2611260931 "
                          b"stat:DELIVRD err:000 " + data, {})
        assert (r.message_id, r.state, r.error, r.submitted) == ("abc", "DELIVRD", "000",
                                                                   SUBMITTED)


def test_minimal_text() -> None:
    r = parse_receipt(b"id:1 stat:EXPIRED", {})
    assert r == Receipt(message_id="1", state="EXPIRED")
    assert r.submitted is None and r.done is None


def tlvs(message_id: str, state: int, **more: bytes) -> dict[int, bytes]:
    out = {pdu.TLV_RECEIPTED_MESSAGE_ID: message_id.encode() + b"\0",
           pdu.TLV_MESSAGE_STATE: bytes((state,))}
    if "network_error" in more:
        out[pdu.TLV_NETWORK_ERROR_CODE] = more["network_error"]
    return out


@pytest.mark.parametrize(("value", "state"), sorted(STATE_BY_TLV.items()))
def test_tlv_only(value: int, state: str) -> None:
    r = parse_receipt(b"", tlvs("5f3a9c01", value))
    assert r == Receipt(message_id="5f3a9c01", state=state)
    assert r.final == (state in FINAL)
    assert TLV_BY_STATE[state] == value


def test_tlv_only_from_a_deliver_sm() -> None:
    body = pdu.encode_short_message(pdu.DELIVER_SM, 1, pdu.ShortMessage(
        destination_addr="LOA", source_addr="84912345678", esm_class=pdu.ESM_RECEIPT,
        tlvs=tlvs("ABC", 2)))[16:]
    m = pdu.parse_short_message(body)
    assert parse_receipt(m.short_message, m.tlvs) == Receipt(message_id="ABC", state="DELIVRD")


def test_receipted_message_id_without_nul() -> None:
    r = parse_receipt(b"", {pdu.TLV_RECEIPTED_MESSAGE_ID: b"abc",
                            pdu.TLV_MESSAGE_STATE: b"\x05"})
    assert (r.message_id, r.state) == ("abc", "UNDELIV")


def test_unknown_message_state_value() -> None:
    assert parse_receipt(b"", tlvs("abc", 0x42)).state == "UNKNOWN"


def test_tlvs_win_over_text() -> None:
    r = parse_receipt(TEN, tlvs("FFEE", 5))
    assert (r.message_id, r.state) == ("FFEE", "UNDELIV")
    # the rest still comes from the text
    assert (r.error, r.submitted) == ("000", SUBMITTED)
    # only the id from the TLV, the state from the text
    r = parse_receipt(TEN, {pdu.TLV_RECEIPTED_MESSAGE_ID: b"FFEE\0"})
    assert (r.message_id, r.state) == ("FFEE", "DELIVRD")
    # a message_state of the wrong length is not a state
    r = parse_receipt(TEN, {pdu.TLV_MESSAGE_STATE: b"\x05\x00"})
    assert (r.message_id, r.state) == ("5f3a9c01", "DELIVRD")


def test_empty_receipted_message_id_does_not_hide_the_text_id() -> None:
    r = parse_receipt(TEN, {pdu.TLV_RECEIPTED_MESSAGE_ID: b"\0"})
    assert r.message_id == "5f3a9c01"
    with pytest.raises(ReceiptError, match="message id"):
        parse_receipt(b"", {pdu.TLV_RECEIPTED_MESSAGE_ID: b"\0", pdu.TLV_MESSAGE_STATE: b"\x02"})


def test_network_error_code() -> None:
    r = parse_receipt(b"", tlvs("abc", 5, network_error=b"\x03\x00\x22"))
    assert (r.state, r.error) == ("UNDELIV", "34")
    r = parse_receipt(b"", tlvs("abc", 5, network_error=b"\x01\x01\x00"))
    assert r.error == "256"
    # the text's err: comes first; a network_error_code of the wrong length is ignored
    assert parse_receipt(TEN, tlvs("abc", 5, network_error=b"\x03\x00\x22")).error == "000"
    assert parse_receipt(b"", tlvs("abc", 5, network_error=b"\x03\x22")).error == ""


@pytest.mark.parametrize(("text", "tlv", "match"), [
    (b"sub:001 dlvrd:001 stat:DELIVRD err:000", {}, "message id"),
    (b"id: stat:DELIVRD", {}, "message id"),
    (b"id:abc sub:001 dlvrd:001 err:000 text:x", {}, "state"),
    (b"id:abc stat:", {}, "state"),
    (b"", {}, "message id"),
    (b"hello, not a receipt", {}, "message id"),
    (b"", {pdu.TLV_RECEIPTED_MESSAGE_ID: b"abc\0"}, "state"),
    (b"", {pdu.TLV_MESSAGE_STATE: b"\x02"}, "message id"),
    (b"id:abc stat:DELIVRD submit date:2611", {}, "2611"),
    (b"id:abc stat:DELIVRD done date:2611260930123", {}, "2611260930123"),
    (b"id:abc stat:DELIVRD submit date:26112609", {}, "date"),
    (b"id:abc stat:DELIVRD submit date:26112609xx", {}, "date"),
    (b"id:abc stat:DELIVRD submit date:2613260930", {}, "not a date"),  # month 13
    (b"id:abc stat:DELIVRD done date:2602300930", {}, "not a date"),  # 30 February
    (b"id:abc stat:DELIVRD done date:2611262460", {}, "not a date"),  # 24:60
    (b"id:abc stat:DELIVRD done date:\xb2\xb2\xb3\xb3\xb3\xb3\xb3\xb3\xb3\xb3", {}, "date"),
])
def test_malformed(text: bytes, tlv: dict[int, bytes], match: str) -> None:
    with pytest.raises(ReceiptError, match=match):
        parse_receipt(text, tlv)


def test_receipt_error_is_a_value_error() -> None:
    assert issubclass(ReceiptError, ValueError)


RECEIPTISH = st.one_of(
    st.binary(max_size=200),
    st.lists(st.sampled_from([
        b"id:", b"sub:", b"dlvrd:", b"submit date:", b"done date:", b"stat:", b"err:", b"text:",
        b"Stat:", b"SUBMIT DATE:", b" ", b"abc", b"DELIVRD", b"2611260930", b"261126093000",
        b"2611", b"9999999999", b"\xb2\xb3", b"\0", b":",
    ]), max_size=20).map(b"".join),
)
TLV_DICTS = st.dictionaries(
    st.one_of(st.sampled_from([pdu.TLV_RECEIPTED_MESSAGE_ID, pdu.TLV_MESSAGE_STATE,
                               pdu.TLV_NETWORK_ERROR_CODE]), st.integers(0, 0xFFFF)),
    st.binary(max_size=12), max_size=4)


@settings(max_examples=2000)
@given(RECEIPTISH, TLV_DICTS)
def test_only_receipt_error(text: bytes, tlv: dict[int, bytes]) -> None:
    try:
        r = parse_receipt(text, tlv)
    except ReceiptError:
        return
    assert isinstance(r, Receipt)
    assert r.message_id and r.state


STATES = ["DELIVRD", "EXPIRED", "DELETED", "UNDELIV", "ACCEPTD", "UNKNOWN", "REJECTD", "ENROUTE",
          "SKIPPED"]


@pytest.mark.parametrize("seconds", [False, True])
@pytest.mark.parametrize("state", STATES)
def test_format_parse_round_trip(state: str, seconds: bool) -> None:
    text = format_receipt("5f3a9c01", state, submitted=SUBMITTED, done=DONE, error="034",
                          seconds=seconds, text="Khẩn: ở nhà")
    date = text.split(b"submit date:")[1].split(b" ")[0]
    assert len(date) == (12 if seconds else 10)
    r = parse_receipt(text, {})
    assert r == Receipt(message_id="5f3a9c01", state=state, error="034", submitted=SUBMITTED,
                        done=DONE if seconds else DONE.replace(second=0))
    assert r.final == (state in FINAL)
    assert r.delivered == (state == "DELIVRD")


@settings(max_examples=300)
@given(
    message_id=st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E,
                                     exclude_characters=":"), min_size=1, max_size=64),
    state=st.sampled_from(STATES),
    submitted=st.datetimes(dt.datetime(2000, 1, 1), dt.datetime(2068, 12, 31)),
    done=st.datetimes(dt.datetime(2000, 1, 1), dt.datetime(2068, 12, 31)),
    error=st.from_regex(r"[0-9]{3}", fullmatch=True),
    seconds=st.booleans(),
    text=st.text(max_size=30),
)
def test_format_parse_round_trip_any(message_id: str, state: str, submitted: dt.datetime,
                                     done: dt.datetime, error: str, seconds: bool,
                                     text: str) -> None:
    data = format_receipt(message_id, state, submitted=submitted, done=done, error=error,
                          seconds=seconds, text=text)
    r = parse_receipt(data, {})
    def unit(when: dt.datetime) -> dt.datetime:
        return when.replace(microsecond=0) if seconds else when.replace(second=0, microsecond=0)

    assert r.message_id == message_id
    assert (r.state, r.error) == (state, error)
    assert r.submitted == unit(submitted)
    assert r.done == unit(done)


def _read_in_one_match(data: bytes) -> Receipt | str:
    """What parse_receipt gives with no TLVs, by the whole-text match alone (or the error)."""
    text = data.decode("latin-1")
    standard = receipt._STANDARD.match(text)
    if standard is not None:
        message_id, submitted, done, state, error = standard.groups()
    else:
        fields = receipt._fields(text) if text else {}
        message_id, submitted, done, state, error = (
            fields.get(k, "") for k in ("id", "submit date", "done date", "stat", "err"))
    try:
        if not message_id or not state:
            raise ReceiptError("no id or no state")
        return Receipt(message_id, state.upper(), error, receipt._date(submitted),
                       receipt._date(done))
    except ReceiptError:
        return "error"


@settings(max_examples=500)
@given(message_id=st.text(st.characters(max_codepoint=0xFF), max_size=12),
       rest=st.sampled_from([
           "sub:001 dlvrd:001 submit date:2611261635 done date:2611261636 stat:DELIVRD err:000 "
           "text:Khan", "sub:001 dlvrd:000 submit date:2611261635 done date:2611261636 "
           "stat:undeliv err:001", "sub:1 dlvrd:0 submit date: done date: stat:ENROUTE err:",
           "sub:001  dlvrd:001 submit date:2611261635 done date:2611261636 stat:DELIVRD err:0",
           "stat:DELIVRD", "", "sub:001 dlvrd:001 submit date:26112616 done date:x stat:X err:0"])
       | st.text(st.characters(max_codepoint=0xFF), max_size=40))
def test_the_usual_shape_reads_as_the_whole_text_match(message_id: str, rest: str) -> None:
    data = f"id:{message_id} {rest}".encode("latin-1")
    try:
        got: Receipt | str = parse_receipt(data, {})
    except ReceiptError:
        got = "error"
    assert got == _read_in_one_match(data)


def test_final_and_delivered() -> None:
    assert Receipt("a", "DELIVRD").final and Receipt("a", "DELIVRD").delivered
    for state in ("EXPIRED", "DELETED", "UNDELIV", "REJECTD", "UNKNOWN", "SKIPPED"):
        assert Receipt("a", state).final
        assert not Receipt("a", state).delivered
    for state in ("ENROUTE", "ACCEPTD"):
        assert not Receipt("a", state).final
        assert not Receipt("a", state).delivered


async def test_both_channels_hand_the_engine_the_same_receipt_type(store: Store) -> None:
    """An SMSC's deliver_sm and Zalo's delivery event both become ``adapters.base.Receipt``
    (each with what its channel knows besides), and the matcher counts them alike."""
    sms = parse_receipt(TEN, {})
    zalo = zalo_receipts([DeliveryEvent("z-1", "w:84912345678", 1.0, delivered_at=2.0),
                          DeliveryEvent("", "w:84912345679", 1.0)])  # no msg_id: no receipt
    assert isinstance(sms, ChannelReceipt) and sms.error == "000"
    assert [(r.message_id, r.state, r.delivered_at) for r in zalo] == [("z-1", "DELIVRD", 2.0)]
    assert all(isinstance(r, ChannelReceipt) for r in zalo)
    await store.queue.enqueue("sms.x", "w", 0, [])
    await store.queue.complete("sms.x", Entry("0-1"), Completion(
        remote={"5f3a9c01": ("w", 1, 0), "z-1": ("w", 2, 0)}))
    matcher = ReceiptMatcher(store, hold_seconds=0.0)
    matcher.add([sms, *zalo])
    await matcher.match_now()
    assert (matcher.stats.received, matcher.stats.matched) == (2, 2)
    assert (await store.waves.progress("w")).get("delivered") == 2
