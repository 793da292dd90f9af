"""SMSC delivery receipts: parsed from the text and from TLVs, and written (for the simulator).

A receipt is a deliver_sm whose esm_class says so. Its text follows the de-facto format of SMPP
3.4 appendix B, ``id:... sub:... dlvrd:... submit date:YYMMDDhhmm[ss] done date:... stat:...
err:... text:...``; SMSCs may instead (or also) give the ``receipted_message_id`` and
``message_state`` TLVs, and some send the TLVs with an empty text. TLVs win where both are given.
"""

from __future__ import annotations

import datetime as dt
import functools
import re

from adapters.base import Receipt as ChannelReceipt
from adapters.smpp.pdu import TLV_MESSAGE_STATE, TLV_NETWORK_ERROR_CODE, TLV_RECEIPTED_MESSAGE_ID

STATE_BY_TLV = {1: "ENROUTE", 2: "DELIVRD", 3: "EXPIRED", 4: "DELETED", 5: "UNDELIV",
                6: "ACCEPTD", 7: "UNKNOWN", 8: "REJECTD", 9: "SKIPPED"}
TLV_BY_STATE = {v: k for k, v in STATE_BY_TLV.items()}
FINAL = frozenset({"DELIVRD", "EXPIRED", "DELETED", "UNDELIV", "REJECTD", "UNKNOWN", "SKIPPED"})

# Matched against the lower-cased text (faster than IGNORECASE); values come from the original.
_FIELD = re.compile(r"(id|sub|dlvrd|submit date|done date|stat|err|text):")


class ReceiptError(ValueError):
    """A deliver_sm that claims to be a receipt but cannot be read as one."""


class Receipt(ChannelReceipt, frozen=True):
    """A receipt as the engine takes it (``message_id``, ``state``: DELIVRD, EXPIRED, DELETED,
    UNDELIV, ACCEPTD, UNKNOWN, REJECTD, ENROUTE), with what the SMSC said besides."""

    error: str = ""
    submitted: dt.datetime | None = None
    done: dt.datetime | None = None

    @property
    def final(self) -> bool:
        return self.state in FINAL

    @property
    def delivered(self) -> bool:
        return self.state == "DELIVRD"


# The usual shape, in one match: single spaces, lower-case names, the usual order.
_STANDARD = re.compile(r"id:(\S*) sub:\S* dlvrd:\S* submit date:(\S*) done date:(\S*) "
                       r"stat:(\S*) err:(\S*)(?: text:.*)?\Z", re.S)
_STANDARD_REST = re.compile(r"sub:\S* dlvrd:\S* submit date:(\S*) done date:(\S*) "
                            r"stat:(\S*) err:(\S*)(?: text:.*)?\Z", re.S)


@functools.lru_cache(maxsize=4096)  # receipts of one minute differ only in their id
def _standard_rest(rest: str) -> tuple[str, ...] | None:
    """(submit date, done date, stat, err) of the text after ``id:...`` of a receipt in the
    usual shape; None when it has another shape."""
    match = _STANDARD_REST.match(rest)
    return None if match is None else match.groups()


def _fields(text: str) -> dict[str, str]:
    """The fields of a receipt text in any order and spacing, names in any case."""
    found: dict[str, str] = {}
    marks = list(_FIELD.finditer(text.lower()))
    for mark, following in zip(marks, [*marks[1:], None], strict=False):  # no marks: nothing
        key = mark.group(1).lower()
        if key in found:
            continue
        end = following.start() if following is not None else len(text)
        value = text[mark.end():end].strip()
        found[key] = value if key == "text" else value.split(" ")[0] if value else ""
    return found


@functools.lru_cache(maxsize=4096)  # receipts of one minute share their dates
def _date(value: str) -> dt.datetime | None:
    if not value:
        return None
    if not value.isdigit() or len(value) not in (10, 12):
        raise ReceiptError(f"date {value!r} is not YYMMDDhhmm or YYMMDDhhmmss")
    try:
        return dt.datetime(2000 + int(value[0:2]), int(value[2:4]), int(value[4:6]),
                           int(value[6:8]), int(value[8:10]),
                           int(value[10:12]) if len(value) == 12 else 0)
    except ValueError:
        raise ReceiptError(f"date {value!r} is not a date") from None


def parse_receipt(short_message: bytes, tlvs: dict[int, bytes]) -> Receipt:
    """The receipt in a deliver_sm, from its text, its TLVs, or both (TLVs win)."""
    text = short_message.decode("latin-1")
    head, _, rest = text.partition(" ")
    # An id of printable ASCII holds no white space: then the text is in the usual shape if
    # what follows the id is, which is the same for every receipt of a minute, and cached.
    cached = _standard_rest(rest) if (head[:3] == "id:" and head.isascii()
                                      and head.isprintable()) else None
    standard = _STANDARD.match(text) if cached is None else None
    if cached is not None:
        message_id = head[3:]
        submitted, done, state, error = cached
    elif standard is not None:
        message_id, submitted, done, state, error = standard.groups()
    elif text:
        fields = _fields(text)
        message_id, submitted, done, state, error = (
            fields.get(k, "") for k in ("id", "submit date", "done date", "stat", "err"))
    else:
        message_id = submitted = done = state = error = ""
    if tlvs:
        tlv_id = tlvs.get(TLV_RECEIPTED_MESSAGE_ID)
        if tlv_id:  # an empty receipted_message_id does not hide the id of the text
            tlv_id = tlv_id.rstrip(b"\0")
            if tlv_id:
                message_id = tlv_id.decode("latin-1")
        tlv_state = tlvs.get(TLV_MESSAGE_STATE)
        if tlv_state is not None and len(tlv_state) == 1:
            state = STATE_BY_TLV.get(tlv_state[0], "UNKNOWN")
        network_error = tlvs.get(TLV_NETWORK_ERROR_CODE)
        if not error and network_error is not None and len(network_error) == 3:
            error = str(int.from_bytes(network_error[1:], "big"))
    if not message_id:
        raise ReceiptError("no message id (neither id: in the text nor receipted_message_id)")
    if not state:
        raise ReceiptError("no state (neither stat: in the text nor message_state)")
    return Receipt(message_id, state if state.isupper() else state.upper(), error,
                   _date(submitted) if submitted else None, _date(done) if done else None)


def format_receipt(message_id: str, state: str, *, submitted: dt.datetime, done: dt.datetime,
                   error: str = "000", seconds: bool = False, text: str = "") -> bytes:
    """The receipt text an SMSC sends (10-digit dates, or 12 with ``seconds``)."""
    fmt = "%y%m%d%H%M%S" if seconds else "%y%m%d%H%M"
    delivered = "001" if state == "DELIVRD" else "000"
    return (f"id:{message_id} sub:001 dlvrd:{delivered} submit date:{submitted:{fmt}} "
            f"done date:{done:{fmt}} stat:{state} err:{error} text:{text[:20]}"
            ).encode("latin-1", "replace")
