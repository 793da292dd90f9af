"""The SMS channel: batches to carrier links over SMPP.

A link is a carrier's SMSC account: host, port, credentials, a number of binds, each with its
own window and TPS. A batch's route names its link (``sms.viettel`` -> link ``viettel``; the
``default`` link takes routes without one). The text of a batch is encoded once (GSM-7 or UCS-2,
parts with a concatenation UDH); per message only the destination, the sequence numbers and the
UDH reference change. A message is sent when every part is accepted; its remote id lists the
SMSC's message id of each part, which is how receipts are matched.
"""

from __future__ import annotations

import asyncio
import itertools

import msgspec

from adapters import metrics
from adapters.base import HALTED, Abort, Envelope, OnIncoming, OnReceipts, Results
from adapters.smpp import pdu
from adapters.smpp.receipt import Receipt
from adapters.smpp.session import (
    HALTED_STATUS,
    LOST_STATUS,
    NOT_SENT_STATUS,
    TIMEOUT_STATUS,
    Accepted,
    BindConfig,
    EsmeSession,
)
from adapters.smpp.status import UNREACHABLE, Action, action, describe
from dispatcher.domain import smstext
from dispatcher.domain.errors import ChannelError

DEFAULT_LINK = "default"
# A message's outcome is its worst part's: one refused part fails it, one that failed for now
# retries it; a message none of whose parts were written, or that the SMSC throttled ("not
# now", 0x58 and 0x14), is requeued without using an attempt.
REQUEUE = "requeue"
RANK: dict[Action | str, int] = {Action.SENT: 0, REQUEUE: 1, Action.RETRY: 2, Action.THROTTLE: 3,
                                 Action.FAIL: 4}


class LinkConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A carrier's SMPP account. ``password`` is filled in from the environment variable named
    by ``password_env`` by the settings loader; it is never written in a file."""

    host: str
    port: int
    system_id: str
    password_env: str = ""
    password: str = ""
    system_type: str = ""
    bind_type: str = "transceiver"  # or "transmitter" (no receipts) or "pair" (tx + rx binds)
    binds: int = 1
    window: int = 64
    tps: float = 0.0  # per bind; counts every submit_sm (every part); any fraction
    # share of tps that throttling answers ("throttled", "queue full") never slow a bind below
    tps_floor: float = 0.1
    tps_burst_seconds: float = 0.1  # after a pause, at most this many seconds of tps at once
    source_addr: str = "QuangNinh"  # brandname (TON 5) or a number
    source_ton: int = pdu.TON_ALPHANUMERIC
    source_npi: int = 0
    registered_delivery: int = 1
    # priority_flag of urgent notices' submit_sm (0 = normal; 1-3 = priority, which a GSM SMSC
    # reads as priority); routine messages always carry 0
    urgent_priority_flag: int = 1
    validity_period: str = "000002000000R"  # relative: two days
    response_timeout: float = 10.0
    enquire_link_seconds: float = 30.0
    bind_wait: float = 5.0  # how long a batch waits for a bind before it is retried

    def bind(self) -> BindConfig:
        return BindConfig(host=self.host, port=self.port, system_id=self.system_id,
                          password=self.password, system_type=self.system_type,
                          bind_type=self.bind_type, window=self.window, tps=self.tps,
                          tps_floor=self.tps_floor, tps_burst_seconds=self.tps_burst_seconds,
                          response_timeout=self.response_timeout,
                          enquire_link_seconds=self.enquire_link_seconds)


class AdapterStats(msgspec.Struct):
    messages: int = 0
    parts: int = 0
    possible_duplicates: int = 0  # no response in time: resent, though it may have gone out
    throttled: int = 0


class _Link:
    """A link's binds, by slot number. Unleased, every slot of ``binds`` is open; leased (many
    workers share the link), only the slots this process holds a lease for (:meth:`hold`)."""

    def __init__(self, name: str, config: LinkConfig,
                 on_receipt: OnReceipts[Receipt] | None, *, leased: bool,
                 on_incoming: OnIncoming | None = None) -> None:
        self.name = name
        self.config = config
        self.leased = leased
        self._on_receipt = on_receipt
        self._on_incoming = on_incoming
        self._slots: dict[int, tuple[EsmeSession, EsmeSession | None]] = {}
        if not leased:
            for slot in range(config.binds):
                self._slots[slot] = self._open(slot)

    def _open(self, slot: int) -> tuple[EsmeSession, EsmeSession | None]:
        bind = self.config.bind()
        receiver = None
        if self.config.bind_type == "pair":  # a transmitter to send, a receiver for the receipts
            receiver = EsmeSession(msgspec.structs.replace(bind, bind_type="receiver"),
                                   name=f"{self.name}#{slot}r", link=self.name,
                                   on_receipt=self._on_receipt,
                                   on_incoming=self._on_incoming)
            bind = msgspec.structs.replace(bind, bind_type="transmitter")
        return EsmeSession(bind, name=f"{self.name}#{slot}", link=self.name,
                           on_receipt=self._on_receipt, on_incoming=self._on_incoming), receiver

    @property
    def sessions(self) -> list[EsmeSession]:
        """The sending binds open now."""
        return [tx for tx, _ in self._slots.values()]

    @property
    def receivers(self) -> list[EsmeSession]:
        return [rx for _, rx in self._slots.values() if rx is not None]

    @property
    def all_sessions(self) -> list[EsmeSession]:
        return self.sessions + self.receivers

    @property
    def slots(self) -> frozenset[int]:
        return frozenset(self._slots)

    async def hold(self, slots: frozenset[int], started: bool) -> None:
        """Open the binds of ``slots`` not open yet and close (unbind) the others."""
        for slot in sorted(set(self._slots) - slots):
            for session in self._slots.pop(slot):
                if session is not None:
                    await session.aclose()
        for slot in sorted(slots - set(self._slots)):
            opened = self._slots[slot] = self._open(slot)
            if started:
                for session in opened:
                    if session is not None:
                        await session.start()

    async def bound(self) -> list[EsmeSession]:
        sessions = self.sessions
        up = [s for s in sessions if s.bound.is_set()]
        if up or not sessions:
            return up
        waits = [asyncio.create_task(s.bound.wait()) for s in sessions]
        try:
            await asyncio.wait(waits, timeout=self.config.bind_wait,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()
        return [s for s in sessions if s.bound.is_set()]


class _Text:
    """A text encoded once: the parts' payloads, and how to build each submit_sm."""

    def __init__(self, seg: smstext.Segmented, link: LinkConfig, urgent: bool) -> None:
        self.parts = len(seg.parts)
        esm = pdu.ESM_UDHI if self.parts > 1 else 0
        self.template = pdu.SubmitTemplate(
            source_addr=link.source_addr, source_addr_ton=link.source_ton,
            source_addr_npi=link.source_npi, esm_class=esm, data_coding=seg.data_coding,
            registered_delivery=link.registered_delivery, validity_period=link.validity_period,
            priority_flag=link.urgent_priority_flag if urgent else 0)
        encode = smstext.gsm7_encode if seg.encoding is smstext.Encoding.GSM7 else (
            smstext.ucs2_encode)
        self.bodies = [encode(p) for p in seg.parts]


