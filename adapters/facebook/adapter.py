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

import logging
import time
from urllib.parse import urlencode

import msgspec

from adapters import metrics
from adapters.base import HALTED, Envelope, halted
from adapters.facebook import api
from adapters.facebook.codes import Outcome, lookup
from adapters.facebook.config import FacebookConfig, Page
from adapters.http.client import HttpClient, TransportFailure, Url
from adapters.http.proxy import Proxies
from adapters.outlet import Batch, BatchOutlet, Hold, backoff

log = logging.getLogger(__name__)

ALERTS = frozenset({"token", "permission"})  # page stops an operator must lift
ACCEPT = {"Accept": "application/json"}
EXTRA = {"channel": "facebook"}


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


class FacebookAdapter(BatchOutlet[FacebookConfig, FacebookStats, Page]):
    """The Facebook channel (see the module's documentation and :class:`FacebookConfig`)."""

    NAME = "Facebook"
    LOG = log
    EXTRA = EXTRA
    WHO = "page "
    STOPS = ALERTS
    LIFTED = "Facebook page %s accepts posts again (it was stopped: %s)"
    ALERT_COUNTER = metrics.FACEBOOK_ALERTS
    KEY, KIND = "facebook", "page"
    AWAY = "Facebook is down"

    def __init__(self, config: FacebookConfig, *, client: HttpClient | None = None) -> None:
        super().__init__(config, FacebookStats(), {page.id: page for page in config.pages})
        self._client = client or HttpClient(
            config.concurrency, config.timeout, peer="Facebook",
            proxies=Proxies.configured(config.proxy, config.no_proxy))
        self._base = f"{config.graph_url.rstrip('/')}/{config.api_version}"
        self._posts: dict[str, Url] = {}
        self._backoff = 0.0  # the route's last throttle pause (0: none since a success)
        self._unlisted = 0  # unlisted codes in a row
        metrics.track_facebook(self)

    @property
    def route_stop(self) -> str:
        """Why the whole route is stopped ("unknown"), or ""."""
        hold = self._route
        return hold.kind if hold is not None and hold.kind == "unknown" else ""

    async def aclose(self) -> None:
        self._closed = True
        metrics.untrack_facebook(self)
        await self._client.aclose()

    def _away(self, seconds: float) -> None:
        self.stats.outage_pauses += 1
        log.warning("Facebook answers 5xx or nothing: route paused for %g s", seconds,
                    extra=EXTRA)

    # -- one post ------------------------------------------------------------------------------

    async def _deliver(self, batch: Batch, i: int, page: Page) -> None:
        envelope, results = batch.envelope, batch.results
        since = int(envelope.created_at - self.config.clock_skew) if envelope.created_at else 0
        try:
            found = await self._look(envelope, page, since) if since else None
            if found is None:
                if halted(envelope):
                    results.requeue.append((i, HALTED))
                    return
                found = await self._post(envelope, page)
            else:
                self.stats.found += 1
                log.info("Facebook page %s already has the post of wave %s (%s): not "
                         "posted again", page.id, envelope.wave, found, extra=EXTRA)
        except _Refused as refused:
            self._settle(batch, i, page, refused)
            return
        self._took(results, i, page.id, found)

    async def _look(self, envelope: Envelope, page: Page, since: int) -> str | None:
        """The id of the wave's post on the page if it is there already, else None."""
        query = urlencode({"fields": api.FIELDS, "since": since, "limit": api.FEED_LIMIT,
                           "access_token": page.token})
        url = self._client.url(f"{self._base}/{page.page_id}/feed?{query}")
        status, body = await self._call(url, None, posting=False)
        posts = api.feed(body) if status == 200 else None
        if posts is None:
            raise self._refusal(status, body)
        return next((p.id for p in posts if api.same_text(p.message, envelope.text)), None)

    async def _post(self, envelope: Envelope, page: Page) -> str:
        url = self._posts.get(page.id)
        if url is None:
            url = self._posts[page.id] = self._client.url(f"{self._base}/{page.page_id}/feed")
        form = {"message": envelope.text, "access_token": page.token}
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

    def _accepted(self, target: str) -> None:
        """Facebook took a post (or the look found one): whatever held the page is over."""
        self._unlisted = 0
        self._backoff = 0.0
        super()._accepted(target)

    def _settle(self, batch: Batch, i: int, page: Page, refused: _Refused) -> None:
        results = batch.results
        outcome, reason = refused.outcome, refused.reason
        if refused.down:
            batch.down += 1
        if outcome is not None:
            self._unlisted = 0
        if refused.connect:
            results.requeue.append((i, reason))
        elif outcome is Outcome.THROTTLE:
            self.stats.throttled += 1
            results.requeue.append((i, self._throttle_route(reason)))
        elif outcome is Outcome.PAGE_THROTTLE:
            self.stats.throttled += 1
            batch.held_back(i, page.id, self._hold(page.id, "throttle", reason))
        elif outcome is Outcome.TOKEN or outcome is Outcome.PERMISSION:
            batch.held_back(i, page.id, self._hold(page.id, outcome.value, reason))
        elif outcome is Outcome.BLOCKED:
            self._alert("blocked", f"a post to page {page.id} was refused: {reason}")
            results.failed.append((i, reason))
        elif outcome is Outcome.DUPLICATE:  # the page shows this very text as its last post
            self.stats.duplicates += 1
            self._took(results, i, page.id, "")
        elif outcome is Outcome.FAIL:
            results.failed.append((i, reason))
        elif outcome is None:
            self._unlisted += 1
            if self._unlisted >= self.config.unknown_code_limit:
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
        self._backoff = backoff(self._backoff or None, config.throttle_pause,
                                config.throttle_pause_max)
        why = f"{reason}; Facebook paused for {self._backoff:g} s"
        self._route = Hold("throttle", why, now + self._backoff, self._backoff)
        log.warning("Facebook rate limit: route paused for %g s: %s", self._backoff, reason,
                    extra=EXTRA)
        return why

    def _stop_route(self, reason: str) -> str:
        now = time.time()
        why = (f"{self.config.unknown_code_limit} answers in a row with codes Loa does not "
               f"know, the last: {reason}")
        self._route = Hold("unknown", why, now + self.config.alert_probe_seconds, 0.0)
        self._unlisted = 0
        self._alert("unknown", f"route stopped, posts kept queued, an operator must act: {why}")
        return why

    def _pause(self, target: str, kind: str, reason: str, last: float | None,
               asked: float | None) -> tuple[float, str]:
        """A page over its own rate limit (``throttle``) backs off, doubling while it lasts."""
        seconds = backoff(last, self.config.throttle_pause, self.config.throttle_pause_max)
        log.warning("Facebook page %s over its rate limit: paused for %g s: %s", target,
                    seconds, reason, extra=EXTRA)
        return seconds, f"{reason}; page {target} paused for {seconds:g} s"
