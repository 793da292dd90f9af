"""One SMPP bind as an asyncio ESME: connect, bind, a send window, correlation, enquire_link,
response timeouts, reconnect with capped backoff, receipts, and a clean unbind.

Per message the session does the least it can: the PDU bytes go into a buffer that is written
once per event-loop pass, and responses are matched by sequence number into the arrays of the
batch they belong to; one future per batch, not per message. The window bounds the submit_sm
that are unanswered at any moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from typing import cast

import msgspec

from adapters import metrics
from adapters.base import Abort, OnIncoming, OnReceipts
from adapters.metrics import SMS_DELIVERY_SECONDS
from adapters.smpp import mo, pdu
from adapters.smpp.rate import BindRate
from adapters.smpp.receipt import Receipt, ReceiptError, parse_receipt
from adapters.smpp.status import BIND_REFUSED_FOR_GOOD, describe
from dispatcher.domain.incoming import Incoming

log = logging.getLogger(__name__)

TIMEOUT_STATUS = -1  # no response in time: the message may or may not have been accepted
LOST_STATUS = -2  # the connection went away before the response (it may have been accepted)
NOT_SENT_STATUS = -3  # the bind was down when this PDU's turn came: it was never written
HALTED_STATUS = -4  # the batch was halted (stop, pause, cancel) before this PDU's turn
SUBMIT_SM_RESP = pdu.SUBMIT_SM | pdu.RESP
ESME_RINVCMDID = 0x03
# Responses to the commands a session sends besides submit_sm (binds, unbind, enquire_link).
_CONTROL_RESPONSES = frozenset(c | pdu.RESP for c in (*pdu.BINDS, pdu.UNBIND, pdu.ENQUIRE_LINK))
BIND_TYPES = {"transceiver": pdu.BIND_TRANSCEIVER, "transmitter": pdu.BIND_TRANSMITTER,
              "receiver": pdu.BIND_RECEIVER}


class BindConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    host: str
    port: int
    system_id: str
    password: str = ""
    system_type: str = ""
    bind_type: str = "transceiver"
    window: int = 64  # submit_sm in flight at most
    tps: float = 0.0  # submit_sm per second agreed with the carrier (0: no limit)
    tps_floor: float = 0.1  # share of tps that throttling answers never slow the bind below
    tps_burst_seconds: float = 0.1  # at most this many seconds of tps leave at once
    response_timeout: float = 10.0
    enquire_link_seconds: float = 30.0
    reconnect_min: float = 0.5
    reconnect_max: float = 30.0
    connect_timeout: float = 5.0


class SessionStats(msgspec.Struct):
    submitted: int = 0
    responses: int = 0
    timeouts: int = 0
    lost: int = 0
    receipts: int = 0
    receipts_malformed: int = 0  # deliver_sm receipts that could not be read (acknowledged)
    deliver_other: int = 0  # deliver_sm from subscribers (handed to on_incoming)
    data_sm: int = 0  # data_sm received (receipts and messages from subscribers)
    nacks: int = 0
    reconnects: int = 0
    bind_failures: int = 0
    malformed: int = 0  # PDUs that could not be read: a body that ends early, a length < 16
    oversized: int = 0  # command_length above pdu.MAX_PDU: the connection is closed at once
    unknown_commands: int = 0  # requests answered generic_nack, responses to nothing asked


class Accepted:
    """Messages of one ``submit`` the SMSC has accepted so far, told as the responses come.

    The submit's items are messages of ``parts`` consecutive items each; message ``m`` is
    appended to ``into`` as ``first + m`` once every one of its parts is accepted."""

    __slots__ = ("_got", "first", "into", "parts")

    def __init__(self, into: list[int], first: int = 0, parts: int = 1) -> None:
        self.into = into
        self.first = first
        self.parts = parts
        self._got: dict[int, int] = {}

    def part(self, index: int) -> None:
        if self.parts == 1:
            self.into.append(self.first + index)
            return
        message = index // self.parts
        got = self._got.get(message, 0) + 1
        if got == self.parts:
            self._got.pop(message, None)
            self.into.append(self.first + message)
        else:
            self._got[message] = got


class _Batch:
    """Where the responses of one ``submit`` go."""

    __slots__ = ("accepted", "done", "ids", "remaining", "statuses")

    def __init__(self, n: int, loop: asyncio.AbstractEventLoop,
                 accepted: Accepted | None = None) -> None:
        self.statuses = [0] * n
        self.ids = [""] * n
        self.remaining = n
        self.accepted = accepted
        self.done: asyncio.Future[None] = loop.create_future()

    def answer(self, index: int, status: int, message_id: str) -> None:
        self.statuses[index] = status
        self.ids[index] = message_id
        self.remaining -= 1
        if status == 0 and self.accepted is not None:
            self.accepted.part(index)
        if self.remaining == 0 and not self.done.done():
            self.done.set_result(None)


class _Protocol(asyncio.Protocol):
    def __init__(self, session: EsmeSession) -> None:
        self.session = session
        self.framer = pdu.Framer()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses: no isinstance check here
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            frames = self.framer.frames(data)
        except pdu.CommandLengthError as exc:
            self.session._unreadable(self, exc)
            return
        self.session._handle(frames)
        error = self.framer.error
        if error is not None:
            self.session._unreadable(self, error)

    def connection_lost(self, exc: Exception | None) -> None:
        self.session._lost(self)


class EsmeSession:
    """A bind that stays up: ``start`` keeps it connected until ``aclose``."""

    def __init__(self, config: BindConfig, *, name: str = "", link: str = "",
                 on_receipt: OnReceipts[Receipt] | None = None,
                 on_incoming: OnIncoming | None = None) -> None:
        self.config = config
        self.name = name or f"{config.system_id}@{config.host}:{config.port}"
        self.log_ids = {"link": link or self.name}  # the ids of its log lines
        self.on_receipt = on_receipt
        self.on_incoming = on_incoming
        self.stats = SessionStats()
        self.rate = BindRate(config.tps, floor=config.tps_floor,
                             burst_seconds=config.tps_burst_seconds)
        self.bound = asyncio.Event()
        self.refused: str | None = None  # set when the SMSC refuses the credentials for good
        self._proto: _Protocol | None = None
        self._seq = 0
        self._pending: dict[int, tuple[_Batch, int, float]] = {}
        self._control: dict[int, asyncio.Future[tuple[int, bytes]]] = {}
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._window_free: asyncio.Event = asyncio.Event()
        self._window_free.set()
        self._urgent = 0  # urgent submits waiting for their turn: routine ones wait for them
        self._closing = False
        self._last_io = time.monotonic()
        self._gone = asyncio.Event()  # set when the current connection is lost
        self._runner: asyncio.Task[None] | None = None

    @property
    def in_flight(self) -> int:
        """submit_sm written and not answered yet (read by the metrics at scrape time)."""
        return len(self._pending)

    @property
    def is_bound(self) -> bool:
        return self.bound.is_set()

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect and bind in the background; ``bound`` is set whenever the bind is up."""
        if self._runner is None:
            self._runner = asyncio.create_task(self._run(), name=f"smpp {self.name}")

    async def aclose(self) -> None:
        """Unbind cleanly (waiting briefly for unbind_resp) and stop reconnecting."""
        self._closing = True
        proto = self._proto
        if proto is not None and proto.transport is not None and self.bound.is_set():
            with contextlib.suppress(TimeoutError, ConnectionError):
                await asyncio.wait_for(self._request(pdu.UNBIND), 2.0)
        if proto is not None and proto.transport is not None:
            proto.transport.close()
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner

    async def _run(self) -> None:
        delay = self.config.reconnect_min
        while not self._closing:
            try:
                await self._connect_and_bind()
                delay = self.config.reconnect_min
                await self._keepalive()
            except (OSError, TimeoutError, ConnectionError) as exc:
                log.warning("%s: %s", self.name, exc or type(exc).__name__,
                            extra=self.log_ids)
            self.bound.clear()
            if self._closing or self.refused:
                break
            self.stats.reconnects += 1
            await asyncio.sleep(delay)
            delay = min(self.config.reconnect_max, delay * 2)

    async def _connect_and_bind(self) -> None:
        loop = asyncio.get_running_loop()
        self._gone = asyncio.Event()
        _, proto = await asyncio.wait_for(
            loop.create_connection(lambda: _Protocol(self), self.config.host, self.config.port),
            self.config.connect_timeout)
        self._proto = proto
        bind = pdu.Bind(system_id=self.config.system_id, password=self.config.password,
                        system_type=self.config.system_type)
        command = BIND_TYPES[self.config.bind_type]
        status, _ = await asyncio.wait_for(self._request(command, bind),
                                           self.config.response_timeout)
        if status != 0:
            self.stats.bind_failures += 1
            if status in BIND_REFUSED_FOR_GOOD:
                self.refused = describe(status)
            raise ConnectionError(f"bind refused: {describe(status)}")
        self.bound.set()
        log.info("%s: bound (%s)", self.name, self.config.bind_type, extra=self.log_ids)

    async def _keepalive(self) -> None:
        """While bound: enquire_link when idle, time out unanswered submits."""
        proto = self._proto
        gone = self._gone
        period = min(1.0, self.config.response_timeout / 2)
        while self._proto is proto and proto is not None and proto.transport is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(gone.wait(), period)  # a lost connection: rebind now
            if gone.is_set():
                return
            self._expire(time.monotonic())
            if time.monotonic() - self._last_io >= self.config.enquire_link_seconds:
                try:
                    await asyncio.wait_for(self._request(pdu.ENQUIRE_LINK),
                                           self.config.response_timeout)
                except TimeoutError:
                    log.warning("%s: enquire_link unanswered; reconnecting", self.name,
                                extra=self.log_ids)
                    if proto.transport is not None:
                        proto.transport.close()
                    raise

    # -- sending -------------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        self._out.append(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        out = self._out  # the same list for the session's life: callers may hold it
        proto = self._proto
        if out and proto is not None and proto.transport is not None:
            proto.transport.write(b"".join(out))
        out.clear()

    def _next_seq(self) -> int:
        self._seq = self._seq % 0x7FFFFFFF + 1
        return self._seq

    async def _request(self, command: int, bind: pdu.Bind | None = None) -> tuple[int, bytes]:
        seq = self._next_seq()
        future: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
        self._control[seq] = future
        self._write(pdu.encode_bind(command, seq, bind) if bind else pdu.encode(command, seq))
        try:
            return await future
        finally:
            self._control.pop(seq, None)

    async def submit(self, template: pdu.SubmitTemplate, items: list[tuple[int, str, bytes]],
                     accepted: Accepted | None = None, *, abort: Abort | None = None,
                     urgent: bool = False) -> tuple[list[int], list[str]]:
        """Send one submit_sm per (index, destination, payload). Returns, by index, each
        command_status (``TIMEOUT_STATUS``/``LOST_STATUS`` when none came) and message id.
        Waits for the window; a PDU that finds the bind down is answered ``NOT_SENT_STATUS``,
        one whose turn comes after ``abort`` was set ``HALTED_STATUS``. ``accepted`` is told of
        each accepted message as its response arrives. While an ``urgent`` submit waits for the
        window or the rate, routine ones write nothing: the next free places are the urgent
        one's."""
        loop = asyncio.get_running_loop()
        batch = _Batch(len(items), loop, accepted)
        encode = template.encode
        window = self.config.window
        pending = self._pending
        out = self._out
        rate = self.rate
        rate.tick()
        # The bind can only go down, time only matters, and a halt can only come across an
        # await: all are read again after each one.
        up = self.bound.is_set()
        halted = abort is not None and abort.halted
        sent_at = time.monotonic()
        stats = self.stats
        for index, destination, payload in items:
            if halted:
                batch.answer(index, HALTED_STATUS, "")
                continue
            if rate.rate or len(pending) >= window or (self._urgent and not urgent):
                await self._turn(urgent)
                up = self.bound.is_set()
                halted = abort is not None and abort.halted
                sent_at = time.monotonic()
                if halted:
                    batch.answer(index, HALTED_STATUS, "")
                    continue
            if not up:
                batch.answer(index, NOT_SENT_STATUS, "")
                continue
            seq = self._seq = self._seq % 0x7FFFFFFF + 1
            pending[seq] = (batch, index, sent_at)
            out.append(encode(seq, destination, payload))
            stats.submitted += 1
            if not self._flush_scheduled:
                self._flush_scheduled = True
                loop.call_soon(self._flush)
        if items:
            await batch.done
        return batch.statuses, batch.ids

    async def _turn(self, urgent: bool) -> None:
        """Wait for a place in the window and the rate; routine submits also for every urgent
        one that waits."""
        if not urgent:
            while self._urgent:
                self._window_free.clear()
                await self._window_free.wait()
            if self.rate.rate:
                await self.rate.acquire()
            while len(self._pending) >= self.config.window or self._urgent:
                self._window_free.clear()
                await self._window_free.wait()
            return
        self._urgent += 1
        try:
            if self.rate.rate:
                await self.rate.acquire()
            while len(self._pending) >= self.config.window:
                self._window_free.clear()
                await self._window_free.wait()
        finally:
            self._urgent -= 1
            if not self._urgent:
                self._window_free.set()  # wake the routine submits that waited for it

    def _expire(self, now: float) -> None:
        limit = self.config.response_timeout
        late = [seq for seq, (_, _, sent) in self._pending.items() if now - sent > limit]
        for seq in late:
            batch, index, _ = self._pending.pop(seq)
            self.stats.timeouts += 1
            batch.answer(index, TIMEOUT_STATUS, "")
        if late:
            self._window_free.set()

    # -- receiving ---------------------------------------------------------------------------

    def _handle(self, frames: list[pdu.Frame]) -> None:
        self._last_io = time.monotonic()
        pending = self._pending
        stats = self.stats
        receipts: list[Receipt] = []
        came: list[Incoming] = []  # from subscribers
        acks: list[bytes] = []
        responses = 0
        for command, status, seq, body in frames:
            if command == SUBMIT_SM_RESP:
                entry = pending.pop(seq, None)
                if entry is not None:
                    responses += 1
                    try:
                        message_id = pdu.parse_message_id(body) if status == 0 else ""
                    except pdu.PduError:
                        message_id = ""  # accepted, with an id no receipt can name
                        stats.malformed += 1
                    entry[0].answer(entry[1], status, message_id)
            elif command == pdu.DELIVER_SM:
                acks.append(pdu.encode_deliver_sm_resp(seq))  # always, even if unreadable
                try:
                    esm_class, text, tlvs = pdu.parse_deliver_essentials(body)
                    if esm_class & pdu.ESM_RECEIPT:
                        receipts.append(parse_receipt(text, tlvs))
                    else:
                        stats.deliver_other += 1
                        came.append(self._from_subscriber(body))
                except (pdu.PduError, ReceiptError) as exc:
                    self._malformed(exc)
            elif command == pdu.DATA_SM:
                acks.append(pdu.encode_data_sm_resp(seq))  # always, even if unreadable
                self._data_sm(body, receipts, came)
            else:
                if acks:  # in order: what came before is answered before what follows
                    self._write(b"".join(acks))
                    acks.clear()
                if self._other(command, status, seq, body):
                    break  # unbound by the SMSC: nothing after the unbind is served
        if responses:
            stats.responses += responses
            self._window_free.set()
        if acks:
            self._write(b"".join(acks))
        self._hand_over(receipts, came)

    def _hand_over(self, receipts: list[Receipt], came: list[Incoming]) -> None:
        """Hand one read's receipts and messages from subscribers on."""
        if receipts:
            self.stats.receipts += len(receipts)
            observe = SMS_DELIVERY_SECONDS.observe
            for r in receipts:
                if r.submitted is not None and r.done is not None and r.delivered:
                    observe(max(0.0, (r.done - r.submitted).total_seconds()))
            if self.on_receipt is not None:
                self.on_receipt(receipts)
        if came and self.on_incoming is not None:
            self.on_incoming(came)

    def _from_subscriber(self, body: bytes) -> Incoming:
        """A deliver_sm that is not a receipt: what a subscriber sent, in whatever encoding;
        one whose fields cannot be read is kept as unreadable (it is still acknowledged)."""
        now = dt.datetime.now(dt.UTC)
        try:
            m = pdu.parse_short_message(body)
        except pdu.PduError as exc:
            self.stats.malformed += 1
            log.warning("%s: unreadable deliver_sm from a subscriber: %s", self.name, exc,
                        extra=self.log_ids)
            return mo.unreadable(body, now, "deliver_sm")
        data = m.short_message or m.tlvs.get(pdu.TLV_MESSAGE_PAYLOAD, b"")
        return mo.incoming(m.source_addr, m.esm_class, m.data_coding, data, now)

    def _data_sm(self, body: bytes, receipts: list[Receipt], came: list[Incoming]) -> None:
        """A data_sm: a receipt (esm_class says so) joins ``receipts``, else what a subscriber
        sent joins ``came``; one that cannot be read is counted (and kept as unreadable)."""
        self.stats.data_sm += 1
        now = dt.datetime.now(dt.UTC)
        try:
            data = mo.parse_data_sm(body)
        except pdu.PduError as exc:
            self.stats.malformed += 1
            log.warning("%s: unreadable data_sm: %s", self.name, exc, extra=self.log_ids)
            came.append(mo.unreadable(body, now, "data_sm"))
            return
        if data.esm_class & pdu.ESM_RECEIPT:
            try:
                receipts.append(parse_receipt(data.payload, data.tlvs))
            except ReceiptError as exc:
                self._malformed(exc)
            else:
                metrics.DATA_SM_RECEIPTS.inc()
            return
        came.append(mo.incoming(data.source_addr, data.esm_class, data.data_coding,
                                data.payload, now))

    def _other(self, command: int, status: int, seq: int, body: bytes) -> bool:
        """A PDU that is neither a submit_sm_resp nor a deliver_sm; True when it closed the
        connection (an unbind)."""
        if command == pdu.ENQUIRE_LINK:
            self._write(pdu.encode(command | pdu.RESP, seq))
        elif command == pdu.UNBIND:
            self._write(pdu.encode(command | pdu.RESP, seq))
            self.bound.clear()
            if self._proto is not None:
                self._hang_up(self._proto)
            return True
        elif command == pdu.GENERIC_NACK:
            self.stats.nacks += 1
            self._nack(seq, status)
            self._window_free.set()
        elif command in _CONTROL_RESPONSES:
            future = self._control.get(seq)
            if future is not None and not future.done():
                future.set_result((status, body))
        elif command & pdu.RESP:  # the response to a command this session never sends
            self.stats.unknown_commands += 1
        else:  # a request this session does not serve
            self.stats.unknown_commands += 1
            self._write(pdu.encode_generic_nack(seq, ESME_RINVCMDID))
        return False

    def _malformed(self, exc: pdu.PduError | ReceiptError) -> None:
        self.stats.receipts_malformed += 1
        metrics.RECEIPTS_MALFORMED.inc()
        if isinstance(exc, ReceiptError):
            log.warning("%s: unreadable receipt: %s", self.name, exc, extra=self.log_ids)
        else:
            self.stats.malformed += 1

    def _unreadable(self, proto: _Protocol, error: pdu.CommandLengthError) -> None:
        """A command_length that cannot be right: nothing after it can be read. What came
        before is answered, then the connection is closed (and bound again)."""
        if proto.transport is None or proto.transport.is_closing():
            return  # already hung up: counted then
        if error.oversized:
            self.stats.oversized += 1
        else:
            self.stats.malformed += 1
        log.warning("%s: %s; closing the connection", self.name, error, extra=self.log_ids)
        self._hang_up(proto)

    def _hang_up(self, proto: _Protocol) -> None:
        """Close ``proto``'s connection after writing what is waiting to be written."""
        transport = proto.transport
        if transport is None or transport.is_closing():
            return
        if proto is self._proto:
            self._flush()
        transport.close()

    def _nack(self, seq: int, status: int) -> None:
        entry = self._pending.pop(seq, None)
        if entry is not None:
            entry[0].answer(entry[1], status or 0xFF, "")
            return
        future = self._control.get(seq)
        if future is not None and not future.done():
            future.set_result((status or 0xFF, b""))

    def _lost(self, proto: _Protocol) -> None:
        if self._proto is not proto:
            return
        self._proto = None
        self._gone.set()
        self.bound.clear()
        for batch, index, _ in self._pending.values():
            self.stats.lost += 1
            batch.answer(index, LOST_STATUS, "")
        self._pending.clear()
        self._window_free.set()
        for future in self._control.values():
            if not future.done():
                future.set_exception(ConnectionError("connection lost"))
