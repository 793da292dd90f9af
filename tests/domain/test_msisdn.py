"""Vietnamese numbers: normalisation, carriers by prefix, reasons for rejection, the table."""

from __future__ import annotations

import tomllib
from pathlib import Path

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dispatcher.domain.config import default_path
from dispatcher.domain.errors import ConfigError, NumberError
from dispatcher.domain.msisdn import Numbering, NumberingFile, load_numbering

# The 10-digit prefixes of DESIGN.md (2018 plan), carrier by carrier.
DESIGN_PREFIXES = {
    "viettel": ["032", "033", "034", "035", "036", "037", "038", "039", "086", "096", "097",
                "098"],
    "vinaphone": ["081", "082", "083", "084", "085", "088", "091", "094"],
    "mobifone": ["070", "076", "077", "078", "079", "089", "090", "093"],
    "vietnamobile": ["052", "056", "058", "092"],
    "gmobile": ["059", "099"],
    "itelecom": ["087"],
    "reddi": ["055"],
}


@pytest.mark.parametrize(
    ("raw", "msisdn", "carrier"),
    [
        ("0912345678", "84912345678", "vinaphone"),
        ("0912 345 678", "84912345678", "vinaphone"),
        ("091.234.5678", "84912345678", "vinaphone"),
        ("091-234-5678", "84912345678", "vinaphone"),
        ("+84912345678", "84912345678", "vinaphone"),
        ("+84 (0) 912 345 678", "84912345678", "vinaphone"),
        ("84912345678", "84912345678", "vinaphone"),
        ("0084912345678", "84912345678", "vinaphone"),
        ("912345678", "84912345678", "vinaphone"),  # leading zero lost in a spreadsheet
        ("  0987654321 ", "84987654321", "viettel"),
        ("0841234567", "84841234567", "vinaphone"),
        ("0993123456", "84993123456", "gmobile"),
        ("0871234567", "84871234567", "itelecom"),
        ("0551234567", "84551234567", "reddi"),
    ],
)
def test_valid_forms(numbering: Numbering, raw: str, msisdn: str, carrier: str) -> None:
    assert numbering.normalize(raw) == (msisdn, carrier)


@pytest.mark.parametrize("carrier", list(DESIGN_PREFIXES))
def test_every_design_prefix_names_its_carrier(numbering: Numbering, carrier: str) -> None:
    for prefix in DESIGN_PREFIXES[carrier]:
        assert numbering.normalize(prefix + "1234567") == ("84" + prefix[1:] + "1234567", carrier)
    assert set(numbering.carriers) == set(DESIGN_PREFIXES)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("01662345678", "old 11-digit number (renumbered in 2018); the new number is 0362345678"),
        ("+841662345678", "the new number is 0362345678"),
        ("01201234567", "the new number is 0701234567"),
        ("02033825555", "landline number (area code 0203)"),
        ("+8613812345678", "foreign number (+86, CN)"),
        ("+1 212 555 0100", "foreign number (+1, US)"),
        ("0512345678", "051 is not a mobile prefix"),
        ("091234567", "wrong length: 8 digits"),
        ("09123456789", "wrong length: 10 digits"),
        ("0912abc678", "unexpected character 'a'"),
        ("０９１２３４５６７８", "unexpected character"),
        ("", "empty"),
        ("+", "empty"),
    ],
)
def test_rejections_say_why(numbering: Numbering, raw: str, reason: str) -> None:
    with pytest.raises(NumberError) as info:
        numbering.normalize(raw)
    assert reason in info.value.reason
    assert info.value.number == raw


@given(st.text(max_size=30))
def test_arbitrary_input_is_valid_or_a_number_error(text: str) -> None:
    numbering = load_numbering()
    try:
        msisdn, carrier = numbering.normalize(text)
    except NumberError as exc:
        assert exc.reason
    else:
        assert len(msisdn) == 11 and msisdn.startswith("84") and msisdn.isdigit()
        assert carrier in numbering.carriers
        assert numbering.normalize(msisdn) == (msisdn, carrier)  # idempotent


@given(st.sampled_from(sorted(p for ps in DESIGN_PREFIXES.values() for p in ps)),
       st.integers(0, 9_999_999))
def test_every_form_of_a_number_agrees(prefix: str, rest: int) -> None:
    numbering = load_numbering()
    local = f"{prefix}{rest:07d}"
    forms = [local, "+84" + local[1:], "84" + local[1:], local[1:],
             f"{local[:4]} {local[4:7]} {local[7:]}"]
    assert len({numbering.normalize(f) for f in forms}) == 1


def _numbering(**changes: object) -> Numbering:
    raw = msgspec.to_builtins(load_numbering_file())
    raw.update(changes)
    return Numbering(msgspec.convert(raw, NumberingFile), source="numbering.toml")


def load_numbering_file() -> NumberingFile:
    with default_path("numbering.toml").open("rb") as f:
        return msgspec.convert(tomllib.load(f), NumberingFile)


def test_table_errors_name_the_key() -> None:
    carriers = msgspec.to_builtins(load_numbering_file().carriers)
    carriers["mobifone"]["prefixes"].append("091")
    with pytest.raises(ConfigError, match=r"carriers.mobifone.prefixes\[8\]: 091 is also listed"):
        _numbering(carriers=carriers)
    with pytest.raises(ConfigError, match=r"legacy.0162: 045 is not a prefix of any carrier"):
        _numbering(legacy={"0162": "045"})
    carriers = msgspec.to_builtins(load_numbering_file().carriers)
    carriers["viettel"]["prefixes"][0] = "32"
    with pytest.raises(ConfigError, match=r"carriers.viettel.prefixes\[0\]: '32' is not a prefix"):
        _numbering(carriers=carriers)


def test_a_new_prefix_is_configuration(tmp_path: Path) -> None:
    text = default_path("numbering.toml").read_text(encoding="utf-8")
    text = text.replace('prefixes = ["052", "056", "058", "092"]',
                        'prefixes = ["052", "056", "058", "092", "0512"]')
    path = tmp_path / "numbering.toml"
    path.write_text(text, encoding="utf-8")
    table = load_numbering(path)
    assert table.normalize("0512345678") == ("84512345678", "vietnamobile")
    with pytest.raises(NumberError, match="051 is not a mobile prefix"):
        table.normalize("0519345678")
