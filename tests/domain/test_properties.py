"""Properties over hostile and arbitrary input: the SMPP codec (every PDU Loa writes or reads
round-trips; any bytes raise only PduError), the ESME session and the SMSC simulator fed any
bytes (each request answered, generic_nack for what they do not serve, a clean close on an
unreadable stream, never an exception), concatenated texts reassembled at the simulator in any
order, phone numbers and delivery receipts.

Each property runs a modest number of examples; its ``slow`` variant runs many more (CI)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import string
import struct
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.smpp import pdu
from adapters.smpp.pdu import Bind, Framer, PduError, ShortMessage, SubmitTemplate
from adapters.smpp.receipt import (
    TLV_BY_STATE,
    Receipt,
    ReceiptError,
    format_receipt,
    parse_receipt,
)
from adapters.smpp.session import BindConfig, EsmeSession, _Protocol
from adapters.smpp.simulator import Smsc, SmscConfig, _Conn
from dispatcher.domain import smstext
from dispatcher.domain.errors import NumberError, TextError
from dispatcher.domain.msisdn import load_numbering

NUMBERING = load_numbering()
RESP = pdu.RESP
U32 = st.integers(0, 0xFFFFFFFF)
OCTET = st.integers(0, 255)


def examples(fast: int) -> pytest.MarkDecorator:
    """Run a test twice: ``fast`` examples in ``make test``, twenty times more in the slow
    variant (CI)."""
    return pytest.mark.parametrize("n", [
        pytest.param(fast, id="fast"),
        pytest.param(fast * 10, id="slow", marks=pytest.mark.slow)])


def run(n: int, *strategies: st.SearchStrategy[Any]) -> Callable[[Callable[..., None]], None]:
    """Check the decorated function on ``n`` examples drawn from ``strategies`` (at once)."""
    def check(prop: Callable[..., None]) -> None:
        settings(max_examples=n, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])(
            given(*strategies)(prop))()
    return check


# -- strategies -----------------------------------------------------------------------------------


def cstrings(max_size: int) -> st.SearchStrategy[str]:
    """C-octet strings as SMPP allows them: latin-1 without NUL, up to ``max_size`` octets."""
    return st.text(st.characters(min_codepoint=1, max_codepoint=255), max_size=max_size)


tlv_dicts = st.dictionaries(st.integers(0, 0xFFFF), st.binary(max_size=40), max_size=3)
udh_payloads = st.builds(
    lambda ref, total, seq, body: smstext.concat_udh(ref, total, min(seq, total)) + body,
    OCTET, st.integers(1, 255), st.integers(1, 255), st.binary(max_size=140))
short_messages = st.builds(
    ShortMessage,
    destination_addr=cstrings(20), short_message=st.binary(max_size=254) | udh_payloads,
    source_addr=cstrings(20), source_addr_ton=OCTET, source_addr_npi=OCTET,
    dest_addr_ton=OCTET, dest_addr_npi=OCTET, service_type=cstrings(5),
    esm_class=st.sampled_from([0, pdu.ESM_UDHI, pdu.ESM_RECEIPT]) | OCTET, protocol_id=OCTET,
    priority_flag=OCTET, schedule_delivery_time=cstrings(16), validity_period=cstrings(16),
    registered_delivery=OCTET, replace_if_present_flag=OCTET, data_coding=OCTET,
    sm_default_msg_id=OCTET, tlvs=st.just({}) | tlv_dicts)
binds = st.builds(
    Bind, system_id=cstrings(15), password=cstrings(8), system_type=cstrings(12),
    interface_version=OCTET, addr_ton=OCTET, addr_npi=OCTET, address_range=cstrings(40))
message_ids = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1,
                      max_size=64)

# (PDU bytes, its header, a reading of its body, what that reading must give)
Case = tuple[bytes, tuple[int, int, int], Callable[[bytes], object], object]


def _cases() -> st.SearchStrategy[Case]:
    def short(cid: int, seq: int, m: ShortMessage) -> Case:
        return (pdu.encode_short_message(cid, seq, m), (cid, 0, seq), pdu.parse_short_message, m)

    def deliver_essentials(seq: int, m: ShortMessage) -> Case:
        return (pdu.encode_short_message(pdu.DELIVER_SM, seq, m), (pdu.DELIVER_SM, 0, seq),
                pdu.parse_deliver_essentials, (m.esm_class, m.short_message, m.tlvs))

    def bind(cid: int, seq: int, b: Bind) -> Case:
        return pdu.encode_bind(cid, seq, b), (cid, 0, seq), pdu.parse_bind, b

    def bind_resp(cid: int, seq: int, system_id: str, status: int) -> Case:
        return (pdu.encode_bind_resp(cid, seq, system_id, status), (cid | RESP, status, seq),
                pdu.parse_bind_resp, system_id if status == 0 else "")

    def submit_resp(seq: int, message_id: str, status: int) -> Case:
        return (pdu.encode_submit_sm_resp(seq, message_id, status),
                (pdu.SUBMIT_SM | RESP, status, seq), pdu.parse_message_id,
                message_id if status == 0 else "")

    def template(seq: int, m: ShortMessage, destination: str) -> Case:
        t = SubmitTemplate(source_addr=m.source_addr, source_addr_ton=m.source_addr_ton,
                           source_addr_npi=m.source_addr_npi, esm_class=m.esm_class,
                           data_coding=m.data_coding, registered_delivery=m.registered_delivery,
                           validity_period=m.validity_period, service_type=m.service_type)
        expected = ShortMessage(
            destination_addr=destination, short_message=m.short_message,
            source_addr=m.source_addr, source_addr_ton=m.source_addr_ton,
            source_addr_npi=m.source_addr_npi, service_type=m.service_type,
            esm_class=m.esm_class, validity_period=m.validity_period,
            registered_delivery=m.registered_delivery, data_coding=m.data_coding)
        return (t.encode(seq, destination, m.short_message), (pdu.SUBMIT_SM, 0, seq),
                pdu.parse_short_message, expected)

    def empty(cid: int, seq: int, status: int) -> Case:
        data = (pdu.encode_generic_nack(seq, status) if cid == pdu.GENERIC_NACK else
                pdu.encode_deliver_sm_resp(seq, status) if cid == pdu.DELIVER_SM | RESP else
                pdu.encode(cid, seq, b"", status))
        body = b"\0" if cid == pdu.DELIVER_SM | RESP else b""
        return data, (cid, status, seq), bytes, body

    return st.one_of(
        st.builds(short, st.sampled_from([pdu.SUBMIT_SM, pdu.DELIVER_SM]), U32, short_messages),
        st.builds(deliver_essentials, U32, short_messages),
        st.builds(bind, st.sampled_from(sorted(pdu.BINDS)), U32, binds),
        st.builds(bind_resp, st.sampled_from(sorted(pdu.BINDS)), U32, cstrings(15),
                  st.sampled_from([0, 0x0D, 0x0E]) | U32),
        st.builds(submit_resp, U32, message_ids, st.sampled_from([0, 0x58]) | U32),
        st.builds(template, U32, short_messages.filter(lambda m: m.short_message != b""),
                  st.text("0123456789", min_size=1, max_size=20)),
        st.builds(empty, st.sampled_from([pdu.ENQUIRE_LINK, pdu.ENQUIRE_LINK | RESP, pdu.UNBIND,
                                          pdu.UNBIND | RESP, pdu.GENERIC_NACK,
                                          pdu.DELIVER_SM | RESP]), U32, U32))


cases = _cases()


def raw_pdus() -> st.SearchStrategy[bytes]:
    """Well-framed PDUs of any command id, status and sequence number, with any body (often
    a real one): what a hostile peer sends that still frames."""
    bodies = st.binary(max_size=60) | cases.map(lambda c: c[0][16:])
    seqs = st.integers(0, 4) | U32
    ids = st.sampled_from(sorted(pdu.KNOWN | {c | RESP for c in pdu.KNOWN})) | U32
    return st.builds(lambda cid, status, seq, body: pdu.encode(cid, seq, body, status),
                     ids, st.sampled_from([0]) | U32, seqs, bodies)


def receipt_pdus() -> st.SearchStrategy[bytes]:
    """deliver_sm receipts, well-formed or not."""
    texts = st.builds(
        lambda mid, state: format_receipt(mid, state, submitted=dt.datetime(2026, 1, 2, 3, 4),
                                          done=dt.datetime(2026, 1, 2, 3, 5)),
        message_ids, st.sampled_from(sorted(TLV_BY_STATE))) | st.binary(max_size=80)
    return st.builds(
        lambda seq, text, esm: pdu.encode_short_message(
            pdu.DELIVER_SM, seq, ShortMessage(destination_addr="LOA", short_message=text[:254],
                                              esm_class=esm)),
        st.integers(0, 4) | U32, texts, st.sampled_from([pdu.ESM_RECEIPT, 0]))


bad_lengths = st.builds(lambda length, rest: struct.pack(">I", length) + rest,
                        st.integers(0, 15) | st.integers(pdu.MAX_PDU + 1, 0xFFFFFFFF)
                        | st.just(0x7FFFFFFF), st.binary(min_size=12, max_size=30))
streams = st.lists(cases.map(lambda c: c[0]) | raw_pdus() | receipt_pdus()
                   | st.binary(max_size=40) | bad_lengths, max_size=8).map(b"".join)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True) if b > a]


def read_stream(data: bytes) -> tuple[list[pdu.Frame], pdu.CommandLengthError | None]:
    """The frames of a byte stream up to where it cannot be read, and the error there."""
    framer = Framer()
    try:
        return framer.frames(data), framer.error
    except pdu.CommandLengthError as exc:
        return [], exc


# -- the codec ------------------------------------------------------------------------------------


@examples(100)
def test_every_pdu_round_trips(n: int) -> None:
    @run(n, cases, st.data())
    def _(case: Case, data: st.DataObject) -> None:
        encoded, header, read, expected = case
        cuts = data.draw(st.lists(st.integers(0, len(encoded)), max_size=4))
        framer = Framer()
        frames = [f for chunk in chunked(encoded, cuts) for f in framer.frames(chunk)]
        assert len(frames) == 1 and framer.pending == 0
        cid, status, seq, body = frames[0]
        assert (cid, status, seq) == header
        assert read(body) == expected


@examples(80)
def test_a_stream_of_pdus_and_garbage_raises_only_pdu_error(n: int) -> None:
    """Any bytes, cut anywhere: the framer gives the PDUs before an unreadable length, then
    raises PduError on every later call; it never holds more than it was given."""
    @run(n, streams, st.lists(st.integers(0, 600), max_size=6))
    def _(stream: bytes, cuts: list[int]) -> None:
        whole, error = read_stream(stream)
        framer = Framer()
        got: list[pdu.Frame] = []
        fed = 0
        for chunk in chunked(stream, cuts):
            fed += len(chunk)
            try:
                got += framer.frames(chunk)
            except PduError:
                break
            assert framer.pending <= fed
            for _cid, _status, _seq, body in got:
                for parse in (pdu.parse_short_message, pdu.parse_deliver_essentials,
                              pdu.parse_bind, pdu.parse_message_id, pdu.parse_bind_resp):
                    with contextlib.suppress(PduError):
                        parse(body)
        else:
            assert got == whole
            return
        assert got == whole and error is not None
        for more in (b"", pdu.encode(pdu.ENQUIRE_LINK, 1)):
            with pytest.raises(PduError):
                framer.frames(more)


def test_an_oversized_length_is_refused_from_its_header_alone() -> None:
    framer = Framer()
    with pytest.raises(PduError) as caught:
        framer.frames(struct.pack(">IIII", 0x7FFFFFFF, pdu.DELIVER_SM, 0, 1))
    assert isinstance(caught.value, pdu.CommandLengthError) and caught.value.oversized
    assert framer.pending <= 16
    with pytest.raises(PduError):  # and the stream stays unreadable
        framer.frames(pdu.encode(pdu.ENQUIRE_LINK, 2))


@examples(60)
def test_encoding_refuses_what_cannot_be_decoded_back(n: int) -> None:
    """A field SMPP cannot carry (a NUL inside a C-string, a character beyond latin-1, an
    over-long value) is refused with PduError when the PDU is built, never written wrong."""
    @run(n, st.text(max_size=20), st.dictionaries(st.integers(0, 0xFFFF),
                                                  st.binary(max_size=10), max_size=2))
    def _(text: str, tlvs: dict[int, bytes]) -> None:
        try:
            encoded = pdu.encode_bind(pdu.BIND_TRANSCEIVER, 1, Bind(system_id=text, password=""))
        except PduError:
            assert "\0" in text or len(text.encode("utf-8")) > 15 or not all(
                ord(c) < 256 for c in text)
        else:
            assert pdu.parse_bind(encoded[16:]).system_id == text
        m = ShortMessage(destination_addr=text, source_addr="LOA", tlvs=tlvs)
        try:
            encoded = pdu.encode_short_message(pdu.SUBMIT_SM, 1, m)
        except PduError:
            return
        assert pdu.parse_short_message(encoded[16:]) == m


# -- the ESME session and the simulator, fed any bytes -------------------------------------------


class Wire(asyncio.Transport):
    """The far end of a connection in memory: keeps what is written, and closes the way a
    transport does (``connection_lost`` on the next loop pass, or at once without a loop)."""

    def __init__(self, protocol: asyncio.Protocol,
                 loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__()
        self.protocol = protocol
        self.loop = loop
        self.out = bytearray()
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self.closed:
            self.out += data

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.loop is not None:
                self.loop.call_soon(self.protocol.connection_lost, None)

    def abort(self) -> None:
        self.close()

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def answers(data: bytes | bytearray) -> list[tuple[int, int, int]]:
    """(command_id, status, seq) of every PDU in ``data``, which must be a readable stream."""
    frames, error = read_stream(bytes(data))
    assert error is None
    return [(cid, status, seq) for cid, status, seq, _ in frames]


SUBMIT_SEQS = (1, 2)  # the session's first sequence numbers go to two submit_sm


async def _feed_session(chunks: list[bytes]) -> tuple[EsmeSession, Wire, list[Receipt]]:
    loop = asyncio.get_running_loop()
    failures: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: failures.append(context))
    receipts: list[Receipt] = []
    session = EsmeSession(BindConfig(host="127.0.0.1", port=9, system_id="loa", window=4),
                          name="prop", on_receipt=receipts.extend)
    proto = _Protocol(session)
    session._proto = proto
    wire = Wire(proto, loop)
    proto.connection_made(wire)
    session.bound.set()
    template = SubmitTemplate(source_addr="LOA", source_addr_ton=5, source_addr_npi=0,
                              esm_class=0, data_coding=0)
    submit = asyncio.create_task(session.submit(template, [(0, "84912345678", b"a"),
                                                           (1, "84912345679", b"b")]))
    control = asyncio.create_task(session._request(pdu.ENQUIRE_LINK))
    await asyncio.sleep(0)
    try:
        for chunk in chunks:
            if wire.closed:
                break
            proto.data_received(chunk)
            await asyncio.sleep(0)
        for _ in range(3):
            await asyncio.sleep(0)
        if wire.closed:  # closed: nothing may wait any more
            assert submit.done() and control.done()
    finally:
        for task in (submit, control):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await task
    assert failures == []
    return session, wire, receipts


@examples(80)
def test_the_esme_answers_or_hangs_up_on_any_bytes(n: int) -> None:
    """Whatever the SMSC sends: every deliver_sm gets deliver_sm_resp, every request the ESME
    does not serve generic_nack (0x03), a response gets nothing; an unreadable length closes
    the connection at once and is counted; no exception escapes, nothing waits for ever."""
    @run(n, streams, st.lists(st.integers(0, 600), max_size=5))
    def _(stream: bytes, cuts: list[int]) -> None:
        session, wire, receipts = asyncio.run(_feed_session(chunked(stream, cuts)))
        frames, error = read_stream(stream)
        sent = answers(wire.out)
        expected: list[tuple[int, int]] = []
        unknown = 0
        for cid, _status, seq, _body in frames:
            if cid in (pdu.DELIVER_SM, pdu.DATA_SM):  # a receipt or a subscriber's message
                expected.append((cid | RESP, seq))
            elif cid in (pdu.ENQUIRE_LINK, pdu.UNBIND):
                expected.append((cid | RESP, seq))
                if cid == pdu.UNBIND:
                    break
            elif not cid & RESP:
                expected.append((pdu.GENERIC_NACK, seq))
                unknown += cid not in pdu.KNOWN
        requests = [(cid, seq) for cid, _, seq in sent
                    if cid not in (pdu.SUBMIT_SM, pdu.ENQUIRE_LINK)]
        assert requests == expected
        assert all(status == 0x03 for cid, status, _ in sent if cid == pdu.GENERIC_NACK)
        stats = session.stats
        if error is not None and not any(cid == pdu.UNBIND for cid, *_ in frames):
            assert wire.closed
            assert stats.oversized == error.oversized  # the one bad length of the stream
            assert stats.malformed >= (not error.oversized)
        assert stats.unknown_commands >= unknown
        assert all(r.message_id and r.state for r in receipts)


def _conn(smsc: Smsc) -> tuple[_Conn, Wire]:
    conn = _Conn(smsc)
    wire = Wire(conn)
    conn.connection_made(wire)
    return conn, wire


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def logged_errors(name: str) -> Iterator[list[logging.LogRecord]]:
    handler = _Errors()
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)


BIND = pdu.encode_bind(pdu.BIND_TRANSCEIVER, 1, Bind(system_id="loa", password="pw"))


@examples(80)
def test_the_simulator_answers_every_request_or_hangs_up_on_any_bytes(n: int) -> None:
    @run(n, st.booleans(), streams, st.lists(st.integers(0, 600), max_size=5))
    def _(bound: bool, stream: bytes, cuts: list[int]) -> None:
        smsc = Smsc(SmscConfig(receipts=False))
        conn, wire = _conn(smsc)
        prefix = BIND if bound else b""
        with logged_errors("adapters.smpp.simulator") as errors:
            for chunk in [prefix, *chunked(stream, cuts)]:
                if conn.closing:
                    break
                conn.data_received(chunk)
        assert errors == []
        frames, error = read_stream(prefix + stream)
        sent = answers(wire.out)
        expected: list[int] = []
        for cid, _status, _seq, _body in frames:
            if cid & RESP:
                continue
            expected.append(cid | RESP if cid in (*pdu.BINDS, pdu.SUBMIT_SM, pdu.ENQUIRE_LINK,
                                                  pdu.UNBIND) else pdu.GENERIC_NACK)
            if cid == pdu.UNBIND:
                break
        else:
            if error is not None:
                expected.append(pdu.GENERIC_NACK)  # ESME_RINVCMDLEN, then the hang-up
                assert wire.closed and smsc.stats.malformed >= 1
        assert [cid for cid, _, _ in sent] == expected


# -- concatenated texts, reassembled at the simulator ---------------------------------------------

GSM_TEXT = st.text(st.sampled_from(sorted(set(smstext.GSM7_BASIC) - {"\x1b"}
                                          | set(smstext.GSM7_EXTENSION))), min_size=1,
                   max_size=700)
VI_TEXT = st.text(st.sampled_from("aăâbcdđeêghiklmnoôơpqrstuưvxyàảãáạằẳẵắặầẩẫấậèẻẽéẹềểễếệ"
                                  "ìỉĩíịòỏõóọồổỗốộờởỡớợùủũúụừửữứựỳỷỹýỵ ,.:KHẨN😀\u0301"),
                  min_size=1, max_size=400)
ANY_TEXT = st.text(min_size=1, max_size=500)


@examples(40)
def test_segmented_texts_are_reassembled_in_any_order(n: int) -> None:
    """segment() then the parts as submit_sm, in any order and cut anywhere, to the
    simulator: each destination gets its text once, whatever the alphabet and length."""
    @run(n, st.lists(GSM_TEXT | VI_TEXT | ANY_TEXT, min_size=1, max_size=3), st.booleans(),
         st.booleans(), st.randoms(use_true_random=False), st.lists(st.integers(0, 5000),
                                                                    max_size=6))
    def _(texts: list[str], ref16: bool, strip: bool, rnd: Any, cuts: list[int]) -> None:
        pdus: list[bytes] = []
        expected: dict[str, str] = {}
        for i, text in enumerate(texts):
            try:
                seg = smstext.segment(text, ref16=ref16, strip=strip)
            except TextError:
                assert not smstext.strip_diacritics(smstext.normalize(text)) if strip else False
                continue
            destination = f"8491234567{i}"
            expected[destination] = seg.text
            template = SubmitTemplate(
                source_addr="LOA", source_addr_ton=5, source_addr_npi=0,
                esm_class=pdu.ESM_UDHI if len(seg.parts) > 1 else 0,
                data_coding=seg.data_coding)
            ref = rnd.randrange(0x10000 if ref16 else 0x100)
            pdus += [template.encode(len(pdus) + k + 1, destination, payload)
                     for k, payload in enumerate(smstext.encode_parts(seg, ref))]
        rnd.shuffle(pdus)
        smsc = Smsc(SmscConfig(receipts=False, keep_texts=True))
        conn, wire = _conn(smsc)
        for chunk in [BIND, *chunked(b"".join(pdus), cuts)]:
            conn.data_received(chunk)
        assert not wire.closed
        assert all(status == 0 for _, status, _ in answers(wire.out))
        assert smsc.texts == {d: [t] for d, t in expected.items()}
        assert smsc.stats.duplicates == 0 and smsc.stats.messages == len(expected)


def test_a_text_over_255_parts_is_a_clear_error() -> None:
    with pytest.raises(TextError, match="too long"):
        smstext.segment("😀" * (255 * 33 + 1))


# -- phone numbers --------------------------------------------------------------------------------

PREFIXES = sorted(NUMBERING.prefix_table())
SEPARATORS = st.sampled_from([" ", ".", "-", "/", "(", ")", "\u00a0", "\t"])


@st.composite
def national_numbers(draw: st.DrawFn) -> str:
    prefix = draw(st.sampled_from(PREFIXES))
    rest = draw(st.text("0123456789", min_size=9 - len(prefix), max_size=9 - len(prefix)))
    return prefix + rest


@st.composite
def written(draw: st.DrawFn, national: str) -> str:
    """``national`` as people write it: a prefix form, separators anywhere, blanks around."""
    form = draw(st.sampled_from(["0{}", "84{}", "+84{}", "0084{}", "{}", "+84 (0){}",
                                 "+84 0{}", "(+84) {}", "0084 {}"]))
    digits = []
    for digit in national:
        digits.append(digit)
        if draw(st.integers(0, 4)) == 0:
            digits.append(draw(SEPARATORS))
    return draw(st.sampled_from(["", " ", "\t"])) + form.format("".join(digits)) + draw(
        st.sampled_from(["", " ", "\n"]))


@examples(200)
def test_numbers_normalize_or_raise_number_error(n: int) -> None:
    """Any string: a number or NumberError; normalizing what came out changes nothing."""
    near = st.text(st.sampled_from("+0123456789 .-()\u00a0٣²"), max_size=18)
    @run(n, st.text(max_size=30) | near)
    def _(raw: str) -> None:
        try:
            msisdn, carrier = NUMBERING.normalize(raw)
        except NumberError as exc:
            assert exc.reason
            return
        assert len(msisdn) == 11 and msisdn.startswith("84") and msisdn.isdigit()
        assert NUMBERING.normalize(msisdn) == (msisdn, carrier)


@examples(80)
def test_every_writing_of_a_number_normalizes_the_same(n: int) -> None:
    @run(n, national_numbers().flatmap(
        lambda national: st.tuples(st.just(national), st.lists(written(national), min_size=1,
                                                               max_size=4))))
    def _(case: tuple[str, list[str]]) -> None:
        national, writings = case
        expected = NUMBERING.normalize("0" + national)
        assert expected[0] == "84" + national
        for raw in writings:
            assert NUMBERING.normalize(raw) == expected, raw


# -- delivery receipts ----------------------------------------------------------------------------

RECEIPT_WORDS = st.sampled_from([
    "id:", "ID:", "sub:", "dlvrd:", "submit date:", "done date:", "stat:", "Stat:", "err:",
    "text:", " ", "  ", "DELIVRD", "undeliv", "2601020304", "260102030405", "2613450000",
    "²²²²²²²²²²", "0", "abc", "\0", "\xff"])
receipt_texts = (st.binary(max_size=200)
                 | st.lists(RECEIPT_WORDS, max_size=16).map(lambda w: "".join(w).encode("latin-1")))
receipt_tlvs = st.dictionaries(
    st.sampled_from([pdu.TLV_RECEIPTED_MESSAGE_ID, pdu.TLV_MESSAGE_STATE,
                     pdu.TLV_NETWORK_ERROR_CODE]) | st.integers(0, 0xFFFF),
    st.binary(max_size=12), max_size=3)


@examples(150)
def test_receipts_parse_or_raise_receipt_error(n: int) -> None:
    @run(n, receipt_texts, st.just({}) | receipt_tlvs)
    def _(text: bytes, tlvs: dict[int, bytes]) -> None:
        try:
            r = parse_receipt(text, tlvs)
        except ReceiptError:
            return
        assert r.message_id and r.state and r.state == r.state.upper()


when = st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2099, 12, 31))
states = st.sampled_from(sorted(TLV_BY_STATE))


@examples(80)
def test_receipts_round_trip(n: int) -> None:
    """format_receipt then parse_receipt gives the receipt back, from the text in the usual
    shape, in another order, spacing and case, or from the TLVs alone."""
    alphanumeric = st.text(string.ascii_letters + string.digits, min_size=1, max_size=20)
    @run(n, message_ids | alphanumeric, states, when, when,
         st.text("0123456789", min_size=3, max_size=3), st.booleans(),
         st.text(st.characters(max_codepoint=255), max_size=20),
         st.randoms(use_true_random=False))
    def _(mid: str, state: str, submitted: dt.datetime, done: dt.datetime, error: str,
          seconds: bool, text: str, rnd: Any) -> None:
        submitted, done = (d.replace(microsecond=0, second=d.second if seconds else 0)
                           for d in (submitted, done))
        expected = Receipt(mid, state, error, submitted, done)
        usual = format_receipt(mid, state, submitted=submitted, done=done, error=error,
                               seconds=seconds, text=text)
        assert parse_receipt(usual, {}) == expected
        fmt = "%y%m%d%H%M%S" if seconds else "%y%m%d%H%M"
        fields = [f"id:{mid}", "sub:001", "dlvrd:001", f"submit date:{submitted:{fmt}}",
                  f"done date:{done:{fmt}}", f"stat:{state}", f"err:{error}"]
        if not mid.isalnum():  # out of the usual shape, "id:xerr:5" is ambiguous
            return
        rnd.shuffle(fields)
        shuffled = "".join(
            (name.upper() if rnd.random() < 0.3 else name) + rnd.choice([":", ": "]) + value
            + rnd.choice([" ", "  "])
            for name, _, value in (f.partition(":") for f in fields)) + "text:" + text
        assert parse_receipt(shuffled.encode("latin-1"), {}) == expected
        tlvs = {pdu.TLV_RECEIPTED_MESSAGE_ID: mid.encode() + b"\0",
                pdu.TLV_MESSAGE_STATE: bytes((TLV_BY_STATE[state],))}
        assert parse_receipt(b"", tlvs) == Receipt(mid, state)
