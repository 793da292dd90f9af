"""An SMSC simulator: a real SMPP 3.4 server for the demo, the tests and the benchmarks.

It accepts any bind type, answers ``submit_sm`` with message ids and sends delivery receipts
(``deliver_sm``) with a configurable delay, state mix and format; it can throttle (0x58 above a
TPS cap per bind), inject errors by ratio or by destination, stay silent, drop connections and
refuse binds, and :class:`SmscConfig` can be changed while it runs. In hostile mode it also
sends, between its answers, PDUs an ESME must survive (see :data:`HOSTILE_KINDS`). It counts
complete messages per destination (multi-part messages are reassembled from their UDH) so a
test can prove that every recipient got exactly one message, counts the duplicates (a complete
message that reaches a destination a second time with the same text), and keeps their text on
request.

It is built to stay out of the benchmark's way: an asyncio Protocol, PDUs cut by
:class:`~adapters.smpp.pdu.Framer`, the fields of ``submit_sm`` it needs read by one regular
expression match, one ``write`` per connection per read, and everything that is due later (delayed
responses and receipts) in 1 ms buckets: one timer per bucket, never one per message.

Delivery semantics, as a carrier's SMSC: an accepted part (status 0, or no answer at all in the
no-response modes) is delivered to the handset, so it counts at its destination; a refused one
(throttled, injected error) does not. Receipts go to the binding connection when it receives
(transceiver), else to a receiver or transceiver bind of the same system_id, else they wait for
one; a receipt that the ESME has not acknowledged (``deliver_sm_resp``) when its connection
drops is sent again on another bind of that system_id.
"""

from __future__ import annotations

import asyncio
import bisect
import datetime as dt
import heapq
import logging
import math
import random
import re
import struct
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal, cast

import msgspec

from adapters.smpp.pdu import (
    BIND_RECEIVER,
    BIND_TRANSMITTER,
    BINDS,
    DATA_SM,
    DELIVER_SM,
    ENQUIRE_LINK,
    ESM_UDHI,
    GENERIC_NACK,
    HEADER,
    HEADER_SIZE,
    RESP,
    SUBMIT_SM,
    TLV_MESSAGE_PAYLOAD,
    TLV_MESSAGE_STATE,
    TLV_NETWORK_ERROR_CODE,
    TLV_RECEIPTED_MESSAGE_ID,
    UNBIND,
    Framer,
    PduError,
    ShortMessage,
    encode,
    encode_bind_resp,
    encode_data_sm,
    encode_generic_nack,
    encode_short_message,
    parse_bind,
    parse_tlvs,
)
from adapters.smpp.receipt import TLV_BY_STATE, format_receipt
from dispatcher.domain.smstext import gsm7_decode, parse_concat_udh, ucs2_decode

__all__ = ["HOSTILE_KINDS", "Deliveries", "ReceiptFormat", "Smsc", "SmscConfig", "SmscStats"]

log = logging.getLogger(__name__)

ESME_RINVCMDLEN = 0x02
ESME_RINVCMDID = 0x03
ESME_RINVBNDSTS = 0x04
ESME_RALYBND = 0x05
ESME_RINVDSTADR = 0x0B
ESME_RBINDFAIL = 0x0D
ESME_RINVPASWD = 0x0E
ESME_RINVSYSID = 0x0F
ESME_RMSGQFUL = 0x14
ESME_RTHROTTLED = 0x58

SUBMIT_SM_RESP = SUBMIT_SM | RESP
DELIVER_SM_RESP = DELIVER_SM | RESP
MAX_SEQ = 0x7FFFFFFF
MAX_PARTIALS = 100_000  # incomplete multi-part messages kept; the oldest go beyond that
MAX_WAITING = 1_000_000  # receipts kept per system_id while no receiver is bound; the oldest go

ReceiptFormat = Literal["text", "tlv", "both"]

#: What hostile mode sends, in turn: a request with a command id SMPP does not define
#: (``unknown_command``: to be answered generic_nack), a deliver_sm whose body ends inside its
#: mandatory fields (``truncated``: to be acknowledged and counted), a command_length shorter
#: than a header (``bad_length``) or of 0x7FFFFFFF (``oversized``), after which nothing on the
#: connection can be read (the ESME must hang up and bind again), and a well-formed receipt for
#: a message id the SMSC never gave (``unknown_receipt``).
HOSTILE_KINDS = ("unknown_command", "truncated", "bad_length", "oversized", "unknown_receipt")
_BREAKING = frozenset({"bad_length", "oversized"})
HOSTILE_COMMAND = 0x00010203  # no SMPP 3.4 command has this id
_TRUNCATED = b"\0\x01\x018491"  # service_type, TONs, then the source_addr ends unterminated


