"""The API's dead letters: a wave's, page by page, and their replay onto the same wave
(:mod:`dispatcher.engine.deadletters`: what a replay does, by the wave's state).

``GET /v1/waves/{id}/dead-letters`` (viewers, as for reading waves) and
``POST /v1/waves/{id}/dead-letters/replay`` (operators; audited). Registered by
:func:`dispatcher.service.api.app.create_app` with :data:`ROUTES` and :data:`SCHEMA_TYPES`.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody, QueryParameter

from dispatcher.domain.model import Channel
from dispatcher.engine import deadletters
from dispatcher.engine.deadletters import Replay
from dispatcher.service.api.context import (
    AUTH,
    BEARER,
    OPERATOR,
    VIEWER,
    audited_call,
    errors,
    optional_body,
    services_of,
)
from dispatcher.service.api.schemas import ActionBody

LIMIT_MAX = 1000
CURSOR = r"^([^:]+:[0-9]{1,12})?$"  # a route and a recipient id (dispatcher.store.deadletters)


class DeadLetterView(msgspec.Struct, frozen=True):
    """A message given up on: its recipient (id and address), where it was sent, how many
    times it was tried, and why it was given up (``expired``: its retries ran out, else the
    channel refused it for good)."""

    id: int
    addr: str
    channel: Channel
    route: str
    attempts: int
    reason: str
    expired: bool


class DeadLetterList(msgspec.Struct, frozen=True):
    """A page of a wave's dead letters not replayed (by route, then recipient id); ``total``
    is how many there are in all, ``next_cursor`` the ``cursor`` of the next page (empty: this
    is the last)."""

    wave: str
    total: int
    letters: list[DeadLetterView]
    next_cursor: str


@get("/v1/waves/{wave_id:str}/dead-letters", guards=VIEWER, tags=["dead letters"],
     summary="A page of the wave's dead letters not replayed: recipient, address, attempts and "
             "reason (`cursor`: the `next_cursor` of the page before)",
     opt={"query": ["limit", "cursor"]}, security=BEARER, responses=errors(400, *AUTH, 404))
async def list_dead_letters(
        state: State, wave_id: FromPath[str],
        limit: Annotated[int, QueryParameter(ge=1, le=LIMIT_MAX)] = 100,
        cursor: Annotated[str, QueryParameter(max_length=200, pattern=CURSOR)] = "",
        ) -> DeadLetterList:
    page, total = await deadletters.dead_letters(services_of(state).store, wave_id, cursor=cursor,
                                                 limit=limit)
    letters = [DeadLetterView(d.id, d.addr, d.channel, route, d.attempts, d.reason, d.expired)
               for route, d in page.letters]
    return DeadLetterList(wave_id, total, letters, page.cursor)


@post("/v1/waves/{wave_id:str}/dead-letters/replay", guards=OPERATOR, tags=["dead letters"],
      status_code=200,
      summary="Send the wave's dead letters again, on the same wave (never to a recipient it "
              "was sent: those are skipped); a completed wave sends again until they have an "
              "outcome, a cancelled one is refused (409)",
      security=BEARER, responses=errors(400, *AUTH, 404, 409, 413))
async def replay_dead_letters(request: Request[Any, Any, Any], state: State,
                              wave_id: FromPath[str],
                              data: JSONBody[ActionBody | None] = None) -> Replay:
    body = await optional_body(request, ActionBody) or ActionBody()
    store = services_of(state).store
    return await audited_call(
        request, "dead_letters.replay", wave_id, deadletters.replay(store, wave_id),
        {"reason": body.reason},
        after=lambda r: {"requeued": r.requeued, "skipped": r.skipped, "covered": r.covered,
                         "state": r.state, "reopened": r.reopened})


ROUTES = [list_dead_letters, replay_dead_letters]
SCHEMA_TYPES = [DeadLetterList, Replay]
