"""A Graph API simulator for page posts: the demo's, the tests' and ``loa sim facebook``.

An HTTP server on loopback (:mod:`adapters.http.server`) that answers like the Graph API
(:mod:`adapters.facebook.api` shapes) for the pages it is given (page id -> its access token):

* ``POST /{version}/{page-id}/feed`` (form ``message``, ``access_token``; or the token as
  ``Authorization: Bearer``) publishes a post and answers ``{"id": "<page-id>_<n>"}``; a message
  identical to the page's last post is refused with 506 while ``duplicates`` is on (Facebook's
  "duplicate status message");
* ``GET /{version}/{page-id}/feed?fields=...&since=<unix>&limit=N`` (``access_token`` in the
  query) answers the page's posts made at ``since`` or later, newest first:
  ``{"data": [{"id", "message", "created_time"}], "paging": {}}``;
* ``GET /sim/stats``: the counters as JSON (for a simulator in another process).

A token other than the page's is answered 190 (invalid OAuth access token), one of ``expired``
190 with subcode 463 (session expired). Faults, each an attribute that may be changed between
(and during) sends: ``down`` (every request answered HTTP 503), ``delay`` (every answer held
back that long), ``error_pages`` (page id -> the code its requests are always answered: 10, 190,
368 ...), ``throttle_code`` for the next ``throttle_left`` requests (4, 17, 32, 613, 80001),
``error_code`` for a random share ``error_ratio`` of posts, ``http_5xx_ratio`` of requests
answered HTTP 500, and ``hang_after_publish``: the post is published, then its answer held back
that long (longer than the client waits: the publication whose answer is lost). Every post made
is kept in ``posts[page_id]``, so a test counts at the far end what each page got.
"""

from __future__ import annotations

import datetime as dt
import itertools
import time
from collections import Counter
from typing import Any

import msgspec

from adapters.facebook.codes import lookup
from adapters.http.codec import Request
from adapters.http.server import HttpServer, Response
from adapters.http.sim import SimServer

__all__ = ["FacebookSim", "FacebookSimConfig", "FacebookSimStats", "SimPost"]

STATS_PATH = "/sim/stats"
DEFAULT_PAGES = {"1000000001": "sim-page-token"}
_encode = msgspec.json.Encoder().encode


