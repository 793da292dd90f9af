"""The operator console without a browser: its files and their security headers, the page as
served, the dictionaries, and the API calls it relies on (``GET /v1/me``, ``GET /v1/plan``).
The console in a real browser: tests/service/test_console_browser.py."""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import re
import tomllib
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from dispatcher.domain.incoming import KINDS as INCOMING_KINDS
from dispatcher.domain.model import CampaignState, Channel
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.domain.suppression import SOURCES
from dispatcher.engine.recipients import OUTCOMES
from dispatcher.service import console
from dispatcher.service.api import ApiConfig, create_app
from dispatcher.service.auth import Role, TokenEntry, hash_token
from dispatcher.service.settings import ChannelSettings, Settings
from dispatcher.store import MemoryStore

NOW = dt.datetime(2024, 3, 5, 3, 0, tzinfo=dt.UTC)
USERS = {"vic": Role.VIEWER, "olga": Role.OPERATOR, "carol": Role.APPROVER, "root": Role.ADMIN}
TOKENS = {user: f"loa_console-token-of-{user}" for user in USERS}
ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "dispatcher" / "service" / "console" / "static"


def auth(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[user]}"}


@pytest.fixture
async def client(tmp_path: Path, plan: Plan, province: Province,
                 numbering: Numbering) -> AsyncIterator[AsyncTestClient[Litestar]]:
    api = ApiConfig(audit_log=str(tmp_path / "audit.jsonl"),
                    tokens=[TokenEntry(u, r, hash_token(TOKENS[u])) for u, r in USERS.items()])
    settings = Settings(channels=ChannelSettings(simulate=list(Channel)))  # sent to no one
    app = create_app(MemoryStore(), settings, plan, province, numbering, api,
                     clock=lambda: NOW)
    async with AsyncTestClient(app) as c:
        yield c


# -- the files ------------------------------------------------------------------------------------


async def test_the_root_and_console_redirect_to_the_page(
        client: AsyncTestClient[Litestar]) -> None:
    for path in ("/", "/console"):
        r = await client.get(path, follow_redirects=False)
        assert r.status_code == 302 and r.headers["location"] == "/console/", path
    r = await client.get("/console/")
    assert r.status_code == 200 and r.headers["content-type"] == "text/html; charset=utf-8"


@pytest.mark.parametrize("name", ["", *console.FILES])
async def test_every_file_is_served_with_a_strict_policy(client: AsyncTestClient[Litestar],
                                                         name: str) -> None:
    r = await client.get(f"/console/{name}")
    assert r.status_code == 200, r.text
    expected = console.MEDIA_TYPES[Path(name or "index.html").suffix]
    assert r.headers["content-type"].split(";")[0] == expected
    policy = r.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"  # no inline script, no eval
    assert directives["style-src"] == "'self'"
    assert directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["form-action"] == "'none'"
    assert directives["require-trusted-types-for"] == "'script'"
    assert "unsafe" not in policy
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert "set-cookie" not in r.headers


@pytest.mark.parametrize("path", ["/console/nope.js", "/console/../pyproject.toml",
                                  "/console/static/console.js", "/console//etc/passwd",
                                  "/console/i18n/fr.json"])
async def test_nothing_else_is_served(client: AsyncTestClient[Litestar], path: str) -> None:
    r = await client.get(path)
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"


async def test_the_console_is_not_in_the_api_schema(client: AsyncTestClient[Litestar]) -> None:
    paths = (await client.get("/schema/openapi.json")).json()["paths"]
    assert not [p for p in paths if p == "/" or p.startswith("/console")]
    assert {"/v1/me", "/v1/plan"} <= set(paths)


