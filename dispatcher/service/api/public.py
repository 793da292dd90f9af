"""The public routes: no token, cacheable, small. The CAP 1.2 feed of the public alerts
(``GET /public/cap/feed.xml``, Atom), each message (``GET /public/cap/{identifier}.xml``) and
the public notice (``GET /public/notice``: HTML; ``GET /public/notice.json``: the same as
JSON), for aggregators, other systems and Wi-Fi splash pages.

Every answer carries ``Cache-Control: public, max-age=<[cap] cache_seconds>``, an ``ETag`` (a
hash of the body) and ``Last-Modified``; a request whose ``If-None-Match`` names the ETag (or,
without it, whose ``If-Modified-Since`` is not older) is answered 304 with no body. Anyone may
read them from another origin (``Access-Control-Allow-Origin: *``); the page may be framed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

import msgspec
from litestar import Request, Response, get
from litestar.datastructures import State
from litestar.openapi import ResponseSpec
from litestar.params import FromPath

from dispatcher.domain import cap, capfeed, notice
from dispatcher.domain.cap import CapSettings
from dispatcher.domain.errors import NotFound
from dispatcher.service.api.context import Services, errors, services_of

#: The page's own rules: its inline style, nothing else (no script, no outside asset).
PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
NOT_MODIFIED = {304: ResponseSpec(None, description="the ETag (If-None-Match) or the time "
                                                    "(If-Modified-Since) has not changed")}


def _base_url(request: Request[Any, Any, Any], settings: CapSettings) -> str:
    """Where the public routes are reached: ``[cap] base_url``, else this request's origin."""
    return settings.base_url or str(request.base_url).rstrip("/")


def _unchanged(request: Request[Any, Any, Any], etag: str, modified: dt.datetime) -> bool:
    match = request.headers.get("if-none-match")
    if match is not None:
        tags = {t.strip().removeprefix("W/") for t in match.split(",")}
        return "*" in tags or etag in tags
    since = request.headers.get("if-modified-since")
    if since:
        try:
            when = parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False  # not a date: answered in full
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        return modified.replace(microsecond=0) <= when
    return False


def cacheable(request: Request[Any, Any, Any], body: bytes, media_type: str,
              modified: dt.datetime, max_age: int,
              extra: dict[str, str] | None = None) -> Response[bytes]:
    """``body`` with the caching headers, or 304 when the client's copy is current."""
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"Cache-Control": f"public, max-age={max_age}", "ETag": etag,
               "Last-Modified": format_datetime(modified.astimezone(dt.UTC), usegmt=True),
               "Access-Control-Allow-Origin": "*", "X-Content-Type-Options": "nosniff",
               **(extra or {})}
    if _unchanged(request, etag, modified):
        return Response(b"", status_code=304, headers=headers, media_type=media_type)
    return Response(body, headers=headers, media_type=media_type)


def _published(s: Services) -> CapSettings:
    if not s.settings.cap.enabled:
        raise NotFound("no public alert is published here: [cap] sender is not set")
    return s.settings.cap


@get("/public/cap/feed.xml", tags=["public"], media_type=capfeed.MEDIA,
     summary="The public alerts as an Atom feed of CAP 1.2 messages, newest first (no token)",
     responses={**NOT_MODIFIED, **errors(404)})
async def cap_feed(request: Request[Any, Any, Any], state: State) -> Response[bytes]:
    s = services_of(state)
    settings = _published(s)
    published = await s.store.cap.latest(settings.feed_entries)
    body = capfeed.feed(published, settings, base_url=_base_url(request, settings),
                        province=s.province.name)
    return cacheable(request, body, capfeed.MEDIA, capfeed.updated(published),
                     settings.cache_seconds)


@get("/public/cap/{name:str}", tags=["public"], media_type=cap.MEDIA_TYPE,
     summary="One CAP 1.2 message of the feed, by its identifier: `/public/cap/<identifier>.xml`"
             " (no token)", responses={**NOT_MODIFIED, **errors(400, 404)})
async def cap_message(request: Request[Any, Any, Any], state: State,
                      name: FromPath[str]) -> Response[bytes]:
    s = services_of(state)
    settings = _published(s)
    identifier = name.removesuffix(".xml")
    found = await s.store.cap.get(identifier) if name.endswith(".xml") else None
    if found is None:
        raise NotFound(f"no CAP message {identifier}")
    return cacheable(request, cap.to_xml(found.alert), cap.MEDIA_TYPE, found.alert.sent,
                     settings.cache_seconds)


async def _notice(s: Services) -> notice.Notice:
    level = await s.store.level.get()
    published = await s.store.cap.latest(notice.MESSAGES) if s.settings.cap.enabled else []
    current = await s.store.situation.get()
    hotline = current.situation.hotline if current else s.plan.hotline
    return notice.notice(s.plan, s.province.name, level, published, hotline, s.clock())


@get("/public/notice", tags=["public"], media_type="text/html",
     summary="The public notice as a small page in Vietnamese: the level in force and what it "
             "means, the latest public message, the hotline (no token; JSON: "
             "/public/notice.json)", responses=NOT_MODIFIED)
async def public_notice(request: Request[Any, Any, Any], state: State) -> Response[bytes]:
    s = services_of(state)
    found = await _notice(s)
    return cacheable(request, notice.page(found).encode(), "text/html",  # Litestar adds the charset
                     found.updated, s.settings.cap.cache_seconds,
                     {"Content-Security-Policy": PAGE_CSP, "Referrer-Policy": "no-referrer"})


@get("/public/notice.json", tags=["public"], media_type="application/json",
     summary="The public notice as JSON (no token)",
     responses={200: ResponseSpec(notice.Notice, description="the public notice",
                                  generate_examples=False), **NOT_MODIFIED})
async def public_notice_json(request: Request[Any, Any, Any], state: State) -> Response[bytes]:
    s = services_of(state)
    found = await _notice(s)
    return cacheable(request, msgspec.json.encode(found), "application/json", found.updated,
                     s.settings.cap.cache_seconds)


ROUTES = [cap_feed, cap_message, public_notice, public_notice_json]
SCHEMA_TYPES = [notice.Notice, notice.NoticeMessage]
