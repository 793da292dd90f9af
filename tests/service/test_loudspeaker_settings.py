"""``[loudspeaker]`` in the deployment settings: the systems become the channel's targets, their
tokens come from the environment at start (a missing one stops the start naming the system, one
written in the file is refused), a wrong value is refused in one line naming its key, and the
channel registry builds the adapter."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from adapters.loudspeaker.adapter import LoudspeakerAdapter
from dispatcher.domain.errors import ConfigError
from dispatcher.domain.model import Channel
from dispatcher.service import channels
from dispatcher.service.channels import Mode
from dispatcher.service.settings import load_settings

SYSTEMS = """\
[loudspeaker]
repeat = 3

[loudspeaker.speech]
voice = "vi"
rate = 140

[[loudspeaker.systems]]
id = "dongtrieu"
name = "Truyền thanh thông minh TX Đông Triều"
district = "dong-trieu"
url = "https://loa.dongtrieu.example/api"
token_env = "LOA_SPEAKER_DONGTRIEU_TOKEN"
zones = ["phuong-a", "xa-b"]
play_at = ["06:30", "17:00"]

[[loudspeaker.systems]]
id = "province"
url = "http://127.0.0.1:1"
token_env = "LOA_SPEAKER_PROVINCE_TOKEN"
"""
ENV = {"LOA_SPEAKER_DONGTRIEU_TOKEN": "tok-dt-5e1", "LOA_SPEAKER_PROVINCE_TOKEN": "tok-pv-9a0"}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "loa.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_systems_are_the_targets_of_the_channel(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, SYSTEMS), env=ENV)
    assert [(t.id, t.district) for t in settings.targets(Channel.LOUDSPEAKER)] == [
        ("dongtrieu", "dong-trieu"), ("province", "")]
    assert settings.outlet(Channel.LOUDSPEAKER) is settings.loudspeaker
    assert settings.loudspeaker is not None and settings.loudspeaker.repeat == 3
    assert settings.loudspeaker.speech.rate == 140
    assert [s.token for s in settings.loudspeaker.systems] == ["tok-dt-5e1", "tok-pv-9a0"]
    assert "tok-dt" not in repr(settings)  # tokens never show
    assert channels.modes(settings)[Channel.LOUDSPEAKER] is Mode.CONFIGURED
    assert channels.modes(settings)[Channel.FACEBOOK] is Mode.MISSING


@pytest.mark.skipif(shutil.which("espeak-ng") is None,
                    reason="espeak-ng is not installed (make test installs it)")
async def test_the_registry_builds_the_adapter(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, SYSTEMS), env=ENV)
    built = channels.build(settings, channels=[Channel.LOUDSPEAKER], env=ENV)
    adapter = built[Channel.LOUDSPEAKER]
    assert isinstance(adapter, LoudspeakerAdapter)
    await adapter.aclose()


def test_configured_and_declared_simulated_is_refused(tmp_path: Path) -> None:
    text = SYSTEMS.replace("[loudspeaker]\n", '[channels]\nsimulate = ["loudspeaker"]\n\n'
                                              "[loudspeaker]\n")
    with pytest.raises(ConfigError, match="loudspeaker is configured and declared simulated"):
        load_settings(write(tmp_path, text), env=ENV)


def test_a_missing_token_stops_the_start_naming_the_system(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(write(tmp_path, SYSTEMS), env={"LOA_SPEAKER_PROVINCE_TOKEN": "x"})
    line = str(refused.value)
    assert "\n" not in line
    assert "loudspeaker.systems[0].token_env" in line and "LOA_SPEAKER_DONGTRIEU_TOKEN" in line
    with pytest.raises(ConfigError, match="LOA_SPEAKER_PROVINCE_TOKEN is empty"):
        load_settings(write(tmp_path, SYSTEMS), env={**ENV, "LOA_SPEAKER_PROVINCE_TOKEN": " "})


def test_a_token_written_in_the_file_is_refused(tmp_path: Path) -> None:
    text = SYSTEMS.replace('token_env = "LOA_SPEAKER_PROVINCE_TOKEN"',
                           'token_env = "LOA_SPEAKER_PROVINCE_TOKEN"\ntoken = "written-here"')
    with pytest.raises(ConfigError, match=r"loudspeaker.systems\[1\].token: a secret is not "
                                          r"written in this file"):
        load_settings(write(tmp_path, text), env=ENV)


@pytest.mark.parametrize(("old", "new", "words"), [
    ('district = "dong-trieu"', 'district = "hai-phong"',
     r"loudspeaker.systems\[0\].district: 'hai-phong' \(dongtrieu\) is not a district of "
     "Quảng Ninh"),
    ('id = "province"', 'id = "dongtrieu"', r"loudspeaker: systems\[1\]: id 'dongtrieu' is "
                                            "given twice"),
    ('id = "province"', 'id = "Tỉnh"', r"loudspeaker.systems\[1\]: id 'Tỉnh' must be"),
    ('url = "http://127.0.0.1:1"', 'url = "ftp://x"',
     r"loudspeaker.systems\[1\]: url 'ftp://x' \(province\) is not an http\(s\) URL"),
    ('play_at = ["06:30", "17:00"]', 'play_at = ["6:30"]',
     r"loudspeaker.systems\[0\]: play_at\[0\] '6:30' \(dongtrieu\) is not a time HH:MM"),
    ('zones = ["phuong-a", "xa-b"]', 'zones = ["xa-b", "xa-b"]', "names a zone twice"),
    ('zones = ["phuong-a", "xa-b"]', 'zones = [""]', r"zones\[0\] '' \(dongtrieu\) must be"),
    ("repeat = 3", "repeat = 0", "loudspeaker: repeat 0 must be 1 to 10"),
    ("rate = 140", "rate = 1000", r"loudspeaker.speech: speech.rate 1000 must be 80 to 450"),
    ('voice = "vi"', 'voice = "vi; rm -rf"', "is not an espeak-ng voice name"),
    ("repeat = 3", "repeat = 3\ntimeout = 0",
     "loudspeaker: concurrency must be .* timeout and connect_timeout more than 0"),
    ("repeat = 3", 'repeat = 3\nvolume = 9', "loudspeaker: Object contains unknown field `volume`"),
])
def test_a_wrong_value_is_refused_in_one_line_naming_its_key(tmp_path: Path, old: str,
                                                             new: str, words: str) -> None:
    assert old in SYSTEMS
    with pytest.raises(ConfigError, match=words) as refused:
        load_settings(write(tmp_path, SYSTEMS.replace(old, new)), env=ENV)
    assert "\n" not in str(refused.value)


def test_without_the_table_the_channel_is_missing(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, ""), env={})
    assert channels.modes(settings)[Channel.LOUDSPEAKER] is Mode.MISSING
    assert settings.targets(Channel.LOUDSPEAKER) == []