class Page(HTMLParser):
    """What the tests check in the page: scripts, inline handlers and styles, and the text of
    every ``data-i18n`` element."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.inline: list[str] = []
        self.texts: list[tuple[str, list[str]]] = []  # (key, text) of each data-i18n element
        self.attrs: list[tuple[str, str, str]] = []  # (attribute, key, value)
        self.lang = ""
        self._open: list[tuple[str, str | None]] = []
        self._script_body = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "html":
            self.lang = a.get("lang") or ""
        if tag == "script":
            self.scripts.append(a)
        if tag == "style":
            self.inline.append("<style>")
        for name, value in attrs:
            if name.startswith("on") or name == "style" or (
                    value and value.strip().lower().startswith("javascript:")):
                self.inline.append(f"{tag} {name}")
        spec = a.get("data-i18n-attr")
        if spec:
            attr, key = spec.split(":")
            self.attrs.append((attr, key, a.get(attr) or ""))
        text_key = a.get("data-i18n")
        if text_key:
            self.texts.append((text_key, []))
        self._open.append((tag, text_key))

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            opened, _ = self._open.pop()
            if opened == tag:
                break

    def handle_data(self, data: str) -> None:
        if self._open and self._open[-1][0] == "script":
            self._script_body += data
        if self._open and self._open[-1][1]:
            self.texts[-1][1].append(data)


def _dictionary(lang: str) -> dict[str, str]:
    data: dict[str, str] = json.loads((STATIC / "i18n" / f"{lang}.json").read_text("utf-8"))
    return data


async def test_the_page_is_served_in_vietnamese_without_inline_code(
        client: AsyncTestClient[Litestar]) -> None:
    page = Page()
    page.feed((await client.get("/console/")).text)
    assert page.lang == "vi"
    assert page.scripts == [{"src": "console.js", "defer": None}]
    assert not page._script_body.strip()
    assert not page.inline, page.inline
    vi = _dictionary("vi")
    assert page.texts, "no data-i18n element"
    for key, texts in page.texts:
        assert "".join(texts) == vi[key], key
    assert page.attrs and all(value == vi[key] for _, key, value in page.attrs)


def test_the_script_writes_no_html() -> None:
    script = (STATIC / "console.js").read_text("utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                 "new Function", "localStorage.setItem", "document.cookie"):
        assert sink not in script, sink
    assert "sessionStorage.setItem(TOKEN_KEY" in script


def test_the_dictionaries_cover_every_string() -> None:
    vi, en = _dictionary("vi"), _dictionary("en")
    assert set(vi) == set(en)
    for key in vi:
        assert set(re.findall(r"\{(\w+)\}", vi[key])) == set(re.findall(r"\{(\w+)\}", en[key])), key
    assert all(value.strip() for value in [*vi.values(), *en.values()])
    script = (STATIC / "console.js").read_text("utf-8")
    page = (STATIC / "index.html").read_text("utf-8")
    used = set(re.findall(r"""\bt\(\s*["']([\w.]+)["']""", script))
    used |= set(re.findall(r'data-i18n="([\w.-]+)"', page))
    used |= set(re.findall(r'data-i18n-attr="[a-z-]+:([\w.-]+)"', page))
    used |= {f"role.{r}" for r in Role} | {f"state.{s}" for s in CampaignState}
    used |= {f"channel.{c}" for c in Channel} | {f"weekday.{d}" for d in range(7)}
    used |= {f"recipient.outcome.{o}" for o in OUTCOMES}
    used |= {f"incoming.kind.{k}" for k in INCOMING_KINDS}
    used |= {f"supp.source.{s}" for s in SOURCES}
    used |= set(re.findall(r'"(action\.\w+)"', script))
    used |= {"preview.gsm7", "preview.ucs2", "new.need_title", "new.need_channel",
             "new.need_text", "new.need_max_parts"}
    assert used - set(vi) == set()
    assert set(vi) - used == set(), "strings no code uses"


def test_the_files_are_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["dispatcher.service.console"]
    for name in console.FILES:
        assert any(fnmatch.fnmatch(f"static/{name}", p) for p in patterns), name
        assert (STATIC / name).is_file()


# -- the API calls the console relies on ------------------------------------------------------


async def test_me_says_who_and_which_role(client: AsyncTestClient[Litestar]) -> None:
    for user, role in USERS.items():
        r = await client.get("/v1/me", headers=auth(user))
        assert r.status_code == 200 and r.json() == {"user": user, "role": role.value}
    for headers in ({}, {"Authorization": "Bearer loa_unknown"}, {"Authorization": "Basic x"}):
        r = await client.get("/v1/me", headers=headers)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert r.headers["content-type"] == "application/problem+json"
    r = await client.get("/v1/me?user=root", headers=auth("vic"))
    assert r.status_code == 400


async def test_plan_answers_every_role(client: AsyncTestClient[Litestar], plan: Plan,
                                       province: Province) -> None:
    answers = []
    for user in USERS:
        r = await client.get("/v1/plan", headers=auth(user))
        assert r.status_code == 200, r.text
        answers.append(r.json())
    assert all(a == answers[0] for a in answers)
    doc = answers[0]
    assert doc["name"] == plan.name and doc["timezone"] == "Asia/Ho_Chi_Minh"
    assert doc["sending_hours"] == ["07:00", "21:00"]
    assert doc["province"] == province.name
    assert [d["id"] for d in doc["districts"]] == list(province.districts)
    assert [level["level"] for level in doc["levels"]] == sorted(plan.levels)
    three = doc["levels"][2]
    assert (three["min_cases"], three["max_cases"]) == (11, 150)
    sms = three["channels"]["sms"]
    assert (sms["encoding"], sms["parts"], sms["period_days"]) == ("gsm7", 1, 3)
    assert sms["strip_diacritics"] is True and "1900 9095" in sms["text"]
    assert sms["template"].startswith("Quảng Ninh: dịch") and sms["text"].startswith("Quang Ninh")
    assert (doc["hotline"], doc["sms_diacritics"], doc["sms_max_parts"]) == (
        "1900 9095", "strip", 3)
    assert [level["sms_diacritics"] for level in doc["levels"]] == ["strip"] * 4
    assert sms["times"] == [{"day": 0, "time": "09:30"}]
    assert dt.datetime.fromisoformat(sms["next"]) >= NOW
    zalo = three["channels"]["zalo"]
    assert zalo["encoding"] is None and zalo["slots"] == ["08:00", "12:00", "17:00"]
    assert doc["levels"][3]["max_cases"] is None
    assert (await client.get("/v1/plan", headers={"Authorization": "Bearer nope"})
            ).status_code == 401
    assert (await client.get("/v1/plan")).status_code == 401
