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

import logging
import time
from collections.abc import Callable
from typing import Protocol

import msgspec

from adapters import metrics
from adapters.base import HALTED, Envelope, halted
from adapters.http.client import HttpClient
from adapters.http.proxy import Proxies
from adapters.outlet import Batch, BatchOutlet, backoff
from adapters.portal.answer import Published, Refused
from adapters.portal.codes import Outcome
from adapters.portal.config import PortalConfig, Site, check
from adapters.portal.signed import SignedJson
from adapters.portal.wordpress import WordPress

log = logging.getLogger(__name__)

#: Holds an operator must lift (the ALERT kinds); ``down`` and ``throttle`` lift themselves.
ALERTS = frozenset({"credentials", "configuration", "unknown"})
EXTRA = {"channel": "portal"}


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


def _profile(client: HttpClient, site: Site) -> Profile:
    return WordPress(client, site) if site.wordpress else SignedJson(client, site)


class PortalAdapter(BatchOutlet[PortalConfig, PortalStats, Profile]):
    """The portal channel (see the module's documentation and :class:`PortalConfig`)."""

    NAME = "portal"
    LOG = log
    EXTRA = EXTRA
    WHO = "site "
    STOPS = ALERTS
    LIFTED = "portal %s accepts posts again (it was stopped: %s)"
    KEY, KIND = "portal", "site"
    OWN_TARGETS = True

    def __init__(self, config: PortalConfig, *, clock: Callable[[], float] = time.time) -> None:
        config = check(config)
        self._client = HttpClient(config.concurrency, config.timeout,
                                  proxies=Proxies.configured(config.proxy, config.no_proxy))
        super().__init__(config, PortalStats(),
                         {site.id: _profile(self._client, site) for site in config.sites},
                         now=clock)
        self.clock = clock
        metrics.track_portal(self)

    @property
    def paused(self) -> dict[str, str]:
        """Sites held, from the answer that held them until they take a post again: site id ->
        the kind of hold (down, throttle, or an ALERT kind)."""
        return {site: hold.kind for site, hold in self._holds.items()}

    async def aclose(self) -> None:
        self._closed = True
        metrics.untrack_portal(self)
        await self._client.aclose()

    # -- one post ------------------------------------------------------------------------------

    async def _deliver(self, batch: Batch, i: int, profile: Profile) -> None:
        envelope, results = batch.envelope, batch.results
        addr = profile.site.id
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
                     envelope.wave, made.id or made.link, extra=EXTRA)
        else:
            self.stats.posts += 1
            log.info("portal %s: wave %s published (%s)", addr, envelope.wave,
                     made.link or made.id, extra=EXTRA)
        self._took(results, i, addr, made.id)

    # -- outcomes ------------------------------------------------------------------------------

    def _settle(self, batch: Batch, i: int, site: str, refused: Refused) -> None:
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
            count = self._unknowns(site, self.config.unknown_code_limit)
            if count:
                kind = "unknown"
                reason = f"{count} answers in a row Loa does not know, the last: {reason}"
            else:
                results.retry.append((i, reason))
        else:  # RETRY (an answer that is not down: 408, 409, 425) and SENT without a post
            results.retry.append((i, reason))
        if kind:  # the site is held: the post waits, without using an attempt
            batch.held_back(i, site, self._hold(site, kind, reason, refused.retry_after))

    def _pause(self, target: str, kind: str, reason: str, last: float | None,
               asked: float | None) -> tuple[float, str]:
        """A site ``down`` is held 1 s, doubling while it lasts (at least its Retry-After); one
        that throttles Loa for its Retry-After, else ``throttle_pause`` doubling."""
        config = self.config
        if kind == "down":
            seconds = backoff(last, 1.0, config.outage_pause_max, least=asked or 0.0)
            log.warning("portal %s is down: held %g s: %s", target, seconds, reason,
                        extra=EXTRA)
        else:
            seconds = backoff(last, config.throttle_pause, config.throttle_pause_max,
                              asked=asked, least=1.0)
            log.warning("portal %s throttles Loa: held %g s: %s", target, seconds, reason,
                        extra=EXTRA)
        return seconds, f"{reason}; site {target} held {seconds:g} s"

    def _stop_alert(self, target: str, kind: str, reason: str) -> None:
        self.stats.alerts += 1
        log.error("ALERT portal %s stopped (%s), its posts kept queued, an operator must act: "
                  "%s", target, kind, reason, extra=EXTRA)
