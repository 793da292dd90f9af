"""SMPP 3.4 PDUs from and to bytes, sans I/O (no sockets, no asyncio).

A PDU is a 16-byte header (command_length, command_id, command_status, sequence_number) and a
body. :class:`Framer` cuts a byte stream into PDUs and refuses a length that cannot be right;
the ``encode_*`` functions build the PDUs an ESME and an SMSC send; the ``parse_*`` functions read
bodies. Bodies of ``submit_sm`` and ``deliver_sm`` share one layout (:class:`ShortMessage`).
Malformed input raises :class:`PduError`, never anything else.
"""

from __future__ import annotations

import re
import struct

import msgspec

# command_id values (SMPP 3.4, 5.1.2.1)
GENERIC_NACK = 0x80000000
BIND_RECEIVER = 0x00000001
BIND_TRANSMITTER = 0x00000002
QUERY_SM = 0x00000003
SUBMIT_SM = 0x00000004
DELIVER_SM = 0x00000005
UNBIND = 0x00000006
REPLACE_SM = 0x00000007
CANCEL_SM = 0x00000008
BIND_TRANSCEIVER = 0x00000009
OUTBIND = 0x0000000B
ENQUIRE_LINK = 0x00000015
SUBMIT_MULTI = 0x00000021
ALERT_NOTIFICATION = 0x00000102
DATA_SM = 0x00000103
RESP = 0x80000000  # or-ed into a request's id for its response

BINDS = frozenset({BIND_RECEIVER, BIND_TRANSMITTER, BIND_TRANSCEIVER})
KNOWN = frozenset({GENERIC_NACK, BIND_RECEIVER, BIND_TRANSMITTER, QUERY_SM, SUBMIT_SM,
                   DELIVER_SM, UNBIND, REPLACE_SM, CANCEL_SM, BIND_TRANSCEIVER, OUTBIND,
                   ENQUIRE_LINK, SUBMIT_MULTI, ALERT_NOTIFICATION, DATA_SM})

# esm_class bits
ESM_UDHI = 0x40  # short_message starts with a user data header
ESM_RECEIPT = 0x04  # deliver_sm carries an SMSC delivery receipt
ESM_TYPE_MASK = 0x3C

# TLV tags used by Loa
TLV_RECEIPTED_MESSAGE_ID = 0x001E
TLV_MESSAGE_STATE = 0x0427
TLV_NETWORK_ERROR_CODE = 0x0423
TLV_MESSAGE_PAYLOAD = 0x0424
TLV_SC_INTERFACE_VERSION = 0x0210

TON_INTERNATIONAL, TON_ALPHANUMERIC = 1, 5
NPI_ISDN = 1

HEADER = struct.Struct(">IIII")
HEADER_SIZE = 16
MAX_PDU = 65536  # longer command_length: the peer is broken or hostile


class PduError(ValueError):
    """Bytes that are not a valid PDU (or not the PDU they claim to be), or a field that a PDU
    cannot carry."""


class CommandLengthError(PduError):
    """A command_length no PDU can have: the byte stream cannot be read past it."""

    def __init__(self, length: int, max_pdu: int) -> None:
        super().__init__(f"command_length {length} is out of range ({HEADER_SIZE}..{max_pdu})")
        self.length = length
        self.oversized = length > max_pdu  # else shorter than a header


class Header(msgspec.Struct, frozen=True, array_like=True):
    command_id: int
    status: int
    seq: int


class Bind(msgspec.Struct, frozen=True):
    system_id: str
    password: str
    system_type: str = ""
    interface_version: int = 0x34
    addr_ton: int = 0
    addr_npi: int = 0
    address_range: str = ""


class ShortMessage(msgspec.Struct, frozen=True):
    """The body of submit_sm and deliver_sm."""

    destination_addr: str
    short_message: bytes = b""
    source_addr: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    dest_addr_ton: int = TON_INTERNATIONAL
    dest_addr_npi: int = NPI_ISDN
    service_type: str = ""
    esm_class: int = 0
    protocol_id: int = 0
    priority_flag: int = 0
    schedule_delivery_time: str = ""
    validity_period: str = ""
    registered_delivery: int = 0
    replace_if_present_flag: int = 0
    data_coding: int = 0
    sm_default_msg_id: int = 0
    tlvs: dict[int, bytes] = {}


# -- framing ------------------------------------------------------------------------------------


Frame = tuple[int, int, int, bytes]  # command_id, command_status, sequence_number, body


