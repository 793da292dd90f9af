"""The operator console in headless Chromium (Playwright), against a real ``loa run``.

One ``loa run`` process (API and engine) on the session's redis-server, with SMS going over SMPP
to ``loa sim smsc``, Zalo to ``loa sim zalo`` (whose signed delivery webhooks come back to
the API) and Facebook posts to ``loa sim facebook``, serves the console for the whole module;
one browser serves every test. Tokens come from ``loa token create``. The tests run in file
order: the level set by the first is read by the next. Screenshots of the main pages go to
``artifacts/console/`` (not committed).

The plan given to ``loa run`` is the shipped one with its sending hours and slots moved hours
away from now, so that no wave of the plan goes out during the tests.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import selectors
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Dialog,
    Locator,
    Page,
    ViewportSize,
    expect,
    sync_playwright,
)

from adapters.zalo.api import SIGNATURE_HEADER, sign
from bench import audiencegen, simconfig
from bench.localredis import LocalRedis, free_port
from dispatcher.domain.config import default_path
from dispatcher.domain.incoming import Incoming
from dispatcher.domain.model import Channel
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.province import Province
from dispatcher.store import RedisStore

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "console"
RECIPIENTS = 400
SMS_RATE = 10  # messages per second per SMS route: the whole audience takes ~15 s
OA_SECRET_ENV = "LOA_CONSOLE_TEST_OA_SECRET"
VIETNAMESE = ("KHẨN: Covid-19 lây lan rộng tại Quảng Ninh. Chỉ ra ngoài khi thật cần thiết, đeo "
              "khẩu trang. Sốt, ho, khó thở: gọi y tế xã, phường.")
HOSTILE = "<img src=x onerror=alert(1)>"
WAIT_MS = 30_000  # the longest any single expectation waits
FAILING_DISTRICT = "cam-pha"  # its officials on Zalo by phone are refused by Zalo: dead letters
NOT_ZALO = -118  # not a Zalo account: the message fails for good


class Console:
    """The running ``loa run`` and what the tests need to talk to it."""

    def __init__(self, base: str, tokens: dict[str, str], failing: list[str],
                 facebook_url: str) -> None:
        self.base = base
        self.tokens = tokens
        self.failing = failing  # the phones Zalo refuses for good (international, 84...)
        self.facebook_url = facebook_url  # ``loa sim facebook``

    def facebook_posts(self) -> dict[str, int]:
        """What the Graph API simulator published: page id -> posts (counted at the far end)."""
        with urllib.request.urlopen(self.facebook_url + "/sim/stats", timeout=10) as response:
            by_page: dict[str, int] = json.loads(response.read())["by_page"]
        return by_page

    def api(self, user: str, method: str, path: str,
            body: dict[str, Any] | None = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.tokens[user]}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.base + path, data=data, headers=headers,
                                         method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def campaign(self, title: str) -> dict[str, Any]:
        status, campaigns = self.api("olga", "GET", "/v1/campaigns")
        assert status == 200, campaigns
        found = [c for c in campaigns if c["title"] == title]
        assert len(found) == 1, [c["title"] for c in campaigns]
        campaign: dict[str, Any] = found[0]
        return campaign


def _loa(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([sys.executable, "-m", "dispatcher.service.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60, check=False, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _spawn(args: list[str], cwd: Path, log: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    with log.open("w", encoding="utf-8") as out:
        return subprocess.Popen([sys.executable, "-m", "dispatcher.service.cli", *args], cwd=cwd,
                                stdout=subprocess.PIPE, stderr=out, text=True, env=env)


def _first_line(proc: subprocess.Popen[str], what: str, timeout: float = 20) -> str:
    """The first line ``proc`` prints (a simulator says where it listens)."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            pytest.fail(f"{what} said nothing in {timeout:.0f} s")
    line = proc.stdout.readline()
    assert line, f"{what} exited: {proc.wait()}"
    return line.strip()


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    if proc.stdout is not None:
        proc.stdout.close()


def quiet_plan(path: Path, now: dt.datetime) -> Path:
    """The shipped plan with its sending hours and every slot moved to a window hours away from
    ``now`` (the slots keep their weekdays and days): nothing of the plan is due in the tests."""
    local = now.astimezone(ZoneInfo("Asia/Ho_Chi_Minh"))
    start = 2 if 8 <= local.hour < 20 else 14
    text = default_path("plan.toml").read_text(encoding="utf-8")
    hours = f'sending_hours = ["{start:02d}:00", "{start + 1:02d}:00"]'
    text = re.sub(r"^sending_hours = .*$", hours, text, flags=re.M)

    def slots(line: re.Match[str]) -> str:
        minutes = iter(range(60))
        return re.sub(r"\d\d:\d\d", lambda _: f"{start:02d}:{next(minutes):02d}", line.group(0))

    path.write_text(re.sub(r"^slots = \[.*\]$", slots, text, flags=re.M), encoding="utf-8")
    return path


