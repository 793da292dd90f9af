"""Zalo user events through the webhook: a message, a follow and an unfollow are taken once,
stored as incoming items by the engine's intake, the unfollow and a keyword reply as opt-outs."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

from litestar.testing import AsyncTestClient

from adapters.zalo.webhook import UserEvent, WebhookVerifier
from dispatcher.domain.incoming import FOLLOW, OPT_OUT, REPLY, UNFOLLOW, Incoming, Keywords
from dispatcher.domain.model import Channel
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.engine.incoming import IncomingIntake
from dispatcher.engine.suppressions import opt_out_handler
from dispatcher.service.api import ApiConfig, create_app
from dispatcher.service.settings import Settings
from dispatcher.service.zalo_receipts import to_matcher
from dispatcher.store import MemoryStore
from tests.service.test_zalo_webhook_intake import APP_ID, OA_SECRET, PATH, ms, signed


def user_events(stamp: str) -> list[dict[str, Any]]:
    return [
        {"event_name": "user_send_text", "app_id": APP_ID, "timestamp": stamp,
         "sender": {"id": "u-100"}, "recipient": {"id": "oa-1"},
         "message": {"text": "Cho hỏi điểm tiêm ở đâu?", "msg_id": "z-1"}},
        {"event_name": "user_send_text", "app_id": APP_ID, "timestamp": stamp,
         "sender": {"id": "u-101"}, "message": {"text": "Hủy", "msg_id": "z-2"}},
        {"event_name": "follow", "app_id": APP_ID, "timestamp": stamp, "oa_id": "oa-1",
         "follower": {"id": "u-102"}, "user_id_by_app": "app-102"},
        {"event_name": "unfollow", "app_id": APP_ID, "timestamp": stamp, "oa_id": "oa-1",
         "follower": {"id": "u-103"}},
        {"event_name": "user_send_image", "app_id": APP_ID, "timestamp": stamp,
         "sender": {"id": "u-104"}, "message": {"msg_id": "z-3"}},
        {"event_name": "oa_send_text", "app_id": APP_ID, "timestamp": stamp,
         "sender": {"id": "oa-1"}, "message": {"text": "not a citizen's", "msg_id": "z-4"}},
    ]


def test_the_verifier_reads_user_events() -> None:
    stamp = ms(time.time())
    body, headers = signed(*user_events(stamp))
    events = WebhookVerifier(APP_ID, OA_SECRET).parse_all(body, headers)
    assert [(e.event_name, e.user_id) for e in events if isinstance(e, UserEvent)] == [
        ("user_send_text", "u-100"), ("user_send_text", "u-101"), ("follow", "u-102"),
        ("unfollow", "u-103"), ("user_send_image", "u-104")]
    assert WebhookVerifier(APP_ID, OA_SECRET).parse(body, headers) == []  # no deliveries


async def test_user_events_are_stored_once_with_their_opt_outs(
        tmp_path: Path, plan: Plan, province: Province, numbering: Numbering) -> None:
    store = MemoryStore()
    intake = IncomingIntake(store, Keywords(["HUY", "TU CHOI"]), opt_out_handler(store, numbering))
    delivered: list[Any] = []
    api = ApiConfig(audit_log=str(tmp_path / "audit.jsonl"), zalo_app_id=APP_ID,
                    zalo_oa_secret=OA_SECRET)
    app = create_app(store, Settings(), plan, province, numbering, api,
                     on_zalo_events=to_matcher(delivered.extend, intake.add),
                     clock=lambda: dt.datetime.now(dt.UTC))
    stamp = ms(time.time())
    async with AsyncTestClient(app) as client:
        body, headers = signed(*user_events(stamp))
        for expected in (5, 0):  # Zalo's try again is taken once
            r = await client.post(PATH, content=body, headers=headers)
            assert r.status_code == 200 and r.json()["events"] == expected, r.text
    await intake.take_now()
    assert delivered == []
    items = (await store.incoming.page()).items[::-1]
    assert [(i.channel, i.number, i.kind, i.text) for i in items] == [
        (Channel.ZALO, "u-100", REPLY, "Cho hỏi điểm tiêm ở đâu?"),
        (Channel.ZALO, "u-101", OPT_OUT, "Hủy"),
        (Channel.ZALO, "u-102", FOLLOW, ""),
        (Channel.ZALO, "u-103", UNFOLLOW, ""),
        (Channel.ZALO, "u-104", REPLY, "[image]")]
    assert items[0].at == dt.datetime.fromtimestamp(int(stamp) / 1000, dt.UTC)
    assert [(o.number, o.reason) for o in await store.incoming.opt_outs()] == [
        ("u-103", "unfollow"), ("u-101", "keyword:HUY")]
    assert isinstance(items[0], Incoming)
