"""The WordPress profile: posts through the WordPress REST API with an application password.

* Authentication: ``Authorization: Basic base64(user:application password)`` on every request
  (WordPress 5.6 and later; the password as WordPress shows it, spaces and all, works as is).
* Look: ``GET {url}/wp-json/wp/v2/posts?slug=<slug>&status=publish,future,draft,pending,
  private&_fields=id,slug,status,link``: the wave's post on this site if an earlier try made it
  (its answer lost to a timeout, or the worker stopped before it recorded it). Any status counts,
  so a post created as a draft for an editor is found too; reading drafts needs the user's
  ``edit_posts`` capability, which creating them needs anyway.
* Create: ``POST {url}/wp-json/wp/v2/posts`` with ``{"title", "content", "status", "slug",
  "categories"}`` (:mod:`adapters.portal.post`); WordPress answers ``201 Created`` with the post
  (``id``, ``link``).
"""

from __future__ import annotations

import base64
from urllib.parse import urlencode

import msgspec

from adapters.base import Envelope
from adapters.http.client import HttpClient, TransportFailure
from adapters.portal import post
from adapters.portal.answer import Published, Refused, refusal, unanswered
from adapters.portal.codes import Outcome
from adapters.portal.config import Site

POSTS = "/wp-json/wp/v2/posts"
LOOK_STATUSES = "publish,future,draft,pending,private"
FIELDS = "id,slug,status,link"


class WpPost(msgspec.Struct, omit_defaults=True):
    """The body of a create."""

    title: str
    content: str
    status: str
    slug: str
    categories: list[int] = []


class WpFound(msgspec.Struct):
    """A post as WordPress gives it (the fields Loa asks for)."""

    id: int
    slug: str = ""
    status: str = ""
    link: str = ""


_post = msgspec.json.Decoder(WpFound)
_posts = msgspec.json.Decoder(list[WpFound])
_encode = msgspec.json.Encoder().encode


def basic(user: str, password: str) -> str:
    """The ``Authorization`` value of an application password."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class WordPress:
    """One WordPress site (see the module's documentation)."""

    looks = True  # find asks the site

    def __init__(self, client: HttpClient, site: Site) -> None:
        self.site = site
        self._client = client
        self._base = site.url.rstrip("/") + POSTS
        self._url = client.url(self._base)
        auth = basic(site.user, site.password)
        self._headers = {"Accept": "application/json", "Authorization": auth}
        self._json = {**self._headers, "Content-Type": "application/json; charset=utf-8"}

    async def find(self, envelope: Envelope, now: float) -> Published | None:
        """The wave's post on the site, if it is there already."""
        slug = post.slug(envelope.wave, self.site.id)
        query = urlencode({"slug": slug, "status": LOOK_STATUSES, "_fields": FIELDS})
        url = self._client.url(f"{self._base}?{query}")
        try:
            answer = await self._client.request("GET", url, b"", self._headers)
        except TransportFailure as exc:
            raise unanswered(self.site.id, exc) from None
        if answer.status != 200:
            raise refusal(self.site.id, answer.status, answer.body, answer.headers, now)
        try:
            found = _posts.decode(answer.body)
        except msgspec.MsgspecError:
            raise Refused(Outcome.UNKNOWN, f"portal {self.site.id} answered the look for "
                                           f"{slug} with something that is not a list of "
                                           "posts") from None
        for item in found:
            if item.slug == slug:
                return Published(str(item.id), item.link, found=True)
        return None

    async def create(self, envelope: Envelope, now: float) -> Published:
        """Create the wave's post; what WordPress made."""
        site = self.site
        body = _encode(WpPost(
            title=post.title(envelope.subject, envelope.text),
            content=post.html_text(envelope.text), status=site.status,
            slug=post.slug(envelope.wave, site.id),
            categories=[site.category] if site.category else []))
        try:
            answer = await self._client.request("POST", self._url, body, self._json)
        except TransportFailure as exc:
            raise unanswered(site.id, exc) from None
        if answer.status // 100 != 2:
            raise refusal(site.id, answer.status, answer.body, answer.headers, now)
        try:
            made = _post.decode(answer.body)
        except msgspec.MsgspecError:  # taken, maybe: the next try's look finds it if it was
            raise Refused(Outcome.RETRY, f"portal {site.id} answered HTTP {answer.status} "
                                         "without a post") from None
        return Published(str(made.id), made.link)
