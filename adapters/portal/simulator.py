"""A portal simulator: WordPress sites and signed JSON CMSs (tests, demos, ``loa sim portal``).

An HTTP server on loopback (:mod:`adapters.http.server`) that answers like the two profiles:

* a WordPress site ``NAME`` at ``{url}/NAME`` (``GET`` and ``POST /NAME/wp-json/wp/v2/posts``):
  Basic authentication with the user's application password (spaces ignored, as WordPress
  does): 401 ``invalid_username`` for another user, ``incorrect_password`` for a wrong or
  revoked password, ``rest_cannot_create`` (POST) or ``rest_forbidden_status`` (GET of statuses
  other than ``publish``) without credentials; a create keeps the post (``title``, ``content``,
  ``status``, ``slug``, ``categories``) and answers 201 with it (``id``, ``link``), a slug the
  site has already getting ``-2``, ``-3`` ... as WordPress gives it; a category the site does not
  have is 400 ``rest_invalid_param``, no title and no content 400 ``empty_content``; a GET with
  ``slug`` answers the posts with that slug (and a status of ``status``);
* a signed JSON CMS ``NAME`` at ``{url}/NAME/api/notices`` (``POST``): checks
  ``X-Loa-Signature`` and ``X-Loa-Timestamp`` with its secret (401 when wrong, missing, or more
  than ``max_age_seconds`` off), needs an ``Idempotency-Key`` (400 without), answers a key it
  knows with its first answer without publishing again (``replays``), keeps the notice and
  answers 201 ``{"id", "url"}``;
* ``GET /sim/stats``: the counters as JSON.

Faults, attributes that may be changed between (and during) sends: ``throttle_count`` requests
answered 429 with ``Retry-After: retry_after``; ``error_count`` requests answered
``error_status`` (500); ``delay`` seconds before every answer; ``hang_after_publish`` seconds
between keeping a post and answering (longer than the client waits: an answer lost after the
publication); ``revoked``, the sites whose credentials are refused (an application password
revoked or expired, a secret changed). With ``keep``, every request is kept in ``log``. A site
"down" is the simulator stopped (connection
refused). Every post and notice kept counts, by site, in ``posts`` and ``notices``: a test counts
publications at the far end.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from adapters.http.codec import Request
from adapters.http.server import HttpServer, Response
from adapters.http.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from adapters.http.sim import SimServer
from adapters.portal.signed import IDEMPOTENCY_HEADER
from adapters.portal.wordpress import POSTS

__all__ = ["PortalSim", "PortalSimConfig", "SimPost", "WpAccount"]

NOTICES = "/api/notices"
STATS_PATH = "/sim/stats"
DEFAULT_WORDPRESS = "qn-portal"
DEFAULT_SIGNED = "dichvucong"


class WpAccount(msgspec.Struct, frozen=True):
    """A WordPress site's user, its application password and the categories the site has."""

    user: str = "loa"
    password: str = "abcd EFGH 1234 ijkl MNOP 5678"
    categories: frozenset[int] = frozenset({1, 12})


class PortalSimConfig(msgspec.Struct, frozen=True, kw_only=True):
    """The sites the simulator serves, by the name in their paths."""

    wordpress: dict[str, WpAccount] = msgspec.field(
        default_factory=lambda: {DEFAULT_WORDPRESS: WpAccount()})
    signed: dict[str, str] = msgspec.field(  # name -> the secret of its signatures
        default_factory=lambda: {DEFAULT_SIGNED: "sim-portal-secret"})
    max_age_seconds: float = 300.0


class SimPost(msgspec.Struct):
    """A post a WordPress site keeps."""

    id: int
    slug: str
    title: str
    content: str
    status: str
    categories: list[int]
    link: str
    asked: str  # the slug the request gave


class NewPost(msgspec.Struct):
    title: str = ""
    content: str = ""
    status: str = "draft"
    slug: str = ""
    categories: list[int] = []


class PortalSimStats(msgspec.Struct):
    requests: int = 0
    looks: int = 0  # GET of posts
    created: int = 0  # posts kept
    notices: int = 0  # notices kept
    replays: int = 0  # idempotency keys answered again without publishing
    refused_auth: int = 0  # 401 answers: credentials, signatures
    throttled: int = 0  # 429 answers
    errors: int = 0  # error_status answers
    invalid: int = 0  # 400 answers
    hung: int = 0  # answers held by hang_after_publish


