"""``[facebook]`` in the deployment settings: the pages become the channel's targets, their
tokens come from the environment at start (a missing one stops the start naming the page, one
written in the file is refused), and the channel registry builds its adapter."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.facebook import FacebookAdapter
from dispatcher.domain.errors import ConfigError
from dispatcher.domain.model import Channel
from dispatcher.service import channels
from dispatcher.service.channels import Mode
from dispatcher.service.settings import load_settings

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
