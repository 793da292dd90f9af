"""The CLI contract: exact shapes of `loa plan`, `loa number`, `loa text inspect`, and errors."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from dispatcher.service.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def json_lines(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


@pytest.fixture(autouse=True)
def no_redis_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOA_REDIS_URL", raising=False)


def test_plan_show_json_shape(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "plan", "show", "--json")
    assert status == 0
    (doc,) = json_lines(out)
    levels = doc["levels"]
    assert isinstance(levels, list)
    assert [lv["level"] for lv in levels] == [1, 2, 3, 4]
    assert [(lv["min_cases"], lv["max_cases"]) for lv in levels] == [
        (1, 1), (2, 10), (11, 150), (151, None)]
    for lv in levels:
        assert set(lv["channels"]) == {"sms", "zalo", "email", "app", "facebook", "loudspeaker",
                                       "portal", "cell_broadcast"}
    sms = [lv["channels"]["sms"]["sends_per_week"] for lv in levels]
    assert sms == pytest.approx([1.0, 2.0, 7 / 3, 7.0], abs=1e-3)
    zalo = [lv["channels"]["zalo"]["sends_per_week"] for lv in levels]
    assert zalo == pytest.approx([7.0, 14.0, 21.0, 35.0])
    for lv in levels:  # every SMS without diacritics, in one part, with the hotline
        sms_row = lv["channels"]["sms"]
        assert (sms_row["encoding"], sms_row["parts"], sms_row["strip_diacritics"]) == (
            "gsm7", 1, True)
        assert "1900 9095" in sms_row["text"] and "{hotline}" not in sms_row["template"]
        assert lv["channels"]["zalo"]["strip_diacritics"] is False
    assert (doc["hotline"], doc["sms_diacritics"], doc["sms_max_parts"]) == (
        "1900 9095", "strip", 3)
    assert doc["province"] and doc["districts"]


def test_plan_show_one_level_and_table(capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    status, out, _ = run(capsys, "plan", "show", "--level", "3", "--json")
    assert status == 0
    assert [lv["level"] for lv in json_lines(out)[0]["levels"]] == [3]  # type: ignore[attr-defined]
    status, out, _ = run(capsys, "plan", "show", "--level", "4", "--lang", "en")
    assert status == 0
    assert "Level 4" in out and "04-06 lần/ngày" in out and "Các doanh nghiệp viễn thông" in out
    assert ("SMS (GSM7, 1 part, diacritics stripped; with Phòng Bưu chính - Viễn thông): "
            "KHAN: Covid-19 lay lan rong tai Quang Ninh. Chi ra ngoai khi that can thiet") in out
    assert "Hotline 1900 9095; SMS diacritics: strip; every SMS at most 3 parts" in out
    status, _, err = run(capsys, "plan", "show", "--level", "9")
    assert status == 2 and "level 9 is not in the plan" in err


@pytest.mark.parametrize(("cases", "level"), [(0, 0), (1, 1), (7, 2), (42, 3), (151, 4)])
def test_plan_level_json(capsys: pytest.CaptureFixture[str], cases: int, level: int) -> None:
    status, out, _ = run(capsys, "plan", "level", "--cases", str(cases), "--json")
    assert status == 0
    assert json_lines(out) == [{"cases": cases, "level": level}]


def test_broken_plan_file_is_one_clear_line(capsys: pytest.CaptureFixture[str],
                                            tmp_path: Path) -> None:
    broken = tmp_path / "plan.toml"
    text = Path("config/plan.toml").read_text(encoding="utf-8")
    broken.write_text(text.replace("min_cases = 11", "min_cases = 12"), encoding="utf-8")
    status, out, err = run(capsys, "plan", "show", "--plan", str(broken))
    assert status == 2 and out == ""
    assert err.strip() == (f"loa: error: {broken}: levels[2].min_cases: expected 11 "
                           "(levels must cover every case count without gaps)")


def test_number_json_lines_and_status(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "number", "0912 345 678", "+84 98-765-4321", "--json")
    assert status == 0
    assert json_lines(out) == [
        {"input": "0912 345 678", "msisdn": "84912345678", "carrier": "vinaphone"},
        {"input": "+84 98-765-4321", "msisdn": "84987654321", "carrier": "viettel"},
    ]
    status, out, _ = run(capsys, "number", "0912345678", "02033825555", "--json")
    assert status == 1
    first, second = json_lines(out)
    assert first["carrier"] == "vinaphone"
    assert set(second) == {"input", "error"} and "landline" in str(second["error"])


def test_number_reads_stdin(capsys: pytest.CaptureFixture[str],
                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("0701234567\n\n0861234567\n"))
    status, out, _ = run(capsys, "number", "-", "--json")
    assert status == 0
    assert [d["carrier"] for d in json_lines(out)] == ["mobifone", "viettel"]


def test_text_inspect_json(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "text", "inspect", "Cảnh báo dịch Covid-19", "--json")
    assert status == 0
    (doc,) = json_lines(out)
    assert {k: doc[k] for k in ("encoding", "parts", "chars", "text")} == {
        "encoding": "ucs2", "parts": 1, "chars": 22, "text": "Cảnh báo dịch Covid-19"}
    status, out, _ = run(capsys, "text", "inspect", "Cảnh báo dịch Covid-19",
                         "--strip-diacritics", "--json")
    (doc,) = json_lines(out)
    assert {k: doc[k] for k in ("encoding", "parts", "chars", "text")} == {
        "encoding": "gsm7", "parts": 1, "chars": 22, "text": "Canh bao dich Covid-19"}
    status, out, _ = run(capsys, "text", "inspect", "á" * 71, "--json")
    assert json_lines(out)[0]["parts"] == 2


def test_empty_text_is_an_error_not_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "text", "inspect", "", "--json")
    assert status == 2 and out == ""
    assert err.strip() == "loa: error: message text is empty"


def test_installed_entry_point_runs() -> None:
    loa = Path(sys.executable).parent / "loa"
    done = subprocess.run([str(loa), "plan", "level", "--cases", "11", "--json"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"cases": 11, "level": 3}
    done = subprocess.run([str(loa), "--help"], capture_output=True, text=True, timeout=60,
                          check=False)
    for command in ("plan", "number", "text", "audience"):
        assert command in done.stdout


def test_every_shipped_sms_is_one_gsm7_part_as_text_inspect_shows(
        capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "plan", "show", "--json")
    assert status == 0
    (doc,) = json_lines(out)
    levels = doc["levels"]
    assert isinstance(levels, list) and len(levels) == 4
    for level in levels:
        template = level["channels"]["sms"]["template"]
        assert "1900 9095" in template
        status, out, _ = run(capsys, "text", "inspect", template, "--strip-diacritics", "--json")
        assert status == 0
        (inspected,) = json_lines(out)
        assert (inspected["encoding"], inspected["parts"]) == ("gsm7", 1), level["level"]
        assert inspected["text"] == level["channels"]["sms"]["text"]
        status, out, _ = run(capsys, "text", "inspect", template, "--json")
        assert json_lines(out)[0]["parts"] == 3  # with diacritics: UCS-2, three parts