class Framer:
    """Cuts a byte stream into PDUs: ``feed(data)`` returns the complete ones so far, and
    ``frames(data)`` the same as flat tuples (:data:`Frame`), the cheaper form for hot loops."""

    __slots__ = ("_broken", "_buffer", "_need", "max_pdu")

    def __init__(self, max_pdu: int = MAX_PDU) -> None:
        self._buffer = bytearray()  # the start of a PDU that is not complete yet
        self._need = 0  # octets the buffer must hold before a PDU can be complete
        self._broken: CommandLengthError | None = None
        self.max_pdu = max_pdu

    def feed(self, data: bytes) -> list[tuple[Header, bytes]]:
        """The PDUs completed by ``data``. A bad length raises :class:`CommandLengthError`
        (judged from the header alone: a claimed size is never waited for nor allocated); PDUs
        that came before it in the same chunk are returned first and the error is raised by
        the next call. Once raised, every later call raises it again (the stream cannot be read
        past it)."""
        return [(Header(command_id, status, seq), body)
                for command_id, status, seq, body in self.frames(data)]

    def frames(self, data: bytes) -> list[Frame]:
        """Like :meth:`feed`, as (command_id, command_status, sequence_number, body)."""
        if self._broken is not None:
            raise self._broken
        buffer = self._buffer
        if buffer:
            buffer += data
            if len(buffer) < self._need:
                return []
            data = bytes(buffer)
            buffer.clear()
        found: list[Frame] = []
        append = found.append
        unpack = HEADER.unpack_from
        max_pdu = self.max_pdu
        start = 0
        end = len(data)
        while end - start >= HEADER_SIZE:
            length, command_id, status, seq = unpack(data, start)
            if length < HEADER_SIZE or length > max_pdu:
                buffer.clear()  # nothing after it can be read: keep none of it
                error = self._broken = CommandLengthError(length, max_pdu)
                if not found:
                    raise error
                return found
            if end - start < length:
                self._need = length
                break
            append((command_id, status, seq, data[start + HEADER_SIZE:start + length]))
            start += length
        else:
            self._need = HEADER_SIZE
        if start < end:
            buffer += data[start:]
        return found

    @property
    def broken(self) -> bool:
        """A bad length was seen: the connection must be closed."""
        return self._broken is not None

    @property
    def error(self) -> CommandLengthError | None:
        """The bad length that broke the stream, if one did."""
        return self._broken

    @property
    def pending(self) -> int:
        """Bytes received that do not make a whole PDU yet."""
        return len(self._buffer)


# -- encoding -----------------------------------------------------------------------------------


def encode(command_id: int, seq: int, body: bytes = b"", status: int = 0) -> bytes:
    return HEADER.pack(HEADER_SIZE + len(body), command_id, status, seq) + body


def _c(text: str, limit: int, name: str) -> bytes:
    try:
        data = text.encode("latin-1")
    except UnicodeEncodeError:
        raise PduError(f"{name} has characters beyond latin-1: {text!r}") from None
    if len(data) >= limit:
        raise PduError(f"{name} is longer than {limit - 1} octets")
    if b"\0" in data:
        raise PduError(f"{name} holds a NUL, which would end it early: {text!r}")
    return data + b"\0"


def encode_bind(command_id: int, seq: int, bind: Bind) -> bytes:
    body = b"".join((
        _c(bind.system_id, 16, "system_id"), _c(bind.password, 9, "password"),
        _c(bind.system_type, 13, "system_type"),
        bytes((bind.interface_version, bind.addr_ton, bind.addr_npi)),
        _c(bind.address_range, 41, "address_range")))
    return encode(command_id, seq, body)


def encode_bind_resp(command_id: int, seq: int, system_id: str, status: int = 0) -> bytes:
    body = _c(system_id, 16, "system_id") if status == 0 else b""
    if status == 0:
        body += struct.pack(">HHB", TLV_SC_INTERFACE_VERSION, 1, 0x34)
    return encode(command_id | RESP, seq, body, status)


def encode_tlvs(tlvs: dict[int, bytes]) -> bytes:
    for tag, value in tlvs.items():
        if not 0 <= tag <= 0xFFFF or len(value) > 0xFFFF:
            raise PduError(f"TLV 0x{tag:X} of {len(value)} octets cannot be encoded")
    return b"".join(struct.pack(">HH", tag, len(value)) + value for tag, value in tlvs.items())


