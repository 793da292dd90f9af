"""Messages from subscribers (mobile originated): deliver_sm that are not receipts and data_sm,
read into :class:`~dispatcher.domain.incoming.Incoming` whatever their encoding (sans I/O).

The text is decoded by ``data_coding`` (SMPP 3.4, 5.2.19, and the GSM 03.38 coding groups):
0 the SMSC default alphabet (GSM-7, one septet per octet as SMPP carries it; an octet above
0x7F: read as Latin-1), 1 IA5/ASCII, 3 Latin-1, 8 UCS-2 (UTF-16-BE); 2 and 4 (8-bit data) are
binary: kept as hexadecimal with kind ``binary``. A user data header (esm_class UDHI) is
removed; a part of a concatenated message is kept as its own item, with ``part`` saying which
(``2/3#7``: the second of three, reference 7). A text that cannot be decoded (UCS-2 of odd
length, an unknown coding) is kept as hexadecimal with kind ``unreadable``; nothing here raises
on a body it was given.
"""

from __future__ import annotations

import datetime as dt

from adapters.smpp import pdu
from dispatcher.domain import smstext
from dispatcher.domain.incoming import BINARY, REPLY, UNREADABLE, Incoming, clip
from dispatcher.domain.model import Channel

HEX_KEPT = 280  # octets of an undecodable text kept (as hexadecimal)


class DataSm:
    """The fields of a data_sm an ESME reads."""

    __slots__ = ("data_coding", "esm_class", "source_addr", "tlvs")

    def __init__(self, source_addr: str, esm_class: int, data_coding: int,
                 tlvs: dict[int, bytes]) -> None:
        self.source_addr = source_addr
        self.esm_class = esm_class
        self.data_coding = data_coding
        self.tlvs = tlvs

    @property
    def payload(self) -> bytes:
        return self.tlvs.get(pdu.TLV_MESSAGE_PAYLOAD, b"")


def parse_data_sm(body: bytes) -> DataSm:
    """A data_sm's body (SMPP 3.4, 4.7.1); :class:`~adapters.smpp.pdu.PduError` if it is not
    one."""
    r = pdu._Reader(body)
    r.cstring(6, "service_type")
    r.octets(2, "source_addr_ton/npi")
    source = r.cstring(65, "source_addr")
    r.octets(2, "dest_addr_ton/npi")
    r.cstring(65, "destination_addr")
    esm_class = r.octet("esm_class")
    r.octet("registered_delivery")
    coding = r.octet("data_coding")
    return DataSm(source, esm_class, coding, pdu.parse_tlvs(body[r.pos:]))


def _hex(data: bytes) -> str:
    return data[:HEX_KEPT].hex(" ") + (" …" if len(data) > HEX_KEPT else "")


def _alphabet(coding: int) -> str:
    if coding in (0, 1, 3, 8):
        return {0: "gsm7", 1: "ascii", 3: "latin1", 8: "ucs2"}[coding]
    if coding in (2, 4):
        return "binary"
    if coding >= 0xF0:  # data coding / message class group
        return "binary" if coding & 0x04 else "gsm7"
    if coding & 0xC0 == 0 and coding >= 0x10:  # general data coding with a class
        return ("gsm7", "binary", "ucs2", "")[(coding >> 2) & 0x03]
    return ""


def decode_text(data: bytes, coding: int) -> tuple[str, str, str]:
    """(text, encoding, kind) of a short message's octets."""
    alphabet = _alphabet(coding)
    try:
        if alphabet == "gsm7":
            try:
                return smstext.gsm7_decode(data), "gsm7", REPLY
            except ValueError:
                return data.decode("latin-1"), "latin1", REPLY
        if alphabet == "ascii":
            return data.decode("ascii"), "ascii", REPLY
        if alphabet == "latin1":
            return data.decode("latin-1"), "latin1", REPLY
        if alphabet == "ucs2":
            if len(data) % 2:
                raise ValueError("UCS-2 of an odd number of octets")
            # a lone surrogate is replaced: the text must be valid UTF-8 to be stored
            return data.decode("utf-16-be", "replace"), "ucs2", REPLY
    except (ValueError, UnicodeDecodeError):
        return _hex(data), alphabet, UNREADABLE
    if alphabet == "binary":
        return _hex(data), "binary", BINARY
    return _hex(data), f"data_coding 0x{coding:02X}", UNREADABLE


def incoming(source: str, esm_class: int, coding: int, data: bytes,
             at: dt.datetime) -> Incoming:
    """The item of one message from ``source``."""
    part = ""
    if esm_class & pdu.ESM_UDHI:
        concat = smstext.parse_concat_udh(data)
        if concat is not None:
            ref, total, seq, data = concat
            part = f"{seq}/{total}#{ref}"
        elif data and len(data) >= 1 + data[0]:
            data = data[1 + data[0]:]
    text, encoding, kind = decode_text(data, coding)
    return Incoming(Channel.SMS, source, at, kind=kind, text=clip(text), encoding=encoding,
                    part=part)


def unreadable(body: bytes, at: dt.datetime, what: str) -> Incoming:
    """A PDU from a subscriber that could not be read at all: kept as hexadecimal."""
    return Incoming(Channel.SMS, "", at, kind=UNREADABLE, text=_hex(body), encoding=what)
