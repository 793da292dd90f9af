"""The carriers' cell broadcasts over the API: ``GET /v1/cell-broadcasts`` (viewers), newest
first, optionally of one wave; ``POST /v1/cell-broadcasts/{wave}/cancel`` (operators, audited)
withdraws a completed wave's live broadcasts with a CAP Cancel.

Each is one carrier's broadcast of one wave's CAP alert, as the broadcast tracker records it
(:mod:`dispatcher.engine.broadcasts`): the CBC's acknowledgement and reference, its state as the
CBC last said it, and its Cancel. A wave still being sent is stopped by cancelling its campaign
(its broadcasts are then cancelled too); a wave that completed (every carrier took it) has no
campaign left to cancel, and its broadcasts go on until they expire: withdrawing it is this
route. Registered by :func:`dispatcher.service.api.app.create_app` with :data:`ROUTES` and
:data:`SCHEMA_TYPES`.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Annotated, Any

import msgspec
from litestar import Request, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody, QueryParameter

from dispatcher.domain.broadcast import Broadcast, Reason
from dispatcher.domain.broadcast import Request as Withdraw
from dispatcher.domain.errors import NotFound, StateError
from dispatcher.domain.model import Channel, WaveState
from dispatcher.engine.broadcasts import shown_state
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
from dispatcher.store.base import Store

LIMIT_MAX = 500
WAVE = r"^[A-Za-z0-9_.:-]{0,200}$"


class CancelView(msgspec.Struct, frozen=True):
    """A broadcast's CAP Cancel, as the CBC took it: when, why (``wave_cancelled``,
    ``emergency_stop``), the state after (``cancelled``, or ``absent``: the CBC had nothing to
    withdraw) and the CBC's words."""

    at: dt.datetime
    reason: Reason
    state: str
    detail: str


class BroadcastView(msgspec.Struct, frozen=True):
    """One carrier's broadcast of a wave: ``identifier`` is the CAP alert's, ``reference`` the
    CBC's own; ``status`` as the CBC last said it (``expired`` once its expiry passed;
    ``cancelled`` or ``absent`` after its Cancel), ``status_at`` when it said so, ``reads`` how
    many times it was asked; ``unconfirmed``: the CBC's acceptance was never heard (its wave was
    cancelled meanwhile: the Cancel went all the same)."""

    wave: str
    carrier: str
    identifier: str
    reference: str
    status: str
    status_at: dt.datetime | None
    detail: str
    recorded_at: dt.datetime
    expires: dt.datetime | None
    reads: int
    unconfirmed: bool
    cancel: CancelView | None


class WithdrawalView(msgspec.Struct, frozen=True):
    """An operator's request to withdraw a wave's broadcasts: when, who, why."""

    at: dt.datetime
    by: str
    reason: str


class BroadcastList(msgspec.Struct, frozen=True):
    """Broadcasts, newest first; ``withdrawal``: an operator's request to withdraw the wave's
    (when one wave's are listed and it has one)."""

    items: list[BroadcastView]
    withdrawal: WithdrawalView | None = None


class BroadcastCancel(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Why the wave's broadcasts are withdrawn (kept in the audit log)."""

    reason: RequiredReason


def _at(seconds: float) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(seconds, dt.UTC) if seconds else None


def view(b: Broadcast, now: float) -> BroadcastView:
    w = b.withdrawal
    cancel = None if w is None else CancelView(
        dt.datetime.fromtimestamp(w.at, dt.UTC), w.reason, w.state.value, w.detail)
    return BroadcastView(
        wave=b.wave, carrier=b.carrier, identifier=b.identifier, reference=b.reference,
        status=shown_state(b, now), status_at=_at(b.state_at), detail=b.detail,
        recorded_at=dt.datetime.fromtimestamp(b.seen_at, dt.UTC), expires=_at(b.live_until),
        reads=b.reads, unconfirmed=b.unconfirmed, cancel=cancel)


@get("/v1/cell-broadcasts", guards=VIEWER, tags=["cell broadcast"],
     summary="The carriers' cell broadcasts, newest first: each carrier's acknowledgement of a "
             "wave's CAP alert, its state as the broadcast centre last said it, and its Cancel "
             "(`wave`: one wave's only)",
     opt={"query": ["wave", "limit"]}, security=BEARER, responses=errors(400, *AUTH))
async def list_broadcasts(
        state: State, wave: Annotated[str, QueryParameter(max_length=200, pattern=WAVE)] = "",
        limit: Annotated[int, QueryParameter(ge=1, le=LIMIT_MAX)] = 100,
        ) -> BroadcastList:
    return await _listed(services_of(state).store, wave, limit)


async def _listed(store: Store, wave: str, limit: int = 100) -> BroadcastList:
    now = time.time()
    items = [view(b, now) for b in await store.broadcasts.latest(limit, wave)]
    request = (await store.broadcasts.requests()).get(wave) if wave else None
    return BroadcastList(items, None if request is None else WithdrawalView(
        dt.datetime.fromtimestamp(request.at, dt.UTC), request.by, request.reason))


@post("/v1/cell-broadcasts/{wave:str}/cancel", guards=OPERATOR, tags=["cell broadcast"],
      status_code=202,
      summary="Withdraw a completed cell broadcast wave: each carrier's centre still "
              "broadcasting it gets a CAP Cancel within a second or two (audited; a wave still "
              "being sent: cancel its campaign)",
      security=BEARER, responses=errors(400, *AUTH, 404, 409, 413))
async def cancel_broadcasts(request: Request[Any, Any, Any], state: State, wave: FromPath[str],
                            data: JSONBody[BroadcastCancel]) -> BroadcastList:
    s = services_of(state)
    data = await strict_body(request, BroadcastCancel)
    found = await s.store.waves.get(wave)
    if found is None or found.channel is not Channel.CELL_BROADCAST:
        raise NotFound(f"no cell broadcast wave {wave[:200]!r}")
    current = (await s.store.waves.states([wave])).get(wave)
    if current is not WaveState.COMPLETED:
        raise StateError(f"wave {wave} is {current}: cancel its campaign ({found.campaign_id}), "
                         "which cancels its broadcasts too")
    asked = Withdraw(at=s.clock().timestamp(), by=caller(request).name,
                     reason=data.reason.strip())
    await audited_call(request, "cell_broadcast.cancel", wave,
                       s.store.broadcasts.request(wave, asked), {"reason": asked.reason})
    return await _listed(s.store, wave)


ROUTES = [list_broadcasts, cancel_broadcasts]
SCHEMA_TYPES = [BroadcastList, BroadcastCancel]