def encode_short_message(command_id: int, seq: int, m: ShortMessage) -> bytes:
    if len(m.short_message) > 254:
        raise PduError("short_message is longer than 254 octets; use message_payload")
    body = b"".join((
        _c(m.service_type, 6, "service_type"),
        bytes((m.source_addr_ton, m.source_addr_npi)), _c(m.source_addr, 21, "source_addr"),
        bytes((m.dest_addr_ton, m.dest_addr_npi)), _c(m.destination_addr, 21, "destination_addr"),
        bytes((m.esm_class, m.protocol_id, m.priority_flag)),
        _c(m.schedule_delivery_time, 17, "schedule_delivery_time"),
        _c(m.validity_period, 17, "validity_period"),
        bytes((m.registered_delivery, m.replace_if_present_flag, m.data_coding,
               m.sm_default_msg_id, len(m.short_message))),
        m.short_message, encode_tlvs(m.tlvs)))
    return encode(command_id, seq, body)


class SubmitTemplate:
    """submit_sm PDUs of one sender and text settings, built fast: only the destination, the
    sequence number and the payload change from one message to the next."""

    __slots__ = ("_middle", "_payload", "_prefix", "_tail")

    def __init__(self, *, source_addr: str, source_addr_ton: int, source_addr_npi: int,
                 esm_class: int, data_coding: int, registered_delivery: int = 1,
                 validity_period: str = "", service_type: str = "",
                 priority_flag: int = 0) -> None:
        self._prefix = (_c(service_type, 6, "service_type")
                        + bytes((source_addr_ton, source_addr_npi))
                        + _c(source_addr, 21, "source_addr")
                        + bytes((TON_INTERNATIONAL, NPI_ISDN)))
        self._middle = (bytes((esm_class, 0, priority_flag)) + b"\0"
                        + _c(validity_period, 17, "validity")
                        + bytes((registered_delivery, 0, data_coding, 0)))
        self._payload = b""
        self._tail = b"\0" + self._middle + b"\0"  # from the destination's NUL on

    def encode(self, seq: int, destination: str, payload: bytes) -> bytes:
        if len(destination) > 20 or len(payload) > 254:
            raise PduError("destination_addr over 20 characters or short_message over 254 octets")
        if payload is not self._payload:  # the messages of a batch share their payload
            self._payload = payload
            self._tail = b"".join((b"\0", self._middle, bytes((len(payload),)), payload))
        try:
            address = destination.encode("ascii")
        except UnicodeEncodeError:
            raise PduError(f"destination_addr {destination!r} is not ASCII") from None
        return b"".join((
            HEADER.pack(HEADER_SIZE + len(self._prefix) + len(address) + len(self._tail),
                        SUBMIT_SM, 0, seq),
            self._prefix, address, self._tail))


def encode_submit_sm_resp(seq: int, message_id: str, status: int = 0) -> bytes:
    body = message_id.encode("ascii") + b"\0" if status == 0 else b""
    return encode(SUBMIT_SM | RESP, seq, body, status)


_DELIVER_SM_RESP = struct.Struct(">IIIIx")  # the header and an empty message_id


def encode_deliver_sm_resp(seq: int, status: int = 0) -> bytes:
    return _DELIVER_SM_RESP.pack(HEADER_SIZE + 1, DELIVER_SM | RESP, status, seq)


def encode_data_sm_resp(seq: int, status: int = 0, message_id: str = "") -> bytes:
    return encode(DATA_SM | RESP, seq, message_id.encode("ascii") + b"\0", status)


def encode_data_sm(seq: int, *, source_addr: str, destination_addr: str, esm_class: int = 0,
                   data_coding: int = 0, tlvs: dict[int, bytes] | None = None,
                   source_addr_ton: int = TON_INTERNATIONAL, source_addr_npi: int = NPI_ISDN,
                   registered_delivery: int = 0) -> bytes:
    """A data_sm (SMPP 3.4, 4.7.1): its text, if any, in the message_payload TLV."""
    body = b"".join((
        b"\0", bytes((source_addr_ton, source_addr_npi)), _c(source_addr, 65, "source_addr"),
        bytes((TON_INTERNATIONAL, NPI_ISDN)), _c(destination_addr, 65, "destination_addr"),
        bytes((esm_class, registered_delivery, data_coding)), encode_tlvs(tlvs or {})))
    return encode(DATA_SM, seq, body)


def encode_generic_nack(seq: int, status: int) -> bytes:
    return encode(GENERIC_NACK, seq, b"", status)


# -- decoding -----------------------------------------------------------------------------------


class _Reader:
    __slots__ = ("body", "pos")

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.pos = 0

    def cstring(self, limit: int, name: str) -> str:
        end = self.body.find(b"\0", self.pos, self.pos + limit)
        if end < 0:
            raise PduError(f"{name}: no terminating NUL within {limit} octets")
        value = self.body[self.pos:end].decode("latin-1")
        self.pos = end + 1
        return value

    def octets(self, n: int, name: str) -> bytes:
        if self.pos + n > len(self.body):
            raise PduError(f"{name}: body ends early")
        value = self.body[self.pos:self.pos + n]
        self.pos += n
        return value

    def octet(self, name: str) -> int:
        return self.octets(1, name)[0]