class SmscConfig(msgspec.Struct, frozen=True, kw_only=True):
    """How the simulated SMSC behaves. Times are in seconds; 0 turns a limit off."""

    system_id: str = "loa-smsc"  # the SMSC's own, in bind responses
    credentials: dict[str, str] = {}  # system_id -> password; empty: accept any
    refuse_binds: bool = False  # answer every bind with ESME_RBINDFAIL (0x0D)
    receipts: bool = True  # send receipts when the submit's registered_delivery asks for them
    receipt_delay: float = 0.0  # after the response (before it, with receipt_before_response)
    stat_mix: dict[str, float] = msgspec.field(default_factory=lambda: {"DELIVRD": 1.0})
    receipt_format: ReceiptFormat = "both"  # text, TLVs only (empty text), or both
    twelve_digit_dates: bool = False  # YYMMDDhhmmss instead of YYMMDDhhmm in receipt text
    receipt_before_response: bool = False  # the receipt overtakes the submit_sm_resp
    response_delay: float = 0.0
    tps_per_bind: float = 0.0  # submits accepted per second window per bind; more get 0x58
    error_ratio: float = 0.0  # share of submits answered with error_status
    error_status: int = 0x08
    error_destinations: dict[str, int] = {}  # destination -> status answered
    no_response: bool = False  # accept (deliver) submits and never answer them
    no_response_destinations: frozenset[str] = frozenset()
    window_limit: int = 0  # more unanswered submits than this on a bind: window abuse
    window_reject: bool = False  # ... answered with ESME_RMSGQFUL (0x14) instead of accepted
    disconnect_after: int = 0  # close a connection after answering this many submits
    keep_texts: bool = False  # keep the decoded text of every message in Smsc.texts
    # messages whose text contains this (letters, digits, spaces and ``-.:/``, found in the
    # GSM-7, Latin-1 or UCS-2 bytes) are counted apart in the marked_* counters (a benchmark's
    # urgent campaign among a routine wave); empty: none
    mark: str = ""
    hostile: frozenset[str] = frozenset()  # kinds of HOSTILE_KINDS to send between answers
    hostile_every: int = 50  # one hostile PDU after every this many submits (all binds)
    seed: int = 0  # for the stat mix and the error ratio

    def __post_init__(self) -> None:
        if not self.system_id or len(self.system_id) > 15:
            raise ValueError("system_id must be 1 to 15 characters")
        for name in ("receipt_delay", "response_delay", "tps_per_bind"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if not 0.0 <= self.error_ratio <= 1.0:
            raise ValueError("error_ratio must be between 0 and 1")
        if self.receipt_format not in ("text", "tlv", "both"):
            raise ValueError("receipt_format must be text, tlv or both")
        if self.window_limit < 0 or self.disconnect_after < 0:
            raise ValueError("window_limit and disconnect_after must not be negative")
        unknown = set(self.stat_mix) - set(TLV_BY_STATE)
        if unknown:
            raise ValueError(f"stat_mix: unknown state {sorted(unknown)[0]!r}; "
                             f"use some of {', '.join(TLV_BY_STATE)}")
        if any(w < 0 for w in self.stat_mix.values()) or sum(self.stat_mix.values()) <= 0:
            raise ValueError("stat_mix weights must be non-negative with a positive sum")
        unknown_kinds = set(self.hostile) - set(HOSTILE_KINDS)
        if unknown_kinds:
            raise ValueError(f"hostile: unknown kind {sorted(unknown_kinds)[0]!r}; "
                             f"use some of {', '.join(HOSTILE_KINDS)}")
        if self.hostile_every < 1:
            raise ValueError("hostile_every must be at least 1")
        if self.mark and not _MARK.fullmatch(self.mark):
            raise ValueError("mark: use letters, digits, spaces and - . : / only")


class SmscStats(msgspec.Struct):
    """What the simulator saw and did since it was created."""

    connections: int = 0  # TCP connections accepted
    binds: int = 0  # successful binds
    bind_failures: int = 0
    submits: int = 0  # submit_sm received, whatever became of them
    parts: int = 0  # submit_sm accepted (delivered to the handset): SMS parts
    messages: int = 0  # complete messages (all parts arrived)
    priority_parts: int = 0  # parts accepted with a priority_flag above 0 (urgent notices)
    first_priority_at: float = 0.0  # when the first of them came (epoch seconds; 0: none)
    last_part_at: float = 0.0  # when the last accepted part came (epoch seconds)
    last_submit_at: float = 0.0  # when the last submit_sm came, whatever became of it
    first_submit_at: float = 0.0  # when the first submit_sm came (epoch seconds; 0: none)
    marked_messages: int = 0  # complete messages with the configured mark in their text
    marked_duplicates: int = 0  # of them, a destination's second with the same text
    first_marked_at: float = 0.0  # when the first of them was complete (epoch seconds; 0: none)
    last_marked_at: float = 0.0
    duplicates: int = 0  # complete messages a destination had already got, same text
    duplicate_parts: int = 0  # a part of a multi-part message that was already there
    responses: int = 0  # submit_sm_resp sent, any status
    unanswered: int = 0  # submits accepted but never answered (no-response modes)
    receipts_sent: int = 0  # deliver_sm written (redeliveries included)
    receipts_acked: int = 0  # deliver_sm_resp with status 0
    receipt_nacks: int = 0  # deliver_sm_resp with an error status (the receipt is dropped)
    receipts_requeued: int = 0  # unacknowledged receipts sent again after a disconnect
    throttled: int = 0  # answered ESME_RTHROTTLED
    errors_injected: int = 0  # answered an error by error_ratio or error_destinations
    window_abuse: int = 0  # submits received beyond window_limit unanswered ones
    malformed: int = 0  # PDUs (or byte streams) that could not be read
    enquire_links: int = 0
    unbinds: int = 0
    disconnects: int = 0  # connections the simulator dropped (on purpose or on garbage)
    nacks_received: int = 0  # generic_nack from ESMEs
    hostile_unknown_commands: int = 0  # hostile mode: what was sent, by kind
    hostile_truncated: int = 0
    hostile_bad_lengths: int = 0
    hostile_oversized: int = 0
    hostile_unknown_receipts: int = 0
    hostile_answered: int = 0  # unknown commands answered generic_nack, truncated ones acked
    mo_sent: int = 0  # messages from subscribers written (send_mo): deliver_sm and data_sm
    mo_acked: int = 0  # of them, answered (deliver_sm_resp or data_sm_resp) with status 0
    mo_nacked: int = 0  # answered with an error status or generic_nack


# -- helpers ------------------------------------------------------------------------------------

_pack_header = HEADER.pack
_MARK = re.compile(r"[A-Za-z0-9 .:/-]+")
_pack_tlv = struct.Struct(">HH").pack
_RECEIPT_FLAGS = bytes((0x04, 0, 0, 0, 0, 0, 0, 0, 0))  # esm_class .. sm_default_msg_id
_STATE_TLV = {state: struct.pack(">HHB", TLV_MESSAGE_STATE, 1, value)
              for state, value in TLV_BY_STATE.items()}
_OK_STATES = frozenset({"DELIVRD", "ACCEPTD", "ENROUTE"})
_NETWORK_ERROR = struct.pack(">HHBH", TLV_NETWORK_ERROR_CODE, 3, 3, 1)  # GSM, error 1


def _submit_resp(seq: int, status: int) -> bytes:
    return _pack_header(HEADER_SIZE, SUBMIT_SM_RESP, status, seq)


# source_addr, (ton, npi, source_addr, NUL), (ton, npi, destination_addr, NUL), esm_class,
# destination_addr, registered_delivery, data_coding, short_message (or message_payload),
# priority_flag
_Submit = tuple[bytes, bytes, bytes, int, str, int, int, bytes, int]


# SMPP 3.4, 4.4.1, up to sm_length: service_type, (source_addr_ton, _npi, source_addr),
# (dest_addr_ton, _npi, destination_addr), esm_class, protocol_id, priority_flag,
# schedule_delivery_time, validity_period, registered_delivery, replace_if_present_flag,
# data_coding, sm_default_msg_id, sm_length. One match is cheaper than reading field by field.
_SUBMIT = re.compile(rb"[^\0]{0,5}\0(..([^\0]{0,20})\0)(..([^\0]{0,20})\0)(.).(.)[^\0]{0,16}\0"
                     rb"[^\0]{0,16}\0(.).(.).(.)", re.DOTALL)


def _parse_submit(body: bytes) -> _Submit:
    """The fields of a submit_sm body the simulator needs; PduError if it is malformed."""
    m = _SUBMIT.match(body)
    if m is None:
        raise PduError("submit_sm: malformed mandatory fields")
    source_part, source, dest_part, destination, esm, priority, registered, coding, length = (
        m.groups())
    start = m.end()
    end = start + length[0]
    if end > len(body):
        raise PduError("short_message: body ends early")
    payload = body[start:end]
    if end < len(body):
        payload = parse_tlvs(body[end:]).get(TLV_MESSAGE_PAYLOAD, payload)
    return (source, source_part, dest_part, esm[0], destination.decode("latin-1"),
            registered[0], coding[0], payload, priority[0])


def _decode(data: bytes, coding: int) -> str:
    try:
        if coding == 8:
            return ucs2_decode(data)
        if coding == 0:
            return gsm7_decode(data)
    except ValueError:
        pass
    return data.decode("latin-1")


class Deliveries(Mapping[str, int]):
    """Complete messages per destination, read like a ``Counter`` (0 for a destination never
    reached), and which texts each destination got, by digest: a message with a text its
    destination already got is a duplicate. A destination costs one dict entry whose value is
    its text's digest, one int object shared by every destination of that text (the first
    ``MAX_SHARED`` distinct texts), until it gets a second text."""

    MAX_SHARED = 4096

    def __init__(self) -> None:
        self._digests: dict[str, int | set[int]] = {}
        self._again: Counter[str] = Counter()  # duplicates per destination
        self._shared: dict[int, int] = {}

    def add(self, destination: str, digest: int) -> bool:
        """Count a message; whether its destination already had this text."""
        seen = self._digests.get(destination)
        if seen is None:
            shared = self._shared.get(digest)
            if shared is None and len(self._shared) < self.MAX_SHARED:
                self._shared[digest] = shared = digest
            self._digests[destination] = digest if shared is None else shared
            return False
        if seen == digest if isinstance(seen, int) else digest in seen:
            self._again[destination] += 1
            return True
        if isinstance(seen, int):
            self._digests[destination] = {seen, digest}
        else:
            seen.add(digest)
        return False

    @property
    def duplicates(self) -> int:
        return self._again.total()

    def __getitem__(self, destination: str) -> int:
        seen = self._digests.get(destination)
        if seen is None:
            return 0
        return (1 if isinstance(seen, int) else len(seen)) + self._again[destination]

    def __contains__(self, destination: object) -> bool:
        return destination in self._digests

    def __iter__(self) -> Iterator[str]:
        return iter(self._digests)

    def __len__(self) -> int:
        return len(self._digests)

    def __repr__(self) -> str:
        return f"Deliveries({dict(self.items())!r})"


class _Item(msgspec.Struct, array_like=True):
    """Something due later: a submit_sm_resp (``receipt`` False) or a receipt body."""

    conn: _Conn
    data: bytes
    receipt: bool


class _Timers:
    """Items due later in 1 ms buckets: one heap entry and one loop timer per bucket."""

    __slots__ = ("_armed", "_buckets", "_fire", "_handle", "_heap", "_loop")

    def __init__(self, loop: asyncio.AbstractEventLoop,
                 fire: Callable[[list[_Item]], None]) -> None:
        self._loop = loop
        self._fire = fire
        self._buckets: dict[int, list[_Item]] = {}
        self._heap: list[int] = []
        self._handle: asyncio.TimerHandle | None = None
        self._armed = 0

    def add(self, due: float, item: _Item) -> None:
        tick = math.ceil(due * 1000)
        bucket = self._buckets.get(tick)
        if bucket is None:
            self._buckets[tick] = bucket = []
            heapq.heappush(self._heap, tick)
            if self._handle is None or tick < self._armed:
                self._arm(tick)
        bucket.append(item)

    def _arm(self, tick: int) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._armed = tick
        self._handle = self._loop.call_at(tick / 1000, self._run)

    def _run(self) -> None:
        self._handle = None
        now = self._loop.time() * 1000 + 1  # a timer may fire a hair early
        items: list[_Item] = []
        heap = self._heap
        while heap and heap[0] <= now:
            items += self._buckets.pop(heapq.heappop(heap))
        if heap:
            self._arm(heap[0])
        if items:
            self._fire(items)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._buckets.clear()
        self._heap.clear()


# -- the server ---------------------------------------------------------------------------------


class Smsc:
    """The simulated SMSC: ``await start()``, connect to ``port``, ``await stop()``."""

    def __init__(self, config: SmscConfig | None = None) -> None:
        self.stats = SmscStats()
        self.received = Deliveries()  # complete messages per destination
        self.texts: dict[str, list[str]] = {}  # decoded texts per destination (keep_texts)
        self.host = ""
        self.port = 0
        self._rng = random.Random()
        self._config = SmscConfig()
        self._states: list[str] = []
        self._cumulative: list[float] = []
        self._templates: dict[tuple[str, int, int, int], tuple[bytes, int]] = {}
        self._screen = False  # whether submits go through _refusal at all
        self._marks: dict[int, bytes] = {}  # data_coding -> the mark's bytes in it
        self.config = config or SmscConfig()
        self._next_id = 0
        self._conns: set[_Conn] = set()
        self._receivers: dict[str, list[_Conn]] = {}
        self._waiting: dict[str, deque[bytes]] = {}  # receipts with no receiver bound yet
        self._partials: dict[tuple[bytes, str, int, int], dict[int, bytes]] = {}
        self._rr = 0
        self._hostile_credit = 0  # submits since the last hostile PDU
        self._hostile_turn = 0
        self._hostile_ids = 0
        self._server: asyncio.AbstractServer | None = None
        self._timers: _Timers | None = None
        self._clock = time.monotonic
        self._mo_seq = 0x70000000  # sequence numbers of send_mo's PDUs (apart from receipts')
        self._mo_pending: set[int] = set()

    # configuration

    @property
    def config(self) -> SmscConfig:
        return self._config

    @config.setter
    def config(self, config: SmscConfig) -> None:
        if config.seed != self._config.seed or not self._states:
            self._rng.seed(config.seed)
        self._config = config
        self._states = list(config.stat_mix)
        weights = list(config.stat_mix.values())
        total = sum(weights)
        acc = 0.0
        self._cumulative = []
        for w in weights:
            acc += w / total
            self._cumulative.append(acc)
        self._templates.clear()
        ascii_mark = config.mark.encode("ascii")
        self._marks = {0: ascii_mark, 1: ascii_mark, 3: ascii_mark,
                       8: config.mark.encode("utf-16-be")} if config.mark else {}
        self._screen = bool(config.window_limit or config.tps_per_bind or config.error_ratio
                            or config.error_destinations)

    def set_config(self, **changes: Any) -> SmscConfig:
        """Change settings now, connections kept: ``set_config(no_response=True)``."""
        self.config = msgspec.structs.replace(self._config, **changes)
        return self._config

    # lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on ``host:port`` (0: a free port, then read ``self.port``). OSError if taken."""
        loop = asyncio.get_running_loop()
        self._timers = _Timers(loop, self._fire)
        self._clock = loop.time
        self._server = await loop.create_server(lambda: _Conn(self), host, port)
        self.host, self.port = self._server.sockets[0].getsockname()[:2]

    async def stop(self) -> None:
        """Stop listening and close every connection."""
        if self._server is not None:
            self._server.close()
        for conn in list(self._conns):
            conn.close()
        if self._timers is not None:
            self._timers.cancel()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        await asyncio.sleep(0)

    async def drop_all(self) -> int:
        """Drop every connection now, unflushed (a network failure). Returns how many."""
        conns = list(self._conns)
        for conn in conns:
            conn.drop()
        await asyncio.sleep(0)
        return len(conns)

    async def __aenter__(self) -> Smsc:
        if self._server is None:
            await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def connections(self) -> int:
        """Connections open now."""
        return len(self._conns)

    def inject(self, data: bytes, system_id: str | None = None) -> int:
        """Write raw bytes (say, a hand-made deliver_sm) to every bound connection that
        receives, of ``system_id`` if given; how many got them. For tests of the ESME."""
        conns = [c for c in self._conns if c.receives and not c.closing
                 and (system_id is None or c.system_id == system_id)]
        for conn in conns:
            conn.transport.write(data)
        return len(conns)

    def send_mo(self, source: str, data: bytes, *, data_coding: int = 0, esm_class: int = 0,
                data_sm: bool = False, destination: str = "8085",
                tlvs: dict[int, bytes] | None = None, system_id: str | None = None,
                body: bytes | None = None) -> int:
        """Send what a subscriber at ``source`` wrote (``data``, in ``data_coding``) as a
        deliver_sm, or as a data_sm with the text in message_payload; ``esm_class`` 0x04 makes
        it a receipt, 0x40 says ``data`` starts with a UDH. ``body`` replaces the PDU's body
        (a malformed one). Written to every receiving bind (of ``system_id``); their answers
        are counted in ``stats.mo_acked``. How many binds got it."""
        self._mo_seq += 1
        seq = self._mo_seq
        if body is not None:
            pdu_bytes = encode(DATA_SM if data_sm else DELIVER_SM, seq, body)
        elif data_sm:
            pdu_bytes = encode_data_sm(seq, source_addr=source, destination_addr=destination,
                                       esm_class=esm_class, data_coding=data_coding,
                                       tlvs={**(tlvs or {}), TLV_MESSAGE_PAYLOAD: data})
        else:
            pdu_bytes = encode_short_message(DELIVER_SM, seq, ShortMessage(
                destination_addr=destination, short_message=data, source_addr=source,
                source_addr_ton=1, source_addr_npi=1, esm_class=esm_class,
                data_coding=data_coding, tlvs=tlvs or {}))
        sent = self.inject(pdu_bytes, system_id)
        if sent:
            self._mo_pending.add(seq)
            self.stats.mo_sent += 1
        return sent

    @property
    def receipts_outstanding(self) -> int:
        """Receipts sent and not yet acknowledged, plus those waiting for a receiver bind."""
        return (sum(len(c.inflight) for c in self._conns)
                + sum(len(q) for q in self._waiting.values()))

    # internals used by the connections

    def _message_id(self) -> bytes:
        self._next_id += 1
        return b"%010x" % self._next_id

    def _pick_state(self) -> str:
        if len(self._states) == 1:
            return self._states[0]
        i = bisect.bisect_right(self._cumulative, self._rng.random())
        return self._states[min(i, len(self._states) - 1)]

    def _receipt_body(self, mid: bytes, state: str, source_part: bytes, dest_part: bytes,
                      submitted: float, done: float) -> bytes:
        """The body of a receipt's deliver_sm: its addresses and message id put into a template
        kept per state, second of submission, second of delivery and id length."""
        key = (state, int(submitted), int(done), len(mid))
        found = self._templates.get(key)
        if found is None:
            if len(self._templates) > 4096:
                self._templates.clear()
            found = self._templates[key] = self._receipt_template(*key)
        template, ids = found
        return template % ((source_part, dest_part, mid, mid) if ids == 2 else
                           (source_part, dest_part, mid))

    def _receipt_template(self, state: str, submitted: int, done: int,
                          id_length: int) -> tuple[bytes, int]:
        """A receipt body as a %-template of its two address parts and its message id (in the
        text, in the TLVs, or both), and how many times the id is in it."""

        def literal(data: bytes) -> bytes:
            return data.replace(b"%", b"%%")

        fmt = self._config.receipt_format
        pieces = [b"\0%s%s", literal(_RECEIPT_FLAGS)]
        ids = 0
        if fmt == "tlv":
            pieces.append(b"\0")  # sm_length: no text
        else:
            tail = format_receipt(
                "", state, error="000" if state in _OK_STATES else "001",
                seconds=self._config.twelve_digit_dates,
                submitted=dt.datetime.fromtimestamp(submitted, dt.UTC).replace(tzinfo=None),
                done=dt.datetime.fromtimestamp(done, dt.UTC).replace(tzinfo=None))[3:]
            pieces += [literal(bytes((3 + id_length + len(tail),))), b"id:%s", literal(tail)]
            ids += 1
        if fmt != "text":
            pieces += [literal(_pack_tlv(TLV_RECEIPTED_MESSAGE_ID, id_length + 1)), b"%s\0",
                       literal(_STATE_TLV[state])]
            if state not in _OK_STATES:
                pieces.append(literal(_NETWORK_ERROR))
            ids += 1
        return b"".join(pieces), ids

    def _receiver(self, system_id: str) -> _Conn | None:
        conns = self._receivers.get(system_id)
        if not conns:
            return None
        self._rr += 1
        return conns[self._rr % len(conns)]

    def _route(self, origin: _Conn, body: bytes, writes: dict[_Conn, list[bytes]]) -> None:
        """Send a receipt on ``origin`` if it can take it, else another bind, else keep it."""
        target = origin if origin.receives and not origin.closing else \
            self._receiver(origin.system_id)
        if target is None:
            waiting = self._waiting.get(origin.system_id)
            if waiting is None:
                self._waiting[origin.system_id] = waiting = deque(maxlen=MAX_WAITING)
            waiting.append(body)
            return
        chunks = writes.get(target)
        if chunks is None:
            writes[target] = chunks = []
        chunks.append(target.deliver(body))

    def _fire(self, items: list[_Item]) -> None:
        writes: dict[_Conn, list[bytes]] = {}
        for item in items:
            conn = item.conn
            if item.receipt:
                self._route(conn, item.data, writes)
            elif not conn.closing:
                conn.unanswered -= 1
                self.stats.responses += 1
                chunks = writes.get(conn)
                if chunks is None:
                    writes[conn] = chunks = []
                chunks.append(item.data)
        for conn, chunks in writes.items():
            conn.transport.write(b"".join(chunks))

    def _complete(self, destination: str, data: bytes, coding: int) -> None:
        stats = self.stats
        stats.messages += 1
        duplicate = self.received.add(destination, hash((coding, data)))
        if duplicate:
            stats.duplicates += 1
        if self._marks:
            mark = self._marks.get(coding)
            if mark is not None and mark in data:
                stats.marked_messages += 1
                stats.marked_duplicates += duplicate
                stats.last_marked_at = time.time()
                if not stats.first_marked_at:
                    stats.first_marked_at = stats.last_marked_at
        if self._config.keep_texts:
            self.texts.setdefault(destination, []).append(_decode(data, coding))

    def _part(self, source: bytes, destination: str, payload: bytes, coding: int) -> None:
        """A part with a UDH: count the message when its last missing part arrives."""
        found = parse_concat_udh(payload)
        if found is None:
            size = 1 + payload[0] if payload else 0
            self._complete(destination, payload[size:], coding)
            return
        ref, total, seq, data = found
        if total == 1:
            self._complete(destination, data, coding)
            return
        key = (source, destination, ref, total)
        partials = self._partials
        parts = partials.get(key)
        if parts is None:
            if len(partials) >= MAX_PARTIALS:
                del partials[next(iter(partials))]
            partials[key] = parts = {}
        elif seq in parts:
            self.stats.duplicate_parts += 1
        parts[seq] = data
        if len(parts) == total:
            del partials[key]
            self._complete(destination, b"".join(parts[i] for i in range(1, total + 1)), coding)


class _Conn(asyncio.Protocol):
    """One ESME connection."""

    __slots__ = ("bound", "closing", "deliver_seq", "framer", "hangup", "hostile_seqs",
                 "inflight", "poisoned", "receives", "sends", "smsc", "submits", "system_id",
                 "tps_count", "tps_start", "transport", "unanswered")

    transport: asyncio.Transport

    def __init__(self, smsc: Smsc) -> None:
        self.smsc = smsc
        self.framer = Framer()
        self.system_id = ""
        self.bound = self.receives = self.sends = self.closing = self.hangup = False
        self.poisoned = False  # a hostile PDU broke the stream: waiting for the ESME to hang up
        self.deliver_seq = 0
        self.inflight: dict[int, bytes] = {}  # deliver_sm seq -> body, until deliver_sm_resp
        self.hostile_seqs: set[int] = set()  # hostile requests not answered yet
        self.submits = 0
        self.unanswered = 0
        self.tps_start = -1.0
        self.tps_count = 0

    def __repr__(self) -> str:
        return f"<smsc connection {self.system_id or 'unbound'}>"

    # asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.smsc._conns.add(self)
        self.smsc.stats.connections += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self._forget()
        smsc = self.smsc
        smsc._conns.discard(self)
        if self.inflight:
            bodies = list(self.inflight.values())
            self.inflight.clear()
            smsc.stats.receipts_requeued += len(bodies)
            writes: dict[_Conn, list[bytes]] = {}
            for body in bodies:
                smsc._route(self, body, writes)
            for conn, chunks in writes.items():
                conn.transport.write(b"".join(chunks))

    def pause_writing(self) -> None:
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            self._take_acks(data)
            return
        smsc = self.smsc
        try:
            frames = self.framer.frames(data)
        except PduError:
            smsc.stats.malformed += 1
            self.transport.write(encode_generic_nack(0, ESME_RINVCMDLEN))
            self.close(disconnect=True)
            return
        out: list[bytes] = []
        writes: dict[_Conn, list[bytes]] = {self: out}
        try:
            submits = smsc.stats.submits
            now = smsc._clock()
            wall = time.time()
            for cid, status, seq, body in frames:
                if cid == SUBMIT_SM:
                    self._submit(seq, body, out, writes, now, wall)
                    if self.closing:
                        break
                elif cid & RESP:
                    self._response(cid, status, seq)
                elif cid == ENQUIRE_LINK:
                    smsc.stats.enquire_links += 1
                    out.append(encode(ENQUIRE_LINK | RESP, seq))
                elif cid in BINDS:
                    self._bind(cid, seq, body, out)
                elif cid == UNBIND:
                    smsc.stats.unbinds += 1
                    out.append(encode(UNBIND | RESP, seq))
                    self.closing = True
                    break
                else:
                    out.append(encode_generic_nack(seq, ESME_RINVCMDID))
            if self.framer.broken and not self.closing:  # a bad length after those PDUs
                smsc.stats.malformed += 1
                out.append(encode_generic_nack(0, ESME_RINVCMDLEN))
                self.closing = self.hangup = True
            elif smsc._config.hostile and self.bound and not self.closing:
                self._hostile(smsc.stats.submits - submits, out, writes)
        except Exception:  # a bug here must not take the whole simulator down
            log.exception("SMSC simulator: dropping %r after an internal error", self)
            smsc.stats.malformed += 1
            self.drop()
            return
        for conn, chunks in writes.items():
            if chunks:
                conn.transport.write(b"".join(chunks))
        if self.closing and not self.poisoned:  # poisoned: the ESME is to hang up
            self.close(disconnect=self.hangup)

    # hostile mode

    def _hostile(self, submits: int, out: list[bytes], writes: dict[_Conn, list[bytes]]) -> None:
        """Count ``submits`` more and send the hostile PDUs that are due, after this read's
        answers. One that breaks the stream waits until every part delivered on this
        connection is answered: the ESME then loses nothing it could not send again (what it
        writes after it, this connection neither delivers nor answers)."""
        smsc = self.smsc
        config = smsc._config
        smsc._hostile_credit += submits
        stats = smsc.stats
        kinds = [k for k in HOSTILE_KINDS if k in config.hostile]
        while smsc._hostile_credit >= config.hostile_every and not self.poisoned:
            kind = kinds[smsc._hostile_turn % len(kinds)]
            if kind in _BREAKING and self.unanswered:
                return
            smsc._hostile_credit -= config.hostile_every
            smsc._hostile_turn += 1
            seq = self.deliver_seq = self.deliver_seq % MAX_SEQ + 1
            if kind == "unknown_command":
                stats.hostile_unknown_commands += 1
                self.hostile_seqs.add(seq)
                out.append(encode(HOSTILE_COMMAND, seq, b"\x01\x02\x03"))
            elif kind == "truncated":
                stats.hostile_truncated += 1
                self.hostile_seqs.add(seq)
                out.append(encode(DELIVER_SM, seq, _TRUNCATED))
            elif kind == "unknown_receipt":
                stats.hostile_unknown_receipts += 1
                smsc._hostile_ids += 1
                wall = time.time()
                body = smsc._receipt_body(b"x%09d" % smsc._hostile_ids, "DELIVRD",
                                          b"\x01\x0184900000000\0", b"\x05\x00LOA\0",
                                          wall, wall)
                smsc._route(self, body, writes)
            else:
                if kind == "bad_length":
                    stats.hostile_bad_lengths += 1
                else:
                    stats.hostile_oversized += 1
                length = 8 if kind == "bad_length" else 0x7FFFFFFF
                out.append(_pack_header(length, DELIVER_SM, 0, seq) + bytes(HEADER_SIZE))
                self.poisoned = self.closing = True
                self._forget()

    def _take_acks(self, data: bytes) -> None:
        """On a connection whose stream a hostile PDU broke: only take the answers to what was
        sent before it (receipts, hostile requests), until the ESME hangs up."""
        if not self.poisoned:
            return
        try:
            frames = self.framer.frames(data)
        except PduError:
            return
        for cid, status, seq, _ in frames:
            if cid & RESP:
                self._response(cid, status, seq)

    # commands

    def _response(self, cid: int, status: int, seq: int) -> None:
        """A response from the ESME: deliver_sm_resp (a receipt acknowledged, or refused and
        dropped), generic_nack; enquire_link_resp and unbind_resp need nothing."""
        smsc = self.smsc
        stats = smsc.stats
        if seq in smsc._mo_pending and cid in (DELIVER_SM_RESP, DATA_SM | RESP, GENERIC_NACK):
            smsc._mo_pending.discard(seq)
            if status or cid == GENERIC_NACK:
                stats.mo_nacked += 1
            else:
                stats.mo_acked += 1
            return
        if cid == DELIVER_SM_RESP:
            if self.inflight.pop(seq, None) is not None:
                if status:
                    stats.receipt_nacks += 1
                else:
                    stats.receipts_acked += 1
                return
        elif cid == GENERIC_NACK:
            stats.nacks_received += 1
        else:
            return
        if seq in self.hostile_seqs:
            self.hostile_seqs.discard(seq)
            stats.hostile_answered += 1

    def _bind(self, command_id: int, seq: int, body: bytes, out: list[bytes]) -> None:
        smsc = self.smsc
        config = smsc._config
        if self.bound:
            smsc.stats.bind_failures += 1
            out.append(encode_bind_resp(command_id, seq, config.system_id, ESME_RALYBND))
            return
        try:
            bind = parse_bind(body)
        except PduError:
            smsc.stats.malformed += 1
            smsc.stats.bind_failures += 1
            out.append(encode_bind_resp(command_id, seq, config.system_id, ESME_RINVCMDLEN))
            return
        status = 0
        if config.refuse_binds:
            status = ESME_RBINDFAIL
        elif config.credentials:
            password = config.credentials.get(bind.system_id)
            if password is None:
                status = ESME_RINVSYSID
            elif password != bind.password:
                status = ESME_RINVPASWD
        out.append(encode_bind_resp(command_id, seq, config.system_id, status))
        if status:
            smsc.stats.bind_failures += 1
            return
        smsc.stats.binds += 1
        self.bound = True
        self.system_id = bind.system_id
        self.sends = command_id != BIND_RECEIVER
        self.receives = command_id != BIND_TRANSMITTER
        if self.receives:
            smsc._receivers.setdefault(self.system_id, []).append(self)
            waiting = smsc._waiting.pop(self.system_id, None)
            if waiting:
                out.extend(self.deliver(b) for b in waiting)

    def _submit(self, seq: int, body: bytes, out: list[bytes],
                writes: dict[_Conn, list[bytes]], now: float, wall: float) -> None:
        smsc = self.smsc
        stats = smsc.stats
        stats.submits += 1
        if not stats.first_submit_at:
            stats.first_submit_at = wall
        stats.last_submit_at = wall
        self.submits += 1
        limit = smsc._config.disconnect_after
        if limit and self.submits >= limit:
            self.closing = self.hangup = True
        if not self.sends:
            status = ESME_RINVBNDSTS
        else:
            try:
                fields = _parse_submit(body)
            except PduError:
                stats.malformed += 1
                status = ESME_RINVCMDLEN
            else:
                status = (ESME_RINVDSTADR if not fields[4] else
                          self._refusal(fields[4], now) if smsc._screen else 0)
        if status:
            stats.responses += 1
            out.append(_submit_resp(seq, status))
        else:
            self._accept(seq, body, fields, out, writes, now, wall)

    def _refusal(self, destination: str, now: float) -> int:
        """The error status a submit to ``destination`` gets now, or 0 to accept it."""
        smsc = self.smsc
        config = smsc._config
        stats = smsc.stats
        if config.window_limit and self.unanswered >= config.window_limit:
            stats.window_abuse += 1
            if config.window_reject:
                return ESME_RMSGQFUL
        if config.tps_per_bind:
            if now - self.tps_start >= 1.0:
                self.tps_start, self.tps_count = now, 0
            if self.tps_count >= config.tps_per_bind:
                stats.throttled += 1
                return ESME_RTHROTTLED
            self.tps_count += 1
        status = config.error_destinations.get(destination, 0) if config.error_destinations \
            else 0
        if not status and config.error_ratio and smsc._rng.random() < config.error_ratio:
            status = config.error_status
        if status:
            stats.errors_injected += 1
        return status

    def _accept(self, seq: int, body: bytes, fields: _Submit, out: list[bytes],
                writes: dict[_Conn, list[bytes]], now: float, wall: float) -> None:
        """Deliver the part, then answer it and send its receipt, now or later."""
        smsc = self.smsc
        config = smsc._config
        stats = smsc.stats
        stats.parts += 1
        stats.last_part_at = wall
        source, source_part, dest_part, esm_class, destination, registered, coding, payload, \
            priority = fields
        if priority:
            stats.priority_parts += 1
            if not stats.first_priority_at:
                stats.first_priority_at = wall
        if esm_class & ESM_UDHI:
            smsc._part(source, destination, payload, coding)
        else:
            smsc._complete(destination, payload, coding)
        if config.no_response or destination in config.no_response_destinations:
            smsc.stats.unanswered += 1
            self.unanswered += 1
            return
        mid = smsc._message_id()
        resp = _pack_header(HEADER_SIZE + len(mid) + 1, SUBMIT_SM_RESP, 0, seq) + mid + b"\0"
        receipt = None
        if config.receipts and registered & 3:
            states = smsc._states
            state = states[0] if len(states) == 1 else smsc._pick_state()
            if registered & 3 != 2 or state != "DELIVRD":  # 2: receipt on failure only
                receipt = smsc._receipt_body(
                    mid, state, dest_part, source_part, wall,
                    wall + config.response_delay + config.receipt_delay)
        if receipt is not None and config.receipt_before_response:
            self._receipt(receipt, config.receipt_delay, out, writes, now)
            self._respond(resp, config.receipt_delay + config.response_delay, out, now)
            return
        if config.response_delay:
            self._respond(resp, config.response_delay, out, now)
        else:
            smsc.stats.responses += 1
            out.append(resp)
        if receipt is not None:
            delay = config.response_delay + config.receipt_delay
            if not delay and self.receives:
                out.append(self.deliver(receipt))
            else:
                self._receipt(receipt, delay, out, writes, now)

    def _respond(self, resp: bytes, delay: float, out: list[bytes], now: float) -> None:
        if delay <= 0:
            self.smsc.stats.responses += 1
            out.append(resp)
            return
        self.unanswered += 1
        assert self.smsc._timers is not None
        self.smsc._timers.add(now + delay, _Item(self, resp, False))

    def _receipt(self, body: bytes, delay: float, out: list[bytes],
                 writes: dict[_Conn, list[bytes]], now: float) -> None:
        if delay > 0:
            assert self.smsc._timers is not None
            self.smsc._timers.add(now + delay, _Item(self, body, True))
        elif self.receives:
            out.append(self.deliver(body))
        else:
            self.smsc._route(self, body, writes)

    # sending

    def deliver(self, body: bytes) -> bytes:
        """The deliver_sm PDU of a receipt body on this connection, remembered until acked."""
        seq = self.deliver_seq = self.deliver_seq % MAX_SEQ + 1
        self.inflight[seq] = body
        self.smsc.stats.receipts_sent += 1
        return _pack_header(HEADER_SIZE + len(body), DELIVER_SM, 0, seq) + body

    def _forget(self) -> None:
        conns = self.smsc._receivers.get(self.system_id)
        if conns and self in conns:
            conns.remove(self)

    def close(self, *, disconnect: bool = False) -> None:
        """Close after what is written: after an unbind, or (``disconnect``) on purpose."""
        self.closing = True
        self._forget()
        if not self.transport.is_closing():
            self.smsc.stats.disconnects += disconnect
            self.transport.close()

    def drop(self) -> None:
        """Close at once, dropping what is not written yet."""
        self.closing = True
        self._forget()
        if not self.transport.is_closing():
            self.smsc.stats.disconnects += 1
            self.transport.abort()

