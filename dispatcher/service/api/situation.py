"""The situation record over HTTP: ``GET /v1/situation``, ``GET /v1/situation/history`` and
``PUT /v1/situation`` (operators; audited). A record is refused, in one line naming the field,
when it is wrong (:func:`dispatcher.domain.situation.check`) or when a text of the plan could not
be sent with it (:func:`dispatcher.domain.plantemplate.check`)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, get, put
from litestar.datastructures import State
from litestar.params import JSONBody, QueryParameter

from dispatcher.domain.errors import NotFound
from dispatcher.domain.situation import HISTORY_KEPT, Situation, SituationVersion
from dispatcher.engine.situation import set_situation
from dispatcher.service.api.context import (
    AUTH,
    BEARER,
    OPERATOR,
    VIEWER,
    audited_call,
    caller,
    errors,
    services_of,
    strict_body,
)


@get("/v1/situation", guards=VIEWER, tags=["situation"],
     summary="The situation record in force (cases, areas, hotline, date, free fields), who "
             "set it and when", security=BEARER, responses=errors(400, *AUTH, 404))
async def get_situation(state: State) -> SituationVersion:
    current = await services_of(state).store.situation.get()
    if current is None:
        raise NotFound("no situation has been set yet: PUT /v1/situation")
    return current


@get("/v1/situation/history", guards=VIEWER, tags=["situation"],
     summary=f"The versions of the record, newest first (the last {HISTORY_KEPT} are kept)",
     opt={"query": ["limit"]}, security=BEARER, responses=errors(400, *AUTH))
async def situation_history(
        state: State, limit: Annotated[int, QueryParameter(ge=1, le=HISTORY_KEPT)] = 100,
        ) -> list[SituationVersion]:
    return await services_of(state).store.situation.history(limit)


@put("/v1/situation", guards=OPERATOR, tags=["situation"], status_code=200,
     summary="Set the situation record: the texts of the waves made from now on name its "
             "fields", security=BEARER, responses=errors(400, *AUTH, 413))
async def put_situation(request: Request[Any, Any, Any], state: State,
                        data: JSONBody[Situation]) -> SituationVersion:
    s = services_of(state)
    data = await strict_body(request, Situation)
    before = await s.store.situation.get()

    detail: dict[str, Any] = {**msgspec.to_builtins(data),
                              "before": None if before is None else _brief(before)}
    work = set_situation(s.store, data, province=s.province, plan=s.plan,
                         by=caller(request).name, now=s.clock())
    return await audited_call(request, "situation.set", "situation", work, detail,
                          after=lambda v: {"after": _brief(v)})


def _brief(version: SituationVersion) -> dict[str, Any]:
    record = version.situation
    return {"cases_today": record.cases_today, "cases_total": record.cases_total,
            "date": record.date.isoformat(), "at": version.at.isoformat(), "by": version.by}


ROUTES = [get_situation, situation_history, put_situation]
SCHEMA_TYPES = [Situation, SituationVersion]
