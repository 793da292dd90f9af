"""``[portal]`` in the deployment settings: read with its secrets from the environment, checked
(each fault one line naming its key), its sites the channel's targets, and the registry building
the portal channel from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.portal import PortalAdapter
from dispatcher.domain.errors import ConfigError
from dispatcher.domain.model import Channel
from dispatcher.domain.outlet import Target
from dispatcher.service import channels
from dispatcher.service.channels import Mode
from dispatcher.service.cli import main
from dispatcher.service.settings import load_settings

PORTAL = """
[portal]
timeout = 5

[[portal.sites]]
id = "qn-portal"
name = "Cổng thông tin điện tử tỉnh – chuyên mục Covid-19"
profile = "wordpress"
url = "https://quangninh.gov.vn"
user = "loa"
password_env = "LOA_PORTAL_QN_PASSWORD"
category = 12

[[portal.sites]]
id = "dichvucong"
profile = "signed_json"
url = "https://dichvucong.quangninh.gov.vn/api/notices"
secret_env = "LOA_PORTAL_DVC_SECRET"
"""
ENV = {"LOA_PORTAL_QN_PASSWORD": "abcd EFGH 1234 ijkl MNOP 5678",
       "LOA_PORTAL_DVC_SECRET": "a-long-shared-secret"}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "loa.toml"
    path.write_text(text, encoding="utf-8")
    return path


async def test_the_sites_are_the_channel_s_targets_and_the_registry_builds_it(
        tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, PORTAL), ENV)
    assert settings.targets(Channel.PORTAL) == [
        Target("qn-portal", "Cổng thông tin điện tử tỉnh – chuyên mục Covid-19", ""),
        Target("dichvucong", "", "")]
    assert settings.outlet(Channel.PORTAL) is settings.portal
    portal = settings.portal
    assert portal is not None and portal.timeout == 5
    assert portal.sites[0].password == ENV["LOA_PORTAL_QN_PASSWORD"]
    assert portal.sites[1].secret == ENV["LOA_PORTAL_DVC_SECRET"]
    shown = repr(settings)
    assert ENV["LOA_PORTAL_DVC_SECRET"] not in shown and "abcd EFGH" not in shown
    assert channels.modes(settings)[Channel.PORTAL] is Mode.CONFIGURED
    built = channels.build(settings, channels=[Channel.PORTAL], env={})
    try:
        assert isinstance(built[Channel.PORTAL], PortalAdapter)
    finally:
        await built[Channel.PORTAL].aclose()
    bare = load_settings(None, {})
    assert bare.portal is None and bare.targets(Channel.PORTAL) == []
    assert channels.modes(bare)[Channel.PORTAL] is Mode.MISSING
    assert channels.build(bare, channels=[Channel.PORTAL], env={}) == {}


@pytest.mark.parametrize(("env", "key"), [
    ({"LOA_PORTAL_QN_PASSWORD": "x"}, "portal.sites[1].secret_env"),
    ({"LOA_PORTAL_DVC_SECRET": "x"}, "portal.sites[0].password_env"),
])
def test_a_secret_missing_from_the_environment_names_its_key(
        tmp_path: Path, env: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(write(tmp_path, PORTAL), env)
    assert error.value.key == key and "is not set" in str(error.value)


@pytest.mark.parametrize(("change", "key", "words"), [
    (('secret_env = "LOA_PORTAL_DVC_SECRET"', 'secret = "written-here"'),
     "portal.sites[1].secret", "a secret is not written in this file"),
    (('password_env = "LOA_PORTAL_QN_PASSWORD"', 'password = "written-here"'),
     "portal.sites[0].password", "a secret is not written in this file"),
    (('id = "dichvucong"', 'id = "qn-portal"'), "portal.sites[1].id", "is the id of"),
    (('profile = "signed_json"', 'profile = "json"'), "portal.sites[1].profile",
     "not a profile"),
    (("category = 12", 'category = 12\ndistrict = "nowhere"'),
     "portal.sites[0].district", "is not a district of"),
    (("timeout = 5", "timeout = 0"), "portal.timeout", "must be more than 0"),
    (("timeout = 5", 'timeout = "soon"'), "portal.timeout", "Expected `float"),
])
def test_a_bad_portal_table_is_one_line_naming_its_key(
        tmp_path: Path, change: tuple[str, str], key: str, words: str) -> None:
    assert change[0] in PORTAL
    with pytest.raises(ConfigError) as error:
        load_settings(write(tmp_path, PORTAL.replace(*change)), ENV)
    assert error.value.key == key, str(error.value)
    assert words in str(error.value) and "\n" not in str(error.value)


def test_a_district_site_of_the_province_is_taken(tmp_path: Path) -> None:
    text = PORTAL.replace("category = 12", 'category = 12\ndistrict = "ha-long"')
    settings = load_settings(write(tmp_path, text), ENV)
    assert settings.targets(Channel.PORTAL)[0].district == "ha-long"


def test_configured_and_simulated_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, '[channels]\nsimulate = ["portal"]\n' + PORTAL)
    with pytest.raises(ConfigError) as error:
        load_settings(path, ENV)
    assert error.value.key == "channels.simulate" and "portal is configured" in str(error.value)


def test_the_cli_says_a_missing_secret_in_one_line(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, PORTAL)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LOA_PORTAL_QN_PASSWORD", "x")
        env.delenv("LOA_PORTAL_DVC_SECRET", raising=False)
        assert main(["worker", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "portal.sites[1].secret_env" in err
    assert "Traceback" not in err