def failing_phones(numbering: Numbering, province: Province) -> list[str]:
    """The phones of the audience Zalo refuses for good (``loa sim zalo --error-phone``): the
    officials of :data:`FAILING_DISTRICT` with a Zalo account by phone, so that only a campaign
    reaching them has dead letters."""
    phones = []
    for row in audiencegen.rows(RECIPIENTS, seed=9, numbering=numbering, province=province,
                                zalo_accounts=RECIPIENTS * 9 // 10):
        phone, zalo, place, kind = row[:4]
        if kind == "official" and zalo == "1" and province.district_id(place) == FAILING_DISTRICT:
            digits = re.sub(r"\D", "", phone)
            phones.append("84" + digits[1:] if digits.startswith("0") else digits)
    assert phones, "the audience has no official on Zalo in " + FAILING_DISTRICT
    return phones


#: The Facebook pages of the console's deployment: (id, page id, name, district, token).
PAGES = [("province", "1000000001", "Trang UBND tỉnh Quảng Ninh", "", "tok-province"),
         ("cam-pha", "1000000002", "Trang TP Cẩm Phả", "cam-pha", "tok-cam-pha")]


def _facebook(url: str) -> str:
    """``[facebook]``: the pages of :data:`PAGES` on the Graph API simulator at ``url``."""
    pages = "".join(f'\n[[facebook.pages]]\nid = "{pid}"\npage_id = "{page_id}"\n'
                    f'name = "{name}"\ndistrict = "{district}"\n'
                    f'token_env = "LOA_T_FACEBOOK_{pid.upper().replace("-", "_")}"\n'
                    for pid, page_id, name, district, _ in PAGES)
    return simconfig.table("facebook", {"graph_url": url, "proxy": "direct"}) + pages


def _config(smsc_port: int, zalo_url: str, tmp: Path, carriers: list[str],
            facebook_url: str) -> str:
    rates = "\n".join(f'"sms.{c}" = {SMS_RATE}' for c in carriers)
    engine = f"""zalo_tokens_file = "{tmp / 'zalo-tokens.json'}"

[engine]
approval_threshold = 10
reconcile_seconds = 1.0
state_refresh_seconds = 0.2
batch_size = 10  # progress moves in small steps; a batch handed to the SMSC finishes after a cancel
chunk_size = 64

[retry]
base_seconds = 0.5
max_seconds = 2.0

[rates]
{rates}
zalo = 20
"""
    return "\n".join([
        engine,
        simconfig.smpp_table(smsc_port, "console", binds=1, window=16, response_timeout=5.0,
                             bind_wait=1.0),
        simconfig.zalo_table(zalo_url, timeout=5.0),
        _facebook(facebook_url),
        simconfig.simulate_table("email", "app", "portal", "loudspeaker", "cell_broadcast"),
        simconfig.table("api", {"audit_log": str(tmp / "audit.jsonl"), "zalo_app_id": "sim-app",
                                "zalo_oa_secret_env": OA_SECRET_ENV})])


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory, redis_server: LocalRedis,
            numbering: Numbering, province: Province) -> Iterator[Console]:
    if not CHROMIUM.exists():
        pytest.fail("chromium is not installed (Debian packages chromium and chromium-driver); "
                    "`make test` installs them")
    tmp = tmp_path_factory.mktemp("console")
    client = redis.Redis(host=redis_server.host, port=redis_server.port)
    client.flushall()
    client.close()
    env = os.environ | simconfig.sim_env() | {OA_SECRET_ENV: "sim-oa-secret", "LOA_REDIS_URL": ""}
    env |= {f"LOA_T_FACEBOOK_{pid.upper().replace('-', '_')}": token
            for pid, _, _, _, token in PAGES}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    procs: list[subprocess.Popen[str]] = []
    try:
        smsc = _spawn(["sim", "smsc", "--port", "0", "--receipt-delay", "0.2"], tmp,
                      tmp / "smsc.log", env)
        procs.append(smsc)
        failing = failing_phones(numbering, province)
        zalo = _spawn(["sim", "zalo", "--port", "0", "--webhook-url", f"{base}/zalo/webhook",
                       "--webhook-delay", "0.2",
                       *(f"--error-phone={phone}={NOT_ZALO}" for phone in failing)],
                      tmp, tmp / "zalo.log", env)
        procs.append(zalo)
        facebook = _spawn(["sim", "facebook", "--port", "0",
                           *(f"--page={page_id}={token}" for _, page_id, _, _, token in PAGES)],
                          tmp, tmp / "facebook.log", env)
        procs.append(facebook)
        smsc_port = int(_first_line(smsc, "loa sim smsc").rsplit(":", 1)[1])
        zalo_url = _first_line(zalo, "loa sim zalo").rsplit(" ", 1)[1]
        facebook_url = _first_line(facebook, "loa sim facebook").rsplit(" ", 1)[1]

        config = tmp / "loa.toml"
        config.write_text(_config(smsc_port, zalo_url, tmp, numbering.carriers, facebook_url),
                          encoding="utf-8")
        tokens = {}
        for user, role in (("olga", "operator"), ("carol", "approver"), ("vic", "viewer"),
                           ("root", "admin")):
            out = _loa("token", "create", "--config", str(config), "--user", user, "--role",
                       role, cwd=tmp, env=env)
            tokens[user] = out.strip().splitlines()[-1]
        audience = tmp / "audience.csv"
        audiencegen.generate(audience, RECIPIENTS, seed=9, numbering=numbering,
                             province=province, zalo_accounts=RECIPIENTS * 9 // 10)
        _loa("audience", "import", str(audience), "--redis", redis_server.url, cwd=tmp, env=env)

        plan = quiet_plan(tmp / "plan.toml", dt.datetime.now(dt.UTC))
        run = _spawn(["run", "--config", str(config), "--port", str(port), "--redis",
                      redis_server.url, "--plan", str(plan)], tmp, tmp / "loa-run.log", env)
        procs.append(run)
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/readyz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if run.poll() is not None:
                pytest.fail("loa run exited: " + (tmp / "loa-run.log").read_text())
            assert time.monotonic() < deadline, "loa run did not answer in 30 s"
            time.sleep(0.1)
        yield Console(base, tokens, failing, facebook_url)
    finally:
        for proc in reversed(procs):
            _stop(proc)


@pytest.fixture(scope="module")
def browser(console: Console) -> Iterator[Browser]:
    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield launched
        finally:
            launched.close()


class Tab:
    """A browser tab (its own context: its own sessionStorage) and what went wrong in it."""

    def __init__(self, browser: Browser, console: Console, *, phone: bool = False) -> None:
        viewport: ViewportSize = ({"width": 390, "height": 844} if phone
                                  else {"width": 1280, "height": 860})
        self.context = browser.new_context(viewport=viewport, locale="vi-VN",
                                           timezone_id="Asia/Ho_Chi_Minh",
                                           device_scale_factor=1)
        self.context.set_default_timeout(WAIT_MS)
        self.page = self.context.new_page()
        self.console = console
        self.problems: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        self.page.on("dialog", self._dialog)

    def _console(self, message: ConsoleMessage) -> None:
        # refused API calls (401, 403, 404) are logged by the browser as failed loads
        if message.type in ("error", "warning") and "Failed to load resource" not in message.text:
            self.problems.append(f"console {message.type}: {message.text}")

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def open(self, path: str = "/") -> Page:
        self.page.goto(self.console.base + path)
        return self.page

    def sign_in(self, user: str) -> Page:
        page = self.open()
        page.get_by_label("Mã truy cập").fill(self.console.tokens[user])
        page.get_by_role("button", name="Đăng nhập").click()
        expect(page.locator("#who-name")).to_have_text(user)
        return page

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    def close(self) -> None:
        """Close, and fail on errors in the page (a Content-Security-Policy or Trusted Types
        violation, an exception) and on any JavaScript dialog."""
        self.context.close()
        assert not self.problems, self.problems
        assert not self.dialogs, self.dialogs


def card(page: Page, title: str) -> Locator:
    return page.locator("li.campaign").filter(
        has=page.get_by_role("heading", name=title, exact=True))


def wait_state(console: Console, title: str, states: set[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while (state := console.campaign(title)["state"]) not in states:
        assert time.monotonic() < deadline, f"{title}: still {state}"
        time.sleep(0.2)


def test_sign_in_and_set_the_level(browser: Browser, console: Console) -> None:
    tab = Tab(browser, console)
    page = tab.open("/")
    assert page.url == console.base + "/console/"
    assert page.locator("html").get_attribute("lang") == "vi"
    expect(page.get_by_role("heading", name="Đăng nhập")).to_be_visible()
    expect(page.get_by_label("Mã truy cập")).to_be_focused()
    tab.shot("1-sign-in")

    page.get_by_label("Mã truy cập").fill("loa_not-a-token")
    page.get_by_label("Mã truy cập").press("Enter")  # the keyboard does what the button does
    expect(page.locator("#status")).to_have_text("Mã truy cập không đúng hoặc đã bị thu hồi.")
    assert page.evaluate("sessionStorage.getItem('loa.token')") is None

    page = tab.sign_in("olga")
    expect(page.locator("#who-role")).to_have_text("Cán bộ vận hành")
    # the deployment declares e-mail, app, the portals, the loudspeakers and cell broadcast
    # simulated: every page says they reach no one; no channel is missing
    expect(page.locator("#channel-simulated")).to_have_text(
        "Kênh mô phỏng, không gửi đến ai: Thư điện tử, Ứng dụng Smart Quảng Ninh, Cổng thông "
        "tin, Loa thông minh, Tin nhắn quảng bá theo vùng. Cấu hình "
        "khai báo các kênh này là mô phỏng ([channels] simulate).")
    expect(page.locator("#channel-missing")).to_be_hidden()
    token = console.tokens["olga"]
    assert page.evaluate("sessionStorage.getItem('loa.token')") == token
    assert page.evaluate("localStorage.length") == 0
    assert page.evaluate("document.cookie") == ""
    assert token not in page.url
    unlabelled = page.evaluate("""[...document.querySelectorAll("input, select, textarea")]
        .filter((field) => field.labels.length === 0).map((field) => field.id)""")
    assert unlabelled == []

    expect(page.locator("#level-value")).to_have_text("Chưa đặt cấp độ")
    page.get_by_label("Số ca mắc", exact=True).fill("42")
    expect(page.locator("#level-cases-hint")).to_contain_text("Cấp 3 — Cấp độ III")
    page.get_by_role("button", name="Đặt cấp độ").click()
    expect(page.locator("#status")).to_have_text("Hãy ghi lý do thay đổi cấp độ.")
    page.get_by_label("Lý do (bắt buộc)").fill("Báo cáo của Sở Y tế lúc 8 giờ")
    page.get_by_role("button", name="Đặt cấp độ").click()
    # a raise waits for a second person, an approver: the level in force is unchanged
    expect(page.locator("#status")).to_have_text(
        "Đã đề xuất cấp 3: chờ người phê duyệt xác nhận.")
    expect(page.locator("#level-value")).to_have_text("Chưa đặt cấp độ")
    expect(page.locator("#pending-card")).to_be_visible()
    expect(page.locator("#pending-by")).to_have_text("olga")
    expect(page.locator("#pending-form")).to_be_hidden()  # an operator confirms nothing

    carol = Tab(browser, console)
    page2 = carol.sign_in("carol")
    expect(page2.locator("#pending-what")).to_contain_text("Đề xuất cấp 3")
    page2.get_by_label("Lý do xác nhận").fill("Đã đối chiếu với CDC")
    page2.get_by_role("button", name="Xác nhận thay đổi cấp độ").click()
    expect(page2.locator("#status")).to_have_text("Cấp 3 đã được xác nhận và có hiệu lực.")
    expect(page2.locator("#pending-card")).to_be_hidden()
    carol.close()

    page.reload()
    expect(page.locator("#level-value")).to_have_text("Cấp 3")
    expect(page.locator("#level-cases")).to_have_text("42")
    expect(page.locator("#level-reason")).to_have_text("Báo cáo của Sở Y tế lúc 8 giờ")
    expect(page.locator("#history-rows tr").first).to_contain_text("olga")
    rows = page.locator("#plan-rows tr")
    expect(rows).to_have_count(8)  # SMS, Zalo, e-mail, app, Facebook, portal, loudspeakers, CBS
    expect(rows.first).to_contain_text("SMS")
    # the Facebook row says which pages its posts go to
    facebook = rows.filter(has=page.get_by_role("rowheader", name="Facebook", exact=True))
    expect(facebook).to_contain_text("Đăng tới: Trang UBND tỉnh Quảng Ninh, Trang TP Cẩm Phả")
    # cell broadcast, simulated here, has no carrier to broadcast
    expect(rows.last).to_contain_text("Tin nhắn quảng bá theo vùng")
    expect(rows.first).to_contain_text("GSM-7, 1 tin SMS")
    expect(rows.first).to_contain_text("goi ngay y te xa, phuong hoac 1900 9095.")  # as sent
    tab.shot("2-level-and-plan")

    status, level = console.api("olga", "GET", "/v1/level")
    assert status == 200 and (level["level"], level["cases"], level["set_by"]) == (3, 42, "olga")
    assert level["confirmed_by"] == "carol"
    tab.close()


def test_create_preview_approve_and_watch_it_complete(browser: Browser, console: Console) -> None:
    olga = Tab(browser, console)
    page = olga.sign_in("olga")
    page.get_by_role("link", name="Tạo chiến dịch").first.click()
    expect(page.get_by_role("heading", name="Tạo chiến dịch", level=1)).to_be_visible()
    title = "Khẩn: Hạ Long giãn cách"
    page.get_by_label("Tiêu đề", exact=True).fill(title)
    page.get_by_role("checkbox", name="Zalo", exact=True).check()
    page.get_by_label("Nội dung tin nhắn").fill(VIETNAMESE)
    page.get_by_label("Mức ưu tiên").select_option("urgent")
    page.get_by_label("Huyện, thị xã, thành phố").select_option("ha-long")
    submit = page.get_by_role("button", name="Tạo chiến dịch")
    expect(submit).to_be_disabled()  # not before a preview
    max_parts = page.get_by_label("Số tin SMS tối đa cho mỗi người (1–10)")
    expect(max_parts).to_have_value("3")
    max_parts.fill("1")
    page.get_by_role("button", name="Xem trước").click()
    expect(page.locator("#status")).to_contain_text(
        "text: 2 parts (UCS-2, 131 characters) is more than max_parts 1")
    expect(submit).to_be_disabled()
    max_parts.fill("3")
    page.get_by_role("button", name="Xem trước").click()
    expect(page.locator("#preview-encoding")).to_have_text("UCS-2 (có dấu, 70 ký tự/tin)")
    expect(page.locator("#preview-parts")).to_have_text("2")
    expect(page.locator("#preview-approval")).to_be_visible()
    expect(page.locator("#preview-carriers tr").first).to_be_visible()
    expect(submit).to_be_enabled()
    olga.shot("3-new-campaign-with-preview")

    status, preview = console.api("olga", "POST", "/v1/preview", {
        "text": VIETNAMESE, "channels": ["sms", "zalo"], "selector": {"districts": ["ha-long"]}})
    assert status == 200, preview
    sms_recipients = preview["channels"]["sms"]["recipients"]
    assert 10 < sms_recipients < RECIPIENTS
    expect(page.locator("#preview-channels tr").first).to_contain_text(str(sms_recipients))
    assert preview["sms"]["pdus"] == sms_recipients * 2  # every part is a PDU
    expect(page.locator("#preview-pdus")).to_have_text(str(preview["sms"]["pdus"]))
    page.get_by_label("Nội dung tin nhắn").press("End")
    page.get_by_label("Nội dung tin nhắn").type("!")
    expect(submit).to_be_disabled()  # changed since the preview
    page.get_by_role("button", name="Xem trước").click()
    expect(submit).to_be_enabled()
    submit.click()
    expect(page.locator("#status")).to_have_text(f"Đã tạo “{title}”: Chờ duyệt.")
    item = card(page, title)
    expect(item.locator(".state")).to_have_text("Chờ duyệt")
    expect(item).to_contain_text("Chờ người duyệt trước khi gửi.")
    expect(item.get_by_role("button", name="Duyệt gửi")).to_be_hidden()  # an operator
    expect(item.get_by_role("button", name="Dừng gửi ngay")).to_be_visible()

    carol = Tab(browser, console)
    page2 = carol.sign_in("carol")
    page2.get_by_role("link", name="Chiến dịch", exact=True).click()
    mine = card(page2, title)
    mine.get_by_role("button", name="Duyệt gửi").click()
    expect(page2.locator("#status")).to_have_text(f"Đã duyệt “{title}”. Tin sẽ được gửi.")
    expect(mine.locator(".state")).to_have_text("Hoàn thành")
    for bar in mine.locator("progress").all():
        expect(bar).to_have_attribute("aria-valuetext", "100%")
        assert bar.get_attribute("value") == bar.get_attribute("max")
    expect(mine).to_contain_text(f"Đã gửi {sms_recipients}")
    expect(mine).to_contain_text("Duyệt bởi carol")
    expect(item.locator(".state")).to_have_text("Hoàn thành")  # olga's tab follows
    done = console.api("olga", "GET", f"/v1/campaigns/{console.campaign(title)['id']}")[1]
    assert done["progress"]["sms"]["sent"] == sms_recipients
    olga.close()
    carol.close()


def test_pause_resume_and_cancel_mid_way(browser: Browser, console: Console) -> None:
    """The whole audience, SMS at a low rate: slow enough to stop mid-way."""
    title = "Thông báo khẩn: hạn chế tụ tập toàn tỉnh"
    status, created = console.api("olga", "POST", "/v1/campaigns", {
        "title": title, "channels": ["sms", "zalo"], "text": VIETNAMESE, "priority": "urgent"})
    assert status == 201 and created["state"] == "pending_approval", created
    assert console.api("carol", "POST", f"/v1/campaigns/{created['id']}/approve")[0] == 200
    olga = Tab(browser, console)
    page = olga.sign_in("olga")
    page.get_by_role("link", name="Chiến dịch", exact=True).click()
    item = card(page, title)
    expect(item.locator(".state")).to_have_text("Đang gửi")
    expect(item).to_contain_text("tin/giây")
    sms = item.locator(".channel").filter(has_text="SMS").locator("progress")
    deadline = time.monotonic() + 20
    while int(sms.get_attribute("value") or 0) < RECIPIENTS // 5:
        assert time.monotonic() < deadline, "a fifth was not sent in 20 s"
        time.sleep(0.1)
    expect(item).to_contain_text("còn khoảng")
    olga.shot("4-campaigns-with-progress")
    page.set_viewport_size({"width": 390, "height": 844})
    olga.shot("5-campaigns-on-a-phone")
    page.set_viewport_size({"width": 1280, "height": 860})

    item.get_by_role("button", name="Tạm dừng").click()
    expect(item.locator(".state")).to_have_text("Tạm dừng")
    item.get_by_role("button", name="Tiếp tục gửi").click()
    expect(item.locator(".state")).to_have_text("Đang gửi")

    item.get_by_role("button", name="Dừng gửi ngay").click()
    dialog = page.get_by_role("dialog", name="Dừng gửi ngay?")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(f"Dừng gửi chiến dịch “{title}” ngay bây giờ?")
    expect(dialog.get_by_role("button", name="Không, quay lại")).to_be_focused()
    page.keyboard.press("Escape")  # the safe answer: nothing happens
    expect(dialog).to_be_hidden()
    expect(item.locator(".state")).to_have_text("Đang gửi")
    item.get_by_role("button", name="Dừng gửi ngay").click()
    olga.shot("6-cancel-confirmation")
    dialog.get_by_role("button", name="Có, dừng gửi ngay").click()
    expect(page.locator("#status")).to_have_text(f"Đã dừng gửi “{title}”.")
    expect(item.locator(".state")).to_have_text("Đã dừng")
    expect(item).to_contain_text("Không gửi")
    expect(item.get_by_role("button")).to_have_count(0)
    wait_state(console, title, {"cancelled"})
    detail = console.api("olga", "GET", f"/v1/campaigns/{created['id']}")[1]
    assert 0 < detail["progress"]["sms"]["sent"] < RECIPIENTS
    olga.close()


def test_an_approver_cannot_approve_their_own_campaign(browser: Browser, console: Console) -> None:
    title = "Tự duyệt"
    status, _ = console.api("carol", "POST", "/v1/campaigns", {
        "title": title, "channels": ["sms"], "text": "Deo khau trang", "priority": "urgent"})
    assert status == 201
    carol = Tab(browser, console)
    page = carol.sign_in("carol")
    page.get_by_role("link", name="Chiến dịch", exact=True).click()
    item = card(page, title)
    item.get_by_role("button", name="Duyệt gửi").click()
    message = "Không thể tự duyệt chiến dịch do chính mình tạo. Cần một người duyệt khác."
    expect(item.get_by_role("alert")).to_have_text(message)
    expect(page.locator("#status")).to_have_text(message)
    expect(item.locator(".state")).to_have_text("Chờ duyệt")
    carol.close()
    console.api("olga", "POST", f"/v1/campaigns/{console.campaign(title)['id']}/cancel")


def test_a_refusal_shows_its_detail_and_marks_the_field(browser: Browser,
                                                        console: Console) -> None:
    """The API's problem details: the console shows `detail` and marks the input `field`
    names, until it is edited."""
    olga = Tab(browser, console)
    page = olga.sign_in("olga")
    page.get_by_role("link", name="Tạo chiến dịch").first.click()
    text = page.get_by_label("Nội dung tin nhắn")
    text.fill(VIETNAMESE)
    page.get_by_label("Số tin SMS tối đa cho mỗi người (1–10)").fill("1")
    page.get_by_role("button", name="Xem trước").click()
    expect(page.locator("#status")).to_have_text(
        "Dữ liệu chưa hợp lệ: text: 2 parts (UCS-2, 131 characters) is more than max_parts 1")
    expect(text).to_have_attribute("aria-invalid", "true")
    expect(text).to_be_focused()
    expect(page.locator("[aria-invalid='true']")).to_have_count(1)
    text.press("End")
    text.type("!")
    expect(text).not_to_have_attribute("aria-invalid", "true")
    olga.close()


def test_a_viewer_sees_no_action_buttons_and_html_shows_as_text(browser: Browser,
                                                                 console: Console) -> None:
    status, _ = console.api("olga", "POST", "/v1/campaigns", {
        "title": HOSTILE, "channels": ["sms"], "text": f"{HOSTILE} Deo khau trang"})
    assert status == 201
    vic = Tab(browser, console)
    page = vic.sign_in("vic")
    expect(page.locator("#who-role")).to_have_text("Người xem")
    expect(page.locator("#level-value")).to_have_text("Cấp 3")
    expect(page.get_by_role("button", name="Đặt cấp độ")).to_have_count(0)
    expect(page.get_by_role("link", name="Tạo chiến dịch")).to_have_count(0)
    page.get_by_role("link", name="Chiến dịch", exact=True).click()
    item = card(page, HOSTILE)
    expect(item.locator(".state")).to_have_text("Chờ duyệt")
    expect(item.locator(".campaign-text")).to_have_text(f"{HOSTILE} Deo khau trang")
    assert page.locator("#campaign-list img").count() == 0
    expect(page.locator("#campaign-list").get_by_role("button")).to_have_count(0)
    page.goto(console.base + "/console/#new")  # not offered, and not reachable either
    expect(page.get_by_role("heading", name="Cấp độ dịch và kế hoạch truyền thông")).to_be_visible()
    vic.close()  # no alert() ran


def test_the_language_switch_and_sign_out(browser: Browser, console: Console) -> None:
    tab = Tab(browser, console, phone=True)
    page = tab.sign_in("olga")
    page.get_by_role("button", name="English").click()
    assert page.locator("html").get_attribute("lang") == "en"
    heading = page.get_by_role("heading", name="Epidemic level and communication plan")
    expect(heading).to_be_visible()
    expect(page.locator("#level-value")).to_have_text("Level 3")
    expect(page.locator("#who-role")).to_have_text("Operator")
    page.get_by_role("link", name="Campaigns", exact=True).click()
    expect(card(page, title="Khẩn: Hạ Long giãn cách").locator(".state")).to_have_text("Completed")
    tab.shot("7-campaigns-in-english-on-a-phone")
    page.reload()  # the choice lasts as long as the tab
    expect(page.locator("#who-role")).to_have_text("Operator")
    page.get_by_role("button", name="Tiếng Việt").click()
    assert page.locator("html").get_attribute("lang") == "vi"
    expect(page.get_by_role("heading", name="Chiến dịch", level=1)).to_be_visible()

    page.get_by_role("button", name="Đăng xuất").click()
    expect(page.locator("#status")).to_have_text("Đã đăng xuất.")
    expect(page.get_by_label("Mã truy cập")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('loa.token')") is None
    expect(page.locator("#campaign-list li")).to_have_count(0)
    expect(page.locator("#channel-notice")).to_be_hidden()
    tab.close()


def _openings(console: Console, count: int, timeout: float = 30) -> list[dict[str, Any]]:
    """The openings of the level in force, once ``count`` channels have decided theirs."""
    deadline = time.monotonic() + timeout
    while True:
        status, openings = console.api("vic", "GET", "/v1/level/openings")
        assert status == 200, openings
        if len(openings) >= count:
            return list(openings)
        assert time.monotonic() < deadline, openings
        time.sleep(0.2)


def test_the_openings_of_the_level_are_shown(browser: Browser, console: Console) -> None:
    """Level 3 was set by the first test; the plan's hours are hours away from now, so every
    opening wave of level 3 (not an urgent level) waits for them, whatever the time of day."""
    openings = _openings(console, 8)
    assert [o["channel"] for o in openings] == ["sms", "zalo", "email", "app", "facebook", "portal",
                                                "loudspeaker", "cell_broadcast"]
    assert {o["outcome"] for o in openings} == {"sent"}
    assert {o["state"] for o in openings} == {"created"}
    vic = Tab(browser, console)
    page = vic.sign_in("vic")
    expect(page.get_by_role("heading", name="Tin mở đầu của cấp độ hiện tại")).to_be_visible()
    expect(page.get_by_role("columnheader", name="Mã đợt gửi")).to_be_visible()
    rows = page.locator("#openings-rows tr")
    expect(rows).to_have_count(8)
    sms = rows.filter(has=page.get_by_role("rowheader", name="SMS", exact=True))
    expect(sms).to_contain_text("Chờ đến giờ gửi")
    expect(sms).to_contain_text(openings[0]["wave"])
    assert openings[0]["wave"].startswith("L3-sms-opening-")
    zalo = rows.filter(has=page.get_by_role("rowheader", name="Zalo", exact=True))
    expect(zalo).to_contain_text(openings[1]["wave"])
    vic.shot("8-level-openings")
    page.get_by_role("button", name="English").click()
    expect(sms).to_contain_text("Waiting for the sending hours")
    page.get_by_role("button", name="Tiếng Việt").click()
    vic.close()


def test_a_plan_campaign_is_paused_resumed_and_cancelled_with_a_reason(
        browser: Browser, console: Console) -> None:
    status, plan_sms = console.api("olga", "GET", "/v1/campaigns/plan-L3-sms")
    assert status == 200 and plan_sms["campaign"]["state"] == "running", plan_sms
    title = plan_sms["campaign"]["title"]
    olga = Tab(browser, console)
    page = olga.sign_in("olga")
    page.get_by_role("link", name="Chiến dịch", exact=True).click()
    item = card(page, title)
    expect(item.locator(".state")).to_have_text("Đang gửi")
    expect(item).to_contain_text("Chờ đến giờ gửi")  # its opening wave, outside the hours
    expect(item.get_by_role("button", name="Tiếp tục gửi")).to_have_count(0)  # not paused

    item.get_by_role("button", name="Tạm dừng").click()
    dialog = page.get_by_role("dialog", name=f"Tạm dừng “{title}”?")
    expect(dialog).to_be_visible()
    reason = dialog.get_by_label("Lý do tạm dừng (bắt buộc)")
    expect(reason).to_be_focused()
    dialog.get_by_role("button", name="Tạm dừng").click()  # no reason yet
    expect(dialog.get_by_role("alert")).to_have_text("Hãy ghi lý do.")
    reason.fill("Số đường dây nóng trong tin bị sai")
    dialog.get_by_role("button", name="Tạm dừng").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#status")).to_have_text(f"Đã tạm dừng “{title}”.")
    expect(item.locator(".state")).to_have_text("Tạm dừng")
    expect(item).to_contain_text("Lý do (olga): Số đường dây nóng trong tin bị sai")
    expect(item.get_by_role("button", name="Tạm dừng")).to_have_count(0)
    expect(item.get_by_role("button", name="Tiếp tục gửi")).to_be_focused()
    detail = console.api("olga", "GET", "/v1/campaigns/plan-L3-sms")[1]["campaign"]
    assert (detail["state"], detail["state_reason"], detail["state_by"]) == (
        "paused", "Số đường dây nóng trong tin bị sai", "olga")

    # resumed meanwhile by someone else: the API's 409 is said in the dialog, in one line
    item.get_by_role("button", name="Tiếp tục gửi").click()
    dialog = page.get_by_role("dialog", name=f"Tiếp tục gửi “{title}”?")
    assert console.api("olga", "POST", "/v1/campaigns/plan-L3-sms/resume",
                       {"reason": "đã sửa"})[0] == 200
    dialog.get_by_label("Lý do tiếp tục gửi (bắt buộc)").fill("Đã sửa số đường dây nóng")
    dialog.get_by_role("button", name="Tiếp tục gửi").click()
    expect(dialog.get_by_role("alert")).to_have_text(
        "Không làm được ở trạng thái hiện tại: campaign plan-L3-sms is running: only a paused "
        "campaign can be resumed")
    dialog.get_by_role("button", name="Không, quay lại").click()
    expect(dialog).to_be_hidden()
    expect(item.locator(".state")).to_have_text("Đang gửi")

    assert console.api("olga", "POST", "/v1/campaigns/plan-L3-sms/pause",
                       {"reason": "kiểm tra lại"})[0] == 200
    expect(item.locator(".state")).to_have_text("Tạm dừng")
    item.get_by_role("button", name="Tiếp tục gửi").click()
    dialog = page.get_by_role("dialog", name=f"Tiếp tục gửi “{title}”?")
    dialog.get_by_label("Lý do tiếp tục gửi (bắt buộc)").fill("Đã sửa số đường dây nóng")
    dialog.get_by_role("button", name="Tiếp tục gửi").click()
    expect(page.locator("#status")).to_have_text(f"Đã tiếp tục gửi “{title}”.")
    expect(item.locator(".state")).to_have_text("Đang gửi")
    assert console.api("olga", "GET", "/v1/campaigns/plan-L3-sms")[1]["campaign"]["state"] \
        == "running"

    item.get_by_role("button", name="Dừng gửi ngay").click()
    dialog = page.get_by_role("dialog", name="Dừng ngay đợt gửi này?")
    expect(dialog).to_contain_text(f"Dừng ngay đợt gửi hiện tại của “{title}”?")
    expect(dialog).to_contain_text("Kế hoạch vẫn gửi lại vào lượt tiếp theo")
    page.keyboard.press("Escape")  # the safe answer: nothing happens
    expect(dialog).to_be_hidden()
    expect(item.locator(".state")).to_have_text("Đang gửi")
    item.get_by_role("button", name="Dừng gửi ngay").click()
    dialog.get_by_label("Lý do dừng đợt gửi (bắt buộc)").fill("Báo động nhầm")
    olga.shot("9-plan-campaign-cancel-with-a-reason")
    dialog.get_by_role("button", name="Có, dừng đợt gửi này").click()
    expect(page.locator("#status")).to_have_text(f"Đã dừng gửi “{title}”.")
    expect(item.locator(".state")).to_have_text("Đã dừng")
    expect(item.get_by_role("button")).to_have_count(0)
    detail = console.api("olga", "GET", "/v1/campaigns/plan-L3-sms")[1]
    assert detail["campaign"]["state"] == "cancelled"
    assert detail["campaign"]["state_reason"] == "Báo động nhầm"
    opening_sms = _openings(console, 8)[0]
    assert (opening_sms["channel"], opening_sms["state"]) == ("sms", "cancelled")

    page.get_by_role("link", name="Cấp độ và kế hoạch").click()
    sms = page.locator("#openings-rows tr").filter(
        has=page.get_by_role("rowheader", name="SMS", exact=True))
    expect(sms).to_contain_text("Đã dừng")
    olga.close()


def test_the_emergency_stop_and_its_lift(browser: Browser, console: Console) -> None:
    olga, vic = Tab(browser, console), Tab(browser, console)
    try:
        page = olga.sign_in("olga")
        viewer = vic.sign_in("vic")
        banner = page.get_by_role("region",
                                  name="Đang dừng khẩn cấp toàn bộ: không kênh nào gửi tin")
        stop = page.get_by_role("button", name="Dừng khẩn cấp toàn bộ")
        expect(stop).to_be_visible()
        expect(banner).to_be_hidden()
        expect(viewer.get_by_role("button", name="Dừng khẩn cấp toàn bộ")).to_have_count(0)

        stop.click()
        dialog = page.get_by_role("dialog", name="Dừng khẩn cấp toàn bộ?")
        expect(dialog).to_contain_text("mọi máy gửi (worker) sẽ ngừng gửi tin trên mọi kênh")
        reason = dialog.get_by_label("Lý do dừng khẩn cấp (bắt buộc)")
        expect(reason).to_be_focused()
        reason.fill("   ")
        dialog.get_by_role("button", name="Dừng khẩn cấp ngay").click()
        expect(dialog.get_by_role("alert")).to_have_text("Hãy ghi lý do.")
        assert console.api("vic", "GET", "/v1/stop")[1]["active"] is False
        page.keyboard.press("Escape")
        expect(dialog).to_be_hidden()
        expect(stop).to_be_focused()
        assert console.api("vic", "GET", "/v1/stop")[1]["active"] is False

        stop.click()
        reason.fill("Tin nhắn gửi nhầm nội dung")
        dialog.get_by_role("button", name="Dừng khẩn cấp ngay").click()
        expect(page.locator("#status")).to_have_text(
            "Đã dừng khẩn cấp toàn bộ: mọi kênh ngừng gửi trong vài giây.")
        expect(banner).to_be_visible()
        expect(banner).to_contain_text("Tin nhắn gửi nhầm nội dung")
        expect(banner.locator("#stop-by")).to_have_text("olga")
        expect(banner.get_by_role("button", name="Gỡ lệnh dừng khẩn cấp")).to_be_focused()
        expect(stop).to_be_hidden()
        status, current = console.api("vic", "GET", "/v1/stop")
        assert status == 200 and current["active"] is True
        assert (current["by"], current["reason"]) == ("olga", "Tin nhắn gửi nhầm nội dung")
        page.get_by_role("link", name="Chiến dịch", exact=True).click()  # on every page
        expect(banner).to_be_visible()
        olga.shot("10-emergency-stop")

        # the viewer's page follows with its refresh: the banner, no button
        viewer_banner = viewer.get_by_role(
            "region", name="Đang dừng khẩn cấp toàn bộ: không kênh nào gửi tin")
        expect(viewer_banner).to_contain_text("Tin nhắn gửi nhầm nội dung")
        expect(viewer.locator("#status")).to_have_text(
            "olga đã ra lệnh dừng khẩn cấp toàn bộ việc gửi tin.")
        expect(viewer_banner.get_by_role("button")).to_have_count(0)

        banner.get_by_role("button", name="Gỡ lệnh dừng khẩn cấp").click()
        dialog = page.get_by_role("dialog", name="Gỡ lệnh dừng khẩn cấp?")
        dialog.get_by_label("Lý do gỡ lệnh dừng (bắt buộc)").fill("Đã dừng chiến dịch gửi nhầm")
        dialog.get_by_role("button", name="Gỡ lệnh dừng, gửi tiếp").click()
        expect(page.locator("#status")).to_have_text(
            "Đã gỡ lệnh dừng khẩn cấp: việc gửi tin tiếp tục.")
        expect(banner).to_be_hidden()
        expect(stop).to_be_visible()
        status, current = console.api("vic", "GET", "/v1/stop")
        assert status == 200 and current["active"] is False
        assert (current["by"], current["reason"]) == ("olga", "Đã dừng chiến dịch gửi nhầm")
        expect(viewer_banner).to_be_hidden()
    finally:
        console.api("olga", "DELETE", "/v1/stop", {"reason": "the test is over"})
    olga.close()
    vic.close()


def test_an_admin_reads_the_audit_log_and_no_one_else_sees_it(browser: Browser,
                                                              console: Console) -> None:
    status, _ = console.api("olga", "POST", "/v1/stop", {"reason": "kiểm tra nhật ký"})
    assert status == 200
    status, _ = console.api("olga", "DELETE", "/v1/stop", {"reason": "xong"})
    assert status == 200
    vic = Tab(browser, console)
    page = vic.sign_in("vic")
    expect(page.get_by_role("link", name="Nhật ký kiểm tra")).to_have_count(0)
    page.goto(console.base + "/console/#audit")  # not offered, and not reachable either
    expect(page.get_by_role("heading", name="Cấp độ dịch và kế hoạch truyền thông")).to_be_visible()
    vic.close()
    root = Tab(browser, console)
    page = root.sign_in("root")
    page.get_by_role("link", name="Nhật ký kiểm tra").click()
    expect(page.get_by_role("heading", name="Nhật ký kiểm tra")).to_be_visible()
    newest = page.locator("#audit-rows tr").first
    expect(newest).to_contain_text("stop.lift")
    expect(newest).to_contain_text("olga")
    expect(newest).to_contain_text("xong")
    expect(page.locator("#audit-rows tr").nth(1)).to_contain_text("đã yêu cầu")
    root.shot("audit-log")
    root.close()


# -- the situation record, the preview's rendered texts, dead letters ------------------------------


def test_the_situation_is_set_and_a_refused_record_shows_its_error_on_the_field(
        browser: Browser, console: Console) -> None:
    olga = Tab(browser, console)
    page = olga.sign_in("olga")
    page.get_by_role("link", name="Tình hình dịch").click()
    expect(page.get_by_role("heading", name="Tình hình dịch", level=1)).to_be_visible()
    if console.api("vic", "GET", "/v1/situation")[0] == 404:
        expect(page.locator("#situation-none")).to_have_text("Chưa đặt tình hình dịch.")
    today = page.get_by_label("Số ca mới trong ngày", exact=True)
    today.fill("50")
    page.get_by_label("Tổng số ca", exact=True).fill("42")
    page.get_by_label("Ngày của số liệu", exact=True).fill("2026-12-07")
    page.get_by_label("Đường dây nóng", exact=True).fill("1900 9095")
    page.get_by_label("Địa bàn có ca mắc", exact=True).select_option(
        ["ha-long", "cam-pha"])
    page.get_by_role("button", name="Thêm trường").click()
    expect(page.get_by_label("Tên trường", exact=True)).to_be_focused()
    page.get_by_label("Tên trường", exact=True).fill("advice")
    page.get_by_label("Nội dung trường", exact=True).fill(f"{HOSTILE} Ở nhà khi có thể")
    save = page.get_by_role("button", name="Lưu tình hình dịch")
    save.click()
    # refused: the API's detail, said in the form and the status line, its field marked
    refusal = "Dữ liệu chưa hợp lệ: cases_today: 50 is more than cases_total 42"
    expect(page.locator("#situation-form").get_by_role("alert")).to_have_text(refusal)
    expect(page.locator("#status")).to_have_text(refusal)
    expect(today).to_have_attribute("aria-invalid", "true")
    expect(today).to_be_focused()
    expect(page.locator("[aria-invalid='true']")).to_have_count(1)
    status, current = console.api("vic", "GET", "/v1/situation")
    assert status == 404 or current["situation"]["cases_today"] != 50, current  # not stored
    today.fill("3")
    expect(today).not_to_have_attribute("aria-invalid", "true")
    save.click()
    expect(page.locator("#status")).to_contain_text("Đã lưu tình hình dịch ngày")
    expect(page.locator("#situation-cases-today")).to_have_text("3")
    expect(page.locator("#situation-cases-total")).to_have_text("42")
    expect(page.locator("#situation-hotline")).to_have_text("1900 9095")
    expect(page.locator("#situation-areas")).to_contain_text("Hạ Long")
    expect(page.locator("#situation-areas")).to_contain_text("Cẩm Phả")
    expect(page.locator("#situation-by")).to_have_text("olga")
    expect(page.locator("#situation-fields dt")).to_have_text("{advice}")
    expect(page.locator("#situation-fields dd")).to_have_text(f"{HOSTILE} Ở nhà khi có thể")
    expect(page.locator("#situation-history-rows tr").first).to_contain_text("olga")
    # the form holds the record in force, to be changed where it changed
    expect(today).to_have_value("3")
    expect(page.get_by_label("Tên trường", exact=True)).to_have_value("advice")
    status, current = console.api("vic", "GET", "/v1/situation")
    assert status == 200 and current["by"] == "olga", current
    record = current["situation"]
    assert sorted(record.pop("areas")) == ["Cẩm Phả", "Hạ Long"], current
    assert record == {"cases_today": 3, "cases_total": 42, "date": "2026-12-07",
                      "hotline": "1900 9095", "fields": {"advice": f"{HOSTILE} Ở nhà khi có thể"}}
    olga.shot("11-situation")
    olga.close()


def test_a_viewer_reads_the_situation_without_its_form(browser: Browser,
                                                       console: Console) -> None:
    vic = Tab(browser, console)
    page = vic.sign_in("vic")
    page.get_by_role("link", name="Tình hình dịch").click()
    expect(page.locator("#situation-cases-total")).to_have_text("42")
    expect(page.locator("#situation-fields dd")).to_have_text(f"{HOSTILE} Ở nhà khi có thể")
    assert page.locator("#view-situation img").count() == 0  # the HTML shows as text
    expect(page.get_by_role("button", name="Lưu tình hình dịch")).to_have_count(0)
    expect(page.get_by_role("button", name="Thêm trường")).to_have_count(0)
    expect(page.locator("#view-situation form")).to_be_hidden()
    page.get_by_role("button", name="English").click()
    expect(page.get_by_role("heading", name="Epidemic situation", level=1)).to_be_visible()
    expect(page.locator("#situation-areas")).to_contain_text("Cẩm Phả")
    expect(page.locator("#situation-none")).to_be_hidden()
    page.get_by_role("button", name="Tiếng Việt").click()
    vic.close()


def test_a_preview_shows_each_text_rendered_from_the_situation(browser: Browser,
                                                                console: Console) -> None:
    text = "Quang Ninh: {new_cases} ca moi, tong {cases} ca. Goi {hotline}."
    status, preview = console.api("olga", "POST", "/v1/preview", {
        "text": text, "channels": ["sms", "email"], "selector": {"districts": ["ha-long"]}})
    assert status == 200, preview
    sms = preview["channels"]["sms"]
    assert sms["text"] == "Quang Ninh: 3 ca moi, tong 42 ca. Goi 1900 9095.", sms
    olga = Tab(browser, console)
    page = olga.sign_in("olga")
    page.get_by_role("link", name="Tạo chiến dịch").first.click()
    page.get_by_role("checkbox", name="Thư điện tử", exact=True).check()
    page.get_by_label("Nội dung tin nhắn").fill(text)
    page.get_by_label("Huyện, thị xã, thành phố").select_option("ha-long")
    page.get_by_role("button", name="Xem trước").click()
    rows = page.locator("#preview-channels tr")
    expect(rows).to_have_count(2)
    expect(page.get_by_role("columnheader", name="Nội dung khi gửi")).to_be_visible()
    sms_row = rows.filter(has_text="SMS")
    expect(sms_row.locator("td.rendered")).to_contain_text(sms["text"])
    expect(sms_row.locator("td.rendered")).to_contain_text(
        f"GSM-7 (không dấu, 160 ký tự/tin) · 1 tin mỗi người · {sms['pdus']} tin SMS")
    email_row = rows.filter(has_text="Thư điện tử")
    expect(email_row.locator("td.rendered")).to_have_text(
        "Quang Ninh: 3 ca moi, tong 42 ca. Goi 1900 9095.")
    olga.shot("12-preview-rendered")
    olga.close()


def test_a_preview_of_a_text_naming_district_shows_the_longest_district_s(
        browser: Browser, console: Console) -> None:
    text = "Nguoi dan {district}: {new_cases} ca moi. Goi {hotline}."
    chosen = ["ha-long", "dong-trieu"]
    status, preview = console.api("olga", "POST", "/v1/preview", {
        "text": text, "channels": ["sms"], "selector": {"districts": chosen}})
    assert status == 200, preview
    sms = preview["channels"]["sms"]
    assert sms["district"] == "Đông Triều" and sms["districts"].keys() == set(chosen)
    assert sms["text"] == "Nguoi dan Đông Triều: 3 ca moi. Goi 1900 9095.", sms
    olga = Tab(browser, console)
    page = olga.sign_in("olga")
    page.get_by_role("link", name="Tạo chiến dịch").first.click()
    page.get_by_label("Nội dung tin nhắn").fill(text)
    page.get_by_label("Huyện, thị xã, thành phố").select_option(chosen)
    page.get_by_role("button", name="Xem trước").click()
    sms_row = page.locator("#preview-channels tr").filter(has_text="SMS")
    expect(sms_row.locator("td.rendered")).to_contain_text(sms["text"])
    expect(sms_row.locator("td.rendered")).to_contain_text(
        "2 bản theo huyện; đây là bản của Đông Triều (tên dài nhất)")
    olga.shot("12b-preview-per-district")
    olga.close()


def _dead_letters(console: Console, wave: str) -> dict[str, Any]:
    status, page = console.api("vic", "GET", f"/v1/waves/{wave}/dead-letters")
    assert status == 200, page
    return dict(page)


def _urgent_zalo_campaign(console: Console, title: str, selector: dict[str, Any]) -> str:
    status, created = console.api("olga", "POST", "/v1/campaigns", {
        "title": title, "channels": ["zalo"], "text": "Hop khan luc 14 gio tai UBND",
        "priority": "urgent", "selector": selector})
    assert status == 201, created
    if created["state"] == "pending_approval":
        assert console.api("carol", "POST", f"/v1/campaigns/{created['id']}/approve")[0] == 200
    return str(created["id"])


def test_dead_letters_are_listed_and_replayed_and_a_viewer_cannot_replay(
        browser: Browser, console: Console) -> None:
    title = "Họp khẩn cán bộ Cẩm Phả"
    campaign = _urgent_zalo_campaign(console, title, {"districts": [FAILING_DISTRICT],
                                                      "kinds": ["official"]})
    wait_state(console, title, {"completed"})
    zalo = console.api("olga", "GET", f"/v1/campaigns/{campaign}")[1]["progress"]["zalo"]
    dead = _dead_letters(console, zalo["wave"])
    assert zalo["dead_lettered"] == dead["total"] == len(console.failing), (zalo, dead)
    assert {d["addr"] for d in dead["letters"]} == set(console.failing)

    olga = Tab(browser, console)
    page = olga.sign_in("olga")
    page.get_by_role("link", name="Chiến dịch", exact=True).click()
    item = card(page, title)
    expect(item.locator(".state")).to_have_text("Hoàn thành")
    n = len(console.failing)
    item.get_by_role("link", name=f"Xem {n} tin gửi lỗi").click()
    expect(page.get_by_role("heading", name=f"Tin gửi lỗi của đợt {zalo['wave']}",
                            level=1)).to_be_visible()
    expect(page.locator("#dead-summary")).to_have_text(f"Có {n} tin gửi lỗi chưa gửi lại.")
    rows = page.locator("#dead-rows tr")
    expect(rows).to_have_count(n)
    for letter in dead["letters"]:
        row = rows.filter(has_text=letter["addr"])
        expect(row).to_contain_text("Zalo")
        expect(row).to_contain_text(str(letter["id"]))
        expect(row).to_contain_text(letter["reason"])
    expect(page.get_by_role("button", name="Trang sau")).to_be_hidden()  # one page
    olga.shot("13-dead-letters")

    page.get_by_role("button", name="Gửi lại các tin lỗi").click()
    dialog = page.get_by_role("dialog", name=f"Gửi lại {n} tin lỗi?")
    expect(dialog).to_contain_text(f"Gửi lại các tin lỗi của đợt {zalo['wave']}")
    reason = dialog.get_by_label("Lý do gửi lại (bắt buộc)")
    expect(reason).to_be_focused()
    page.keyboard.press("Escape")  # the safe answer: nothing happens
    expect(dialog).to_be_hidden()
    assert _dead_letters(console, zalo["wave"])["total"] == n
    page.get_by_role("button", name="Gửi lại các tin lỗi").click()
    dialog.get_by_role("button", name="Có, gửi lại").click()  # no reason yet
    expect(dialog.get_by_role("alert")).to_have_text("Hãy ghi lý do.")
    reason.fill("Zalo đã khắc phục sự cố")
    dialog.get_by_role("button", name="Có, gửi lại").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#status")).to_have_text(f"Đã đưa {n} tin lỗi vào hàng gửi lại.")
    expect(page.locator("#dead-result")).to_have_text(
        f"Kết quả gửi lại: {n} tin vào hàng gửi lại, 0 tin bỏ qua (người nhận đã nhận được "
        "tin), 0 tin đã có SMS thay thế. Đợt gửi đã hoàn thành nay gửi tiếp cho đến khi các "
        "tin này có kết quả.")
    # Zalo refuses them again: they come back as dead letters, tried once more
    deadline = time.monotonic() + 30
    while _dead_letters(console, zalo["wave"])["total"] < n:
        assert time.monotonic() < deadline, "the replayed letters did not fail again in 30 s"
        time.sleep(0.2)
    status, audit = console.api("root", "GET", "/v1/audit?limit=20")
    assert status == 200
    replay = [r for r in audit if r["action"] == "dead_letters.replay"
              and r["outcome"] != "pending"]
    assert replay and replay[0]["target"] == zalo["wave"], audit
    olga.close()

    vic = Tab(browser, console)
    page = vic.sign_in("vic")
    page.get_by_role("link", name="Chiến dịch", exact=True).click()
    card(page, title).get_by_role("link", name=f"Xem {n} tin gửi lỗi").click()
    expect(page.locator("#dead-rows tr")).to_have_count(n)
    expect(page.get_by_role("button", name="Gửi lại các tin lỗi")).to_have_count(0)
    vic.close()


def test_the_dead_letters_of_a_cancelled_wave_are_not_replayed(browser: Browser,
                                                               console: Console) -> None:
    """The whole audience on Zalo (20 a second): cancelled once its first dead letter is in,
    long before it could complete."""
    title = "Cả tỉnh qua Zalo, dừng giữa chừng"
    campaign = _urgent_zalo_campaign(console, title, {})
    deadline = time.monotonic() + 30
    while True:
        progress = console.api("olga", "GET", f"/v1/campaigns/{campaign}")[1]["progress"]
        if "zalo" in progress and progress["zalo"]["dead_lettered"] > 0:
            break
        assert time.monotonic() < deadline, progress
        time.sleep(0.1)
    status, cancelled = console.api("olga", "POST", f"/v1/campaigns/{campaign}/cancel")
    assert status == 200, cancelled
    wave = progress["zalo"]["wave"]
    olga = Tab(browser, console)
    page = olga.sign_in("olga")
    page.goto(f"{console.base}/console/#dead-letters/{wave}")
    expect(page.get_by_role("heading", name=f"Tin gửi lỗi của đợt {wave}")).to_be_visible()
    expect(page.locator("#dead-rows tr").first).to_be_visible()
    page.get_by_role("button", name="Gửi lại các tin lỗi").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Lý do gửi lại (bắt buộc)").fill("Thử gửi lại")
    dialog.get_by_role("button", name="Có, gửi lại").click()
    expect(dialog.get_by_role("alert")).to_have_text(
        f"Không làm được ở trạng thái hiện tại: wave {wave} is cancelled: its dead letters are "
        "not replayed (a cancelled wave sends nothing more)")
    dialog.get_by_role("button", name="Không, quay lại").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#dead-result")).to_be_hidden()
    olga.close()


def _a_level_in_force(console: Console) -> int:
    """The level in force, set to 1 (proposed and confirmed) when there is none."""
    status, level = console.api("vic", "GET", "/v1/level")
    if status == 200 and level["level"] > 0:
        return int(level["level"])
    status, body = console.api("olga", "PUT", "/v1/level", {"level": 1, "reason": "ca đầu"})
    if status == 202:
        status, body = console.api("carol", "POST", "/v1/level/confirm",
                                   {"reason": "đã đối chiếu", "id": body["id"]})
    assert status == 200, body
    return 1


def test_a_plan_text_is_proposed_refused_on_its_field_then_approved_by_another(
        browser: Browser, console: Console) -> None:
    level = _a_level_in_force(console)
    olga = Tab(browser, console)
    page = olga.sign_in("olga")
    expect(page.get_by_role("heading", name="Nội dung tin theo kế hoạch")).to_be_visible()
    page.locator("#texts-channel-input").select_option("sms")
    text = page.get_by_label("Nội dung mới", exact=True)
    text.fill("Rua tay thuong xuyen.")  # an SMS without the hotline: refused on its field
    page.get_by_label("Lý do đề xuất", exact=True).fill(HOSTILE)
    page.get_by_role("button", name="Gửi đề xuất").click()
    expect(page.locator("#texts-error")).to_contain_text("text: must give the hotline")
    expect(text).to_have_attribute("aria-invalid", "true")
    expect(text).to_be_focused()
    written = "Rua tay, deo khau trang. Goi {hotline} neu sot."
    text.fill(written)
    page.get_by_role("button", name="Gửi đề xuất").click()
    expect(page.locator("#status")).to_contain_text("chờ người phê duyệt khác duyệt")
    item = page.locator("li.text-version").first
    expect(item).to_contain_text("Chờ duyệt")
    expect(item).to_contain_text(written)
    expect(item).to_contain_text(HOSTILE)  # the reason, as text
    assert page.locator("#texts-list img").count() == 0
    expect(item.get_by_role("button")).to_have_count(0)  # an operator approves nothing
    version = item.get_attribute("data-version")
    assert version and version.startswith("txt-")
    olga.close()

    carol = Tab(browser, console)
    page = carol.sign_in("carol")
    item = page.locator(f"li.text-version[data-version='{version}']")
    changes = item.locator("details.text-changes")  # who, when, and the diff from the file's
    expect(changes.locator("summary")).to_have_text(
        "Thay đổi so với nội dung trong tệp kế hoạch")
    changes.locator("summary").click()
    expect(changes.locator("pre.text-diff")).to_contain_text(f"+{written}")
    item.get_by_label("Lý do quyết định").fill("đã đối chiếu với đường dây nóng")
    item.get_by_role("button", name="Duyệt nội dung này").click()
    expect(page.locator("#status")).to_have_text(
        f"Đã duyệt {version}: có hiệu lực từ đợt gửi tiếp theo.")
    expect(item).to_contain_text("Đã duyệt bởi carol")
    expect(item.locator(".text-decided")).to_contain_text("lý do: đã đối chiếu với đường dây nóng")
    expect(item.get_by_label("Lý do quyết định")).to_have_count(0)  # decided: no form
    sms_row = page.locator("#plan-rows tr").filter(
        has=page.get_by_role("rowheader", name="SMS", exact=True))
    expect(sms_row).to_contain_text(f"Nội dung đã duyệt ({version})")
    expect(sms_row).to_contain_text("Rua tay, deo khau trang. Goi")
    status, plan = console.api("vic", "GET", "/v1/plan")
    row = next(lv for lv in plan["levels"] if lv["level"] == level)["channels"]["sms"]
    assert status == 200 and (row["origin"], row["version"]) == ("approved", version), row
    carol.shot("14-plan-texts")
    carol.close()


def test_a_rejection_needs_its_reason_and_older_versions_come_page_by_page(
        browser: Browser, console: Console) -> None:
    level = _a_level_in_force(console)
    ids = []
    for n in range(11):  # more than a page of the console's (10)
        status, body = console.api("olga", "POST", "/v1/plan/texts", {
            "level": level, "channel": "sms", "text": f"Ban tin so {n}. Goi {{hotline}} neu sot."})
        assert status == 201, body
        ids.append(body["id"])
    status, listed = console.api("vic", "GET", f"/v1/plan/texts?level={level}&limit=500")
    assert status == 200 and listed["next_cursor"] == "", listed
    every = [v["id"] for v in listed["versions"]]
    assert len(every) > 10 and set(ids) <= set(every)

    carol = Tab(browser, console)
    page = carol.sign_in("carol")
    versions = page.locator("li.text-version")
    more = page.get_by_role("button", name="Xem thêm phiên bản cũ hơn")
    expect(versions).to_have_count(10)
    assert [versions.nth(i).get_attribute("data-version") for i in range(10)] == every[:10]
    newest = page.locator(f"li.text-version[data-version='{every[0]}']")
    # the diff of a version proposed over an approved one names it
    expect(newest.locator("details.text-changes summary")).to_contain_text("phiên bản txt-")
    reason = newest.get_by_label("Lý do quyết định")
    newest.get_by_role("button", name="Từ chối").click()  # no reason: refused in the page
    expect(newest.locator("[role=alert]")).to_have_text("Hãy ghi lý do từ chối.")
    expect(reason).to_have_attribute("aria-invalid", "true")
    expect(reason).to_be_focused()
    status, still = console.api("vic", "GET", f"/v1/plan/texts?level={level}&state=proposed"
                                              "&limit=500")
    assert every[0] in [v["id"] for v in still["versions"]]  # nothing was sent
    reason.fill(f"trùng nội dung {HOSTILE}")
    newest.get_by_role("button", name="Từ chối").click()
    expect(page.locator("#status")).to_have_text(f"Đã từ chối {every[0]}.")
    expect(newest.locator(".text-decided")).to_contain_text(
        "Đã từ chối bởi carol")
    expect(newest.locator(".text-decided")).to_contain_text(
        f"lý do: trùng nội dung {HOSTILE}")
    assert page.locator("#texts-list img").count() == 0
    status, body = console.api("vic", "GET", f"/v1/plan/texts?level={level}&state=rejected")
    assert [v["decision_reason"] for v in body["versions"] if v["id"] == every[0]] == [
        f"trùng nội dung {HOSTILE}"]

    expect(more).to_be_visible()  # the older versions, a page further
    more.click()
    expect(versions).to_have_count(len(every))
    assert [versions.nth(i).get_attribute("data-version")
            for i in range(len(every))] == every
    expect(more).to_be_hidden()
    carol.shot("15-plan-texts-pages")
    carol.close()


def test_the_hotline_looks_a_number_up(browser: Browser, console: Console) -> None:
    title = "Tra cứu: họp khẩn cán bộ"
    _urgent_zalo_campaign(console, title, {"districts": [FAILING_DISTRICT],
                                           "kinds": ["official"]})
    wait_state(console, title, {"completed"})
    phone = console.failing[0]
    status, view = console.api("vic", "GET", f"/v1/recipients/{phone}")
    assert status == 200, view
    [mine] = [w for w in view["waves"] if w["campaign_title"] == title]
    assert mine["outcome"] == "failed" and mine["reason"], mine

    vic = Tab(browser, console)
    page = vic.sign_in("vic")
    page.get_by_role("link", name="Tra cứu số", exact=True).click()
    expect(page.get_by_role("heading", name="Người dân này đã nhận được tin chưa?",
                            level=1)).to_be_visible()
    page.get_by_label("Số điện thoại", exact=True).fill(f"0{phone[2:5]} {phone[5:8]} {phone[8:]}")
    page.get_by_role("button", name="Tra cứu").click()
    expect(page.locator("#recipient-number-title")).to_have_text(phone)
    expect(page.locator("#recipient-zalo")).to_have_text("có")
    row = page.locator("#recipient-rows tr").filter(has_text=title)
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Zalo")
    expect(row).to_contain_text(f"không gửi được: {mine['reason']}")
    vic.shot("16-recipient-lookup")
    page.get_by_label("Số điện thoại", exact=True).fill("12345")
    page.get_by_role("button", name="Tra cứu").click()
    expect(page.locator("#status")).to_contain_text("Đây không phải số di động")
    expect(page.get_by_label("Số điện thoại", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#recipient-result")).to_be_hidden()
    vic.close()


def test_a_campaign_to_an_uploaded_list(browser: Browser, console: Console,
                                        tmp_path: Path) -> None:
    listed = [f"0912 {i:03d} {i * 11 % 1000:03d}" for i in range(14)]
    good = tmp_path / "quan-bar.csv"
    good.write_text("\n".join(["msisdn,ghi chu", *(f"{n},x" for n in listed),
                               "0203 3825 123,co dinh", f"{listed[0]},lan hai"]) + "\n",
                    encoding="utf-8")
    bad = tmp_path / "bad.csv"
    bad.write_text("ten\nAn\n", encoding="utf-8")
    olga = Tab(browser, console)
    page = olga.sign_in("olga")
    page.get_by_role("link", name="Tạo chiến dịch").first.click()
    title = "Những người đến quán bar X"
    page.get_by_label("Tiêu đề", exact=True).fill(title)
    page.get_by_label("Nội dung tin nhắn").fill("Ban da den quan bar X: o nha, goi y te.")
    page.get_by_label("Mức ưu tiên").select_option("urgent")
    picker = page.get_by_label("Hoặc một danh sách số điện thoại (CSV có cột msisdn, hoặc JSON)")
    picker.set_input_files(str(bad))
    page.get_by_role("button", name="Tải danh sách lên").click()
    expect(page.locator("#status")).to_contain_text("no msisdn column")
    expect(picker).to_have_attribute("aria-invalid", "true")
    picker.set_input_files(str(good))
    page.get_by_role("button", name="Tải danh sách lên").click()
    expect(page.locator("#status")).to_have_text("Đã tải danh sách lên: 14 số hợp lệ.")
    expect(page.locator("#new-list-summary")).to_contain_text(
        "Danh sách “quan-bar.csv”: 14 số hợp lệ trên 16 dòng (1 trùng, 1 bị loại).")
    rejects = page.get_by_role("table", name="Các dòng bị loại")
    expect(rejects.locator("tbody tr")).to_have_count(2)
    expect(rejects.locator("tbody tr").first).to_contain_text("16")
    expect(rejects.locator("tbody tr").first).to_contain_text("msisdn:")
    expect(rejects.locator("tbody tr").nth(1)).to_contain_text("17")
    expect(page.get_by_label("Huyện, thị xã, thành phố")).to_be_disabled()
    page.get_by_role("button", name="Xem trước").click()
    expect(page.locator("#preview-channels tr").first).to_contain_text("14")
    expect(page.locator("#preview-approval")).to_be_visible()  # 14 is above the threshold 10
    olga.shot("6-new-campaign-to-a-list")
    page.get_by_role("button", name="Tạo chiến dịch").click()
    expect(page.locator("#status")).to_have_text(f"Đã tạo “{title}”: Chờ duyệt.")
    created = console.campaign(title)
    assert created["audience_size"] == 14 and created["audience_list"].startswith("l-")
    expect(card(page, title)).to_contain_text(f"tới danh sách tải lên {created['audience_list']}")
    status, _ = console.api("carol", "POST", f"/v1/campaigns/{created['id']}/approve")
    assert status == 200
    wait_state(console, title, {"completed"})
    done = console.api("olga", "GET", f"/v1/campaigns/{created['id']}")[1]
    assert done["progress"]["sms"]["sent"] == 14
    status, view = console.api("vic", "GET", "/v1/recipients/" + listed[5].replace(" ", ""))
    assert status == 200 and view["waves"][0]["campaign_title"] == title
    # the list is there to pick for the next campaign, without uploading it again
    page.get_by_role("link", name="Tạo chiến dịch").first.click()
    pick = page.get_by_label("Hoặc chọn một danh sách đã tải lên")
    expect(pick.locator("option")).to_have_count(2)  # "(không dùng danh sách)" and the list
    pick.select_option(created["audience_list"])
    expect(page.locator("#new-list-summary")).to_contain_text("Danh sách “quan-bar.csv”: 14 số")
    expect(page.get_by_label("Huyện, thị xã, thành phố")).to_be_disabled()
    page.get_by_label("Nội dung tin nhắn").fill("Ban da den quan bar X.")
    page.get_by_role("button", name="Xem trước").click()
    expect(page.locator("#preview-channels tr").first).to_contain_text("14")
    page.get_by_role("button", name="Bỏ danh sách").click()
    expect(page.locator("#new-list-report")).to_be_hidden()
    expect(page.get_by_label("Huyện, thị xã, thành phố")).to_be_enabled()
    olga.close()
def _zalo_post(console: Console, events: list[dict[str, Any]]) -> None:
    """Post ``events`` to the webhook as Zalo would (signed with the OA's secret)."""
    body = json.dumps(events).encode()
    stamp = str(events[0]["timestamp"])
    mac = sign("sim-app", body, stamp, "sim-oa-secret")
    request = urllib.request.Request(console.base + "/zalo/webhook", data=body, method="POST",
                                     headers={SIGNATURE_HEADER: f"mac={mac}",
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def test_incoming_messages_are_listed_with_their_opt_outs(
        browser: Browser, console: Console, redis_server: LocalRedis) -> None:
    stamp = str(int(time.time() * 1000))
    _zalo_post(console, [
        {"event_name": "user_send_text", "app_id": "sim-app", "timestamp": stamp,
         "sender": {"id": "zalo-user-41"}, "message": {"text": "Hủy", "msg_id": "in-1"}},
        {"event_name": "unfollow", "app_id": "sim-app", "timestamp": stamp,
         "follower": {"id": "zalo-user-42"}},
        {"event_name": "user_send_text", "app_id": "sim-app", "timestamp": stamp,
         "sender": {"id": "zalo-user-43"}, "message": {"text": HOSTILE, "msg_id": "in-2"}}])

    async def sms_reply() -> None:  # the SMPP path to the store: tests/engine/test_incoming_*
        store = RedisStore(redis_server.url)
        try:
            await store.incoming.add([Incoming(Channel.SMS, "84912000777",
                                               dt.datetime.now(dt.UTC),
                                               text="Xin hỏi điểm xét nghiệm", encoding="ucs2")])
        finally:
            await store.aclose()
    with ThreadPoolExecutor(1) as pool:  # Playwright's loop runs in this thread
        pool.submit(asyncio.run, sms_reply()).result()
    deadline = time.monotonic() + 30
    while True:  # the engine's intake stores the Zalo events within its interval
        status, page = console.api("vic", "GET", "/v1/incoming?limit=500")
        assert status == 200, page
        numbers = {i["number"] for i in page["items"]}
        if {"zalo-user-41", "zalo-user-42", "zalo-user-43", "84912000777"} <= numbers:
            break
        assert time.monotonic() < deadline, page
        time.sleep(0.2)

    vic = Tab(browser, console)
    page = vic.sign_in("vic")
    page.get_by_role("link", name="Tin nhắn đến", exact=True).click()
    expect(page.get_by_role("heading", name="Tin nhắn đến từ người dân", level=1)).to_be_visible()
    rows = page.locator("#incoming-rows tr")
    keyword = rows.filter(has_text="zalo-user-41")
    expect(keyword).to_contain_text("Hủy")
    expect(keyword).to_contain_text("Từ chối (HUY)")
    expect(keyword).to_have_attribute("data-opt-out", "yes")
    unfollow = rows.filter(has_text="zalo-user-42")
    expect(unfollow).to_contain_text("Từ chối (bỏ quan tâm)")
    hostile = rows.filter(has_text="zalo-user-43")
    expect(hostile).to_contain_text(HOSTILE)  # as text, never as markup
    expect(hostile).to_have_attribute("data-opt-out", "no")
    sms = rows.filter(has_text="84912000777")
    expect(sms).to_contain_text("Xin hỏi điểm xét nghiệm")
    expect(sms).to_contain_text("SMS")
    vic.shot("17-incoming")
    page.get_by_label("Lọc theo kênh").select_option("sms")
    expect(rows.filter(has_text="zalo-user-41")).to_have_count(0)
    expect(rows.filter(has_text="84912000777")).to_have_count(1)
    vic.close()


def test_a_campaign_posted_on_the_facebook_pages_of_its_district(browser: Browser,
                                                                  console: Console) -> None:
    """The form offers the outlets the deployment has configured (Facebook; the portal, the
    loudspeakers and cell broadcast are only simulated: they have no page, site or carrier to
    publish to); a Facebook campaign to Cẩm Phả is one post on the province's page and one on
    Cẩm Phả's, approved as a campaign to all its people."""
    before = console.facebook_posts()
    olga = Tab(browser, console)
    page = olga.sign_in("olga")
    page.get_by_role("link", name="Tạo chiến dịch").first.click()
    expect(page.get_by_role("checkbox", name="Facebook", exact=True)).to_be_visible()
    for name in ("Cổng thông tin", "Loa thông minh", "Tin nhắn quảng bá theo vùng"):
        expect(page.get_by_role("checkbox", name=name, exact=True)).to_be_hidden()
    title = "Cẩm Phả: điểm xét nghiệm mới"
    page.get_by_label("Tiêu đề", exact=True).fill(title)
    page.get_by_role("checkbox", name="SMS", exact=True).uncheck()
    page.get_by_role("checkbox", name="Facebook", exact=True).check()
    page.get_by_label("Nội dung tin nhắn").fill(
        "Cẩm Phả mở thêm điểm xét nghiệm tại nhà văn hóa phường Cẩm Trung từ 7 giờ sáng mai.")
    page.get_by_label("Mức ưu tiên").select_option("urgent")  # routine waves wait for the hours
    page.get_by_label("Huyện, thị xã, thành phố").select_option("cam-pha")
    page.get_by_role("button", name="Xem trước").click()
    row = page.locator("#preview-channels tr").filter(
        has=page.get_by_text("Facebook", exact=True))
    expect(row).to_contain_text("2")  # the province's page and Cẩm Phả's
    expect(page.locator("#preview-approval")).to_be_visible()  # all of Cẩm Phả reads it
    page.get_by_role("button", name="Tạo chiến dịch").click()
    expect(page.locator("#status")).to_have_text(f"Đã tạo “{title}”: Chờ duyệt.")
    created = console.campaign(title)
    assert created["channels"] == ["facebook"]

    carol = Tab(browser, console)
    page2 = carol.sign_in("carol")
    page2.get_by_role("link", name="Chiến dịch", exact=True).click()
    card(page2, title).get_by_role("button", name="Duyệt gửi").click()
    expect(card(page2, title).locator(".state")).to_have_text("Hoàn thành")
    after = console.facebook_posts()
    assert {page_id: after.get(page_id, 0) - before.get(page_id, 0)
            for _, page_id, _, _, _ in PAGES} == {"1000000001": 1, "1000000002": 1}
    olga.close()
    carol.close()
