"""The portal channel: one post per wave on each site of ``[portal] sites``.

An envelope's addresses are site ids (the wave's targets); each is one post of the envelope's
text, titled by its subject, at most ``concurrency`` requests in flight over one pooled
keep-alive client (:mod:`adapters.http.client`). A site speaks its profile:
:mod:`adapters.portal.wordpress` (the WordPress REST API) or :mod:`adapters.portal.signed`
(signed JSON to another CMS).

**Never twice for one wave.** The engine's sent bit covers the posts a site acknowledged. For a
post whose answer was lost (a timeout, a worker stopped between the answer and its sent bit),
a WordPress site is first asked for the wave's post by its slug, made from the wave and the site
(:func:`adapters.portal.post.slug`): found, it is answered sent with its id and nothing is posted;
a signed JSON site gets the same ``Idempotency-Key`` on every try and answers a key it knows
without publishing again.

The answers decide each post's outcome by the table of :mod:`adapters.portal.codes`:

* a post (or one found made): ``results.sent``, its id in ``remote_ids`` (no receipts);
* the site down (no connection, no answer in time, the connection broken, HTTP 5xx): the post is
  requeued (no attempt used) and the site held 1 s, doubling up to ``outage_pause_max`` while it
  stays down: an outage of any length delays posts and dead-letters none; the look finds a post
  whose answer was lost;
* throttled (429): requeued, the site held for its ``Retry-After`` (``throttle_pause`` without
  one, doubling while it keeps refusing), at most ``throttle_pause_max``;
* credentials or permission (401, 403; WordPress's ``incorrect_password``, ``invalid_username``,
  ``rest_cannot_create`` ...) and configuration (404: a wrong URL; 405, 410, a redirect): the
  site stops, its posts are requeued, an ALERT is logged and
  ``loa_portal_site_paused{site,reason}`` is 1; one post is tried every ``alert_probe_seconds``
  until the site accepts again;
* refused for good (400 ``rest_invalid_param``, ``empty_content`` ...): ``results.failed`` with
  the portal's reason (a dead letter an operator may replay);
* an answer Loa does not know: retried; ``unknown_code_limit`` of them in a row stop the site the
  same way (reason ``unknown``).

The other sites of a batch go on while one is held. A batch whose every post was held pauses the
route (``results.pause_until``) until the first of its sites is tried again, for routine batches
only (``results.urgent_passes``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

import msgspec

from adapters import metrics
from adapters.base import HALTED, Envelope, Results, halted, results_for
from adapters.http.client import HttpClient
from adapters.http.proxy import Proxies
from adapters.portal.answer import Published, Refused
from adapters.portal.codes import Outcome
from adapters.portal.config import PortalConfig, Site, check
from adapters.portal.signed import SignedJson
from adapters.portal.wordpress import WordPress
from dispatcher.domain.errors import ChannelError

log = logging.getLogger(__name__)

#: Holds an operator must lift (the ALERT kinds); ``down`` and ``throttle`` lift themselves.
ALERTS = frozenset({"credentials", "configuration", "unknown"})


class Profile(Protocol):
    """What the adapter asks of a site, whatever its profile."""

    site: Site
    looks: bool  # find asks the site (WordPress); else it answers without a request

    async def find(self, envelope: Envelope, now: float) -> Published | None: ...

    async def create(self, envelope: Envelope, now: float) -> Published: ...


class PortalStats(msgspec.Struct):
    requests: int = 0  # looks and posts
    posts: int = 0  # posts a site answered made
    found: int = 0  # posts a look found made already: answered sent, not posted again
    retried: int = 0
    failed: int = 0
    requeued: int = 0  # not attempted, or held: down, throttled, stopped
    unanswered: int = 0  # posts with no answer in time (the next try's look finds them)
    throttled: int = 0  # 429 answers
    outages: int = 0  # requests that found their site down
    alerts: int = 0  # sites stopped for an operator


class _Hold:
    """A site held back: of which kind, until when, why, and its last back-off."""

    __slots__ = ("backoff", "kind", "reason", "until")

    def __init__(self, kind: str, reason: str, until: float, backoff: float) -> None:
        self.kind = kind
        self.reason = reason
        self.until = until
        self.backoff = backoff


class _Batch:
    __slots__ = ("envelope", "held", "results", "sites")

    def __init__(self, envelope: Envelope, results: Results) -> None:
        self.envelope = envelope
        self.results = results
        self.held = 0  # posts requeued because their site is held
        self.sites: set[str] = set()  # the sites of those posts


def _profile(client: HttpClient, site: Site) -> Profile:
    return WordPress(client, site) if site.wordpress else SignedJson(client, site)


class PortalAdapter:
    """The portal channel (see the module's documentation and :class:`PortalConfig`)."""

    def __init__(self, config: PortalConfig, *, clock: Callable[[], float] = time.time) -> None:
        self.config = check(config)
        self.clock = clock
        self.stats = PortalStats()
        self._client = HttpClient(config.concurrency, config.timeout,
                                  proxies=Proxies.configured(config.proxy, config.no_proxy))
        self._sites = {site.id: _profile(self._client, site) for site in config.sites}
        self._slots = asyncio.Semaphore(config.concurrency)
        self._holds: dict[str, _Hold] = {}
        self._unknown: dict[str, int] = {}  # site -> answers Loa does not know, in a row
        self._closed = False
        metrics.track_portal(self)

    @property
    def paused(self) -> dict[str, str]:
        """Sites held, from the answer that held them until they take a post again: site id ->
        the kind of hold (down, throttle, or an ALERT kind)."""
        return {site: hold.kind for site, hold in self._holds.items()}

    # -- the Adapter interface -------------------------------------------------------------

    async def send(self, envelope: Envelope) -> Results:
        if self._closed:
            raise ChannelError("the portal channel is closed")
        results = results_for(envelope)
        n = len(envelope.addrs)
        if not n:
            return results
        batch = _Batch(envelope, results)
        async with asyncio.TaskGroup() as tasks:
            for i in range(n):
                tasks.create_task(self._guarded(batch, i))
        if batch.held == n:  # nothing of it could go: wait for the first site's next try
            now = self.clock()
            waits = [h.until for s, h in self._holds.items() if s in batch.sites and h.until > now]
            if waits:
                results.pause_until = min(waits)
                results.urgent_passes = True
        stats = self.stats
        stats.retried += len(results.retry)
        stats.failed += len(results.failed)
        stats.requeued += len(results.requeue)
        return results

    async def aclose(self) -> None:
        self._closed = True
        metrics.untrack_portal(self)
        await self._client.aclose()

    # -- one post ------------------------------------------------------------------------------

    async def _guarded(self, batch: _Batch, i: int) -> None:
        try:
            await self._one(batch, i)
        except Exception as exc:  # a bug must not lose the batch: the post is tried again
            log.exception("portal: post %d of a batch failed", i)
            batch.results.retry.append((i, f"internal error: {exc!r}"))

    def _waiting(self, batch: _Batch, i: int, site: str) -> bool:
        """Requeue post ``i`` if it may not go now (halted, or its site held)."""
        if halted(batch.envelope):
            batch.results.requeue.append((i, HALTED))
            return True
        hold = self._holds.get(site)
        if hold is not None and self.clock() < hold.until:
            batch.results.requeue.append((i, hold.reason))
            batch.held += 1
            batch.sites.add(site)
            return True
        return False

    async def _one(self, batch: _Batch, i: int) -> None:
        envelope, results = batch.envelope, batch.results
        addr = envelope.addrs[i]
        profile = self._sites.get(addr)
        if profile is None:
            results.failed.append((i, f"portal: no site {addr!r} in [portal] sites"))
            return
        if self._waiting(batch, i, addr):
            return
        async with self._slots:
            if self._waiting(batch, i, addr):  # held while this post waited for its turn
                return
            try:
                self.stats.requests += profile.looks
                made = await profile.find(envelope, self.clock())
                if made is None:
                    if halted(envelope):
                        results.requeue.append((i, HALTED))
                        return
                    self.stats.requests += 1
                    made = await profile.create(envelope, self.clock())
            except Refused as refused:
                self._settle(batch, i, addr, refused)
                return
        if made.found:
            self.stats.found += 1
            log.info("portal %s already has the post of wave %s (%s): not posted again", addr,
                     envelope.wave, made.id or made.link, extra={"channel": "portal"})
        else:
            self.stats.posts += 1
            log.info("portal %s: wave %s published (%s)", addr, envelope.wave,
                     made.link or made.id, extra={"channel": "portal"})
        results.sent.append(i)
        results.remote_ids.append(made.id)
        self._accepted(addr)

    # -- outcomes ------------------------------------------------------------------------------

    def _accepted(self, site: str) -> None:
        """The site took a post (or holds it): whatever held it is over."""
        self._unknown.pop(site, None)
        hold = self._holds.pop(site, None)
        if hold is not None and hold.kind in ALERTS:
            log.warning("portal %s accepts posts again (it was stopped: %s)", site, hold.kind,
                        extra={"channel": "portal"})

    def _settle(self, batch: _Batch, i: int, site: str, refused: Refused) -> None:
        results = batch.results
        out, reason = refused.outcome, refused.reason
        if out is not Outcome.UNKNOWN:
            self._unknown.pop(site, None)
        kind = ""
        if refused.down:
            self.stats.outages += 1
            self.stats.unanswered += refused.lost
            kind = "down"
        elif out is Outcome.THROTTLE:
            self.stats.throttled += 1
            kind = "throttle"
        elif out is Outcome.CREDENTIALS or out is Outcome.CONFIGURATION:
            kind = out.value
        elif out is Outcome.FAIL:
            results.failed.append((i, reason))
        elif out is Outcome.UNKNOWN:
            count = self._unknown[site] = self._unknown.get(site, 0) + 1
            if count < self.config.unknown_code_limit:
                results.retry.append((i, reason))
            else:
                self._unknown.pop(site, None)
                kind = "unknown"
                reason = f"{count} answers in a row Loa does not know, the last: {reason}"
        else:  # RETRY (an answer that is not down: 408, 409, 425) and SENT without a post
            results.retry.append((i, reason))
        if kind:  # the site is held: the post waits, without using an attempt
            results.requeue.append((i, self._hold(site, kind, reason, refused.retry_after)))
            batch.held += 1
            batch.sites.add(site)

    def _hold(self, site: str, kind: str, reason: str, after: float | None = None) -> str:
        """Hold ``site``: backing off (``down``, ``throttle``: ``after`` is the answer's
        Retry-After) or stopped until its next try (the ALERT kinds); the reason its posts are
        requeued with."""
        now = self.clock()
        hold = self._holds.get(site)
        if hold is not None and hold.until > now and hold.kind == kind:
            return hold.reason
        config = self.config
        last = hold.backoff if hold is not None and hold.kind == kind else 0.0
        if kind == "down":
            backoff = min(config.outage_pause_max, max(last * 2 or 1.0, after or 0.0))
            why = f"{reason}; site {site} held {backoff:g} s"
            log.warning("portal %s is down: held %g s: %s", site, backoff, reason,
                        extra={"channel": "portal"})
        elif kind == "throttle":
            wait = after if after is not None else (last * 2 or config.throttle_pause)
            backoff = min(config.throttle_pause_max, max(wait, 1.0))
            why = f"{reason}; site {site} held {backoff:g} s"
            log.warning("portal %s throttles Loa: held %g s: %s", site, backoff, reason,
                        extra={"channel": "portal"})
        else:
            backoff = config.alert_probe_seconds
            why = f"{reason}; site {site} stopped, tried again every {backoff:g} s"
            self.stats.alerts += 1
            log.error("ALERT portal %s stopped (%s), its posts kept queued, an operator must "
                      "act: %s", site, kind, reason, extra={"channel": "portal"})
        self._holds[site] = _Hold(kind, why, now + backoff, backoff)
        return why
