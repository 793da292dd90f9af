"""The messages a cancelled wave never enqueued, counted ``cancelled``.

A wave cancelled before or during its fan-out stops there: the recipients of the steps not yet
enqueued never reach a route, so no worker counts them. Without them the wave's progress would
say they are queued for ever (and the wave would never read as settled). The runner counts them
once the fan-out has let go of the wave: its total less the wave's ``fanned`` and
``suppressed`` counters, which each enqueued step grows in the same write as the step
(:meth:`Queue.enqueue`), so it is exact however often the fan-out was resumed. The count is
written once (:meth:`WaveStore.count_unfanned`), under the fan-out's lease, so no fan-out
enqueues a step meanwhile.

A wave fanned out before the ``fanned`` counter existed has no such counter but has route
cursors: it is left as it is (its unenqueued part, if any, stays queued in its progress).
"""

from __future__ import annotations

from collections.abc import Iterable

from dispatcher.domain.model import Wave
from dispatcher.engine import routing
from dispatcher.engine.settings import EngineConfig
from dispatcher.store.base import FANNED, SUPPRESSED, UNFANNED, Store


class Unfanned:
    """Counts each cancelled wave's unenqueued messages once per process lifetime (the store
    keeps them counted once across processes)."""

    def __init__(self, store: Store, settings: EngineConfig, carriers: list[str],
                 owner: str) -> None:
        self.store = store
        self.settings = settings
        self.carriers = carriers
        self.owner = owner
        self._done: set[str] = set()  # waves whose count is written or not needed

    async def count(self, wave_ids: Iterable[str], busy: set[str]) -> None:
        """Count the unenqueued messages of the cancelled ``wave_ids`` not looked at yet;
        ``busy``: waves this process is fanning out now (looked at on a later pass)."""
        for wave_id in wave_ids:
            if wave_id in self._done or wave_id in busy:
                continue
            wave = await self.store.waves.get(wave_id)
            if wave is None or await self._count(wave):
                self._done.add(wave_id)

    async def _count(self, wave: Wave) -> bool:
        """True once the wave needs no more looking at; False while a fan-out holds it."""
        lease = f"fanout:{wave.id}"
        ttl = self.settings.engine.lease_seconds
        if not await self.store.leases.acquire(lease, self.owner, ttl):
            return False  # a fan-out is on its last step: the next pass
        try:
            counts = await self.store.waves.progress(wave.id)
            if UNFANNED in counts:
                return True
            if FANNED in counts:  # each step counts what it enqueued and what it left out
                n = wave.total - counts[FANNED] - counts.get(SUPPRESSED, 0)
            elif await self._never_fanned(wave):
                n = wave.total
            else:
                return True  # fanned out before the counter existed
            if n > 0:
                await self.store.waves.count_unfanned(wave.id, n)
            return True
        finally:
            await self.store.leases.release(lease, self.owner)

    async def _never_fanned(self, wave: Wave) -> bool:
        routes = routing.routes(wave.channel, self.carriers, self.settings)
        return all([await self.store.queue.cursor(r, wave.id) < 0 for r in routes])
