"""The console's suppression lists in a real browser (Danh sách chặn): an operator adds a
number (a bad one marks its field), sees it on the channel's list, downloads the list as CSV and
removes the number with a reason; a viewer has no such tab; the hotline lookup shows the entry.
Same deployment as :mod:`tests.service.test_console_browser` (its fixtures)."""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from tests.service.test_console_browser import (  # noqa: F401 - fixtures
    Console,
    Tab,
    browser,
    console,
)


def test_an_operator_adds_exports_and_removes_a_number(browser: Browser,  # noqa: F811
                                                       console: Console) -> None:  # noqa: F811
    phone = console.failing[1]  # a number of the audience
    olga = Tab(browser, console)
    page = olga.sign_in("olga")
    page.get_by_role("link", name="Danh sách chặn", exact=True).click()
    expect(page.get_by_role("heading", name="Danh sách chặn", level=1)).to_be_visible()
    expect(page.locator("#supp-summary")).to_have_text("Danh sách chặn SMS chưa có số nào.")

    form = page.locator("#supp-add-form")
    form.get_by_label("Kênh").select_option("sms")
    form.get_by_label("Số hoặc địa chỉ cần chặn").fill("0203 123 456")
    form.get_by_label("Lý do").fill("gọi đường dây nóng xin không nhận tin")
    form.get_by_role("button", name="Thêm vào danh sách chặn").click()
    expect(page.locator("#status")).to_contain_text("landline")
    expect(form.get_by_label("Số hoặc địa chỉ cần chặn")).to_have_attribute(
        "aria-invalid", "true")

    spoken = f"0{phone[2:5]} {phone[5:8]} {phone[8:]}"
    form.get_by_label("Số hoặc địa chỉ cần chặn").fill(spoken)
    form.get_by_role("button", name="Thêm vào danh sách chặn").click()
    expect(page.locator("#status")).to_contain_text(f"Đã thêm {phone} vào danh sách chặn SMS")
    row = page.locator("#supp-rows tr").filter(has_text=phone)
    expect(row).to_have_count(1)
    expect(row).to_contain_text("gọi đường dây nóng xin không nhận tin")
    expect(row).to_contain_text("cán bộ thêm: olga")
    expect(page.locator("#supp-summary")).to_have_text("Danh sách chặn SMS có 1 số.")
    olga.shot("17-suppressions")

    with page.expect_download() as download:
        page.get_by_role("button", name="Tải về tệp CSV").click()
    lines = download.value.path().read_text("utf-8").splitlines()
    assert lines[0] == "channel,number,reason,at,source,by,wave"
    assert lines[1].startswith(f"sms,{phone},gọi đường dây nóng xin không nhận tin,")
    assert lines[1].endswith(",operator,olga,") and len(lines) == 2

    status, view = console.api("vic", "GET", f"/v1/recipients/{phone}")
    assert status == 200 and [e["channel"] for e in view["suppressed"]] == ["sms"], view

    row.get_by_role("button", name=f"Gỡ {phone} khỏi danh sách chặn").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text(f"Gỡ {phone} khỏi danh sách chặn?")
    dialog.get_by_role("button", name="Có, gỡ khỏi danh sách").click()
    expect(dialog.locator("#reason-error")).not_to_be_empty()  # a reason is required
    dialog.get_by_label("Lý do gỡ (bắt buộc)").fill("người dân xin nhận lại tin")
    dialog.get_by_role("button", name="Có, gỡ khỏi danh sách").click()
    expect(page.locator("#status")).to_contain_text(f"Đã gỡ {phone} khỏi danh sách chặn SMS")
    expect(page.locator("#supp-rows tr").filter(has_text=phone)).to_have_count(0)
    expect(page.locator("#supp-summary")).to_have_text("Danh sách chặn SMS chưa có số nào.")
    status, view = console.api("vic", "GET", f"/v1/recipients/{phone}")
    assert status == 200 and view["suppressed"] == [], view
    olga.close()


def test_a_viewer_has_no_suppression_tab(browser: Browser,  # noqa: F811
                                         console: Console) -> None:  # noqa: F811
    vic = Tab(browser, console)
    page = vic.sign_in("vic")
    expect(page.get_by_role("link", name="Tra cứu số", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Danh sách chặn", exact=True)).to_be_hidden()
    page.goto(console.base + "/#suppressions")
    expect(page.locator("#view-suppressions")).to_be_hidden()
    vic.close()
