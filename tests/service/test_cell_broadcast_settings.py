"""``[cell_broadcast]`` in the deployment settings: the carriers become the channel's targets,
their passwords and tokens come from the environment (a missing one stops the start naming the
carrier, one written in the file is refused), every district needs a shape and the alerts a CAP
sender, bad values are one line naming the key, and the channel registry builds the adapter."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.cellbroadcast import CellBroadcastAdapter
from dispatcher.domain.errors import ConfigError
from dispatcher.domain.model import Channel
from dispatcher.domain.province import load_province
from dispatcher.service import channels
from dispatcher.service.channels import Mode
from dispatcher.service.settings import load_settings

AREAS = "".join(f'{d} = {{ geocodes = {{ "VN-TEST" = "{d}" }} }}\n'
                for d in load_province().districts)
TABLE = """\
[cap]
sender = "soyte@quangninh.gov.vn"

[cell_broadcast]
urgent_level = 4

[[cell_broadcast.carriers]]
id = "viettel"
name = "Viettel CBC"
url = "https://cbc.viettel.example/cap"
auth = "basic"
user = "loa"
password_env = "LOA_T_VT_PASSWORD"
options = { language = "vi", repetition_seconds = 600 }

[[cell_broadcast.carriers]]
id = "mobifone"
url = "https://cbc.mobifone.example/cap"
auth = "bearer"
token_env = "LOA_T_MF_TOKEN"
status_url = "https://cbc.mobifone.example/alerts/{identifier}"

[cell_broadcast.areas]
""" + AREAS
ENV = {"LOA_T_VT_PASSWORD": "vt-pass-91b", "LOA_T_MF_TOKEN": "mf-token-3e7"}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "loa.toml"
    path.write_text(text, encoding="utf-8")
    return path


def refusal(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as refused:
        load_settings(write(tmp_path, text), env=ENV if env is None else env)
    line = str(refused.value)
    assert "\n" not in line
    return line


def test_the_carriers_are_the_targets_and_their_secrets_come_from_the_environment(
        tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, TABLE), env=ENV)
    assert [(t.id, t.name, t.district) for t in settings.targets(Channel.CELL_BROADCAST)] == [
        ("viettel", "Viettel CBC", ""), ("mobifone", "", "")]
    assert settings.outlet(Channel.CELL_BROADCAST) is settings.cell_broadcast
    table = settings.cell_broadcast
    assert table is not None
    assert [(c.password, c.token) for c in table.carriers] == [("vt-pass-91b", ""),
                                                              ("", "mf-token-3e7")]
    assert "vt-pass" not in repr(settings) and "mf-token" not in repr(settings)
    assert table.carriers[0].options.repetition_seconds == 600
    assert table.carriers[1].status_of("loa.cb.w-1") == (
        "https://cbc.mobifone.example/alerts/loa.cb.w-1")
    assert table.carriers[0].status_of("x") == "https://cbc.viettel.example/cap/status?identifier=x"
    assert channels.modes(settings)[Channel.CELL_BROADCAST] is Mode.CONFIGURED
    built = channels.build(settings, channels=[Channel.CELL_BROADCAST], env=ENV)
    assert isinstance(built[Channel.CELL_BROADCAST], CellBroadcastAdapter)
    assert settings.urgent_outlets(4) == [Channel.CELL_BROADCAST]
    assert settings.urgent_outlets(3) == settings.urgent_outlets(None) == []


def test_a_missing_secret_stops_the_start_naming_the_carrier(tmp_path: Path) -> None:
    line = refusal(tmp_path, TABLE, {"LOA_T_VT_PASSWORD": "x"})
    assert "cell_broadcast.carriers.mobifone.token_env" in line and "LOA_T_MF_TOKEN" in line


def test_a_secret_written_in_the_file_is_refused(tmp_path: Path) -> None:
    text = TABLE.replace('password_env = "LOA_T_VT_PASSWORD"', 'password = "in-the-file"')
    line = refusal(tmp_path, text)
    assert "cell_broadcast.carriers[0].password" in line and "environment" in line
    text = TABLE.replace('token_env = "LOA_T_MF_TOKEN"', 'token = "in-the-file"')
    assert "cell_broadcast.carriers[1].token" in refusal(tmp_path, text)


@pytest.mark.parametrize(("change", "words"), [
    (('url = "https://cbc.viettel.example/cap"', 'url = "ftp://cbc"'),
     "carriers[0] (viettel): url 'ftp://cbc' is not an http(s) URL"),
    (('user = "loa"\n', ''), "auth = \"basic\" needs user and password_env"),
    (('status_url = "https://cbc.mobifone.example/alerts/{identifier}"',
      'status_url = "https://cbc.mobifone.example/alerts"'), "status_url must hold {identifier}"),
    (('id = "mobifone"', 'id = "viettel"'), "id 'viettel' is given twice"),
    (('urgent_level = 4', 'duration_hours = 0'), "duration_hours must be positive"),
    (('options = { language = "vi", repetition_seconds = 600 }',
      'options = { content_type = "text/plain" }'), "options.content_type must be"),
])
def test_bad_values_are_one_line_naming_them(tmp_path: Path, change: tuple[str, str],
                                             words: str) -> None:
    assert change[0] in TABLE
    line = refusal(tmp_path, TABLE.replace(*change))
    assert "cell_broadcast" in line and words in line, line


def test_every_district_needs_a_shape_and_the_alerts_a_sender(tmp_path: Path) -> None:
    line = refusal(tmp_path, TABLE.replace('co-to = { geocodes = { "VN-TEST" = "co-to" } }\n',
                                           ""))
    assert "cell_broadcast.areas.co-to" in line and "none for co-to" in line
    line = refusal(tmp_path, TABLE + 'atlantis = { geocodes = { "VN-TEST" = "x" } }\n')
    assert "cell_broadcast.areas.atlantis" in line and "not a district" in line
    line = refusal(tmp_path, TABLE.replace(
        'ha-long = { geocodes = { "VN-TEST" = "ha-long" } }',
        'ha-long = { polygons = ["20.9,107.0 21.0,107.1"] }'))
    assert "cell_broadcast: areas.ha-long.polygons[0]" in line and "at least 4 points" in line
    line = refusal(tmp_path, TABLE.replace('sender = "soyte@quangninh.gov.vn"', ""))
    assert "cell_broadcast.sender" in line and "[cap] sender" in line


def test_the_areas_of_cap_serve_when_the_table_gives_none(tmp_path: Path) -> None:
    moved = TABLE.replace("[cell_broadcast.areas]\n", "").replace(AREAS, "").replace(
        "[cell_broadcast]\n", "[cap.areas]\n" + AREAS + "\n[cell_broadcast]\n")
    settings = load_settings(write(tmp_path, moved), env=ENV)
    assert settings.cell_broadcast is not None and not settings.cell_broadcast.areas
    assert len(settings.cap.areas) == len(load_province().districts)
    line = refusal(tmp_path, moved.replace('co-to = { geocodes = { "VN-TEST" = "co-to" } }\n',
                                           ""))
    assert "cap.areas.co-to" in line
