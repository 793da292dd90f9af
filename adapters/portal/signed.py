"""The signed JSON profile: a notice POSTed to a CMS that is not WordPress (the public-service
portal), signed as the app push is (:mod:`adapters.http.signature`).

``POST {url}`` with the UTF-8 JSON body::

    {"id": "<wave>:<site>", "wave", "title", "text", "district", "published_at"}

``title`` as :func:`adapters.portal.post.title` makes it, ``text`` the plain text (the CMS lays it
out), ``district`` the site's district ("" for the province), ``published_at`` when Loa sent it
(ISO 8601, UTC). Headers:

* ``X-Loa-Timestamp: <unix seconds>`` and ``X-Loa-Signature: sha256=<hex>``, the HMAC-SHA256
  with the site's secret of the timestamp, a dot and the raw body. The CMS recomputes it over the
  timestamp header, a dot and the bytes it read, compares in constant time and refuses a
  timestamp more than 5 minutes from its clock (401);
* ``Idempotency-Key: <wave>:<site>``, the same on every try of the wave on the site. The CMS must
  keep the keys it has published (a day at least) and answer a key it knows with its first
  answer, publishing nothing: that is how a post whose answer was lost is not published twice.

Any 2xx is taken; its body may give ``{"id", "url"}`` of the notice. Other answers go by the HTTP
status (:mod:`adapters.portal.codes`): a JSON ``{"code", "message"}`` is quoted in the reason.
"""

from __future__ import annotations

import datetime as dt

import msgspec

from adapters.base import Envelope
from adapters.http.client import HttpClient, TransportFailure
from adapters.http.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from adapters.portal import post
from adapters.portal.answer import Published, refusal, unanswered
from adapters.portal.config import Site

IDEMPOTENCY_HEADER = "Idempotency-Key"


class Notice(msgspec.Struct):
    """The body of a request."""

    id: str
    wave: str
    title: str
    text: str
    district: str
    published_at: str


class NoticeAnswer(msgspec.Struct):
    """What a CMS may answer (every field optional)."""

    id: str | int = ""
    url: str = ""


_answer = msgspec.json.Decoder(NoticeAnswer)
_encode = msgspec.json.Encoder().encode


def key(wave: str, site: str) -> str:
    """The idempotency key (and the notice's id) of ``wave`` on ``site``."""
    return f"{wave}:{site}"


class SignedJson:
    """One CMS of the signed JSON profile (see the module's documentation)."""

    looks = False  # find answers without a request: the key does its work

    def __init__(self, client: HttpClient, site: Site) -> None:
        self.site = site
        self._client = client
        self._url = client.url(site.url)
        self._headers = {"Accept": "application/json",
                         "Content-Type": "application/json; charset=utf-8"}

    async def find(self, envelope: Envelope, now: float) -> Published | None:
        """Nothing to look for: the idempotency key keeps a post from going twice."""
        return None

    async def create(self, envelope: Envelope, now: float) -> Published:
        site = self.site
        ident = key(envelope.wave, site.id)
        stamp = int(now)
        body = _encode(Notice(
            id=ident, wave=envelope.wave, title=post.title(envelope.subject, envelope.text),
            text=envelope.text, district=site.district,
            published_at=dt.datetime.fromtimestamp(stamp, dt.UTC).isoformat()))
        headers = {**self._headers, IDEMPOTENCY_HEADER: ident, TIMESTAMP_HEADER: str(stamp),
                   SIGNATURE_HEADER: sign(site.secret, body, stamp)}
        try:
            answer = await self._client.request("POST", self._url, body, headers)
        except TransportFailure as exc:
            raise unanswered(site.id, exc) from None
        if answer.status // 100 != 2:
            raise refusal(site.id, answer.status, answer.body, answer.headers, now)
        said = NoticeAnswer()
        if answer.body.lstrip().startswith(b"{"):
            try:
                said = _answer.decode(answer.body)
            except msgspec.MsgspecError:  # taken all the same: 2xx is what counts
                said = NoticeAnswer()
        return Published(str(said.id), said.url)
