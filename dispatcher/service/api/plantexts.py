"""The plan's texts edited without a restart, over HTTP (:mod:`dispatcher.engine.textedits`):
``GET /v1/plan/texts`` (viewers: the versions in pages, newest first, by level, channel and
state),
``POST /v1/plan/texts`` (operators propose), ``POST /v1/plan/texts/{id}/approve`` (approvers,
not the proposer) and ``POST /v1/plan/texts/{id}/reject`` (approvers). Audited. Registered by
:func:`dispatcher.service.api.app.create_app` with :data:`ROUTES` and :data:`SCHEMA_TYPES`.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody, QueryParameter

from dispatcher.domain.model import Channel
from dispatcher.domain.textedits import (
    PAGE_LIMIT,
    PAGE_LIMIT_MAX,
    REASON_MAX,
    VERSION_ID,
    TextState,
    TextVersion,
)
from dispatcher.engine import textedits
from dispatcher.service.api.context import (
    APPROVER,
    AUTH,
    BEARER,
    OPERATOR,
    VIEWER,
    audited_call,
    caller,
    errors,
    optional_body,
    services_of,
    strict_body,
)
from dispatcher.service.api.schemas import ActionBody

CURSOR = f"^({VERSION_ID})?$"  # the id of the last version of the page before


class TextProposal(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A new text for a level's channel; ``subject``: e-mail only (empty: the one in force)."""

    level: int
    channel: Channel
    text: str
    subject: str = ""
    reason: Annotated[str, msgspec.Meta(max_length=REASON_MAX)] = ""


class TextVersionList(msgspec.Struct, frozen=True):
    """A page of the plan's texts' versions, newest first; ``next_cursor`` is the ``cursor``
    of the next page (empty: this is the last)."""

    versions: list[TextVersion]
    next_cursor: str


@get("/v1/plan/texts", guards=VIEWER, tags=["level"],
     summary="A page of the versions of the plan's texts, newest first (`level`, `channel`, "
             "`state`: only those; `cursor`: the `next_cursor` of the page before): who "
             "proposed each and when, who approved or rejected it and why, its diff against "
             "the text it replaces",
     opt={"query": ["level", "channel", "state", "limit", "cursor"]}, security=BEARER,
     responses=errors(400, *AUTH))
async def list_texts(
        state: State,
        level: Annotated[int | None, QueryParameter(ge=1, le=99)] = None,
        channel: Annotated[Channel | None, QueryParameter()] = None,
        text_state: Annotated[TextState | None, QueryParameter(name="state")] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=PAGE_LIMIT_MAX)] = PAGE_LIMIT,
        cursor: Annotated[str, QueryParameter(max_length=40, pattern=CURSOR)] = "",
        ) -> TextVersionList:
    page = await services_of(state).store.plan_texts.versions(level, channel, text_state,
                                                            cursor=cursor, limit=limit)
    return TextVersionList(page.versions, page.cursor)


@post("/v1/plan/texts", guards=OPERATOR, tags=["level"], status_code=201,
      summary="Propose a text for a level's channel, checked as the plan file's are; it is in "
              "force from the next wave once another user approves it",
      security=BEARER, responses=errors(400, *AUTH, 413))
async def propose_text(request: Request[Any, Any, Any], state: State,
                       data: JSONBody[TextProposal]) -> TextVersion:
    s = services_of(state)
    data = await strict_body(request, TextProposal)
    work = textedits.propose(s.store, s.plan, level=data.level, channel=data.channel,
                             text=data.text, subject=data.subject, reason=data.reason,
                             by=caller(request).name, now=s.clock(), province=s.province)
    return await audited_call(request, "plan_text.propose", f"L{data.level}-{data.channel}", work,
                          {"level": data.level, "channel": data.channel, "text": data.text,
                           "subject": data.subject, "reason": data.reason},
                          after=lambda v: {"id": v.id, "diff": v.diff})


@post("/v1/plan/texts/{version_id:str}/approve", guards=APPROVER, tags=["level"],
      status_code=200,
      summary="Approve a proposed text (by another user than its proposer): in force from the "
              "next wave made, over the plan file's", security=BEARER,
      responses=errors(400, *AUTH, 404, 409, 413))
async def approve_text(request: Request[Any, Any, Any], state: State,
                       version_id: FromPath[str],
                       data: JSONBody[ActionBody | None] = None) -> TextVersion:
    return await _decide(request, state, version_id, TextState.APPROVED)


@post("/v1/plan/texts/{version_id:str}/reject", guards=APPROVER, tags=["level"],
      status_code=200, summary="Reject a proposed text (kept, never in force)",
      security=BEARER, responses=errors(400, *AUTH, 404, 409, 413))
async def reject_text(request: Request[Any, Any, Any], state: State,
                      version_id: FromPath[str],
                      data: JSONBody[ActionBody | None] = None) -> TextVersion:
    return await _decide(request, state, version_id, TextState.REJECTED)


async def _decide(request: Request[Any, Any, Any], state: State, version_id: str,
                  decision: TextState) -> TextVersion:
    s = services_of(state)
    body = await optional_body(request, ActionBody) or ActionBody()
    by, now = caller(request).name, s.clock()
    if decision is TextState.APPROVED:
        work = textedits.approve(s.store, s.plan, version_id, by=by, now=now, reason=body.reason,
                                 province=s.province)
        action = "plan_text.approve"
    else:
        work = textedits.reject(s.store, version_id, by=by, now=now, reason=body.reason)
        action = "plan_text.reject"
    return await audited_call(request, action, version_id, work, {"reason": body.reason},
                          after=lambda v: {"level": v.level, "channel": v.channel,
                                           "proposed_by": v.proposed_by, "diff": v.diff})


ROUTES = [list_texts, propose_text, approve_text, reject_text]
SCHEMA_TYPES = [TextProposal, TextVersion, TextVersionList, TextState]
