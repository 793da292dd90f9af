"""The suppression lists over the API (operators): a channel's list page by page, all of it as
CSV, an entry added or removed with its reason (audited).

``GET /v1/suppressions?channel=&cursor=&limit=``, ``GET /v1/suppressions.csv?channel=``,
``POST /v1/suppressions`` and
``DELETE /v1/suppressions/{channel}/{number}``. What the lists do:
:mod:`dispatcher.domain.suppression`. Registered by
:func:`dispatcher.service.api.app.create_app` with :data:`ROUTES` and :data:`SCHEMA_TYPES`.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import AsyncIterator
from typing import Annotated, Any

import msgspec
from litestar import Request, delete, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.response import Stream
from msgspec import Meta

from dispatcher.domain.errors import InputError
from dispatcher.domain.model import PERSONAL, Channel
from dispatcher.domain.suppression import Suppression, check_reason, normalise
from dispatcher.engine import suppressions
from dispatcher.service.api.context import (
    AUTH,
    BEARER,
    OPERATOR,
    audited_call,
    caller,
    errors,
    services_of,
    strict_body,
)
from dispatcher.service.api.schemas import RequiredReason
from dispatcher.store.base import Store

LIMIT_MAX = 1000
CSV_PAGE = 1000
CSV_COLUMNS = ("channel", "number", "reason", "at", "source", "by", "wave")


class SuppressionAdd(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A number to put on a channel's list (as people write it: ``0912 345 678``; a Zalo user
    id; an e-mail address), and why."""

    channel: Channel
    number: Annotated[str, Meta(min_length=1, max_length=200)]
    reason: RequiredReason


class SuppressionRemove(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Why a number is taken off a list."""

    reason: RequiredReason


class SuppressionList(msgspec.Struct, frozen=True):
    """A page of a channel's list in the order of the numbers; ``total`` is how many numbers
    the list holds, ``next_cursor`` the ``cursor`` of the next page (empty: this is the last)."""

    channel: Channel
    total: int
    entries: list[Suppression]
    next_cursor: str


def _cell(value: str) -> str:
    """A CSV cell a spreadsheet shows as text (never runs as a formula)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _row(e: Suppression) -> list[str]:
    at = dt.datetime.fromtimestamp(e.at, dt.UTC).isoformat(timespec="seconds")
    return [e.channel.value, e.number, _cell(e.reason), at, e.source, _cell(e.by), e.wave]


async def csv_rows(store: Store, channels: list[Channel]) -> AsyncIterator[bytes]:
    """The lists of ``channels`` as CSV (a header, then a line per entry), a page at a time."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for channel in channels:
        cursor = ""
        while True:
            page = await store.suppressions.page(channel, cursor, CSV_PAGE)
            writer.writerows(_row(e) for e in page.entries)
            yield out.getvalue().encode()
            out.seek(0)
            out.truncate()
            cursor = page.cursor
            if not cursor:
                break
    if out.getvalue():
        yield out.getvalue().encode()


def _csv(store: Store, channel: Channel | None) -> Stream:
    channels = [channel] if channel is not None else list(PERSONAL)
    name = f"suppressions-{channel or 'all'}.csv"
    return Stream(csv_rows(store, channels), media_type="text/csv; charset=utf-8",
                  headers={"Content-Disposition": f'attachment; filename="{name}"'})


@get("/v1/suppressions", guards=OPERATOR, tags=["suppressions"],
     summary="A page of a channel's suppression list: number, reason, date, source (opt_out, "
             "dead_letter, operator); the whole list as CSV: /v1/suppressions.csv",
     opt={"query": ["channel", "cursor", "limit"]}, security=BEARER,
     responses=errors(400, *AUTH))
async def list_suppressions(
        state: State,
        channel: Annotated[Channel | None, QueryParameter()] = None,
        cursor: Annotated[str, QueryParameter(max_length=200)] = "",
        limit: Annotated[int, QueryParameter(ge=1, le=LIMIT_MAX)] = 100,
        ) -> SuppressionList:
    store = services_of(state).store
    if channel is None:
        raise InputError("give the channel: sms, zalo, email or app", field="channel")
    page = await store.suppressions.page(channel, cursor, limit)
    return SuppressionList(channel, await store.suppressions.count(channel), page.entries,
                           page.cursor)


@get("/v1/suppressions.csv", guards=OPERATOR, tags=["suppressions"],
     summary="A channel's suppression list as CSV (every channel's without `channel`)",
     opt={"query": ["channel"]}, security=BEARER, media_type="text/csv",
     responses=errors(400, *AUTH))
async def export_suppressions(
        state: State, channel: Annotated[Channel | None, QueryParameter()] = None) -> Stream:
    return _csv(services_of(state).store, channel)


@post("/v1/suppressions", guards=OPERATOR, tags=["suppressions"], status_code=201,
      summary="Put a number on a channel's suppression list, with the reason (audited)",
      security=BEARER, responses=errors(400, *AUTH, 413))
async def add_suppression(request: Request[Any, Any, Any], state: State,
                          data: JSONBody[SuppressionAdd]) -> Suppression:
    s = services_of(state)
    data = await strict_body(request, SuppressionAdd)
    number = normalise(data.channel, data.number, s.numbering)
    reason = check_reason(data.reason)
    user = caller(request).name
    return await audited_call(
        request, "suppression.add", f"{data.channel}:{number}",
        suppressions.add(s.store, data.channel, number, reason, user,
                         s.clock().timestamp()),
        {"channel": data.channel, "number": number, "reason": reason})


@delete("/v1/suppressions/{channel:str}/{number:str}", guards=OPERATOR, tags=["suppressions"],
        status_code=200,
        summary="Take a number off a channel's suppression list, with the reason (audited); "
                "404 if it is not on it",
        security=BEARER, responses=errors(400, *AUTH, 404, 413))
async def remove_suppression(request: Request[Any, Any, Any], state: State,
                             channel: FromPath[str], number: FromPath[str],
                             data: JSONBody[SuppressionRemove]) -> Suppression:
    s = services_of(state)
    data = await strict_body(request, SuppressionRemove)
    on = _channel(channel)
    normalised = normalise(on, number, s.numbering)
    reason = check_reason(data.reason)
    return await audited_call(
        request, "suppression.remove", f"{on}:{normalised}",
        suppressions.remove(s.store, on, normalised),
        {"channel": on, "number": normalised, "reason": reason},
        after=lambda e: {"was": {"reason": e.reason, "source": e.source, "at": e.at}})


def _channel(raw: str) -> Channel:
    try:
        channel = Channel(raw)
    except ValueError:
        channel = None
    if channel not in PERSONAL:
        raise InputError(f"{raw[:20]!r} is not one of {', '.join(PERSONAL)}",
                         field="channel") from None
    return channel


ROUTES = [list_suppressions, export_suppressions, add_suppression, remove_suppression]
SCHEMA_TYPES = [SuppressionList, SuppressionAdd, SuppressionRemove, Suppression]
