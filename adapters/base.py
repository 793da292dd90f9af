"""The one interface every channel implements.

An adapter takes an :class:`Envelope` (one text to many addresses) and answers a
:class:`Results` that gives every message exactly one outcome: sent (with the remote id when the
channel has one), retry (transient: throttled, queue full, timeout, 5xx) or failed (permanent:
invalid number, not a user of the channel). Outcomes are indexes into the envelope so that a
batch of hundreds costs a few list operations, not an object per message. A failed message that
another channel may still deliver (a Zalo recipient not on Zalo) is also in ``fallback``: the
engine sends it by the wave's SMS fallback, if the wave has one. An adapter that cannot
take the batch at all raises :class:`~dispatcher.domain.errors.ChannelError`; the worker then
requeues the whole batch, as it does the ``requeue`` of a result: messages the channel never took
are tried again later without counting as an attempt.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar, runtime_checkable

import msgspec

from dispatcher.domain.broadcast import State
from dispatcher.domain.incoming import Incoming
from dispatcher.domain.model import Channel, ZnsMessage


class Progress:
    """Messages of a batch the channel has already taken, while the batch is still being sent:
    indexes into ``Envelope.addrs``, appended by the adapter, read by whoever made the
    envelope. A plain list, so that an answer costs one ``append``, not a call."""

    __slots__ = ("sent",)

    def __init__(self) -> None:
        self.sent: list[int] = []


class Receipt(msgspec.Struct, frozen=True):
    """What a channel that confirms delivery later (SMPP deliver_sm receipts, Zalo's delivery
    webhook) says of a message it took: ``message_id`` is an id it answered in
    ``Results.remote_ids`` (one part's, for an SMS sent in several), ``state`` is in SMPP's
    words: DELIVRD, EXPIRED, UNDELIV, REJECTD, DELETED, UNKNOWN and SKIPPED are final; ENROUTE
    and ACCEPTD say that a later receipt will tell more. A channel may hand a subclass with
    more of what it knows (the SMSC's error code, the time of delivery)."""

    message_id: str
    state: str


class ReceiptLike(Protocol):
    """What the engine reads of a receipt: a :class:`Receipt`, or anything with its fields."""

    @property
    def message_id(self) -> str: ...

    @property
    def state(self) -> str: ...


ReceiptT_contra = TypeVar("ReceiptT_contra", bound=ReceiptLike, contravariant=True)


class OnReceipts(Protocol[ReceiptT_contra]):
    """Where a channel hands its receipts as they come, from its read loop or its webhook:
    the engine's :meth:`~dispatcher.engine.receipts.ReceiptMatcher.add`, which keeps them and looks
    their ids up in the store in batches. It is called in the event loop and does no I/O, so
    the channel calls it once per read, with every receipt of that read. Typed by the kind of
    receipt the channel hands (``OnReceipts[Receipt]`` takes any channel's)."""

    def __call__(self, receipts: Sequence[ReceiptT_contra], /) -> None: ...


class OnIncoming(Protocol):
    """Where a channel hands what citizens send it (replies, follows, unfollows), as
    :class:`~dispatcher.domain.incoming.Incoming`: the engine's
    :meth:`~dispatcher.engine.incoming.IncomingIntake.add`, which keeps them and stores them in
    batches. Called in the event loop, once per read, with no I/O."""

    def __call__(self, items: list[Incoming], /) -> None: ...


class Abort:
    """Set by whoever made an envelope to stop its adapter from sending more of it (the
    emergency stop, a wave paused or cancelled): the adapter reads ``halted`` before each
    message it has not sent yet and answers those :data:`HALTED` in ``requeue``. What is
    already on the wire is answered as usual."""

    __slots__ = ("halted",)

    def __init__(self) -> None:
        self.halted = False


#: The reason of a message an adapter did not send because its envelope was halted.
HALTED = "halted before it was sent (stop, pause or cancel)"


class Envelope(msgspec.Struct, frozen=True):
    """One text to many addresses of one channel (a batch, as the adapter sees it)."""

    wave: str
    channel: Channel
    text: str
    addrs: list[str]
    route: str = ""  # the queue the batch came from, e.g. "sms.viettel" (the SMS link group)
    subject: str = ""
    strip_diacritics: bool = False
    progress: Progress | None = None  # where the adapter tells what is sent as answers come
    abort: Abort | None = None  # set: send no more of it
    urgent: bool = False  # an urgent notice: ahead of routine batches, SMPP priority_flag
    zns: ZnsMessage | None = None  # Zalo ZNS: a typed template and its values (None: the text)
    # out of the channel's daily quota (Zalo): the messages fail as ``Results.fallback`` (to the
    # wave's SMS fallback) instead of waiting for the quota to reset
    over_quota_sms: bool = False
    # when the wave was made (epoch seconds): an outlet that can read what it published looks
    # there for the wave's publication since then before publishing (a crash or a timeout
    # between its answer and the sent bit never publishes twice)
    created_at: float = 0.0
    # an outlet's: the districts the wave is for (empty: the whole province), each with its own
    # words when the wave's text names {district} ("" otherwise): what a publication by area
    # covers (a carrier's cell broadcast)
    districts: dict[str, str] = {}
    level: int | None = None  # the epidemic level of a plan wave (None: a campaign's)


class Results(msgspec.Struct):
    """The outcome of every message of an envelope, by index into ``Envelope.addrs``."""

    sent: list[int] = []
    remote_ids: list[str] = []  # parallel to ``sent`` when the channel gives ids, else empty
    retry: list[tuple[int, str]] = []  # (index, reason)
    failed: list[tuple[int, str]] = []  # (index, reason)
    # of the indexes in ``failed``: those another channel may deliver (the wave's SMS fallback)
    fallback: list[int] = []
    # of the indexes in ``failed``: addresses the channel refused for good by its status table
    # (invalid or unknown number, a user who refused the sender): the number joins the
    # channel's suppression list
    unreachable: list[int] = []
    # not attempted: the channel could not take them (link down); tried again later without
    # using one of the message's attempts
    requeue: list[tuple[int, str]] = []
    # the channel takes no more until this time (epoch seconds; a quota): the route waits
    pause_until: float = 0.0
    # with pause_until: the pause holds routine batches only; urgent ones are still taken (an
    # urgent alert does not wait for the morning or the quota's reset: it goes by SMS at once)
    urgent_passes: bool = False
    # delivery receipts will come for ``remote_ids`` (comma-separated: one per part), as
    # :class:`Receipt` to the :class:`OnReceipts` the channel was given
    receipts: bool = False

    def count(self) -> int:
        return len(self.sent) + len(self.retry) + len(self.failed) + len(self.requeue)

    def fail_over(self, index: int, reason: str) -> None:
        """Message ``index`` failed on this channel, and another channel may deliver it: it is
        dead-lettered with ``reason`` and counted failed, and goes to the wave's SMS fallback."""
        self.failed.append((index, reason))
        self.fallback.append(index)


def halted(envelope: Envelope) -> bool:
    """Whether the sender of ``envelope`` asked for no more of it to be sent."""
    return envelope.abort is not None and envelope.abort.halted


def results_for(envelope: Envelope, *, receipts: bool = False) -> Results:
    """Empty results whose ``sent`` list is the envelope's :class:`Progress` (when it has one):
    an adapter that appends each message to ``sent`` as its answer comes tells whoever made the
    envelope at once, with no other call."""
    sent = envelope.progress.sent if envelope.progress is not None else []
    return Results(sent=sent, receipts=receipts)


class DailyQuota(msgspec.Struct, frozen=True):
    """A channel's daily quota today: ``remaining``, ``daily`` (None when the channel did not
    say), and when it resets (as configured where the channel does not say)."""

    remaining: int
    daily: int | None = None
    reset: str = ""  # when it resets, e.g. "00:00 Asia/Ho_Chi_Minh"


@runtime_checkable
class QuotaReader(Protocol):
    """A channel that can tell its daily quota (Zalo's ZNS quota)."""

    async def quota(self) -> DailyQuota | None: ...


class Standing(msgspec.Struct, frozen=True):
    """How a publication that lives on at the far end stands, as the far end said it: its
    ``state``, the far end's ``reference`` of it (when it gives one) and its words."""

    state: State
    reference: str = ""
    detail: str = ""


@runtime_checkable
class Withdrawable(Protocol):
    """An outlet whose publications live on at the far end once accepted (a carrier's cell
    broadcast repeats until it expires): it can read how one stands and withdraw it. The
    publication is named as it was sent: the wave's :class:`Envelope` (its ``addrs`` unused) and
    the target's id. Both raise :class:`~dispatcher.domain.errors.ChannelError` (retryable) when
    the far end cannot answer now."""

    #: seconds between two reads of a live publication's state, and how many reads at most
    status_seconds: float
    status_reads: int
    #: longest a call may take (the engine's lease on the work is longer)
    timeout: float

    def identifier(self, envelope: Envelope) -> str:
        """The far end's name of the wave's publication (the same for every try)."""

    def live_until(self, envelope: Envelope) -> float:
        """When the wave's publication ends by itself (epoch seconds; 0: never or unknown)."""

    async def standing(self, envelope: Envelope, target: str) -> Standing | None:
        """Its state as the far end says it; None when the far end cannot tell."""

    async def withdraw(self, envelope: Envelope, target: str) -> Standing:
        """Withdraw it (once: again is answered as done); its state after."""


class Adapter(Protocol):
    """A channel: ``send`` a batch, ``aclose`` when done."""

    async def send(self, envelope: Envelope) -> Results: ...

    async def aclose(self) -> None: ...
