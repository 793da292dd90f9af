"""The Graph API's wire shapes for page posts: what the adapter sends and what it reads back.

* ``POST /{version}/{page-id}/feed`` (form fields ``message``, ``access_token``: the page's
  token) answers ``{"id": "<page-id>_<post-id>"}``;
* ``GET /{version}/{page-id}/feed?fields=id,message,created_time&since=<unix time>&limit=N``
  (``access_token`` in the query) answers ``{"data": [{"id", "message", "created_time"}, ...],
  "paging": {...}}``, newest first;
* an error is ``{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}``.
"""

from __future__ import annotations

import re

import msgspec

FEED = "/{version}/{page_id}/feed"
FIELDS = "id,message,created_time"
FEED_LIMIT = 100  # posts read by the look for a wave's post (those since the wave was made)
VERSION = re.compile(r"^v\d+\.\d+$")
PAGE_ID = re.compile(r"^\d{1,32}$")


class GraphError(msgspec.Struct, frozen=True):
    message: str = ""
    type: str = ""
    code: int = 0
    error_subcode: int | None = None
    fbtrace_id: str = ""


class ErrorAnswer(msgspec.Struct, frozen=True):
    error: GraphError


class Posted(msgspec.Struct, frozen=True):
    id: str


class Post(msgspec.Struct, frozen=True):
    id: str
    message: str = ""
    created_time: str = ""


class Feed(msgspec.Struct, frozen=True):
    data: list[Post] = []


_error = msgspec.json.Decoder(ErrorAnswer)
_posted = msgspec.json.Decoder(Posted)
_feed = msgspec.json.Decoder(Feed)


def error_of(body: bytes) -> GraphError | None:
    """The error an answer carries; None when it carries none (or is not the Graph API's)."""
    try:
        return _error.decode(body).error
    except msgspec.DecodeError:
        return None


def posted(body: bytes) -> str | None:
    """The id of the post an answer of ``POST /feed`` created; None when it names none."""
    try:
        found = _posted.decode(body).id
    except msgspec.DecodeError:
        return None
    return found or None


def feed(body: bytes) -> list[Post] | None:
    """The posts of an answer of ``GET /feed``; None when it is not one."""
    try:
        return _feed.decode(body).data
    except msgspec.DecodeError:
        return None


def same_text(a: str, b: str) -> bool:
    """Whether two messages are the same post's (Facebook may trim and fold whitespace)."""
    return a.split() == b.split()


def reason(error: GraphError, name: str) -> str:
    """The words of a dead letter or a log line: the code, Loa's name of it, Facebook's."""
    sub = f"/{error.error_subcode}" if error.error_subcode else ""
    said = f": {error.message[:200]}" if error.message else ""
    return f"facebook {error.code}{sub} ({name}){said}"
