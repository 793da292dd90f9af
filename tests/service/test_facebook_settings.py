"""``[facebook]`` in the deployment settings: the pages become the channel's targets, their
tokens come from the environment at start (a missing one stops the start naming the page, one
written in the file is refused), the channel registry builds its adapter, and the API's plan
and preview name the pages."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from adapters.facebook import FacebookAdapter
from bench import audiencegen
from dispatcher.domain.audience import Validator
from dispatcher.domain.errors import ConfigError
from dispatcher.domain.model import Channel
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.engine.importer import import_audience
from dispatcher.service import channels
from dispatcher.service.api import ApiConfig, create_app
from dispatcher.service.auth import Role, TokenEntry, hash_token
from dispatcher.service.channels import Mode
from dispatcher.service.cli import main
from dispatcher.service.settings import load_settings
from dispatcher.store import MemoryStore

PAGES = """\
[facebook]
graph_url = "http://127.0.0.1:1"

[[facebook.pages]]
id = "province"
page_id = "1001"
name = "Trang UBND tỉnh Quảng Ninh"
token_env = "LOA_T_FB_PROVINCE"

[[facebook.pages]]
id = "ha-long"
page_id = "1003"
name = "Trang TP Hạ Long"
district = "ha-long"
token_env = "LOA_T_FB_HA_LONG"
"""
ENV = {"LOA_T_FB_PROVINCE": "tok-province-7a1", "LOA_T_FB_HA_LONG": "tok-ha-long-2c9"}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "loa.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_pages_are_the_targets_of_the_channel(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, PAGES), env=ENV)
    assert [(t.id, t.district) for t in settings.targets(Channel.FACEBOOK)] == [
        ("province", ""), ("ha-long", "ha-long")]
    assert settings.targets(Channel.PORTAL) == []
    assert settings.outlet(Channel.FACEBOOK) is settings.facebook
    assert settings.facebook is not None
    tokens = [page.token for page in settings.facebook.pages]
    assert tokens == ["tok-province-7a1", "tok-ha-long-2c9"]
    assert "tok-province" not in repr(settings)  # tokens never show
    assert channels.modes(settings)[Channel.FACEBOOK] is Mode.CONFIGURED
    built = channels.build(settings, channels=[Channel.FACEBOOK], env=ENV)
    assert isinstance(built[Channel.FACEBOOK], FacebookAdapter)


def test_a_missing_token_stops_the_start_naming_the_page(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(write(tmp_path, PAGES), env={"LOA_T_FB_PROVINCE": "x"})
    line = str(refused.value)
    assert "\n" not in line
    assert "facebook.pages.ha-long.token_env" in line and "LOA_T_FB_HA_LONG" in line


def test_a_token_written_in_the_file_is_refused(tmp_path: Path) -> None:
    text = PAGES.replace('token_env = "LOA_T_FB_HA_LONG"', 'token_env = "LOA_T_FB_HA_LONG"\n'
                                                           'token = "EAAB-written-here"')
    with pytest.raises(ConfigError, match=r"facebook.pages\[1\].token: a secret is not "
                                          r"written in this file"):
        load_settings(write(tmp_path, text), env=ENV)


@pytest.mark.parametrize(("change", "words"), [
    ('district = "ha-long"', r"facebook.pages\[1\].district: 'hai-phong' \(ha-long\) is not "
                             "a district of Quảng Ninh"),
    ('id = "ha-long"', "id 'province' is given twice"),
    ('page_id = "1003"', "page_id 'ha long' is not a Facebook page id"),
])
def test_a_wrong_page_is_refused_with_its_key(tmp_path: Path, change: str, words: str) -> None:
    wrong = {'district = "ha-long"': 'district = "hai-phong"', 'id = "ha-long"': 'id = "province"',
             'page_id = "1003"': 'page_id = "ha long"'}[change]
    with pytest.raises(ConfigError, match=words):
        load_settings(write(tmp_path, PAGES.replace(change, wrong)), env=ENV)


def test_without_the_table_the_channel_is_missing(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, ""), env={})
    assert channels.modes(settings)[Channel.FACEBOOK] is Mode.MISSING
    assert settings.targets(Channel.FACEBOOK) == []


# -- the API: the plan's rows and the preview name the pages -------------------------------------

TOKEN = "loa_test-token-of-olga"


@contextlib.asynccontextmanager
async def _client(tmp_path: Path, plan: Plan, province: Province, numbering: Numbering,
                  extra: str = "") -> AsyncIterator[AsyncTestClient[Litestar]]:
    store = MemoryStore()
    audience = tmp_path / "audience.csv"
    audiencegen.generate(audience, 50, seed=5, numbering=numbering, province=province)
    await import_audience(audience, store, Validator(numbering, province), chunk_size=64)
    settings = load_settings(write(tmp_path, PAGES + '[channels]\nsimulate = ["sms", "zalo", '
                                             '"email", "app"]\n' + extra), env=ENV)
    api = ApiConfig(audit_log=str(tmp_path / "audit.jsonl"),
                    tokens=[TokenEntry("olga", Role.OPERATOR, hash_token(TOKEN))])
    app = create_app(store, settings, plan, province, numbering, api)
    async with AsyncTestClient(app) as c:
        yield c


@pytest.fixture
async def client(tmp_path: Path, plan: Plan, province: Province,
                 numbering: Numbering) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with _client(tmp_path, plan, province, numbering) as c:
        yield c


async def test_the_preview_says_approval_as_the_campaign_will_need_it(
        tmp_path: Path, plan: Plan, province: Province, numbering: Numbering) -> None:
    """A post on the province's page reaches everyone of the districts chosen: the preview
    counts them against the threshold as the campaign's creation does, not the one page."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with _client(tmp_path, plan, province, numbering,
                       "[engine]\napproval_threshold = 10\n") as c:
        body = {"text": "Khuyến cáo phòng dịch", "channels": ["facebook"]}
        r = await c.post("/v1/preview", headers=headers, json=body)
        assert r.status_code == 200, r.text
        assert r.json()["channels"]["facebook"]["recipients"] == 2  # two pages
        assert r.json()["needs_approval"] is True  # 50 people of the province
        r = await c.post("/v1/campaigns", headers=headers, json={"title": "Khuyến cáo", **body})
        assert r.status_code == 201 and r.json()["state"] == "pending_approval", r.text


