"""What citizens sent over the API: ``GET /v1/incoming`` (viewers), newest first, page by page.

SMS replies, Zalo messages, follows and unfollows kept for ``[incoming] retention_days``
(:mod:`dispatcher.store.incoming`); ``opt_out`` marks a reply whose first words were an opt-out
keyword and an unfollow. Registered by :func:`dispatcher.service.api.app.create_app` with
:data:`ROUTES` and :data:`SCHEMA_TYPES`.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec
from litestar import get
from litestar.datastructures import State
from litestar.params import QueryParameter

from dispatcher.domain.incoming import Incoming
from dispatcher.domain.model import Channel
from dispatcher.service.api.context import AUTH, BEARER, VIEWER, errors, services_of

LIMIT_MAX = 500
CURSOR = r"^([0-9]{1,15}-[0-9]{1,15})?$"  # a stream id (dispatcher.store.incoming)


class IncomingView(msgspec.Struct, frozen=True):
    """One message or event from a citizen: ``number`` (the sender's number, or the Zalo user
    id), ``kind`` (reply, opt_out, follow, unfollow, unreadable, binary), ``text`` (hex for
    unreadable and binary SMS), ``encoding`` (how an SMS was written), ``keyword`` (the opt-out
    keyword matched), ``opt_out`` (an opt-out keyword or an unfollow), ``part`` (a part of a
    concatenated SMS: ``2/3#7``, the second of three, reference 7)."""

    id: str
    channel: Channel
    number: str
    at: dt.datetime
    kind: str
    text: str
    encoding: str
    keyword: str
    opt_out: bool
    part: str


class IncomingList(msgspec.Struct, frozen=True):
    """A page, newest first; ``next_cursor`` is the ``cursor`` of the next (older) page, empty
    when this is the last. A page filtered by channel may hold fewer than ``limit``."""

    items: list[IncomingView]
    next_cursor: str
    retention_days: float


def view(i: Incoming) -> IncomingView:
    return IncomingView(i.id, i.channel, i.number, i.at, i.kind, i.text, i.encoding, i.keyword,
                        i.opt_out, i.part)


@get("/v1/incoming", guards=VIEWER, tags=["incoming"],
     summary="Messages and events from citizens, newest first: SMS replies, Zalo messages, "
             "follows and unfollows, with the opt-outs marked (`channel`: one channel only; "
             "`cursor`: the `next_cursor` of the page before)",
     opt={"query": ["channel", "limit", "cursor"]}, security=BEARER,
     responses=errors(400, *AUTH))
async def list_incoming(
        state: State, channel: Annotated[Channel | None, QueryParameter()] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=LIMIT_MAX)] = 50,
        cursor: Annotated[str, QueryParameter(max_length=40, pattern=CURSOR)] = "",
        ) -> IncomingList:
    s = services_of(state)
    page = await s.store.incoming.page(channel, cursor, limit)
    return IncomingList([view(i) for i in page.items], page.cursor,
                        s.settings.incoming.retention_days)


ROUTES = [list_incoming]
SCHEMA_TYPES = [IncomingList]
