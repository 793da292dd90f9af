"""The public routes (dispatcher.service.api.public): the CAP feed, each message and the public
notice, without a token, cacheable, and served by `loa run`."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from lxml import etree

from bench.localredis import free_port
from dispatcher.domain import capfeed
from dispatcher.domain.cap import CapSettings
from dispatcher.domain.model import Channel
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.engine.cap import CapPublisher
from dispatcher.engine.level import set_level
from dispatcher.service.api import ApiConfig, create_app
from dispatcher.service.auth import Role, TokenEntry, hash_token
from dispatcher.service.settings import ChannelSettings, Settings
from dispatcher.store import MemoryStore
from tests.capschema import assert_valid, parsed
from tests.conftest import loa_process

NOW = dt.datetime(2026, 3, 1, 1, 0, tzinfo=dt.UTC)
CAP = CapSettings(sender="soyte@quangninh.gov.vn", sender_name="Sở Y tế tỉnh Quảng Ninh",
                  cache_seconds=60)
ATOM = {"a": capfeed.ATOM}


class Public:
    def __init__(self, client: AsyncTestClient[Litestar], store: MemoryStore,
                 publisher: CapPublisher, plan: Plan) -> None:
        self.client = client
        self.store = store
        self.publisher = publisher
        self.plan = plan

    async def level(self, level: int, minutes: float) -> None:
        when = NOW + dt.timedelta(minutes=minutes)
        await set_level(self.store, self.plan, now=when, level=level)
        await self.publisher.tick(when)


async def _public(tmp_path: Path, plan: Plan, province: Province, numbering: Numbering,
                  cap: CapSettings) -> AsyncIterator[Public]:
    store = MemoryStore()
    api = ApiConfig(audit_log=str(tmp_path / "audit.jsonl"),
                    tokens=[TokenEntry("vic", Role.VIEWER, hash_token("loa_token-of-vic"))])
    settings = Settings(channels=ChannelSettings(simulate=list(Channel)), cap=cap)
    app = create_app(store, settings, plan, province, numbering, api,
                     clock=lambda: NOW + dt.timedelta(minutes=30))
    async with AsyncTestClient(app) as client:
        yield Public(client, store, CapPublisher(store, plan, province, cap), plan)


@pytest.fixture
async def public(tmp_path: Path, plan: Plan, province: Province,
                 numbering: Numbering) -> AsyncIterator[Public]:
    async for found in _public(tmp_path, plan, province, numbering, CAP):
        yield found


async def test_the_feed_needs_no_token_and_lists_every_message_newest_first(
        public: Public) -> None:
    r = await public.client.get("/public/cap/feed.xml")
    assert r.status_code == 200 and r.headers["content-type"].startswith(capfeed.MEDIA)
    assert etree.fromstring(r.content).findall("a:entry", ATOM) == []
    await public.level(2, 0)
    await public.level(4, 5)
    await public.level(0, 10)
    r = await public.client.get("/public/cap/feed.xml")
    assert r.status_code == 200
    root = etree.fromstring(r.content)
    ids = [e.findtext("a:id", namespaces=ATOM) for e in root.findall("a:entry", ATOM)]
    assert len(ids) == 3 and all(i and i.startswith("http://testserver.local/public/cap/loa.level.")
                                 for i in ids)
    read = parsed(r.content)
    assert [a["cap_message_type"] for a in read] == ["Cancel", "Update", "Alert"]
    assert str(read[0]["cap_references"]).split(",")[1] == ids[1].rsplit("/", 1)[1][:-4]
    for url in ids:  # each entry's link answers the message itself, valid CAP 1.2
        assert url is not None
        m = await public.client.get(url.removeprefix("http://testserver.local"))
        assert m.status_code == 200 and m.headers["content-type"].startswith(
            "application/cap+xml")
        assert_valid(m.content)
        assert "cache-control" in m.headers and "etag" in m.headers


async def test_answers_are_cacheable_and_304_when_unchanged(public: Public) -> None:
    await public.level(3, 0)
    for path in ("/public/cap/feed.xml", "/public/notice", "/public/notice.json"):
        r = await public.client.get(path)
        assert r.status_code == 200, path
        assert r.headers["cache-control"] == "public, max-age=60"
        assert r.headers["access-control-allow-origin"] == "*"
        etag, modified = r.headers["etag"], r.headers["last-modified"]
        assert modified == "Sun, 01 Mar 2026 01:00:00 GMT"
        again = await public.client.get(path, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
        r = await public.client.get(path, headers={"If-Modified-Since": modified})
        assert r.status_code == 304, path
        r = await public.client.get(path, headers={"If-None-Match": '"other"',
                                                   "If-Modified-Since": modified})
        assert r.status_code == 200 and r.content, path  # If-None-Match decides
    r = await public.client.get("/public/notice.json")
    etag = r.headers["etag"]
    await public.level(4, 1)  # a new message: the copy is stale
    r = await public.client.get("/public/notice.json", headers={"If-None-Match": etag})
    assert r.status_code == 200 and r.json()["level"] == 4


async def test_the_notice_says_the_level_its_meaning_the_message_and_the_hotline(
        public: Public, plan: Plan) -> None:
    r = await public.client.get("/public/notice.json")
    assert r.status_code == 200 and r.json()["level"] is None and r.json()["message"] is None
    await public.level(3, 0)
    r = await public.client.get("/public/notice.json")
    doc = r.json()
    assert doc["level"] == 3 and doc["level_name"] == "Cấp độ III"
    assert doc["meaning"] == plan.level(3).trigger and doc["hotline"] == "1900 9095"
    assert doc["message"]["text"] == plan.level(3).rules[Channel.ZALO].row.template
    assert doc["message"]["url"].startswith("/public/cap/loa.level.L3-")
    r = await public.client.get("/public/notice")
    assert r.status_code == 200 and r.headers["content-type"] == "text/html; charset=utf-8"
    page = r.text
    assert "Cấp độ III" in page and plan.level(3).trigger in page and "1900 9095" in page
    assert "<script" not in page and "http" not in page  # nothing from elsewhere
    assert len(r.content) < 8192
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert "x-frame-options" not in r.headers  # a splash page may frame it


async def test_unknown_messages_are_404_problems(public: Public) -> None:
    for path in ("/public/cap/loa.none.xml", "/public/cap/loa.none", "/public/cap/x.json"):
        r = await public.client.get(path)
        assert r.status_code == 404, path
        assert r.headers["content-type"] == "application/problem+json"


async def test_without_a_sender_the_feed_is_404_and_the_notice_shows_the_level(
        tmp_path: Path, plan: Plan, province: Province, numbering: Numbering) -> None:
    async for public in _public(tmp_path, plan, province, numbering, CapSettings()):
        await public.level(2, 0)
        r = await public.client.get("/public/cap/feed.xml")
        assert r.status_code == 404 and "[cap] sender" in r.json()["detail"]
        r = await public.client.get("/public/notice.json")
        assert r.status_code == 200 and r.json()["level"] == 2 and r.json()["message"] is None


def _get(url: str, token: str = "") -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"}
                                     if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _loa(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dispatcher.service.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120, check=False)


def test_loa_run_publishes_the_level_and_serves_the_public_routes(tmp_path: Path,
                                                                   redis_url: str) -> None:
    config = tmp_path / "loa.toml"
    assert _loa("config", "init", str(config), cwd=tmp_path).returncode == 0
    text = config.read_text(encoding="utf-8").replace(
        "level_single_person = false", "level_single_person = true", 1)
    config.write_text(text + '\n[channels]\nsimulate = ["sms", "zalo", "email", "app", '
                      '"facebook", "loudspeaker", "cell_broadcast"]\n'
                      '\n[cap]\nsender = "soyte@quangninh.gov.vn"\n'
                      'base_url = "https://canhbao.quangninh.example"\n', encoding="utf-8")
    token = _loa("token", "create", "--config", str(config), "--user", "olga", "--role",
                 "operator", cwd=tmp_path).stdout.strip().splitlines()[-1]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with loa_process(["run", "--config", str(config), "--port", str(port), "--redis",
                      redis_url], cwd=tmp_path, ready=[f"{base}/healthz"],
                     env=dict(os.environ)) as proc:
        body = json.dumps({"level": 4, "reason": "trên 150 ca"}).encode()
        request = urllib.request.Request(f"{base}/v1/level", data=body, method="PUT", headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200
        deadline = time.monotonic() + 30
        while True:  # the engine in the same process publishes it
            status, feed = _get(f"{base}/public/cap/feed.xml")
            assert status == 200, feed
            if etree.fromstring(feed).find("a:entry", ATOM) is not None:
                read = parsed(feed)
                break
            assert time.monotonic() < deadline, feed
            time.sleep(0.2)
        assert read[0]["cap_message_type"] == "Alert"
        entry = etree.fromstring(feed).find("a:entry/a:id", ATOM)
        assert entry is not None and entry.text is not None
        assert entry.text.startswith("https://canhbao.quangninh.example/public/cap/loa.level.L4-")
        status, message = _get(f"{base}{entry.text.removeprefix('https://canhbao.quangninh.example')}")
        assert status == 200
        assert_valid(message)
        status, page = _get(f"{base}/public/notice")
        assert status == 200 and "Cấp độ IV" in page.decode()
        status, doc = _get(f"{base}/public/notice.json")
        assert status == 200 and json.loads(doc)["level"] == 4
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    proc.communicate()