class SmppAdapter:
    """The SMS channel over SMPP links (see :class:`LinkConfig`)."""

    def __init__(self, links: dict[str, LinkConfig], *,
                 on_receipt: OnReceipts[Receipt] | None = None,
                 on_incoming: OnIncoming | None = None,
                 leased: bool = False) -> None:
        """``leased``: open no bind until :meth:`hold` says which are this process's (workers
        sharing the links take their binds by lease: dispatcher/engine/binds.py)."""
        if not links:
            raise ValueError("no SMPP link is configured")
        self.links = {name: _Link(name, c, on_receipt, leased=leased, on_incoming=on_incoming)
                      for name, c in links.items()}
        self.stats = AdapterStats()
        self._texts: dict[tuple[str, bool, str, bool], _Text] = {}
        self._refs = itertools.count()
        self._started = False

    async def start(self) -> None:
        for link in self.links.values():
            metrics.track_link(link)
            for session in link.all_sessions:
                await session.start()
        self._started = True

    async def hold(self, link: str, slots: frozenset[int]) -> None:
        """Keep open exactly the binds of ``link`` numbered in ``slots`` (0 .. binds - 1)."""
        if not self._started:
            await self.start()
        await self.links[link].hold(slots, True)

    def serves(self, route: str) -> bool:
        """Whether a batch of ``route`` can be sent from here: its link has a bind open."""
        try:
            return bool(self._link(route).sessions)
        except ChannelError:
            return False

    def _link(self, route: str) -> _Link:
        name = route.partition(".")[2] or DEFAULT_LINK
        link = self.links.get(name) or self.links.get(DEFAULT_LINK)
        if link is None:
            raise ChannelError(f"no SMPP link for route {route!r} and no default link")
        return link

    def _text(self, text: str, strip: bool, link: _Link, urgent: bool) -> _Text:
        key = (text, strip, link.name, urgent)
        found = self._texts.get(key)
        if found is None:
            if len(self._texts) > 256:
                self._texts.clear()
            found = self._texts[key] = _Text(smstext.segment(text, strip=strip), link.config,
                                             urgent)
        return found

    async def send(self, envelope: Envelope) -> Results:
        if not self._started:
            await self.start()
        link = self._link(envelope.route)
        up = await link.bound()
        if not up:
            if not link.sessions:
                raise ChannelError(f"SMPP link {link.name}: no bind is held by this process")
            refused = next((s.refused for s in link.sessions if s.refused), None)
            raise ChannelError(f"SMPP link {link.name} is down"
                               + (f": bind refused ({refused})" if refused else ""))
        text = self._text(envelope.text, envelope.strip_diacritics, link, envelope.urgent)
        addrs = envelope.addrs
        share = -(-len(addrs) // len(up))
        slices = [range(i, min(i + share, len(addrs))) for i in range(0, len(addrs), share)]
        progress = envelope.progress
        answers = await asyncio.gather(*(
            self._submit(s, text, addrs, r,
                         None if progress is None else Accepted(progress.sent, r.start,
                                                                text.parts),
                         envelope.abort, envelope.urgent)
            for s, r in zip(up, slices, strict=False)))
        results = Results(receipts=link.config.registered_delivery != 0)
        for session, indexes, (statuses, ids) in zip(up, slices, answers, strict=False):
            self._collect(session, text.parts, indexes, statuses, ids, results)
        self.stats.messages += len(addrs)
        self.stats.parts += len(addrs) * text.parts
        return results

    async def _submit(self, session: EsmeSession, text: _Text, addrs: list[str],
                      indexes: range, accepted: Accepted | None, abort: Abort | None,
                      urgent: bool) -> tuple[list[int], list[str]]:
        if text.parts == 1:
            body = text.bodies[0]
            items = [(k, addrs[i], body) for k, i in enumerate(indexes)]
        else:
            total = text.parts
            items = []
            for k, i in enumerate(indexes):
                dest, ref = addrs[i], next(self._refs) & 0xFF
                items += [(k * total + j, dest, smstext.concat_udh(ref, total, j + 1) + part)
                          for j, part in enumerate(text.bodies)]
        return await session.submit(text.template, items, accepted, abort=abort, urgent=urgent)

    def _collect(self, session: EsmeSession, parts: int, indexes: range, statuses: list[int],
                 ids: list[str], results: Results) -> None:
        session.rate.accepted(statuses.count(0))
        for k, i in enumerate(indexes):
            worst: Action | str = Action.SENT
            reason = ""
            unreachable = False
            for j in range(k * parts, (k + 1) * parts):
                status = statuses[j]
                step: Action | str
                if status == 0:
                    continue
                if status == NOT_SENT_STATUS:
                    step, why = REQUEUE, "the bind went down before it was sent"
                elif status == HALTED_STATUS:
                    step, why = REQUEUE, HALTED
                elif status == TIMEOUT_STATUS:
                    self.stats.possible_duplicates += 1
                    step, why = Action.RETRY, "no submit_sm_resp in time"
                elif status == LOST_STATUS:
                    step, why = Action.RETRY, "connection lost before the response"
                else:
                    step, why = action(status), describe(status)
                    unreachable = unreachable or status in UNREACHABLE
                if RANK[step] > RANK[worst]:
                    worst, reason = step, why
            if worst is Action.SENT:
                results.sent.append(i)
                results.remote_ids.append(",".join(ids[k * parts:(k + 1) * parts]))
            elif worst is Action.FAIL:
                results.failed.append((i, reason))
                if unreachable:
                    results.unreachable.append(i)
            elif worst == REQUEUE:
                results.requeue.append((i, reason))
            elif worst is Action.THROTTLE:  # refused for now, not failed: no attempt is used
                self.stats.throttled += 1
                session.rate.throttled()
                results.requeue.append((i, reason))
            else:
                results.retry.append((i, reason))

    async def aclose(self) -> None:
        for link in self.links.values():
            metrics.untrack_link(link)
            for session in link.all_sessions:
                await session.aclose()
