"""The Zalo delivery webhook against Zalo's delivery model: retries of older events accepted once,
the delivery time read from ``message.delivery_time``, and an answer within Zalo's two seconds
whatever the store does."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from adapters.zalo.api import SIGNATURE_HEADER, sign
from adapters.zalo.webhook import DeliveryEvent
from dispatcher.api import ApiConfig, create_app
from dispatcher.msisdn import Numbering
from dispatcher.plan import Plan
from dispatcher.province import Province
from dispatcher.settings import Settings
from dispatcher.store import RedisStore, Store

APP_ID, OA_SECRET = "zalo-app", "oa-secret"
PATH = "/zalo/webhook"


def ms(seconds: float) -> str:
    return str(int(seconds * 1000))


def event(msg_id: str, stamp: str, delivery_time: str | int | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"msg_id": msg_id, "tracking_id": "w1:84912345678"}
    if delivery_time is not None:
        message["delivery_time"] = delivery_time
    return {"event_name": "user_received_message", "app_id": APP_ID, "timestamp": stamp,
            "recipient": {"id": "84912345678"}, "message": message}


def signed(*events: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(events[0] if len(events) == 1 else list(events)).encode()
    stamp = events[0]["timestamp"]
    return body, {SIGNATURE_HEADER: "mac=" + sign(APP_ID, body, stamp, OA_SECRET),
                  "Content-Type": "application/json"}


def api_app(store: Store, tmp_path: Path, plan: Plan, province: Province, numbering: Numbering,
            got: list[DeliveryEvent], **settings: Any) -> Litestar:
    api = ApiConfig(audit_log=str(tmp_path / "audit.jsonl"), zalo_app_id=APP_ID,
                    zalo_oa_secret=OA_SECRET, **settings)
    return create_app(store, Settings(), plan, province, numbering, api, on_zalo_events=got.extend,
                      clock=lambda: dt.datetime.now(dt.UTC))


async def close_on(client: AsyncTestClient[Litestar], store: Store) -> None:
    """Close ``store`` on the loop its app runs on."""
    await asyncio.to_thread(client.blocking_portal.call, store.aclose)


# -- Zalo's retries of older events ---------------------------------------------------------------


async def test_a_signed_event_twenty_minutes_old_is_taken_once(
        redis_url: str, tmp_path: Path, plan: Plan, province: Province,
        numbering: Numbering) -> None:
    store = RedisStore(redis_url)
    got: list[DeliveryEvent] = []
    app = api_app(store, tmp_path, plan, province, numbering, got)
    old = ms(time.time() - 20 * 60)  # Zalo's third try comes 20 minutes after the first
    async with AsyncTestClient(app) as client:
        body, headers = signed(event("m-1", old))
        r = await client.post(PATH, content=body, headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["events"] == 1
        # the same event again (Zalo's next try, or a replay): 200, and not passed on twice
        r = await client.post(PATH, content=body, headers=headers)
        assert r.status_code == 200 and r.json()["events"] == 0
        await close_on(client, store)
    assert [e.msg_id for e in got] == ["m-1"]
