"""The Zalo delivery webhook of the API: ``POST /zalo/webhook``.

Each request is checked by :class:`adapters.zalo.webhook.WebhookVerifier` (signature, and the
timestamp of every event: at most ``zalo_max_age_seconds`` old, so that Zalo's tries of the
next hour are taken); the events' ids are de-duplicated in the store, in batches of requests
with one command each (:mod:`dispatcher.service.api.webhook_intake`, :mod:`dispatcher.store.seen`:
shared by every process on the same Redis, for longer than the age window), so Zalo's retries
and replays reach ``on_zalo_events`` once whichever process they hit. The answer comes within
``zalo_webhook_wait_seconds`` whatever the store does (see the intake).

A rejected request is answered 401 (400 for a body that is not an event) and counted
(``loa_webhook_rejected_total{status}``); it is logged at most once per
:data:`LOG_EVERY_SECONDS`, with the number rejected since the last line, so that anyone able
to reach the port cannot flood the logs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from litestar import Request, Response, post
from litestar.datastructures import State
from litestar.openapi import ResponseSpec
from prometheus_client import Counter

from adapters.zalo.webhook import WebhookRejected, WebhookVerifier
from dispatcher.domain.errors import NotFound
from dispatcher.service.api.problems import INTERNAL, MEDIA_TYPE, Problem, problem
from dispatcher.service.api.schemas import WebhookAck
from dispatcher.service.api.webhook_intake import NOT_PROCESSED, OnZaloEvents, WebhookIntake

log = logging.getLogger(__name__)

PATH = "/zalo/webhook"
LOG_EVERY_SECONDS = 60.0

REJECTED = Counter("loa_webhook_rejected", "Delivery webhook requests refused, by HTTP status",
                   ["status"])

__all__ = ["LOG_EVERY_SECONDS", "PATH", "LogLimiter", "OnZaloEvents", "ZaloWebhook",
           "zalo_webhook"]


class LogLimiter:
    """Lets one line through per ``every`` seconds; counts the ones held back meanwhile."""

    def __init__(self, every: float, clock: Callable[[], float]) -> None:
        self.every = every
        self.clock = clock
        self.held = 0
        self._last: float | None = None

    def allow(self) -> int | None:
        """The number of lines held back since the last one let through, if this one may go
        out now; None if it is to be held back."""
        now = self.clock()
        if self._last is not None and now - self._last < self.every:
            self.held += 1
            return None
        self._last = now
        held, self.held = self.held, 0
        return held


class ZaloWebhook:
    """What the webhook route uses, kept on ``app.state.webhook``."""

    def __init__(self, verifier: WebhookVerifier | None, intake: WebhookIntake,
                 clock: Callable[[], float]) -> None:
        self.verifier = verifier
        self.intake = intake
        self.clock = clock
        self.log_limit = LogLimiter(LOG_EVERY_SECONDS, clock)

    def rejected(self, exc: WebhookRejected) -> None:
        REJECTED.labels(str(exc.status)).inc()
        held = self.log_limit.allow()
        if held is not None:
            more = f" ({held} more rejected since the last line)" if held else ""
            log.warning("Zalo webhook rejected (%s): %s%s", exc.status, exc, more)


def _webhook(state: State) -> ZaloWebhook:
    hook: ZaloWebhook = state.webhook
    return hook


ANSWERS = {
    400: "the body is not a Zalo event",
    401: "no signature, a wrong one, a timestamp that is not a time or is too old or too new "
         "(any event of the body), an event of another app",
    404: "the Zalo webhook is not configured",
    413: "the body is larger than request_max_body_size",
    500: "not processed; Zalo sends the events again",
    503: "zalo_webhook_queue events already wait for the store; Zalo sends these again",
}


@post(PATH, tags=["webhooks"], status_code=200,
      summary="Zalo events (signed with X-ZEvent-Signature): deliveries, and users' messages, "
              "follows and unfollows",
      responses={code: ResponseSpec(Problem, description=text, generate_examples=False,
                                    media_type=MEDIA_TYPE)
                 for code, text in ANSWERS.items()})
async def zalo_webhook(request: Request[Any, Any, Any], state: State) -> Response[Any]:
    hook = _webhook(state)
    if hook.verifier is None:
        raise NotFound("the Zalo webhook is not configured ([api] zalo_app_id and "
                       "zalo_oa_secret_env)")
    body = await request.body()
    try:
        events = hook.verifier.parse_all(body, request.headers)
    except WebhookRejected as exc:
        hook.rejected(exc)
        raise
    fresh, queued = await hook.intake.take(events)
    if fresh == NOT_PROCESSED:
        return Response(problem(INTERNAL, "not processed", PATH), status_code=500,
                        media_type=MEDIA_TYPE)
    return Response(WebhookAck("ok", fresh, queued), status_code=200)
