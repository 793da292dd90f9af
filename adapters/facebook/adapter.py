"""The Facebook channel: one post per wave on each page, through the Graph API.

An envelope's addresses are page ids of ``[facebook] pages`` (the wave's targets); each is one
post of the envelope's text, at most ``concurrency`` requests in flight, on one pooled keep-alive
client (:mod:`adapters.http.client`). Before it posts, the adapter reads the page's posts since
the wave was made (``GET /{page-id}/feed``, from ``Envelope.created_at`` less ``clock_skew``):
a post with the same text is this wave's, made by an earlier try whose answer was lost (a
timeout, a crash before the sent bit), and is answered sent with its id instead of being posted
again. So a page gets a wave once; the sent bit covers what was answered, the look what was not.

Facebook's answers decide each post's outcome by the table of :mod:`adapters.facebook.codes`:

* a post id: ``results.sent`` (its id in ``remote_ids``; no delivery receipts);
* retry (codes 1, 2; HTTP 5xx or 429 without a code; no answer in time; the connection broken
  after the request left): ``results.retry``. When every request of a batch met such an answer,
  Facebook is down: they are requeued without using an attempt and the route pauses for 1 s,
  doubling up to ``outage_pause_max`` while it lasts;
* no connection at all: ``results.requeue`` (the request never left);
* throttled (4, 17, 341, 613: the application's limits): the post and every one not yet made
  are requeued (no attempt used) and the route pauses ``throttle_pause`` seconds, doubling up
  to ``throttle_pause_max`` while Facebook keeps refusing (``results.pause_until``); 32 and
  80001 (the page's own limit): the same for that page only;
* the page's token (190, 102) or a permission (10, 3, 200-299): the page stops, its posts are
  requeued, an ALERT is logged and ``loa_facebook_page_stopped{page,reason}`` is 1; one post is
  tried every ``alert_probe_seconds`` until Facebook accepts (a new token is given in the
  page's ``token_env`` and the workers restarted). A batch holding only stopped pages pauses
  the route until the next try, for routine batches only (urgent ones still go to the others);
* blocked for a policy violation (368): ``results.failed`` with Facebook's reason, and an ALERT;
* the same text as the page's last post (506): the page shows it already: ``results.sent``
  (with no id), nothing more posted;
* an invalid request (100): ``results.failed``;
* a code not in the table: retried; ``unknown_code_limit`` in a row stop the route with an
  alert (reason ``unknown``), tried again every ``alert_probe_seconds``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from urllib.parse import urlencode

import msgspec

from adapters import metrics
from adapters.base import HALTED, Envelope, Results, halted, results_for
from adapters.facebook import api
from adapters.facebook.codes import Outcome, lookup
from adapters.facebook.config import FacebookConfig, Page
from adapters.http.client import HttpClient, TransportFailure, Url
from adapters.http.proxy import Proxies
from dispatcher.domain.errors import ChannelError

log = logging.getLogger(__name__)

ALERTS = frozenset({"token", "permission"})  # page stops an operator must lift
ACCEPT = {"Accept": "application/json"}


class FacebookStats(msgspec.Struct):
    requests: int = 0  # Graph API calls: looks and posts
    posts: int = 0  # posts Facebook answered with an id
    found: int = 0  # posts the look found made already: answered sent, not posted again
    retried: int = 0
    failed: int = 0
    requeued: int = 0  # not attempted (throttled, page stopped, no connection)
    unanswered: int = 0  # posts with no answer in time: the next try's look finds them if made
    duplicates: int = 0  # refused as the page's last post again (506): counted sent
    throttled: int = 0  # rate-limit answers
    alerts: int = 0  # pages stopped, posts blocked, the route stopped for unknown codes
    outage_pauses: int = 0  # batches that found Facebook down


class _Hold:
    """A pause of the route or of a page: until when, of which kind, why."""

    __slots__ = ("backoff", "kind", "reason", "until")

    def __init__(self, kind: str, reason: str, until: float, backoff: float) -> None:
        self.kind = kind
        self.reason = reason
        self.until = until
        self.backoff = backoff


class _Batch:
    __slots__ = ("down", "envelope", "held", "results", "since", "tried")

    def __init__(self, envelope: Envelope, results: Results, skew: float) -> None:
        self.envelope = envelope
        self.results = results
        self.since = int(envelope.created_at - skew) if envelope.created_at else 0
        self.down = 0  # requests Facebook did not answer, or answered 5xx
        self.tried = 0  # posts that made a request
        self.held = 0  # posts requeued because their page is stopped or backs off


class _Refused(Exception):
    """An answer that is not what was asked: its outcome and its words."""

    def __init__(self, outcome: Outcome | None, reason: str, *, down: bool = False,
                 connect: bool = False, code: int = 0) -> None:
        super().__init__(reason)
        self.outcome = outcome  # None: a code Loa does not know
        self.reason = reason
        self.down = down  # Facebook is away: 5xx, no answer
        self.connect = connect  # the request never left
        self.code = code


class FacebookAdapter:
    """The Facebook channel (see the module's documentation and :class:`FacebookConfig`)."""

    def __init__(self, config: FacebookConfig, *, client: HttpClient | None = None) -> None:
        self.config = config
        self.stats = FacebookStats()
        self._pages = {page.id: page for page in config.pages}
        self._client = client or HttpClient(
            config.concurrency, config.timeout, peer="Facebook",
            proxies=Proxies.configured(config.proxy, config.no_proxy))
        self._base = f"{config.graph_url.rstrip('/')}/{config.api_version}"
        self._posts: dict[str, Url] = {}
        self._slots = asyncio.Semaphore(config.concurrency)
        self._route: _Hold | None = None  # the application throttled, unknown codes
        self._holds: dict[str, _Hold] = {}  # page id -> its pause
        self._backoff = 0.0  # the route's last throttle pause (0: none since a success)
        self._outage = 0.0
        self._unknown = 0  # unlisted codes in a row
        self._closed = False
        metrics.track_facebook(self)

    @property
    def stopped(self) -> dict[str, str]:
        """Pages stopped for a fault an operator must fix: page id -> token or permission."""
        return {page: hold.kind for page, hold in self._holds.items() if hold.kind in ALERTS}

    @property
    def route_stop(self) -> str:
        """Why the whole route is stopped ("unknown"), or ""."""
        hold = self._route
        return hold.kind if hold is not None and hold.kind == "unknown" else ""

    # -- the Adapter interface -------------------------------------------------------------

    async def send(self, envelope: Envelope) -> Results:
        if self._closed:
            raise ChannelError("the Facebook channel is closed")
        results = results_for(envelope)
        n = len(envelope.addrs)
        if not n:
            return results
        hold = self._route
        if hold is not None and time.time() < hold.until:
            results.requeue = [(i, hold.reason) for i in range(n)]
            results.pause_until = hold.until
            self.stats.requeued += n
            return results
        batch = _Batch(envelope, results, self.config.clock_skew)
        async with asyncio.TaskGroup() as tasks:
            for i in range(n):
                tasks.create_task(self._guarded(batch, i))
        self._after(batch, n)
        stats = self.stats
        stats.retried += len(results.retry)
        stats.failed += len(results.failed)
        stats.requeued += len(results.requeue)
        return results

    async def aclose(self) -> None:
        self._closed = True
        metrics.untrack_facebook(self)
        await self._client.aclose()

    def _after(self, batch: _Batch, n: int) -> None:
        """The route's pause after a batch: Facebook down, throttled, or only stopped pages."""
        results = batch.results
        if batch.down and batch.down >= batch.tried:
            self._outage = min(self.config.outage_pause_max, max(1.0, self._outage * 2))
            results.requeue.extend((i, f"Facebook is down: {why}") for i, why in results.retry)
            results.retry = []
            results.pause_until = max(results.pause_until, time.time() + self._outage)
            self.stats.outage_pauses += 1
            log.warning("Facebook answers 5xx or nothing: route paused for %g s", self._outage,
                        extra={"channel": "facebook"})
        elif batch.down == 0:
            self._outage = 0.0
        hold = self._route
        if hold is not None and hold.until > time.time():
            results.pause_until = max(results.pause_until, hold.until)
        elif batch.held == n:  # nothing of it could go: wait for the first page's next try
            waits = [h.until for h in self._holds.values() if h.until > time.time()]
            if waits:
                results.pause_until = max(results.pause_until, min(waits))
                results.urgent_passes = True

    # -- one post ------------------------------------------------------------------------------

    async def _guarded(self, batch: _Batch, i: int) -> None:
        try:
            await self._one(batch, i)
        except Exception as exc:  # a bug must not lose the batch: the post is tried again
            log.exception("Facebook: post %d of a batch failed", i)
            batch.results.retry.append((i, f"internal error: {exc!r}"))

    def _waiting(self, batch: _Batch, i: int, page: Page) -> bool:
        """Requeue post ``i`` if it may not go now (halted, the route or its page paused)."""
        results = batch.results
        if halted(batch.envelope):
            results.requeue.append((i, HALTED))
            return True
        now = time.time()
        if self._route is not None and now < self._route.until:
            results.requeue.append((i, self._route.reason))
            return True
        hold = self._holds.get(page.id)
        if hold is not None and now < hold.until:
            results.requeue.append((i, hold.reason))
            batch.held += 1
            return True
        return False

    async def _one(self, batch: _Batch, i: int) -> None:
        addr = batch.envelope.addrs[i]
        page = self._pages.get(addr)
        results = batch.results
        if page is None:
            results.failed.append((i, f"facebook: no page {addr!r} in [facebook] pages"))
            return
        if self._waiting(batch, i, page):
            return
        async with self._slots:
            if self._waiting(batch, i, page):  # paused while this post waited for its turn
                return
            batch.tried += 1
            try:
                found = await self._look(batch, page) if batch.since else None
                if found is None:
                    if halted(batch.envelope):
                        results.requeue.append((i, HALTED))
                        return
                    found = await self._post(batch, page)
                else:
                    self.stats.found += 1
                    log.info("Facebook page %s already has the post of wave %s (%s): not "
                             "posted again", page.id, batch.envelope.wave, found,
                             extra={"channel": "facebook"})
            except _Refused as refused:
                self._settle(batch, i, page, refused)
                return
        results.sent.append(i)
        results.remote_ids.append(found)
        self._accepted(page)

    async def _look(self, batch: _Batch, page: Page) -> str | None:
        """The id of the wave's post on the page if it is there already, else None."""
        query = urlencode({"fields": api.FIELDS, "since": batch.since, "limit": api.FEED_LIMIT,
                           "access_token": page.token})
        url = self._client.url(f"{self._base}/{page.page_id}/feed?{query}")
        status, body = await self._call(url, None, posting=False)
        posts = api.feed(body) if status == 200 else None
        if posts is None:
            raise self._refusal(status, body)
        text = batch.envelope.text
        return next((p.id for p in posts if api.same_text(p.message, text)), None)

    async def _post(self, batch: _Batch, page: Page) -> str:
        url = self._posts.get(page.id)
        if url is None:
            url = self._posts[page.id] = self._client.url(f"{self._base}/{page.page_id}/feed")
        form = {"message": batch.envelope.text, "access_token": page.token}
        status, body = await self._call(url, form, posting=True)
        post = api.posted(body) if status == 200 else None
        if post is None:
            if status == 200:  # taken, maybe: the next try's look finds it if it was made
                raise _Refused(Outcome.RETRY, "facebook answered 200 without a post id")
            raise self._refusal(status, body)
        self.stats.posts += 1
        return post

    async def _call(self, url: Url, form: dict[str, str] | None, *,
                    posting: bool) -> tuple[int, bytes]:
        """One Graph API request (a GET, or a POST of ``form``): its status and body; a
        failure without an answer is raised as :class:`_Refused`."""
        self.stats.requests += 1
        try:
            if form is None:
                answer = await self._client.request("GET", url, b"", ACCEPT)
                return answer.status, answer.body
            return await self._client.post_form(url, form, ACCEPT)
        except TransportFailure as exc:
            if exc.kind == "connect":
                raise _Refused(Outcome.RETRY, exc.reason, down=True, connect=True) from None
            if posting and exc.kind == "timeout":
                self.stats.unanswered += 1
            raise _Refused(Outcome.RETRY, exc.reason, down=True) from None

    def _refusal(self, status: int, body: bytes) -> _Refused:
        error = api.error_of(body)
        if error is None or not error.code:
            if status >= 500 or status == 429:
                return _Refused(Outcome.RETRY, f"facebook answered HTTP {status}", down=True)
            return _Refused(None, f"facebook answered HTTP {status} without an error code")
        down = status >= 500 or status == 429  # with a code: Facebook away all the same
        code = lookup(error.code)
        if code is None:
            return _Refused(None, api.reason(error, "a code Loa does not know"), down=down,
                            code=error.code)
        return _Refused(code.outcome, api.reason(error, code.name), down=down, code=error.code)

    # -- outcomes ------------------------------------------------------------------------------

    def _accepted(self, page: Page) -> None:
        """Facebook took a post (or the look found one): whatever held the page is over."""
        self._unknown = 0
        self._backoff = 0.0
        hold = self._holds.pop(page.id, None)
        if hold is not None and hold.kind in ALERTS:
            log.warning("Facebook page %s accepts posts again (it was stopped: %s)", page.id,
                        hold.kind, extra={"channel": "facebook"})
        if self._route is not None and self._route.until <= time.time():
            self._route = None

    def _settle(self, batch: _Batch, i: int, page: Page, refused: _Refused) -> None:
        results = batch.results
        outcome, reason = refused.outcome, refused.reason
        if refused.down:
            batch.down += 1
        if outcome is not None:
            self._unknown = 0
        if refused.connect:
            results.requeue.append((i, reason))
        elif outcome is Outcome.THROTTLE:
            self.stats.throttled += 1
            results.requeue.append((i, self._throttle_route(reason)))
        elif outcome is Outcome.PAGE_THROTTLE:
            self.stats.throttled += 1
            results.requeue.append((i, self._hold_page(page, "throttle", reason)))
            batch.held += 1
        elif outcome is Outcome.TOKEN or outcome is Outcome.PERMISSION:
            results.requeue.append((i, self._hold_page(page, outcome.value, reason)))
            batch.held += 1
        elif outcome is Outcome.BLOCKED:
            self._alert("blocked", f"a post to page {page.id} was refused: {reason}")
            results.failed.append((i, reason))
        elif outcome is Outcome.DUPLICATE:  # the page shows this very text as its last post
            self.stats.duplicates += 1
            results.sent.append(i)
            results.remote_ids.append("")
            self._accepted(page)
        elif outcome is Outcome.FAIL:
            results.failed.append((i, reason))
        elif outcome is None:
            self._unknown += 1
            if self._unknown >= self.config.unknown_code_limit:
                results.requeue.append((i, self._stop_route(reason)))
            else:
                results.retry.append((i, reason))
        else:
            results.retry.append((i, reason))

    def _throttle_route(self, reason: str) -> str:
        hold = self._route
        now = time.time()
        if hold is not None and hold.until > now:
            return hold.reason
        config = self.config
        self._backoff = min(config.throttle_pause_max,
                            self._backoff * 2 if self._backoff else config.throttle_pause)
        why = f"{reason}; Facebook paused for {self._backoff:g} s"
        self._route = _Hold("throttle", why, now + self._backoff, self._backoff)
        log.warning("Facebook rate limit: route paused for %g s: %s", self._backoff, reason,
                    extra={"channel": "facebook"})
        return why

    def _stop_route(self, reason: str) -> str:
        now = time.time()
        why = (f"{self.config.unknown_code_limit} answers in a row with codes Loa does not "
               f"know, the last: {reason}")
        self._route = _Hold("unknown", why, now + self.config.alert_probe_seconds, 0.0)
        self._unknown = 0
        self._alert("unknown", f"route stopped, posts kept queued, an operator must act: {why}")
        return why

    def _hold_page(self, page: Page, kind: str, reason: str) -> str:
        """Pause ``page``: backing off (``throttle``) or stopped until its next try (``token``,
        ``permission``); the reason its posts are requeued with."""
        now = time.time()
        hold = self._holds.get(page.id)
        if hold is not None and hold.until > now and hold.kind == kind:
            return hold.reason
        config = self.config
        if kind == "throttle":
            backoff = min(config.throttle_pause_max, hold.backoff * 2
                          if hold is not None and hold.kind == kind else config.throttle_pause)
            why = f"{reason}; page {page.id} paused for {backoff:g} s"
            log.warning("Facebook page %s over its rate limit: paused for %g s: %s", page.id,
                        backoff, reason, extra={"channel": "facebook"})
        else:
            backoff = config.alert_probe_seconds
            why = f"{reason}; page {page.id} stopped, tried again every {backoff:g} s"
            self._alert(kind, f"page {page.id} stopped, its posts kept queued, an operator "
                              f"must act: {reason}")
        self._holds[page.id] = _Hold(kind, why, now + backoff, backoff)
        return why

    def _alert(self, reason: str, text: str) -> None:
        self.stats.alerts += 1
        metrics.FACEBOOK_ALERTS.labels(reason).inc()
        log.error("ALERT Facebook (%s): %s", reason, text, extra={"channel": "facebook"})
