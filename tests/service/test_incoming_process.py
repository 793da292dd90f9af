"""A process's wiring: its SMPP binds hand subscribers' messages to the engine's intake, which
keeps them with the settings' retention and keywords, records their opt-outs and puts their
numbers on the suppression list."""

from __future__ import annotations

import asyncio

from adapters.smpp.adapter import LinkConfig, SmppAdapter
from adapters.smpp.simulator import Smsc
from dispatcher.domain import smstext
from dispatcher.domain.incoming import IncomingSettings
from dispatcher.domain.model import Channel
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.service.process import build_engine
from dispatcher.service.settings import ChannelSettings, Settings
from dispatcher.store import MemoryStore


async def test_the_process_keeps_replies_with_its_settings(
        smsc: Smsc, plan: Plan, province: Province, numbering: Numbering) -> None:
    store = MemoryStore()
    settings = Settings(
        smpp={"default": LinkConfig(host="127.0.0.1", port=smsc.port, system_id="loa",
                                    bind_wait=2.0)},
        channels=ChannelSettings(simulate=[Channel.ZALO, Channel.EMAIL, Channel.APP]),
        incoming=IncomingSettings(retention_days=7, opt_out_keywords=["NGUNG"]))
    engine = build_engine(store, settings, plan, province, numbering, reconcile=False)
    assert engine.incoming is not None and store.incoming.retention.days == 7
    sms = engine.adapters[Channel.SMS]
    assert isinstance(sms, SmppAdapter)
    await sms.start()
    try:
        await asyncio.wait_for(sms.links["default"].sessions[0].bound.wait(), 10)
        smsc.send_mo("84912345678", smstext.ucs2_encode("Ngừng gửi"), data_coding=8)
        smsc.send_mo("84912345679", b"HUY", data_coding=0)  # not a keyword here

        async def stored() -> None:
            assert engine.incoming is not None
            while len((await store.incoming.page()).items) < 2:
                await engine.incoming.take_now()
                await asyncio.sleep(0.02)

        await asyncio.wait_for(stored(), 10)
    finally:
        await sms.aclose()
    kinds = {i.number: i.kind for i in (await store.incoming.page()).items}
    assert kinds == {"84912345678": "opt_out", "84912345679": "reply"}
    assert [(o.number, o.reason) for o in await store.incoming.opt_outs()] == [
        ("84912345678", "keyword:NGUNG")]
    # the opt-out's number is on the SMS suppression list: routine waves skip it
    assert await store.suppressions.mask(Channel.SMS, ["84912345678", "84912345679"]) == [
        True, False]
