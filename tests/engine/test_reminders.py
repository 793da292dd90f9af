"""The checklist's daily e-mail reminder, over a real SMTP server (aiosmtpd) on loopback: once a
day per lead unit from ``remind_at``, across restarts and processes on one store; a refusal for
good is kept, a transient one tried again; nothing before the hour or without a level."""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import re
from collections.abc import AsyncIterator, Iterator
from email.message import EmailMessage
from pathlib import Path

import msgspec
import pytest

from adapters.email import EmailAdapter, EmailConfig
from adapters.memory import MemoryAdapter
from dispatcher.domain.checklist import Done
from dispatcher.domain.errors import ConfigError
from dispatcher.domain.model import Channel, LevelState
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.domain.reminder import ReminderSettings
from dispatcher.engine.process import Engine
from dispatcher.engine.reminders import Reminders
from dispatcher.service import process
from dispatcher.service.settings import Settings, load_settings
from dispatcher.store import MemoryStore, Store
from tests.adapters.test_email_adapter import Server
from tests.conftest import run_engine_until

MONDAY = dt.date(2021, 7, 26)
BEFORE = dt.datetime(2021, 7, 26, 0, 29, tzinfo=dt.UTC)  # 07:29 in Quảng Ninh
AFTER = dt.datetime(2021, 7, 26, 0, 31, tzinfo=dt.UTC)  # 07:31
COMMUNES = "UBND các xã, phường, thị trấn"
PRESS = "Phòng Thông tin - Báo chí - Xuất bản"
UNITS = {COMMUNES: "ubnd@quangninh.gov.vn", PRESS: "ttbcxb@quangninh.gov.vn",
         "Sở Y tế": "soyte@quangninh.gov.vn"}


@pytest.fixture
def server() -> Iterator[Server]:
    running = Server()
    running.start()
    yield running
    running.stop()


@pytest.fixture
async def mail(server: Server) -> AsyncIterator[EmailAdapter]:
    adapter = EmailAdapter(EmailConfig(host="127.0.0.1", port=server.port, starttls=False,
                                       sender="loa@stttt.quangninh.gov.vn", timeout=5.0,
                                       local_hostname="loa.test"))
    yield adapter
    await adapter.aclose()


def reminders(store: Store, plan: Plan, mail: EmailAdapter, owner: str = "p1",
              units: dict[str, str] | None = None) -> Reminders:
    settings = ReminderSettings(remind_at="07:30", units=UNITS if units is None else units)
    return Reminders(store, plan, settings, mail, owner=owner, clock=lambda: AFTER)


def received(server: Server) -> dict[str, EmailMessage]:
    """What the server got, by recipient (one message each)."""
    found: dict[str, EmailMessage] = {}
    for _, _, to, content in server.recorder.messages:
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        for addr in to:
            assert addr not in found, f"{addr} got two reminders"
            found[addr] = message
    return found


async def at_level(store: Store, level: int) -> None:
    await store.level.set(LevelState(level=level, at=BEFORE - dt.timedelta(days=1)))


async def test_each_lead_unit_gets_its_items_once_a_day(store: Store, plan: Plan,
                                                        server: Server,
                                                        mail: EmailAdapter) -> None:
    await at_level(store, 2)
    for item in ("L2-press-monitoring", "L2-facebook-pages"):  # what the press unit leads
        await store.checklist.mark(Done(item=item, date=MONDAY, at=BEFORE, by="an", unit=PRESS,
                                        note="đã làm"))
    first = reminders(store, plan, mail)
    assert await first.tick(BEFORE) == []
    assert server.recorder.messages == []
    decided = await first.tick(AFTER)
    assert {r.unit for r in decided} == {COMMUNES, "Sở Y tế"}  # the press: nothing left
    got = received(server)
    assert set(got) == {UNITS[COMMUNES], UNITS["Sở Y tế"]}
    communes = got[UNITS[COMMUNES]]
    assert communes["Subject"] == "Việc cần làm Thứ Hai 26/07/2021 — Cấp độ II (cấp 2): 1 việc"
    body = communes.get_content()
    assert f"Kính gửi {COMMUNES}," in body and "Mã việc: L2-village-reporters" in body
    assert "Mã việc: L2-advice-channel" in got[UNITS["Sở Y tế"]].get_content()

    # a restart, and another process: nothing again
    assert await reminders(store, plan, mail, owner="p2").tick(AFTER + dt.timedelta(hours=1)) \
        == []
    assert len(server.recorder.messages) == 2
    # the press unit's item taken back later that day: it is reminded then
    await store.checklist.unmark(MONDAY, "L2-press-monitoring")
    decided = await first.tick(AFTER + dt.timedelta(hours=2))
    assert [r.unit for r in decided] == [PRESS]
    assert set(received(server)) == set(UNITS.values())
    # the next day, again: on Tuesday the communes' village rounds are not due
    tuesday = await first.tick(AFTER + dt.timedelta(days=1))
    assert {r.unit for r in tuesday} == {PRESS, "Sở Y tế"}


async def test_two_processes_at_once_send_one_each(store: Store, plan: Plan, server: Server,
                                                   mail: EmailAdapter) -> None:
    await at_level(store, 4)
    ticks = [reminders(store, plan, mail, owner=f"p{n}").tick(AFTER) for n in range(4)]
    decided = [r for found in await asyncio.gather(*ticks) for r in found]
    await reminders(store, plan, mail, owner="p9").tick(AFTER + dt.timedelta(minutes=1))
    assert len(received(server)) == 3 >= len(decided)


