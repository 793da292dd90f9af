"""What the engine keeps, as small interfaces, and the types that cross them.

A :class:`Store` bundles one object per concept: the level, audiences, campaigns, waves, the
work queue and leases. Two implementations pass the same contract tests: Redis (production, many
processes) and memory (one process: ``loa demo``, tests of the engine).
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable
from typing import Protocol

import msgspec

from dispatcher.domain.audience import Recipient
from dispatcher.domain.broadcast import Broadcast, Request, Withdrawal
from dispatcher.domain.cap import CapAlert, Published
from dispatcher.domain.checklist import Done
from dispatcher.domain.incoming import Incoming, IncomingPage
from dispatcher.domain.model import (
    Batch,
    Campaign,
    Channel,
    Kind,
    LevelState,
    Opening,
    PendingLevel,
    StopState,
    Wave,
    WaveState,
)
from dispatcher.domain.optout import OptOut
from dispatcher.domain.reminder import Reminded
from dispatcher.domain.situation import SituationVersion
from dispatcher.domain.suppression import Suppression
from dispatcher.domain.textedits import TextState, TextVersion
from dispatcher.store.incoming import Retention
from dispatcher.store.seen import SeenIds
from dispatcher.store.suppressions import SuppressionPage

# -- audiences ---------------------------------------------------------------------------------


class AudienceGroup(msgspec.Struct, frozen=True):
    """The recipients of one (district, kind): their chunks and counts per channel."""

    district: str
    kind: Kind
    chunks: list[int]
    count: int
    zalo: int
    email: int
    # the first recipient id of each chunk, in the order of ``chunks`` (empty: imported before
    # they were recorded): how a recipient id finds its row (dispatcher.engine.fallback)
    first_ids: list[int] = []


class AudienceMeta(msgspec.Struct, frozen=True):
    version: str
    created_at: dt.datetime
    count: int
    groups: list[AudienceGroup]
    source: str = ""


class AudienceChunk(msgspec.Struct, frozen=True, array_like=True):
    """Recipients with consecutive ids ``first_id``, ``first_id + 1``, ..."""

    first_id: int
    recipients: list[Recipient]


class AudienceStore(Protocol):
    async def put_chunks(self, version: str, first: int, chunks: list[AudienceChunk]) -> None:
        """Store chunks ``first``, ``first + 1``, ... of a version that is being imported."""

    async def activate(self, meta: AudienceMeta) -> None:
        """Make a fully stored version the current one, atomically."""

    async def keep(self, meta: AudienceMeta) -> None:
        """Record a fully stored version without making it current (a list of numbers: a
        campaign names it, the province's audience stays)."""

    async def kept(self, limit: int = 100) -> list[AudienceMeta]:
        """The versions recorded by :meth:`keep`, newest first."""

    async def kept_before(self, before: dt.datetime) -> list[str]:
        """The versions recorded by :meth:`keep` created before ``before``, oldest first."""

    async def forget(self, versions: list[str]) -> list[AudienceMeta]:
        """Take kept versions out of the store's knowledge, atomically: their descriptions and
        their place among the kept ones (:meth:`meta` answers None for them from then on); the
        descriptions of those that were there. Their chunks stay until :meth:`discard`."""

    async def discard(self, version: str) -> None:
        """Delete the chunks and the number index of a version :meth:`forget` took out, in
        batches of keys (never one round trip per chunk or number)."""

    async def put(self, meta: AudienceMeta, chunks: Iterable[AudienceChunk]) -> None:
        """Store a whole version and make it current (``put_chunks`` then ``activate``)."""

    async def meta(self, version: str | None = None) -> AudienceMeta | None:
        """The given version's description, or the current one's; None if there is none."""

    async def chunks(self, version: str, numbers: list[int]) -> list[AudienceChunk]:
        """Chunks by number, in the order asked."""


# -- level, campaigns, waves ----------------------------------------------------------------------


class LevelStore(Protocol):
    async def get(self) -> LevelState | None: ...

    async def set(self, state: LevelState) -> None:
        """Make ``state`` current and append it to the history."""

    async def history(self, limit: int = 100) -> list[LevelState]:
        """Newest first."""

    async def pending(self) -> PendingLevel | None:
        """The level change waiting for its confirmation (None: none, or it expired)."""

    async def propose(self, pending: PendingLevel, ttl_seconds: float) -> None:
        """Make ``pending`` the change waiting for its confirmation (replacing any other), kept
        ``ttl_seconds`` at most."""

    async def take_pending(self, pending: PendingLevel) -> bool:
        """Remove ``pending`` if it is still the change waiting (True), atomically: of two
        confirmations at once, one takes it."""


class StopStore(Protocol):
    """The emergency stop, read by every worker with the wave states and watched by each."""

    async def get(self) -> StopState | None:
        """The last set or lift (None: never stopped)."""

    async def set(self, state: StopState) -> None:
        """Make ``state`` current, append it to the history and tell whoever watches."""

    async def watch(self, mark: str, seconds: float) -> tuple[str, StopState | None]:
        """The newest set or lift after ``mark`` (an earlier answer's mark; "" for now),
        waiting at most ``seconds`` for one: its mark and state, or ``(mark, None)`` when none
        came. ``""`` answers at once with the mark of now."""

    async def history(self, limit: int = 100) -> list[StopState]:
        """Newest first."""


class SituationStore(Protocol):
    """The situation record (dispatcher.domain.situation) and its bounded history."""

    async def get(self) -> SituationVersion | None:
        """The version in force (None: never set)."""

    async def set(self, version: SituationVersion) -> None:
        """Make ``version`` current and put it at the head of the history (which keeps the
        last ``HISTORY_KEPT``)."""

    async def history(self, limit: int = 100) -> list[SituationVersion]:
        """Newest first."""


class IncomingStore(Protocol):
    """Messages and events from citizens and the opt-outs among them, kept ``retention.days``
    (:mod:`.incoming`); each call is one round trip."""

    retention: Retention

    async def add(self, items: list[Incoming], now: float | None = None) -> None:
        """Keep ``items`` (one batch), and forget what is older than the retention."""

    async def record_opt_outs(self, opt_outs: list[OptOut], now: float | None = None) -> None:
        """Keep the opt-outs of one batch, with the same retention."""

    async def page(self, channel: Channel | None = None, cursor: str = "",
                   limit: int = 50) -> IncomingPage:
        """Newest first, of ``channel`` (all when None), older than ``cursor``."""

    async def opt_outs(self, limit: int = 100) -> list[OptOut]:
        """The opt-outs recorded, newest first."""


class PlanTextStore(Protocol):
    """The versions of the plan's texts (dispatcher.domain.textedits), all kept, and the one
    approved in force per level and channel."""

    async def add(self, version: TextVersion) -> None:
        """Keep a new (proposed) version."""

    async def get(self, version_id: str) -> TextVersion | None: ...

    async def versions(self, level: int | None = None, channel: Channel | None = None,
                       state: TextState | None = None, *, cursor: str = "",
                       limit: int = 100) -> TextPage:
        """A page of the versions (of one level, channel or state), newest first: at most
        ``limit``, after the version whose id is ``cursor`` (the ``cursor`` of the page
        before; an id not among those versions is refused naming ``cursor``)."""

    async def decide(self, version: TextVersion) -> bool:
        """Replace the proposed version of ``version.id`` with ``version`` (approved or
        rejected); approved, it becomes the text in force of its level and channel. False when
        the version is not (or no longer) proposed."""

    async def in_force(self) -> list[TextVersion]:
        """The approved version in force of each level and channel that has one."""


class ChecklistStore(Protocol):
    """The checklist's marks and reminders, by date (:mod:`.checklist`), kept
    :data:`~dispatcher.domain.checklist.KEEP_DAYS` days after it."""

    async def mark(self, done: Done) -> Done | None:
        """Record ``done`` unless its item is already marked on its date: None when recorded,
        else the mark that is there (unchanged)."""

    async def unmark(self, day: dt.date, item: str) -> Done | None:
        """Remove the item's mark of ``day``; the mark removed, None when there was none."""

    async def marks(self, day: dt.date) -> list[Done]:
        """The marks of ``day``, oldest first."""

    async def reminded(self, day: dt.date) -> dict[str, Reminded]:
        """The reminders of ``day`` decided so far, by unit."""

    async def record_reminder(self, day: dt.date, reminded: Reminded) -> None:
        """Record what became of a unit's reminder of ``day`` (replacing an earlier record)."""


class OpeningStore(Protocol):
    """The last opening decided for each level and channel (dispatcher.engine.opening)."""

    async def get(self, level: int, channel: Channel) -> Opening | None: ...

    async def replace(self, opening: Opening, revision: int) -> bool:
        """Store ``opening`` if the stored one has ``revision`` (0: there is none yet)."""

    async def all(self) -> list[Opening]: ...


class CampaignStore(Protocol):
    async def create(self, campaign: Campaign) -> bool:
        """False (and nothing written) if the id exists."""

    async def get(self, campaign_id: str) -> Campaign | None: ...

    async def replace(self, campaign: Campaign, revision: int) -> bool:
        """Write ``campaign`` if the stored one still has ``revision``; False otherwise."""

    async def all(self) -> list[Campaign]: ...

    async def many(self, campaign_ids: list[str]) -> dict[str, Campaign]:
        """The campaigns of ``campaign_ids`` that exist, by id; one round trip."""


class WaveStore(Protocol):
    async def create(self, wave: Wave, state: WaveState) -> bool:
        """False (and nothing written) if a wave with this id exists: waves are created once."""

    async def get(self, wave_id: str) -> Wave | None: ...

    async def all(self) -> list[Wave]: ...

    async def since(self, at: dt.datetime) -> list[Wave]:
        """The waves made at or after ``at`` (``created_at``), newest first (waves made at the
        same time: by id, descending). Reads those waves only, however many were made before
        (on Redis: a range of a sorted set, and the records not read before by this process:
        dispatcher.store.wavetimes)."""

    async def set_state(self, wave_id: str, state: WaveState) -> None: ...

    async def transition(self, wave_id: str, allowed: frozenset[WaveState],
                         state: WaveState) -> bool:
        """Set ``state`` only if the wave's state is one of ``allowed`` (atomically)."""

    async def pause(self, wave_id: str) -> bool:
        """Pause a live wave (atomically), remembering whether its fan-out had begun; False
        when it is not live (finished or cancelled)."""

    async def resume(self, wave_id: str) -> bool:
        """Resume a paused wave (atomically): ``created`` again when it was paused before its
        fan-out began, else ``fanning_out`` (which goes on from its cursors); False when it
        is not paused."""

    async def states(self, wave_ids: list[str] | None = None) -> dict[str, WaveState]:
        """States of the given waves (all waves when None); one round trip."""

    async def progress(self, wave_id: str) -> dict[str, int]:
        """Counters of a wave: sent, failed, expired, retrying, cancelled, repeats, skipped,
        ... and :data:`FANNED` (messages its fan-out enqueued, counted by
        :meth:`Queue.enqueue`) and :data:`UNFANNED`."""

    async def count_unfanned(self, wave_id: str, n: int) -> bool:
        """Count ``n`` messages of a cancelled wave that its fan-out never enqueued as
        ``cancelled``, once: the first call records ``n`` as :data:`UNFANNED` and adds it to
        ``cancelled`` in one step; later calls change nothing and answer False."""

    async def mark_skipped(self, slot_id: str) -> bool:
        """Record a slot missed beyond the catch-up window; True the first time only."""


# -- the work queue -------------------------------------------------------------------------------


#: A wave's counter of the messages its fan-out enqueued (:meth:`Queue.enqueue` adds a step's
#: messages in the step's own write) and the one-off count of those a cancelled wave never
#: enqueued (:meth:`WaveStore.count_unfanned`).
FANNED = "fanned"
UNFANNED = "unfanned"
#: A wave's counter of the recipients its fan-out left out: on the channel's suppression list.
SUPPRESSED = "suppressed"


class RetryItem(msgspec.Struct, frozen=True, array_like=True):
    """One message waiting for its next attempt."""

    wave: str
    channel: Channel
    id: int
    addr: str
    attempt: int  # the attempt it will be (1 = first retry)
    # Random: two schedulings of the same message (a batch processed twice) stay two members
    # of the retry set, so the "retrying" count of each is resolved; the sent bitmap then
    # lets only one of them out.
    nonce: int = msgspec.field(default_factory=lambda: random.getrandbits(32))
    urgent: bool = False  # of an urgent wave: comes back in the route's urgent lane
    district: str = ""  # its batch's district (the wave's text for it): retried in one of it


class DeadLetter(msgspec.Struct, frozen=True, array_like=True, omit_defaults=True):
    """A message given up on: a permanent failure (counted ``failed`` on its wave) or one whose
    retries ran out (``expired``)."""

    wave: str
    channel: Channel
    id: int
    addr: str
    attempts: int
    reason: str
    expired: bool = False  # its retries ran out (else: a permanent failure)
    # the channel refused the address for good (Results.unreachable): it joined the list
    unreachable: bool = False
    district: str = ""  # its batch's district: a replay sends it that district's text


class DeadLetterPage(msgspec.Struct, frozen=True):
    """One page of dead letters, each with its route, in a stable order; ``cursor`` goes on
    after the last (empty: there are no more)."""

    letters: list[tuple[str, DeadLetter]]
    cursor: str = ""


class TextPage(msgspec.Struct, frozen=True):
    """One page of the plan's texts' versions, newest first; ``cursor`` (the id of the last)
    goes on after it (empty: there are no more)."""

    versions: list[TextVersion]
    cursor: str = ""


class Requeued(msgspec.Struct, frozen=True):
    """What one :meth:`Queue.requeue_dead` call did: dead letters put back on the retry
    schedule, dead letters dropped because their recipient's sent bit is set, the highest
    recipient id it looked at (-1: there was none above ``after``), and dead letters left as
    they are because their recipient's bit is set on the ``also`` wave."""

    requeued: int
    skipped: int
    last: int
    covered: int = 0


class Entry(msgspec.Struct, frozen=True, order=True):
    """A stream entry: its id in the stream of its lane (each route has a routine and an
    urgent stream, whose ids are counted apart)."""

    id: str
    urgent: bool = False


class Delivery(msgspec.Struct, frozen=True):
    """A stream entry handed to a worker: one or more batches (retried messages of several
    waves travel together)."""

    entry: Entry
    batches: list[Batch]


class Completion(msgspec.Struct):
    """Everything one processed entry changes, written in one round trip."""

    # wave -> recipient ids now sent: bits to set; the wave's ``sent`` counter grows by the
    # bits not set before (it is never in ``counts``)
    sent: dict[str, list[int]] = {}
    counts: dict[str, dict[str, int]] = {}  # wave -> counter -> increment
    retries: list[tuple[float, RetryItem]] = []  # (due, epoch seconds) -> item
    dead: list[DeadLetter] = []
    # channel message id -> (wave, recipient id, part number), for matching delivery receipts
    remote: dict[str, tuple[str, int, int]] = {}
    # messages for other routes (an SMS fallback): route -> (due, item), scheduled like retries
    reroute: dict[str, list[tuple[float, RetryItem]]] = {}

    def count(self, wave: str, field: str, n: int) -> None:
        if n:
            per_wave = self.counts.setdefault(wave, {})
            per_wave[field] = per_wave.get(field, 0) + n


class Queue(Protocol):
    """Batches per route: two streams (lanes) with a consumer group each, routine and urgent,
    retry schedules, dead letters. Urgent batches are read before routine ones."""

    async def enqueue(self, route: str, wave: str, step: int, batches: list[Batch], *,
                      urgent: bool = False, suppressed: int = 0) -> bool:
        """Append ``batches`` for fan-out ``step`` of ``wave`` unless that step is already in:
        the batches and the route's cursor move together, so a resumed fan-out never enqueues
        a step twice. False when the step was already there. ``urgent``: in the urgent lane.
        The wave's :data:`FANNED` counter grows by the batches' messages in the same step.
        ``suppressed``: the step's recipients on this route left out (on the suppression
        list), added to the wave's ``suppressed`` counter with the step, once."""

    async def cursor(self, route: str, wave: str) -> int:
        """The last fan-out step of ``wave`` enqueued on ``route`` (-1: none)."""

    async def ahead(self, route: str) -> int:
        """Routine entries of the route that no worker has read yet (the fan-out's lead over
        the senders, which it bounds)."""

    async def read(self, route: str, consumer: str, count: int, block_ms: int, *,
                   urgent_only: bool = False) -> list[Delivery]:
        """New entries for ``consumer``, urgent ones first: up to ``count`` of each lane at once
        (waits up to ``block_ms`` when there are none). ``urgent_only``: only the urgent lane,
        without waiting."""

    async def reclaim(self, route: str, consumer: str, min_idle_ms: int,
                      count: int) -> list[Delivery]:
        """Entries whose holder has not touched them for ``min_idle_ms``, now ``consumer``'s
        (urgent ones first)."""

    async def touch(self, route: str, consumer: str, entries: list[Entry]) -> list[Entry]:
        """Keep ``consumer``'s claim fresh on those of ``entries`` it still holds (heartbeat);
        returns them. An entry another consumer has taken over stays with that consumer."""

    async def owner(self, route: str, entry: Entry) -> str | None:
        """The consumer that holds ``entry`` (None once acknowledged)."""

    async def sent_mask(self, wave: str, ids: list[int]) -> list[bool]:
        """For each id, whether its message of ``wave`` is already sent; one command."""

    async def mark_sent(self, sent: dict[str, list[int]]) -> None:
        """Set the sent bits of messages (wave -> recipient ids) whose batch is still being
        sent, as the channel takes them; one round trip (one command per wave on a cluster).
        :meth:`complete` sets them again, which changes nothing."""

    async def complete(self, route: str, entry: Entry, completion: Completion) -> None:
        """Set sent bits, bump counters, schedule retries (each in its lane), dead-letter,
        acknowledge."""

    async def move_due(self, route: str, now: float, limit: int) -> int:
        """Put up to ``limit`` retries due by ``now`` back on the stream of their lane, as one
        entry per lane (urgent ones first)."""

    async def depth(self, route: str) -> tuple[int, int, int]:
        """(entries not yet delivered + pending, scheduled retries, dead letters not
        replayed), both lanes."""

    async def oldest(self, route: str) -> float | None:
        """When (epoch seconds) the oldest entry still in the route was enqueued; None when
        the route is empty."""

    async def dead_letters(self, route: str, limit: int = 1000) -> list[DeadLetter]:
        """The first ``limit`` dead letters ever written on the route (its log)."""

    async def route_dead_letters(self, route: str, cursor: str = "",
                                 limit: int = 100) -> DeadLetterPage:
        """A page of the route's log of dead letters, oldest first, replayed or not; one
        command. A ``cursor`` that no page gave raises :class:`InputError`."""

    async def wave_dead_letters(self, wave: str, cursor: str = "",
                                limit: int = 100) -> DeadLetterPage:
        """A page of the dead letters of ``wave`` not replayed yet, by route then recipient id
        (one per recipient and route: the last); one command per route the page reads. A
        ``cursor`` that no page gave raises :class:`InputError`."""

    async def wave_dead_count(self, wave: str) -> int:
        """How many dead letters of ``wave`` wait (not replayed)."""

    async def dead_routes(self, wave: str) -> list[str]:
        """The routes holding dead letters of ``wave`` (some may hold none any more), sorted."""

    async def requeue_dead(self, route: str, wave: str, *, after: int, limit: int, due: float,
                           urgent: bool, also: str = "") -> Requeued:
        """Take up to ``limit`` dead letters of ``wave`` on ``route`` with a recipient id above
        ``after``, lowest first, atomically (each letter is taken once, whoever else replays):
        those whose sent bit is set are dropped (counted ``skipped``), the others go on the
        route's retry schedule (the urgent lane with ``urgent``) due at ``due``, on their
        first attempt again (counted ``retrying`` and ``replayed``). Each taken letter leaves
        its counter (``failed`` or ``expired``) and the route's count of dead letters. Those
        whose recipient's sent bit is set on the wave ``also`` (a Zalo wave's SMS fallback) are
        left as they are (``covered``)."""


class Ledger(Protocol):
    """Who got what, and when, across waves (dispatcher.domain.repeats): per recipient id, ``slots``
    pairs of (time, tag)."""

    async def claim(self, ledger: str, ids: list[int], *, now: int, window: int, tag: int,
                    slots: int = 1, ttl: float) -> list[bool]:
        """Claim ``ids`` at ``now`` for ``tag``, in one command: True for each id that holds a
        slot of ``tag`` already, or a free one (never claimed, or ``window`` or more before
        ``now``), which it takes; False for one whose every slot another tag holds."""

    async def release(self, ledger: str, ids: list[int], *, tag: int, slots: int = 1) -> None:
        """Free the slots ``tag`` holds on ``ids``, in one command: messages claimed and never
        sent (their wave was cancelled), which another wave may send."""


class ReceiptIndex(Protocol):
    """Which wave and recipient a channel's message id belongs to (kept for ``keep_hours``,
    the messages' validity period), and the counters receipts move."""

    async def match(self, remote_ids: list[str], *, recent: bool = False,
                    ) -> dict[str, tuple[str, int, int]]:
        """(wave, recipient id, part number) of each id that is known. ``recent``: look only
        among the ids recorded in the last hour or two (for receipts that came before their
        message was recorded: one command, however long they wait)."""

    async def count(self, counts: dict[str, dict[str, int]],
                    delivered: dict[str, list[int]] | None = None) -> None:
        """Add to waves' counters (delivered, undelivered, ...), and set the delivered bits
        of ``delivered`` (wave -> recipient ids); one round trip."""


class WaveFacts(msgspec.Struct, frozen=True):
    """What the store knows of one recipient on one wave."""

    sent: bool = False
    delivered: bool = False
    dead: DeadLetter | None = None  # a dead letter not replayed (failed or expired)
    state: WaveState | None = None  # the wave's state (None: the store has none)


class RecipientIndex(Protocol):
    async def find(self, version: str, msisdn: str) -> int | None:
        """The recipient id of a normalised number in the audience version (None: not in it)."""

    async def facts(self, asked: list[tuple[str, int]]) -> list[WaveFacts]:
        """For each (wave, recipient id), what the store knows, the wave's state with it; one
        round trip whatever the count of waves (on a cluster, two pipelines at most)."""


class SuppressionStore(Protocol):
    """Each channel's suppression list (:mod:`dispatcher.domain.suppression`)."""

    async def add(self, entries: list[Suppression]) -> int:
        """Put ``entries`` on their channels' lists (an entry already there is replaced: its
        reason and date are the new ones); returns how many numbers were not on them."""

    async def remove(self, channel: Channel, number: str) -> Suppression | None:
        """Take ``number`` off the channel's list; its entry, None if it was not on it."""

    async def mask(self, channel: Channel, numbers: list[str]) -> list[bool]:
        """Whether each of ``numbers`` is on the channel's list: one command, whatever their
        count (the fan-out asks it once per step)."""

    async def lookup(self, number: str) -> list[Suppression]:
        """The entries of ``number`` on every channel's list."""

    async def count(self, channel: Channel) -> int: ...

    async def page(self, channel: Channel, cursor: str = "",
                   limit: int = 100) -> SuppressionPage:
        """The channel's entries in the order of their numbers, from after ``cursor``."""


class CapStore(Protocol):
    """The public alerts published as CAP messages (:mod:`.cap`), each once, numbered in the
    order published; a thread's last message is what its next one references."""

    async def publish(self, alert: CapAlert) -> Published | None:
        """Keep ``alert`` as the next message of the feed and the last of its thread, unless a
        message with its identifier exists (None then: nothing is written), atomically."""

    async def get(self, identifier: str) -> Published | None: ...

    async def head(self, thread: str) -> Published | None:
        """The last message published in ``thread`` (None: none yet, or removed)."""

    async def heads(self) -> dict[str, str]:
        """Every thread's last message: thread -> its identifier."""

    async def latest(self, limit: int = 30) -> list[Published]:
        """The newest ``limit`` messages, newest first."""

    async def after(self, seq: int, limit: int = 100) -> list[Published]:
        """Up to ``limit`` messages numbered above ``seq``, in the order published: what a
        channel that sends each message once takes next (0: from the first)."""

    async def prune(self, alerts: list[CapAlert]) -> int:
        """Remove these messages (by identifier), atomically: from the feed and from what
        :meth:`get` answers, and as their thread's head when they are it; how many were there.
        The others keep their numbers."""


class WifiCursors(Protocol):
    """Where each public Wi-Fi controller stands in the feed of public messages (:mod:`.wifi`):
    the number of the last message it took (absent: none yet)."""

    async def cursors(self) -> dict[str, int]:
        """Controller id -> the number of the last message it took."""

    async def advance(self, controller: str, seq: int) -> int:
        """Move the controller's cursor to ``seq`` unless it is there or further already,
        atomically; the cursor after."""


class BroadcastStore(Protocol):
    """The alerts the carriers' cell broadcast centres took, and their Cancels
    (:mod:`.broadcasts`)."""

    async def add(self, broadcasts: list[Broadcast]) -> int:
        """Keep each broadcast unless its (wave, carrier) is kept already; how many were new."""

    async def put(self, broadcast: Broadcast) -> None:
        """Write a kept broadcast's state over (never its Cancel: :meth:`withdrawn`)."""

    async def withdrawn(self, wave: str, carrier: str, withdrawal: Withdrawal) -> bool:
        """Record the broadcast's Cancel unless one is recorded (False then), atomically."""

    async def get(self, pairs: list[tuple[str, str]]) -> list[Broadcast | None]:
        """The broadcasts of these (wave, carrier), with their Cancels (None: not kept)."""

    async def latest(self, limit: int = 100, wave: str = "") -> list[Broadcast]:
        """The newest ``limit`` broadcasts (of ``wave`` only, when given), newest first."""

    async def request(self, wave: str, request: Request) -> bool:
        """Keep an operator's request to withdraw the wave's broadcasts, unless one is kept
        (False then: the first stays)."""

    async def requests(self) -> dict[str, Request]:
        """Every request to withdraw: wave -> its request."""


class Leases(Protocol):
    async def acquire(self, name: str, owner: str, ttl: float) -> bool:
        """Take or renew the lease ``name`` for ``ttl`` seconds; False if another holds it."""

    async def release(self, name: str, owner: str) -> None: ...


class Store(Protocol):
    @property
    def level(self) -> LevelStore: ...

    @property
    def stop(self) -> StopStore: ...

    @property
    def situation(self) -> SituationStore: ...

    @property
    def plan_texts(self) -> PlanTextStore: ...

    @property
    def checklist(self) -> ChecklistStore: ...

    @property
    def incoming(self) -> IncomingStore: ...

    @property
    def openings(self) -> OpeningStore: ...

    @property
    def audiences(self) -> AudienceStore: ...

    @property
    def campaigns(self) -> CampaignStore: ...

    @property
    def waves(self) -> WaveStore: ...

    @property
    def queue(self) -> Queue: ...

    @property
    def leases(self) -> Leases: ...

    @property
    def receipts(self) -> ReceiptIndex: ...

    @property
    def recipients(self) -> RecipientIndex:
        """Number -> recipient id per audience version, and one recipient's facts per wave
        (:mod:`.recipients`)."""

    @property
    def ledger(self) -> Ledger: ...

    @property
    def suppressions(self) -> SuppressionStore: ...

    @property
    def cap(self) -> CapStore:
        """The published public alerts (CAP messages)."""

    @property
    def wifi(self) -> WifiCursors:
        """The public Wi-Fi controllers' cursors in the feed of public messages."""

    @property
    def broadcasts(self) -> BroadcastStore:
        """The carriers' cell broadcasts and their Cancels."""

    @property
    def webhook_seen(self) -> SeenIds:
        """The delivery webhooks' event ids, shared by every process (:mod:`.seen`)."""

    async def aclose(self) -> None: ...