_encode = msgspec.json.Encoder().encode
_new_post = msgspec.json.Decoder(NewPost)
STATUSES = frozenset({"publish", "future", "draft", "pending", "private"})


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(_encode(data), status, "application/json; charset=UTF-8", headers)


def _wp_error(code: str, message: str, status: int) -> Response:
    return _json({"code": code, "message": message, "data": {"status": status}}, status)


class PortalSim(SimServer):
    """The simulator: ``await start()``, then :meth:`site_url` and :meth:`endpoint`; ``await
    stop()``."""

    def __init__(self, config: PortalSimConfig | None = None, *,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.config = config or PortalSimConfig()
        self.clock = clock
        self.stats = PortalSimStats()
        self.posts: dict[str, list[SimPost]] = {name: [] for name in self.config.wordpress}
        self.notices: dict[str, list[dict[str, Any]]] = {n: [] for n in self.config.signed}
        self.answers: dict[tuple[str, str], bytes] = {}  # (site, idempotency key) -> answer
        self.throttle_count = 0
        self.retry_after = 2
        self.error_count = 0
        self.error_status = 500
        self.delay = 0.0
        self.hang_after_publish = 0.0
        self.revoked: set[str] = set()
        # keep: every request's (site, method, headers, body) in ``log``
        self.keep = False
        self.log: list[tuple[str, str, dict[str, str], bytes]] = []
        self._ids = itertools.count(101)

    def _route(self, server: HttpServer) -> None:
        for name in self.config.wordpress:
            path = f"/{name}{POSTS}"
            server.route("GET", path, self._guarded(name, self._look))
            server.route("POST", path, self._guarded(name, self._create))
        for name in self.config.signed:
            server.route("POST", f"/{name}{NOTICES}", self._guarded(name, self._notice))
        server.route("GET", STATS_PATH, lambda _: _json(self.stats))

    # -- where ---------------------------------------------------------------------------------

    def site_url(self, name: str = DEFAULT_WORDPRESS) -> str:
        """The root of WordPress site ``name`` (what ``[portal] sites`` calls its ``url``)."""
        return f"{self.url}/{name}"

    def endpoint(self, name: str = DEFAULT_SIGNED) -> str:
        """The endpoint of signed JSON CMS ``name``."""
        return f"{self.url}/{name}{NOTICES}"

    # -- what was published --------------------------------------------------------------------

    def slugs(self, name: str = DEFAULT_WORDPRESS) -> Counter[str]:
        """Posts kept by WordPress site ``name``, by the slug they were asked with (a wave posted
        twice counts 2 here, though WordPress gave the second post another slug)."""
        return Counter(p.asked for p in self.posts[name])

    def waves(self, name: str = DEFAULT_SIGNED) -> Counter[str]:
        """Notices kept by signed JSON CMS ``name``, by wave."""
        return Counter(str(n.get("wave", "")) for n in self.notices[name])

    # -- faults, then the handlers -------------------------------------------------------------

    def _guarded(self, name: str, handler: Callable[[str, Request], Awaitable[Response]],
                 ) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            self.stats.requests += 1
            if self.keep:
                self.log.append((name, request.method, dict(request.headers), request.body))
            if self.throttle_count > 0:
                self.throttle_count -= 1
                self.stats.throttled += 1
                return Response(b'{"code":"too_many_requests","message":"Too Many Requests",'
                                b'"data":{"status":429}}', 429, "application/json",
                                {"Retry-After": str(self.retry_after)})
            if self.error_count > 0:
                self.error_count -= 1
                self.stats.errors += 1
                return _wp_error("internal_server_error", "There has been a critical error on "
                                 "this website.", self.error_status)
            await self._wait(self.delay)
            return await handler(name, request)
        return run

    def _wp_auth(self, name: str, request: Request) -> Response | bool:
        """True with the site's credentials, False with none, else the 401 to answer."""
        given = request.headers.get("authorization", "")
        if not given:
            return False
        account = self.config.wordpress[name]
        scheme, _, encoded = given.partition(" ")
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user, password = "", ""
        if scheme.lower() != "basic" or user != account.user:
            self.stats.refused_auth += 1
            return _wp_error("invalid_username", "<strong>Error:</strong> Unknown username. "
                             "Check again or try your email address.", 401)
        if name in self.revoked or password.replace(" ", "") != account.password.replace(" ",
                                                                                         ""):
            self.stats.refused_auth += 1
            return _wp_error("incorrect_password", "The provided password is an invalid "
                             "application password.", 401)
        return True

    async def _look(self, name: str, request: Request) -> Response:
        self.stats.looks += 1
        authorised = self._wp_auth(name, request)
        if isinstance(authorised, Response):
            return authorised
        query = request.query
        statuses = set(query.get("status", "publish").split(","))
        if not statuses <= STATUSES:
            self.stats.invalid += 1
            return _wp_error("rest_invalid_param", "Invalid parameter(s): status", 400)
        if statuses != {"publish"} and not authorised:
            self.stats.refused_auth += 1
            return _wp_error("rest_forbidden_status", "Status is forbidden.", 401)
        slugs = set(query["slug"].split(",")) if query.get("slug") else None
        found = [p for p in self.posts[name]
                 if p.status in statuses and (slugs is None or p.slug in slugs)]
        return _json([{"id": p.id, "slug": p.slug, "status": p.status, "link": p.link}
                      for p in found])

    async def _create(self, name: str, request: Request) -> Response:
        authorised = self._wp_auth(name, request)
        if isinstance(authorised, Response):
            return authorised
        if not authorised:
            self.stats.refused_auth += 1
            return _wp_error("rest_cannot_create", "Sorry, you are not allowed to create posts "
                             "as this user.", 401)
        try:
            new = _new_post.decode(request.body)
        except msgspec.MsgspecError:
            self.stats.invalid += 1
            return _wp_error("rest_invalid_json", "Invalid JSON body passed.", 400)
        account = self.config.wordpress[name]
        if new.status not in STATUSES or not set(new.categories) <= account.categories:
            self.stats.invalid += 1
            which = "status" if new.status not in STATUSES else "categories"
            return _wp_error("rest_invalid_param", f"Invalid parameter(s): {which}", 400)
        if not new.title.strip() and not new.content.strip():
            self.stats.invalid += 1
            return _wp_error("empty_content", "Content, title, and excerpt are empty.", 400)
        post_id = next(self._ids)
        slug = self._unique(name, new.slug or f"post-{post_id}")
        made = SimPost(id=post_id, slug=slug, title=new.title, content=new.content,
                       status=new.status, categories=new.categories,
                       link=f"{self.site_url(name)}/{slug}/", asked=new.slug)
        self.posts[name].append(made)
        self.stats.created += 1
        answer = _json({"id": made.id, "slug": made.slug, "status": made.status,
                        "link": made.link, "title": {"rendered": made.title},
                        "categories": made.categories}, 201)
        await self._hang()
        return answer

    def _unique(self, name: str, slug: str) -> str:
        taken = {p.slug for p in self.posts[name]}
        if slug not in taken:
            return slug
        return next(f"{slug}-{n}" for n in itertools.count(2) if f"{slug}-{n}" not in taken)

    async def _notice(self, name: str, request: Request) -> Response:
        raw = request.body
        secret = "\0revoked" if name in self.revoked else self.config.signed[name]
        why = verify(secret, raw, request.headers.get(TIMESTAMP_HEADER.lower(), ""),
                     request.headers.get(SIGNATURE_HEADER.lower(), ""), now=self.clock(),
                     max_age=self.config.max_age_seconds)
        if why is not None:
            self.stats.refused_auth += 1
            return _json({"code": "bad_signature", "message": why}, 401)
        key = request.headers.get(IDEMPOTENCY_HEADER.lower(), "")
        if not key:
            self.stats.invalid += 1
            return _json({"code": "no_idempotency_key", "message": "Idempotency-Key is "
                          "required"}, 400)
        if (name, key) in self.answers:
            self.stats.replays += 1
            return _json(msgspec.json.decode(self.answers[(name, key)]), 201)
        try:
            notice = msgspec.json.decode(raw)
        except msgspec.MsgspecError:
            notice = None
        if not isinstance(notice, dict) or not notice.get("text"):
            self.stats.invalid += 1
            return _json({"code": "invalid_notice", "message": "a JSON object with a text "
                          "is required"}, 400)
        self.notices[name].append(notice)
        self.stats.notices += 1
        number = next(self._ids)
        answer = {"id": f"notice-{number}", "url": f"{self.url}/{name}/notices/{number}"}
        self.answers[(name, key)] = _encode(answer)
        await self._hang()
        return _json(answer, 201)

    async def _hang(self) -> None:
        if self.hang_after_publish:
            self.stats.hung += 1
            await self._wait(self.hang_after_publish)
