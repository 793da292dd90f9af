""""Did this citizen get it?" over the API: ``GET /v1/recipients/{number}`` (viewers).

The number as people write it (``0912 345 678``, ``+84912345678``), normalised like an audience
row; the answer is :class:`dispatcher.engine.recipients.RecipientView`. Registered by
:func:`dispatcher.service.api.app.create_app` with :data:`ROUTES` and :data:`SCHEMA_TYPES`.
"""

from __future__ import annotations

from typing import Annotated

from litestar import get
from litestar.datastructures import State
from litestar.params import FromPath, QueryParameter

from dispatcher.domain.errors import InputError, NotFound, NumberError
from dispatcher.engine import recipients
from dispatcher.engine.recipients import RecipientView
from dispatcher.service.api.context import AUTH, BEARER, VIEWER, errors, services_of


@get("/v1/recipients/{number:str}", guards=VIEWER, tags=["recipients"],
     summary="Did this citizen get it? The number's audience row and, for each wave that "
             "targeted it in the last `days`, the wave, its campaign, the text and the outcome "
             "(delivered, sent, failed with the reason, expired, pending, not_sent, cancelled; "
             "`fallback`: its SMS fallback's)",
     opt={"query": ["days"]}, security=BEARER, responses=errors(400, *AUTH, 404))
async def recipient(state: State, number: FromPath[str],
                    days: Annotated[int, QueryParameter(ge=1, le=recipients.MAX_DAYS)] =
                    recipients.DEFAULT_DAYS) -> RecipientView:
    s = services_of(state)
    try:
        msisdn, _carrier = s.numbering.normalize(number)
    except NumberError as exc:
        raise InputError(exc.reason, field="number") from exc
    view = await recipients.look_up(s.store, msisdn, days=days, now=s.clock())
    if view is None:
        raise NotFound(f"number {msisdn} is in no audience")
    return view


ROUTES = [recipient]
SCHEMA_TYPES = [RecipientView]