async def test_the_plan_and_the_preview_name_the_pages(
        client: AsyncTestClient[Litestar]) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    plan = (await client.get("/v1/plan", headers=headers)).json()
    level4 = next(level for level in plan["levels"] if level["level"] == 4)
    assert [t["id"] for t in level4["channels"]["facebook"]["targets"]] == ["province",
                                                                           "ha-long"]
    assert level4["channels"]["sms"]["targets"] is None
    r = await client.post("/v1/preview", headers=headers, json={
        "text": "Tin cho {district}", "channels": ["facebook", "sms"],
        "selector": {"districts": ["cam-pha"]}})
    assert r.status_code == 200, r.text
    facebook = r.json()["channels"]["facebook"]
    # the province's page: the district's page is Hạ Long's, not Cẩm Phả's
    assert facebook["recipients"] == 1 and [t["id"] for t in facebook["targets"]] == ["province"]
    assert r.json()["channels"]["sms"]["targets"] is None


def test_loa_plan_show_names_the_pages_of_the_facebook_rows(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("LOA_REDIS_URL", raising=False)
    config = write(tmp_path, PAGES)
    assert main(["plan", "show", "--level", "4", "--config", str(config)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "đăng tới: Trang UBND tỉnh Quảng Ninh, Trang TP Hạ Long" in out
    assert main(["plan", "show", "--level", "4", "--lang", "en"]) == 0  # no [facebook]
    assert "no target configured" in " ".join(capsys.readouterr().out.split())


async def test_a_campaign_may_name_every_channel_and_one_with_no_page_is_refused(
        client: AsyncTestClient[Litestar]) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    everything = ["sms", "zalo", "email", "app", "facebook"]
    r = await client.post("/v1/campaigns", headers=headers, json={
        "title": "Khuyến cáo", "text": "Deo khau trang. Goi 1900 9095.", "channels": everything})
    assert r.status_code == 201, r.text
    assert r.json()["channels"] == everything
    r = await client.post("/v1/campaigns", headers=headers, json={
        "title": "Khuyến cáo", "text": "Tin", "channels": ["portal"]})
    assert r.status_code == 422 and "portal" in r.text  # no [portal]: fail closed