class FacebookSimConfig(msgspec.Struct, frozen=True, kw_only=True):
    """How the simulated Graph API starts (times in seconds, ratios between 0 and 1)."""

    pages: dict[str, str] = msgspec.field(default_factory=lambda: dict(DEFAULT_PAGES))
    api_version: str = "v21.0"
    expired: frozenset[str] = frozenset()  # tokens answered 190/463 (session expired)
    error_pages: dict[str, int] = {}  # page id -> the code every request of it is answered
    throttle_code: int = 0  # answered to the next throttle_count requests (4, 17, 32, 613)
    throttle_count: int = 0
    error_code: int = 0  # answered to a random share error_ratio of posts
    error_ratio: float = 0.0
    http_5xx_ratio: float = 0.0
    delay: float = 0.0
    hang_after_publish: float = 0.0
    duplicates: bool = True  # 506 to a post identical to the page's last one
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("error_ratio", "http_5xx_ratio"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.delay < 0 or self.hang_after_publish < 0 or self.throttle_count < 0:
            raise ValueError("delay, hang_after_publish and throttle_count must be 0 or more")
        for code in (*self.error_pages.values(), self.throttle_code, self.error_code):
            if code and lookup(code) is None:
                raise ValueError(f"{code} is not a code of the Graph API table "
                                 "(adapters/facebook/codes.py)")
        if not self.pages:
            raise ValueError("give at least one page (page id -> its access token)")


class SimPost(msgspec.Struct, frozen=True):
    id: str
    message: str
    created: float  # epoch seconds


class FacebookSimStats(msgspec.Struct):
    requests: int = 0
    looks: int = 0  # GET /feed
    posts: int = 0  # posts published
    refused: int = 0  # answers with an error code
    answered: dict[str, int] = {}  # error code -> answers
    by_page: dict[str, int] = {}  # page id -> posts published


class FacebookSim(SimServer):
    """The Graph API on ``127.0.0.1``: ``await start()``, then requests to ``url``."""

    def __init__(self, config: FacebookSimConfig | None = None) -> None:
        config = config or FacebookSimConfig()
        super().__init__(config.seed)
        self.config = config
        self.tokens = dict(config.pages)
        self.expired = set(config.expired)
        self.error_pages = dict(config.error_pages)
        self.throttle_code = config.throttle_code
        self.throttle_left = config.throttle_count
        self.error_code = config.error_code
        self.error_ratio = config.error_ratio
        self.http_5xx_ratio = config.http_5xx_ratio
        self.delay = config.delay
        self.hang_after_publish = config.hang_after_publish
        self.duplicates = config.duplicates
        self.down = False
        self.posts: dict[str, list[SimPost]] = {page: [] for page in config.pages}
        self.answered: Counter[int] = Counter()
        self.requests = 0
        self.looks = 0
        self._ids = itertools.count(1)

    def _route(self, server: HttpServer) -> None:
        for page in self.config.pages:
            path = f"/{self.config.api_version}/{page}/feed"
            server.route("POST", path, self._post)
            server.route("GET", path, self._look)
        server.route("GET", STATS_PATH, self._stats)

    def published(self, page_id: str) -> list[str]:
        """The messages posted on a page, oldest first."""
        return [post.message for post in self.posts.get(page_id, [])]

    def snapshot(self) -> FacebookSimStats:
        return FacebookSimStats(
            requests=self.requests, looks=self.looks,
            posts=sum(len(p) for p in self.posts.values()), refused=self.answered.total(),
            answered={str(code): n for code, n in sorted(self.answered.items())},
            by_page={page: len(posts) for page, posts in self.posts.items()})

    # -- the Graph API -------------------------------------------------------------------------

    def _stats(self, request: Request) -> Response:
        return Response(_encode(self.snapshot()))

    async def _post(self, request: Request) -> Response:
        page = self._page(request)
        form = request.form()
        refused = await self._refuse(request, page, form.get("access_token", ""), post=True)
        if refused is not None:
            return refused
        message = form.get("message", "")
        if not message.strip():
            return self._error(100, "(#100) The message must not be empty")
        posts = self.posts[page]
        if self.duplicates and posts and posts[-1].message == message:
            return self._error(506, "Duplicate status message")
        post = SimPost(f"{page}_{next(self._ids)}", message, time.time())
        posts.append(post)
        await self._wait(self.hang_after_publish)  # published; the answer may come too late
        return Response(_encode({"id": post.id}))

    async def _look(self, request: Request) -> Response:
        page = self._page(request)
        query = request.query
        refused = await self._refuse(request, page, query.get("access_token", ""), post=False)
        if refused is not None:
            return refused
        self.looks += 1
        try:
            since = float(query.get("since", "0") or 0)
            limit = int(query.get("limit", "25") or 25)
        except ValueError:
            return self._error(100, "(#100) since and limit must be numbers")
        found = [p for p in reversed(self.posts[page]) if p.created >= since][:limit]
        data: list[dict[str, Any]] = [{"id": p.id, "message": p.message,
                                       "created_time": _graph_time(p.created)} for p in found]
        return Response(_encode({"data": data, "paging": {}}))

    def _page(self, request: Request) -> str:
        return request.path.rsplit("/", 2)[-2]

    async def _refuse(self, request: Request, page: str, token: str, *,
                      post: bool) -> Response | None:
        """The fault answer of a request, or None to serve it."""
        self.requests += 1
        if self.down:
            return Response.text("service unavailable", 503)
        await self._wait(self.delay)
        if not token:
            bearer = request.headers.get("authorization", "")
            token = bearer[7:] if bearer.lower().startswith("bearer ") else ""
        if token in self.expired:
            return self._error(190, "Error validating access token: Session has expired",
                               subcode=463)
        if token != self.tokens.get(page):
            return self._error(190, "Invalid OAuth access token - Cannot parse access token")
        if page in self.error_pages:
            return self._error(self.error_pages[page])
        if self.throttle_left > 0 and self.throttle_code:
            self.throttle_left -= 1
            return self._error(self.throttle_code)
        if post and self._chance(self.error_ratio):
            return self._error(self.error_code)
        if self._chance(self.http_5xx_ratio):
            return Response(_encode({"error": {"message": "An unexpected error has occurred",
                                               "type": "OAuthException", "code": 2}}), 500)
        return None

    def _error(self, code: int, message: str = "", *, subcode: int | None = None) -> Response:
        self.answered[code] += 1
        known = lookup(code)
        text = message or (f"(#{code}) {known.name}" if known else f"(#{code}) error")
        error: dict[str, Any] = {"message": text, "type": "OAuthException", "code": code,
                                 "fbtrace_id": f"sim{next(self._ids)}"}
        if subcode:
            error["error_subcode"] = subcode
        return Response(_encode({"error": error}), 400 if code != 10 else 403)


def _graph_time(at: float) -> str:
    """A time as the Graph API writes it: 2024-03-05T03:00:00+0000."""
    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")
