"""Sent bits written as the channel answers, not only when a batch is finished.

A worker records a batch in one store transaction once the batch is finished (sent bits,
counters, retries, acknowledgement). A worker killed before that leaves the batch pending, and
whoever takes it over skips the messages whose sent bits are set and sends the others again. Had
the bits been written only at the end, every message the dead worker had sent from its batches
would go out twice. :class:`SentMarks` writes them while the batches are being sent: the
adapters append each message the channel takes to the envelope's
:class:`~adapters.base.Progress`, and every ``interval`` seconds one store call sets the bits of
all that came since, for every batch in hand. What a kill can send twice is then what was on the
wire (the SMPP windows of the worker's binds, Zalo's requests in flight) and the answers of the
last interval, not its batches.

The bits are set again by the batch's completion, which changes nothing. The wave's ``sent``
counter grows by the bits a write sets that were not set before (:meth:`Queue.mark_sent`), so a
message counts once whoever records it first; one whose bit was set by a worker that died
before completing its batch is also counted ``skipped`` by whoever finishes the batch.
"""

from __future__ import annotations

from adapters.base import Progress
from dispatcher.engine import metrics
from dispatcher.store.base import Queue


class _Open:
    """A batch being sent: its progress, and the recipient of each envelope index."""

    __slots__ = ("ids", "keep", "progress", "taken", "wave")

    def __init__(self, wave: str, ids: list[int], keep: list[int], progress: Progress) -> None:
        self.wave = wave
        self.ids = ids  # the batch's recipients
        self.keep = keep  # envelope index -> index into ids
        self.progress = progress
        self.taken = 0  # how much of progress.sent is already due


class SentMarks:
    """The sent bits of one worker's batches in hand; the worker calls :meth:`flush` every
    ``interval`` seconds."""

    def __init__(self, queue: Queue, interval: float) -> None:
        self.queue = queue
        self.interval = interval
        self.marked = 0  # messages whose bits were written here
        self._open: set[_Open] = set()
        self._due: dict[str, list[int]] = {}  # taken from progress, not written yet

    def open(self, wave: str, ids: list[int], keep: list[int]) -> tuple[Progress, _Open]:
        """A :class:`Progress` for an envelope of ``ids[k] for k in keep``, read from now on."""
        progress = Progress()
        handle = _Open(wave, ids, keep, progress)
        self._open.add(handle)
        return progress, handle

    def close(self, handle: _Open) -> None:
        """The batch is answered: what came since the last write goes with the next one."""
        self._take(handle)
        self._open.discard(handle)

    def _take(self, handle: _Open) -> None:
        sent = handle.progress.sent
        if len(sent) > handle.taken:
            ids, keep = handle.ids, handle.keep
            self._due.setdefault(handle.wave, []).extend(
                [ids[keep[k]] for k in sent[handle.taken:]])
            handle.taken = len(sent)

    async def flush(self) -> int:
        """Write the bits of every message taken since the last call; how many. Kept for the
        next call if the store does not answer."""
        for handle in self._open:
            self._take(handle)
        if not self._due:
            return 0
        due = self._due
        await self.queue.mark_sent(due)
        self._due = {}
        n = sum(len(ids) for ids in due.values())
        self.marked += n
        metrics.SENT_MARKED.inc(n)
        metrics.SENT_MARKS_WRITE.observe(n)
        return n
