"""The intake of incoming messages: opt-outs flagged, stored in batches, counted, handed on once
per batch; nothing lost when the store or the callback fails."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from adapters.smpp.adapter import LinkConfig, SmppAdapter
from adapters.smpp.simulator import Smsc
from dispatcher.domain import smstext
from dispatcher.domain.errors import ConfigError, StoreUnavailable
from dispatcher.domain.incoming import FOLLOW, OPT_OUT, UNFOLLOW, Incoming, Keywords
from dispatcher.domain.model import Channel
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.optout import OptOut
from dispatcher.engine.incoming import IncomingIntake
from dispatcher.engine.suppressions import opt_out_handler
from dispatcher.service.settings import load_settings
from dispatcher.store import MemoryStore

AT = dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.UTC)


def count(channel: str, kind: str) -> float:
    return REGISTRY.get_sample_value("loa_incoming_total",
                                     {"channel": channel, "kind": kind}) or 0.0


def items() -> list[Incoming]:
    return [Incoming(Channel.SMS, "84912340001", AT, text="Hủy"),
            Incoming(Channel.SMS, "84912340002", AT, text="cảm ơn"),
            Incoming(Channel.ZALO, "u-7", AT, kind=UNFOLLOW),
            Incoming(Channel.ZALO, "u-8", AT, kind=FOLLOW),
            Incoming(Channel.SMS, "", AT, kind="unreadable", text="ff")]


async def test_a_batch_is_stored_counted_and_its_opt_outs_handed_on_once() -> None:
    store = MemoryStore()
    calls: list[list[OptOut]] = []

    async def on_opt_outs(opt_outs: list[OptOut]) -> None:
        calls.append(opt_outs)

    intake = IncomingIntake(store, Keywords(["HUY"]), on_opt_outs)
    before = {k: count(*k) for k in (("sms", "opt_out"), ("sms", "reply"), ("zalo", "unfollow"))}
    intake.add(items())
    await intake.take_now()
    assert calls == [[OptOut(Channel.SMS, "84912340001", "keyword:HUY", AT),
                      OptOut(Channel.ZALO, "u-7", "unfollow", AT)]]
    stored = (await store.incoming.page()).items
    assert [(i.number, i.kind) for i in stored][::-1] == [
        ("84912340001", OPT_OUT), ("84912340002", "reply"), ("u-7", UNFOLLOW),
        ("u-8", FOLLOW), ("", "unreadable")]
    assert count("sms", "opt_out") == before[("sms", "opt_out")] + 1
    assert count("sms", "reply") == before[("sms", "reply")] + 1
    assert count("zalo", "unfollow") == before[("zalo", "unfollow")] + 1
    assert intake.pending == 0


async def test_opt_outs_are_recorded_and_their_numbers_suppressed(numbering: Numbering) -> None:
    store = MemoryStore()
    intake = IncomingIntake(store, Keywords(["HUY"]), opt_out_handler(store, numbering))
    intake.add(items())
    await intake.take_now()
    assert [o.number for o in await store.incoming.opt_outs()] == ["u-7", "84912340001"]
    (entry,) = await store.suppressions.lookup("84912340001")
    assert (entry.channel, entry.reason, entry.source) == (Channel.SMS, "keyword:HUY", "opt_out")
    # "u-7" is no Zalo user id Zalo gives (digits): recorded, not listed
    assert await store.suppressions.mask(Channel.ZALO, ["u-7"]) == [False]


async def test_one_store_call_per_batch() -> None:
    store = MemoryStore()
    calls: list[int] = []
    add = store.incoming.add

    async def counted(batch: list[Incoming], now: float | None = None) -> None:
        calls.append(len(batch))
        await add(batch, now)

    store.incoming.add = counted  # type: ignore[method-assign,assignment]
    intake = IncomingIntake(store, Keywords(["HUY"]), batch=2)
    intake.add(items())
    await intake.take_now()
    assert calls == [2, 2, 1]


async def test_a_store_outage_keeps_the_batch_and_a_failed_callback_is_called_again() -> None:
    store = MemoryStore()
    add = store.incoming.add
    down = True

    async def flaky(batch: list[Incoming], now: float | None = None) -> None:
        if down:
            raise StoreUnavailable("redis down")
        await add(batch, now)

    store.incoming.add = flaky  # type: ignore[method-assign,assignment]
    calls: list[list[OptOut]] = []
    refuse = True

    async def on_opt_outs(opt_outs: list[OptOut]) -> None:
        if refuse:
            raise RuntimeError("suppression list unavailable")
        calls.append(opt_outs)

    intake = IncomingIntake(store, Keywords(["HUY"]), on_opt_outs)
    intake.add(items())
    with pytest.raises(StoreUnavailable):
        await intake.take_now()
    assert intake.pending == 5
    down = False
    with pytest.raises(RuntimeError):
        await intake.take_now()
    assert intake.pending == 0 and len((await store.incoming.page()).items) == 5
    refuse = False
    await intake.take_now()
    assert [[o.number for o in c] for c in calls] == [["84912340001", "u-7"]]
    assert len((await store.incoming.page()).items) == 5  # stored once


def test_past_max_held_the_oldest_are_dropped_and_counted() -> None:
    intake = IncomingIntake(MemoryStore(), Keywords(["HUY"]), max_held=3)
    intake.add(items())
    assert intake.pending == 3 and intake.dropped == 2


async def test_replies_from_the_smsc_reach_the_store(smsc: Smsc, numbering: Numbering) -> None:
    store = MemoryStore()
    intake = IncomingIntake(store, Keywords(["TU CHOI"]), opt_out_handler(store, numbering))
    adapter = SmppAdapter({"default": LinkConfig(host="127.0.0.1", port=smsc.port,
                                                 system_id="loa", bind_wait=2.0)},
                          on_incoming=intake.add)
    await adapter.start()
    try:
        await asyncio.wait_for(adapter.links["default"].sessions[0].bound.wait(), 10)
        smsc.send_mo("84912345678", smstext.ucs2_encode("Từ chối"), data_coding=8)
        smsc.send_mo("84912345679", b"Cam on", data_sm=True)

        async def stored() -> None:
            while len((await store.incoming.page()).items) < 2:
                await intake.take_now()
                await asyncio.sleep(0.02)

        await asyncio.wait_for(stored(), 10)
    finally:
        await adapter.aclose()
    assert smsc.stats.mo_acked == 2
    got = {i.number: (i.kind, i.text) for i in (await store.incoming.page()).items}
    assert got == {"84912345678": (OPT_OUT, "Từ chối"), "84912345679": ("reply", "Cam on")}
    assert [(o.number, o.reason) for o in await store.incoming.opt_outs()] == [
        ("84912345678", "keyword:TU CHOI")]


def test_the_settings_refuse_a_bad_incoming_table(tmp_path: Path) -> None:
    config = tmp_path / "loa.toml"
    config.write_text('[incoming]\nretention_days = 7\nopt_out_keywords = ["HUY", "--"]\n')
    with pytest.raises(ConfigError, match=r"incoming.opt_out_keywords\[1\]"):
        load_settings(config, env={})
    config.write_text("[incoming]\nretention_days = 0\n")
    with pytest.raises(ConfigError, match=r"incoming\.retention_days"):
        load_settings(config, env={})
    config.write_text('[incoming]\nretention_days = 7\nopt_out_keywords = ["Từ chối"]\n')
    settings = load_settings(config, env={})
    assert settings.incoming.retention_days == 7
    assert load_settings(env={}).incoming.opt_out_keywords == ["TU CHOI", "HUY", "STOP"]
