"""SMPP bind leases: many workers share a carrier's links without exceeding its bind count.

A carrier grants a link a number of binds (and a TPS per bind). When several ``loa worker``
processes share one Redis, each bind slot ``bind:<link>:<n>`` is a lease held by at most one
worker; a worker opens exactly the binds it holds and reads the SMS routes of a link only while
it holds at least one of its binds. Every round (``interval`` seconds) a worker renews what it
holds and takes at most one more free slot per link, so workers that start together share the
binds evenly, and the slots of a worker that died are taken over once its leases run out.

A worker that cannot renew its leases (Redis unreachable) closes its binds before the leases
can run out, so that no other worker can hold the same slot while it is still open here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import zlib
from collections.abc import Mapping
from typing import Protocol

from dispatcher.engine import metrics
from dispatcher.store.base import Leases
from dispatcher.store.outage import FAILURES as STORE_FAILURES

log = logging.getLogger(__name__)


class BindHolder(Protocol):
    """What a lease manager drives: the SMPP adapter (``hold`` opens and closes binds)."""

    async def hold(self, link: str, slots: frozenset[int]) -> None: ...


def lease_name(link: str, slot: int) -> str:
    return f"bind:{link}:{slot}"


class BindLeases:
    def __init__(self, leases: Leases, holder: BindHolder, binds: Mapping[str, int], *,
                 owner: str, ttl: float, interval: float = 1.0) -> None:
        if interval * 3 > ttl:
            raise ValueError("the lease must last at least three rounds")
        self.leases = leases
        self.holder = holder
        self.binds = dict(binds)
        self.owner = owner
        self.ttl = ttl
        self.interval = interval
        self.held: dict[str, frozenset[int]] = {link: frozenset() for link in binds}
        self._renewed = time.monotonic()  # the last round whose renewals all got an answer
        # slots are tried from an offset of the worker's own, so workers rarely collide
        self._offset = zlib.crc32(owner.encode())

    def _order(self, link: str) -> list[int]:
        n = self.binds[link]
        return [(self._offset + k) % n for k in range(n)] if n else []

    async def step(self) -> None:
        """One round: renew every lease held, take at most one more slot per link, and make
        the open binds match."""
        for link in self.binds:
            kept = [slot for slot in sorted(self.held[link])
                    if await self.leases.acquire(lease_name(link, slot), self.owner, self.ttl)]
            if len(kept) < len(self.held[link]):
                log.warning("bind leases of %s lost: %s", link,
                            sorted(self.held[link] - set(kept)), extra={"link": link})
            if len(kept) < self.binds[link]:
                for slot in self._order(link):
                    if slot not in kept and await self.leases.acquire(
                            lease_name(link, slot), self.owner, self.ttl):
                        kept.append(slot)
                        break
            await self._hold(link, frozenset(kept))
        self._renewed = time.monotonic()

    async def _hold(self, link: str, slots: frozenset[int]) -> None:
        if slots != self.held[link]:
            log.info("%s holds binds %s of link %s", self.owner, sorted(slots), link,
                     extra={"link": link})
            self.held[link] = slots
            await self.holder.hold(link, slots)

    async def run(self, stop: asyncio.Event) -> None:
        """Rounds until ``stop``; then close every bind and give the leases back."""
        backoff = metrics.Backoff("the bind leases")
        try:
            while not stop.is_set():
                try:
                    await self.step()
                except STORE_FAILURES as exc:
                    if isinstance(exc, metrics.STORE_TRANSIENT):
                        backoff.failed(exc)  # logged once per outage
                    else:
                        log.warning("bind leases not renewed: %s", exc)
                    if time.monotonic() - self._renewed > self.ttl / 2 and any(
                            self.held.values()):
                        log.warning("bind leases not renewed for %.1f s: closing the binds "
                                    "before another worker can take their slots",
                                    time.monotonic() - self._renewed)
                        await self._drop_all()
                else:
                    backoff.ok()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.interval)
        finally:
            await self._release()

    async def _drop_all(self) -> None:
        for link in self.binds:
            await self._hold(link, frozenset())

    async def _release(self) -> None:
        held = {link: slots for link, slots in self.held.items() if slots}
        await self._drop_all()  # the binds close (unbind) before their slots are free
        for link, slots in held.items():
            for slot in slots:
                with contextlib.suppress(*STORE_FAILURES):
                    await self.leases.release(lease_name(link, slot), self.owner)
