"""The console's checklist in a real browser (Việc cần làm): a viewer reads the day's items of
the level in force; an operator marks one done for a unit with a note (a note is required),
takes the mark back with a reason, and looks at another day. Same deployment as
:mod:`tests.service.test_console_browser` (its fixtures)."""

from __future__ import annotations

import datetime as dt

from playwright.sync_api import Browser, expect

from dispatcher.domain.model import VN
from tests.service.test_console_browser import (  # noqa: F401 - fixtures
    HOSTILE,
    Console,
    Tab,
    _a_level_in_force,
    browser,
    console,
)

HOTLINE = ("Tổng đài: Tiếp nhận, giải đáp, chuyển xử lý và phản hồi phản ánh của người dân về "
           "phòng, chống dịch")


def test_a_viewer_reads_the_day_and_an_operator_marks_an_item_done(
        browser: Browser, console: Console) -> None:  # noqa: F811
    level = _a_level_in_force(console)
    status, day = console.api("vic", "GET", "/v1/checklist")
    assert status == 200 and day["level"] == level, day
    due = day["due"]

    vic = Tab(browser, console)
    page = vic.sign_in("vic")
    page.get_by_role("link", name="Việc cần làm", exact=True).click()
    expect(page.get_by_role("heading", name="Việc cần làm", level=1)).to_be_visible()
    expect(page.locator("#checklist-summary")).to_contain_text(
        f"cấp {level}, {day['level_name']}: 0/{due} việc đến hạn đã xong.")
    card = page.locator("li.checklist-item").filter(has_text=f"Mã việc L{level}-hotline")
    expect(card).to_have_count(1)
    expect(card).to_contain_text("Chủ trì: Tổng đài tiếp nhận và giải đáp dịch bệnh")
    expect(card).to_contain_text("Số lượng: Hằng ngày (hằng ngày)")
    expect(card.locator(".checklist-state")).to_have_text("Chưa xong")
    expect(page.get_by_role("button", name="Đánh dấu đã xong")).to_have_count(0)
    expect(page.get_by_role("heading", name="Khi cần (không theo lịch)")).to_be_visible()
    expect(page.locator("#checklist-needed .checklist-state").first).to_have_text("Khi cần")
    vic.close()

    olga = Tab(browser, console)
    page = olga.sign_in("olga")
    page.goto(console.base + "/console/#checklist")
    card = page.locator("li.checklist-item").filter(has_text=f"Mã việc L{level}-hotline")
    card.get_by_role("button", name=f"Đánh dấu đã xong: {HOTLINE}").click()
    dialog = page.locator("#done-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Đơn vị thực hiện").select_option("Sở Y tế")
    dialog.get_by_role("button", name="Đánh dấu đã xong").click()
    expect(dialog.locator("#done-error")).to_have_text("Hãy ghi đã làm gì.")
    dialog.get_by_label("Ghi chú (bắt buộc): đã làm gì").fill(f"Trực đủ 3 ca {HOSTILE}")
    dialog.get_by_role("button", name="Đánh dấu đã xong").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#status")).to_contain_text(f"Đã đánh dấu xong: {HOTLINE}.")
    expect(card.locator(".checklist-state")).to_have_text("Đã xong")
    expect(card.locator(".checklist-done")).to_contain_text(
        "Đã xong — Sở Y tế; olga đánh dấu lúc")
    expect(card.locator(".checklist-done")).to_contain_text(f"Ghi chú: Trực đủ 3 ca {HOSTILE}")
    expect(page.locator("#checklist-summary")).to_contain_text(f": 1/{due} việc đến hạn đã xong")
    olga.shot("18-checklist")
    status, day = console.api("vic", "GET", "/v1/checklist")
    hotline = next(i for i in day["items"] if i["id"] == f"L{level}-hotline")
    assert hotline["done"]["unit"] == "Sở Y tế" and hotline["done"]["by"] == "olga"

    card.get_by_role("button", name=f"Bỏ đánh dấu đã xong: {HOTLINE}").click()
    reason = page.get_by_role("dialog")
    expect(reason).to_contain_text(f"Bỏ đánh dấu đã xong: {HOTLINE}?")
    reason.get_by_role("button", name="Bỏ đánh dấu").click()
    expect(reason.locator("#reason-error")).not_to_be_empty()  # a reason is required
    reason.get_by_label("Lý do bỏ đánh dấu (bắt buộc)").fill("đánh dấu nhầm ngày")
    reason.get_by_role("button", name="Bỏ đánh dấu").click()
    expect(page.locator("#status")).to_contain_text(f"Đã bỏ đánh dấu: {HOTLINE}.")
    expect(card.locator(".checklist-state")).to_have_text("Chưa xong")
    status, audit = console.api("root", "GET", "/v1/audit?limit=20")
    actions = [(r["action"], r["outcome"]) for r in audit if r["action"].startswith("checklist")]
    assert ("checklist.done", "ok") in actions and ("checklist.undo", "ok") in actions

    # a day before the level was set: nothing to do; "Hôm nay" comes back to today
    long_ago = (dt.datetime.now(VN) - dt.timedelta(days=30)).date()
    page.get_by_label("Ngày", exact=True).fill(long_ago.isoformat())
    expect(page.locator("#checklist-summary")).to_contain_text(
        "không có cấp độ dịch nào đang áp dụng, không có việc cần làm.")
    expect(page.locator("li.checklist-item")).to_have_count(0)
    page.get_by_role("button", name="Hôm nay").click()
    expect(page.locator("#checklist-summary")).to_contain_text(f"cấp {level}")
    olga.close()
