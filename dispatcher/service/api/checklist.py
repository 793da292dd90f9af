"""The checklist over the API: a day's work for people at the level in force, and marking an
item done with a note.

``GET /v1/checklist?date=YYYY-MM-DD`` (viewers; default today in the plan's time zone),
``POST /v1/checklist/{item}/done`` and ``DELETE /v1/checklist/{item}/done`` (operators, audited
as ``checklist.done`` and ``checklist.undo``). What an item is and when it is due:
:mod:`dispatcher.domain.checklist`. Registered by :func:`dispatcher.service.api.app.create_app`
with :data:`ROUTES` and :data:`SCHEMA_TYPES`.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import msgspec
from litestar import Request, delete, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody, QueryParameter
from msgspec import Meta

from dispatcher.domain.checklist import NOTE_MAX, UNIT_MAX, Checklist, Done, Item
from dispatcher.domain.errors import InputError
from dispatcher.engine import checklist
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
from dispatcher.service.api.schemas import RequiredReason

Day = Annotated[str, Meta(max_length=10, examples=["2021-07-26"])]


class DoneBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """What was done (the note), for which unit (default: the item's lead) and which day
    (default: today)."""

    note: Annotated[str, Meta(min_length=1, max_length=NOTE_MAX)]
    unit: Annotated[str, Meta(max_length=UNIT_MAX)] = ""
    date: Day = ""


class UndoBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Why a mark is taken back, and of which day (default: today)."""

    reason: RequiredReason
    date: Day = ""


def _day(text: str | None, today: dt.date) -> dt.date:
    """The day ``text`` names (YYYY-MM-DD), or ``today`` when it names none."""
    if not text:
        return today
    if len(text) == 10:
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            pass
    raise InputError(f"{text!r} is not a date (YYYY-MM-DD)", field="date")


@get("/v1/checklist", guards=VIEWER, tags=["checklist"],
     summary="A day's checklist: the plan's work for people at the level in force that day, "
             "each item due or not by its cadence, and the marks done",
     opt={"query": ["date"]}, security=BEARER, responses=errors(400, *AUTH))
async def get_checklist(state: State,
                        date: Annotated[str | None, QueryParameter()] = None) -> Checklist:
    s = services_of(state)
    now = s.clock()
    day = _day(date, checklist.today(s.plan, now))
    return await checklist.day_checklist(s.store, s.plan, day, now)


@post("/v1/checklist/{item:str}/done", guards=OPERATOR, tags=["checklist"], status_code=201,
      summary="Mark an item of a day's checklist done, with a note (audited); 409 when it is "
              "not on that day's checklist or is marked already",
      security=BEARER, responses=errors(400, *AUTH, 404, 409, 413))
async def mark_done(request: Request[Any, Any, Any], state: State, item: FromPath[str],
                    data: JSONBody[DoneBody]) -> Done:
    s = services_of(state)
    data = await strict_body(request, DoneBody)
    now = s.clock()
    day = _day(data.date, checklist.today(s.plan, now))
    work = checklist.mark_done(s.store, s.plan, item, day=day, by=caller(request).name,
                               unit=data.unit, note=data.note, now=now)
    return await audited_call(request, "checklist.done", item, work,
                              {"date": day.isoformat(), "unit": data.unit, "note": data.note},
                              after=lambda d: {"unit": d.unit})


@delete("/v1/checklist/{item:str}/done", guards=OPERATOR, tags=["checklist"], status_code=200,
        summary="Take back an item's mark of a day, with the reason (audited); 404 if it is "
                "not marked", security=BEARER, responses=errors(400, *AUTH, 404, 413))
async def undo_done(request: Request[Any, Any, Any], state: State, item: FromPath[str],
                    data: JSONBody[UndoBody]) -> Done:
    s = services_of(state)
    data = await strict_body(request, UndoBody)
    now = s.clock()
    day = _day(data.date, checklist.today(s.plan, now))
    work = checklist.undo(s.store, s.plan, item, day=day, now=now)
    return await audited_call(request, "checklist.undo", item, work,
                              {"date": day.isoformat(), "reason": data.reason.strip()},
                              after=lambda d: {"was": {"by": d.by, "unit": d.unit,
                                                       "note": d.note, "at": d.at}})


ROUTES = [get_checklist, mark_done, undo_done]
SCHEMA_TYPES = [Checklist, Item, Done, DoneBody, UndoBody]
