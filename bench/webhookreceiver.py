"""A Zalo webhook receiver on aiohttp, for the demo and the tests: 200 at once for a good
request (even with no delivery event in it), 401 for a missing, wrong or stale signature, 400 for
a body that is not an event; each delivery goes to ``on_events`` once (:class:`Deduper`).

The service's own intake is :mod:`dispatcher.service.api.webhook_intake`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from adapters.zalo.webhook import Deduper, DeliveryEvent, WebhookRejected, WebhookVerifier

log = logging.getLogger(__name__)

OnEvents = Callable[[list[DeliveryEvent]], None]


def make_handler(verifier: WebhookVerifier, on_events: OnEvents, *,
                 deduper: Deduper | None = None,
                 ) -> Callable[[web.Request], Awaitable[web.Response]]:
    """An aiohttp handler for Zalo's webhook POSTs: events go to ``on_events`` once each.

    ``on_events`` is called before the answer and must be quick (hand the events over, do not
    process them there); if it raises, the answer is 500 and Zalo's retry is not deduplicated.
    """
    dedup = deduper if deduper is not None else Deduper(
        ttl=max(3600.0, verifier.max_age + verifier.max_ahead))

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            events = verifier.parse(body, request.headers)
        except WebhookRejected as exc:
            log.warning("Zalo webhook rejected (%s): %s", exc.status, exc)
            return web.Response(status=exc.status, text=str(exc))
        fresh = [e for e in events if dedup.first(e.msg_id or e.tracking_id)]
        if fresh:
            try:
                on_events(fresh)
            except Exception:
                log.exception("Zalo webhook: on_events failed")
                dedup.forget([e.msg_id or e.tracking_id for e in fresh])
                return web.Response(status=500, text="not processed")
        return web.Response(status=200, text="ok")

    return handle


def make_app(verifier: WebhookVerifier, on_events: OnEvents, path: str = "/zalo/webhook",
             *, deduper: Deduper | None = None) -> web.Application:
    """An aiohttp application serving the webhook at ``path``."""
    app = web.Application()
    app.router.add_post(path, make_handler(verifier, on_events, deduper=deduper))
    return app
