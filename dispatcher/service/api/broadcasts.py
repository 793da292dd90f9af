"""The carriers' cell broadcasts over the API: ``GET /v1/cell-broadcasts`` (viewers), newest
first, optionally of one wave.

Each is one carrier's broadcast of one wave's CAP alert, as the broadcast tracker records it
(:mod:`dispatcher.engine.broadcasts`): the CBC's acknowledgement and reference, its state as the
CBC last said it, and its Cancel. Registered by :func:`dispatcher.service.api.app.create_app`
with :data:`ROUTES` and :data:`SCHEMA_TYPES`.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Annotated

import msgspec
from litestar import get
from litestar.datastructures import State
from litestar.params import QueryParameter

from dispatcher.domain.broadcast import Broadcast, Reason
from dispatcher.engine.broadcasts import shown_state
from dispatcher.service.api.context import AUTH, BEARER, VIEWER, errors, services_of

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


class BroadcastList(msgspec.Struct, frozen=True):
    items: list[BroadcastView]


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
    s = services_of(state)
    now = time.time()
    return BroadcastList([view(b, now) for b in await s.store.broadcasts.latest(limit, wave)])


ROUTES = [list_broadcasts]
SCHEMA_TYPES = [BroadcastList]