_TLV_HEADER = struct.Struct(">HH")


def parse_tlvs(data: bytes) -> dict[int, bytes]:
    tlvs: dict[int, bytes] = {}
    unpack = _TLV_HEADER.unpack_from
    pos = 0
    end = len(data)
    while pos < end:
        if pos + 4 > end:
            raise PduError("truncated TLV header")
        tag, length = unpack(data, pos)
        pos += 4 + length
        if pos > end:
            raise PduError(f"TLV 0x{tag:04X} is longer than the body")
        tlvs[tag] = data[pos - length:pos]
    return tlvs


def parse_bind(body: bytes) -> Bind:
    r = _Reader(body)
    bind = Bind(system_id=r.cstring(16, "system_id"), password=r.cstring(9, "password"),
                system_type=r.cstring(13, "system_type"),
                interface_version=r.octet("interface_version"), addr_ton=r.octet("addr_ton"),
                addr_npi=r.octet("addr_npi"))
    return msgspec.structs.replace(bind, address_range=r.cstring(41, "address_range"))


def parse_bind_resp(body: bytes) -> str:
    """The SMSC's system_id (empty for an error response with no body)."""
    return _Reader(body).cstring(16, "system_id") if body else ""


def parse_message_id(body: bytes) -> str:
    """The message_id of a submit_sm_resp (empty when the body is empty, as for errors)."""
    end = body.find(b"\0", 0, 65)
    if end < 0:
        if not body:
            return ""
        raise PduError("message_id: no terminating NUL within 65 octets")
    return body[:end].decode("latin-1")


def parse_short_message(body: bytes) -> ShortMessage:
    r = _Reader(body)
    service_type = r.cstring(6, "service_type")
    src_ton, src_npi = r.octet("source_addr_ton"), r.octet("source_addr_npi")
    source = r.cstring(21, "source_addr")
    dst_ton, dst_npi = r.octet("dest_addr_ton"), r.octet("dest_addr_npi")
    destination = r.cstring(21, "destination_addr")
    esm_class, protocol_id, priority = (r.octet("esm_class"), r.octet("protocol_id"),
                                        r.octet("priority_flag"))
    schedule = r.cstring(17, "schedule_delivery_time")
    validity = r.cstring(17, "validity_period")
    registered, replace, coding, default_id = (r.octet("registered_delivery"),
                                               r.octet("replace_if_present_flag"),
                                               r.octet("data_coding"),
                                               r.octet("sm_default_msg_id"))
    text = r.octets(r.octet("sm_length"), "short_message")
    return ShortMessage(
        destination_addr=destination, short_message=text, source_addr=source,
        source_addr_ton=src_ton, source_addr_npi=src_npi, dest_addr_ton=dst_ton,
        dest_addr_npi=dst_npi, service_type=service_type, esm_class=esm_class,
        protocol_id=protocol_id, priority_flag=priority, schedule_delivery_time=schedule,
        validity_period=validity, registered_delivery=registered,
        replace_if_present_flag=replace, data_coding=coding, sm_default_msg_id=default_id,
        tlvs=parse_tlvs(body[r.pos:]))


# deliver_sm up to sm_length (SMPP 3.4, 4.6.1): service_type, (source_addr_ton, _npi,
# source_addr), (dest_addr_ton, _npi, destination_addr), esm_class, protocol_id, priority_flag,
# schedule_delivery_time, validity_period, registered_delivery, replace_if_present_flag,
# data_coding, sm_default_msg_id, sm_length.
_DELIVER_ESSENTIALS = re.compile(rb"[^\0]{0,5}\0..[^\0]{0,20}\0..[^\0]{0,20}\0(.)..[^\0]{0,16}\0"
                                 rb"[^\0]{0,16}\0....(.)", re.DOTALL)


def parse_deliver_essentials(body: bytes) -> tuple[int, bytes, dict[int, bytes]]:
    """(esm_class, short_message, TLVs) of a deliver_sm, skipping the fields a receipt reader
    does not need: the fast path for the one PDU per message an ESME receives."""
    match = _DELIVER_ESSENTIALS.match(body)
    if match is None:
        raise PduError("deliver_sm: mandatory fields are not NUL-terminated where they must be")
    esm_class, length = match.groups()
    start = match.end()
    end = start + length[0]
    if end > len(body):
        raise PduError("short_message: body ends early")
    return esm_class[0], body[start:end], parse_tlvs(body[end:]) if end < len(body) else {}