async def test_no_level_no_reminder(store: Store, plan: Plan, server: Server,
                                    mail: EmailAdapter) -> None:
    assert await reminders(store, plan, mail).tick(AFTER) == []
    await at_level(store, 0)
    assert await reminders(store, plan, mail).tick(AFTER) == []
    assert server.recorder.messages == [] and await store.checklist.reminded(MONDAY) == {}


async def test_a_refusal_for_good_is_kept_a_transient_one_is_tried_again(
        store: Store, plan: Plan, server: Server, mail: EmailAdapter) -> None:
    await at_level(store, 2)
    server.recorder.refuse = {UNITS[COMMUNES]: "550 5.1.1 no such mailbox",
                              UNITS["Sở Y tế"]: "451 4.3.0 try again later"}
    tick = reminders(store, plan, mail)
    decided = {r.unit: r for r in await tick.tick(AFTER)}
    assert decided[COMMUNES].sent is False
    assert decided[COMMUNES].reason == "SMTP 550: 5.1.1 no such mailbox"
    assert "Sở Y tế" not in decided and PRESS in decided
    kept = await store.checklist.reminded(MONDAY)
    assert set(kept) == {COMMUNES, PRESS}
    server.recorder.refuse = {}
    decided = {r.unit: r for r in await tick.tick(AFTER + dt.timedelta(seconds=30))}
    assert list(decided) == ["Sở Y tế"] and decided["Sở Y tế"].sent
    assert set(received(server)) == {UNITS[PRESS], UNITS["Sở Y tế"]}


async def test_a_mail_server_that_is_down_is_tried_again(store: Store, plan: Plan,
                                                          server: Server) -> None:
    await at_level(store, 2)
    down = EmailAdapter(EmailConfig(host="127.0.0.1", port=server.port, starttls=False,
                                    sender="loa@stttt.quangninh.gov.vn", timeout=5.0,
                                    local_hostname="loa.test"))
    server.stop()
    try:
        assert await reminders(store, plan, down).tick(AFTER) == []
        assert await store.checklist.reminded(MONDAY) == {}
        server.start()
        assert len(await reminders(store, plan, down).tick(AFTER)) == 3
    finally:
        await down.aclose()


async def test_the_engine_runs_them_in_its_loop_and_stops_with_them(
        plan: Plan, province: Province, numbering: Numbering, server: Server,
        mail: EmailAdapter) -> None:
    store = MemoryStore()
    await at_level(store, 2)
    engine = Engine(store, plan, Settings(), province, {}, numbering.carriers, reconcile=False,
                    reminders=reminders(store, plan, mail))

    async def reminded() -> bool:
        return len(await store.checklist.reminded(MONDAY)) == 3

    await run_engine_until(engine, reminded)  # returns once the engine has stopped
    assert set(received(server)) == set(UNITS.values())


def test_process_settings_refuse_a_unit_that_leads_nothing_and_need_e_mail(
        plan: Plan, tmp_path: Path) -> None:
    config = tmp_path / "loa.toml"
    config.write_text('[channels]\nsimulate = ["email"]\n\n[checklist]\nremind_at = "07:30"\n'
                      'units = { "Sở Y te" = "soyte@quangninh.gov.vn" }\n', encoding="utf-8")
    settings = load_settings(config, env={})
    with pytest.raises(ConfigError, match=re.escape("checklist.units.Sở Y te: 'Sở Y te' leads "
                                                    "no activity of the plan")):
        process.reminders(MemoryStore(), settings, plan, {}, "p1")
    fixed = msgspec.structs.replace(settings, checklist=msgspec.structs.replace(
        settings.checklist, units={"Sở Y tế": "soyte@quangninh.gov.vn"}))
    simulated = process.reminders(MemoryStore(), fixed, plan, {Channel.EMAIL: MemoryAdapter()},
                                  "p1")
    assert simulated is not None and isinstance(simulated.mail, MemoryAdapter)
    with pytest.raises(ConfigError, match=re.escape("checklist.remind_at: the reminders go by")):
        process.reminders(MemoryStore(), fixed, plan, {}, "p1")
    off = msgspec.structs.replace(fixed, checklist=ReminderSettings())
    assert process.reminders(MemoryStore(), off, plan, {}, "p1") is None


@pytest.mark.parametrize(("table", "key", "words"), [
    ('remind_at = "7h30"\nunits = { "Sở Y tế" = "a@b.vn" }', "checklist.remind_at",
     "'7h30' is not a time"),
    ('remind_at = "24:00"\nunits = { "Sở Y tế" = "a@b.vn" }', "checklist.remind_at",
     "is not a time"),
    ('remind_at = "07:30"', "checklist.units", "no unit to remind"),
    ('units = { "Sở Y tế" = "soyte" }', "checklist.units.Sở Y tế", "is not an e-mail address"),
    ('remind_at = "07:30"\nunits = { "Sở Y tế" = "a@b.vn" }', "checklist.remind_at",
     "the reminders go by e-mail: add the [email] table"),
    ('remind_at = "07:30"\ncolour = "red"', "checklist", "colour"),
])
def test_wrong_reminder_settings_are_refused_naming_the_key(tmp_path: Path, table: str,
                                                             key: str, words: str) -> None:
    config = tmp_path / "loa.toml"
    config.write_text(f"[checklist]\n{table}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(words)) as caught:
        load_settings(config, env={})
    assert f"{key}" in str(caught.value)
