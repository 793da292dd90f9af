"""Audience files: validation and normalisation of every row, the rejects file, the synthetic
generator, and the ``loa audience`` commands."""

from __future__ import annotations

import csv
import json
import math
import random
from pathlib import Path

import msgspec
import pytest

from bench import audiencegen
from bench.audiencegen import _Numbers
from dispatcher.domain.audience import CheckReport, Recipient, Reject, Validator, check, scan
from dispatcher.domain.errors import AudienceError, InputError
from dispatcher.domain.model import Kind
from dispatcher.domain.msisdn import Numbering, NumberingFile
from dispatcher.domain.province import Province
from dispatcher.service.cli import main

HEADER = "msisdn,zalo,district,kind,email"

# One row per line; the comment is the physical line number in the file (the header is line 1).
MIXED = f"""{HEADER}
0912 345 678,1,ha-long,resident,
+84987654321,0,Hạ Long,,
84901234567,yes,HA LONG,visitor,
923456789,,Cam Pha,official,cb1@quangninh.gov.vn
0387654321,123456789012345678,Móng Cái,resident,
0777654321,0,,visitor,
0912.345.678,1,uong-bi,resident,
0912345,1,ha-long,resident,
02033825555,1,ha-long,resident,
01662345678,1,ha-long,resident,
+8613812345678,1,ha-long,resident,
0981111111,1,Hà Nội,resident,
0981111112,1,,resident,
0981111113,1,ha-long,tourist,
0981111114,1,ha-long,official,cb.quangninh.gov.vn
0981111115,maybe,ha-long,resident,
0981111116,1,ha-long
0591234567,Có,Đông Triều,Official,CB2@QuangNinh.gov.vn
"""
# line -> how the reason of the rejected row starts, and a word it must contain
MIXED_REJECTS = {
    8: ("msisdn:", "earlier"),  # 0912 345 678 again, written with dots
    9: ("msisdn:", "length"),
    10: ("msisdn:", "landline"),
    11: ("msisdn:", "0362345678"),  # old 11-digit: the reason gives the new number
    12: ("msisdn:", "foreign"),
    13: ("district:", "Hà Nội"),
    14: ("district:", "empty"),
    15: ("kind:", "tourist"),
    16: ("email:", "cb.quangninh.gov.vn"),
    17: ("zalo:", "maybe"),
    18: ("expected 5 fields", "found 3"),
}


def write(tmp_path: Path, text: str | bytes, name: str = "audience.csv") -> Path:
    path = tmp_path / name
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8", newline="")
    else:
        path.write_bytes(text)
    return path


def read_csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.reader(f))


@pytest.fixture
def validator(numbering: Numbering, province: Province) -> Validator:
    return Validator(numbering, province)


def rejects_of(path: Path, validator: Validator) -> dict[int, Reject]:
    return {item.line: item for item in scan(path, validator) if isinstance(item, Reject)}


# --- a hand-written file with every form and every reason -------------------------------------


def test_check_counts_every_row_of_a_mixed_file(tmp_path: Path, validator: Validator) -> None:
    report = check(write(tmp_path, MIXED), validator)
    assert (report.rows, report.valid, report.duplicates, report.rejected) == (18, 7, 1, 10)
    assert report.rows == report.valid + report.duplicates + report.rejected
    assert report.by_carrier == {
        "viettel": 2, "mobifone": 2, "vinaphone": 1, "vietnamobile": 1, "gmobile": 1,
    }
    assert report.by_district == {
        "ha-long": 3, "cam-pha": 1, "mong-cai": 1, "(none)": 1, "dong-trieu": 1,
    }
    assert report.by_kind == {"resident": 3, "visitor": 2, "official": 2}
    assert report.zalo == 4  # "1", "yes", a user id, "Có"; not "0" nor empty
    assert report.email == 2
    assert report.ignored_columns == []


def test_rejects_file_has_line_reason_and_the_original_row(
    tmp_path: Path, validator: Validator
) -> None:
    source = write(tmp_path, MIXED)
    out = tmp_path / "rejects.csv"
    check(source, validator, rejects=out)
    header, *rows = read_csv(out)
    assert header == ["line", "reason", *HEADER.split(",")]
    assert [int(r[0]) for r in rows] == sorted(MIXED_REJECTS)
    physical = source.read_text(encoding="utf-8").splitlines()
    for line, reason, *fields in rows:
        start, word = MIXED_REJECTS[int(line)]
        assert reason.startswith(start), (line, reason)
        assert word in reason, (line, reason)
        assert ",".join(fields) == physical[int(line) - 1]


def test_duplicate_is_flagged_as_such(tmp_path: Path, validator: Validator) -> None:
    rejects = rejects_of(write(tmp_path, MIXED), validator)
    assert rejects[8].duplicate
    assert "84912345678" in rejects[8].reason
    assert [line for line, r in rejects.items() if r.duplicate] == [8]


def test_rejects_file_of_a_clean_file_is_only_the_header(
    tmp_path: Path, validator: Validator
) -> None:
    out = tmp_path / "rejects.csv"
    report = check(write(tmp_path, f"{HEADER}\n0912345678,1,ha-long,resident,\n"), validator,
                   rejects=out)
    assert (report.rows, report.valid) == (1, 1)
    assert read_csv(out) == [["line", "reason", *HEADER.split(",")]]


def test_rejects_file_cannot_be_the_audience_file(tmp_path: Path, validator: Validator) -> None:
    path = write(tmp_path, MIXED)
    with pytest.raises(AudienceError, match="audience file itself"):
        check(path, validator, rejects=tmp_path / "." / path.name)
    assert path.read_text(encoding="utf-8") == MIXED  # not truncated


def test_scan_yields_normalised_recipients(tmp_path: Path, validator: Validator) -> None:
    header: list[str] = []
    items = list(scan(write(tmp_path, MIXED), validator, header=header))
    assert header == HEADER.split(",")
    assert len(items) == 18
    recipients = [i for i in items if isinstance(i, Recipient)]
    assert recipients == [
        Recipient("84912345678", "vinaphone", "ha-long", Kind.RESIDENT, True),
        Recipient("84987654321", "viettel", "ha-long", Kind.RESIDENT, False),
        Recipient("84901234567", "mobifone", "ha-long", Kind.VISITOR, True),
        Recipient("84923456789", "vietnamobile", "cam-pha", Kind.OFFICIAL, False,
                  email="cb1@quangninh.gov.vn"),
        Recipient("84387654321", "viettel", "mong-cai", Kind.RESIDENT, True,
                  zalo_uid="123456789012345678"),
        Recipient("84777654321", "mobifone", "", Kind.VISITOR, False),
        Recipient("84591234567", "gmobile", "dong-trieu", Kind.OFFICIAL, True,
                  email="CB2@QuangNinh.gov.vn"),
    ]
    for r in recipients:
        assert r.msisdn.startswith("84") and len(r.msisdn) == 11 and r.msisdn.isdigit()


@pytest.mark.parametrize(
    ("district", "expected"),
    [("ha-long", "ha-long"), ("Hạ Long", "ha-long"), ("HA LONG", "ha-long"),
     ("  ha long ", "ha-long"), ("Đông Triều", "dong-trieu"), ("dong trieu", "dong-trieu"),
     ("CÔ TÔ", "co-to")],
)
def test_district_by_id_or_name(
    tmp_path: Path, validator: Validator, district: str, expected: str
) -> None:
    path = write(tmp_path, f'{HEADER}\n0912345678,1,"{district}",resident,\n')
    [item] = scan(path, validator)
    assert isinstance(item, Recipient)
    assert item.district == expected


def test_empty_district_only_for_visitors(tmp_path: Path, validator: Validator) -> None:
    path = write(tmp_path, f"{HEADER}\n0912345678,1,,visitor,\n0912345679,1,,official,\n"
                           f"0912345670,1,,,\n")
    items = list(scan(path, validator))
    assert isinstance(items[0], Recipient) and items[0].district == ""
    for item in items[1:]:
        assert isinstance(item, Reject)
        assert item.reason.startswith("district: empty")


# --- columns and header -------------------------------------------------------------------------


def test_columns_in_another_order_and_an_extra_column(
    tmp_path: Path, validator: Validator
) -> None:
    path = write(tmp_path, "District,Note,MSISDN,Kind\n"
                           "Uông Bí,call after 6pm,+84 912 345 678,official\n"
                           "cam-pha,,0387654321,\n"
                           "nowhere,x,0387654322,resident\n")
    out = tmp_path / "rejects.csv"
    report = check(path, validator, rejects=out)
    assert report.ignored_columns == ["Note"]
    assert (report.rows, report.valid, report.rejected) == (3, 2, 1)
    assert report.by_district == {"uong-bi": 1, "cam-pha": 1}
    assert report.by_kind == {"official": 1, "resident": 1}
    assert report.zalo == 0 and report.email == 0  # no zalo nor email column
    assert read_csv(out) == [
        ["line", "reason", "District", "Note", "MSISDN", "Kind"],
        ["4", "district: 'nowhere' is not a district of Quảng Ninh",
         "nowhere", "x", "0387654322", "resident"],
    ]
    first = next(iter(scan(path, validator)))
    assert first == Recipient("84912345678", "vinaphone", "uong-bi", Kind.OFFICIAL, False)


def test_header_without_msisdn(tmp_path: Path, validator: Validator) -> None:
    path = write(tmp_path, "phone,district\n0912345678,ha-long\n")
    with pytest.raises(AudienceError, match=r"no msisdn column \(found: phone, district\)"):
        check(path, validator)


def test_header_naming_a_column_twice(tmp_path: Path, validator: Validator) -> None:
    path = write(tmp_path, "msisdn,district,District\n0912345678,ha-long,cam-pha\n")
    with pytest.raises(AudienceError, match="'district' twice"):
        check(path, validator)


def test_empty_file(tmp_path: Path, validator: Validator) -> None:
    with pytest.raises(AudienceError, match="empty"):
        check(write(tmp_path, b""), validator)


def test_missing_file(tmp_path: Path, validator: Validator) -> None:
    missing = tmp_path / "missing.csv"
    with pytest.raises(AudienceError, match="cannot open") as info:
        check(missing, validator)
    assert str(missing) in str(info.value)


def test_header_only_file_has_no_rows(tmp_path: Path, validator: Validator) -> None:
    report = check(write(tmp_path, HEADER + "\n"), validator)
    assert report == CheckReport()


# --- encodings, blank lines, quoting ----------------------------------------------------------


def test_utf8_bom_is_accepted(tmp_path: Path, validator: Validator) -> None:
    path = write(tmp_path, "\ufeff" + HEADER + "\n0912345678,1,Hạ Long,resident,\n")
    assert path.read_bytes().startswith(b"\xef\xbb\xbfmsisdn,")
    report = check(path, validator)
    assert (report.rows, report.valid) == (1, 1)
    assert report.ignored_columns == []


def test_invalid_utf8_rejects_the_row_only(tmp_path: Path, validator: Validator) -> None:
    data = (HEADER + "\n0912345678,1,Hạ Long,resident,\n").encode() \
        + b"0912345679,1,H\xe0 Long,resident,\n" \
        + b"0912345670,1,cam-pha,resident,\n"
    path = write(tmp_path, data)
    report = check(path, validator)
    assert (report.rows, report.valid, report.rejected) == (3, 2, 1)
    rejects = rejects_of(path, validator)
    assert list(rejects) == [3]
    assert "UTF-8" in rejects[3].reason


def test_blank_lines_are_skipped(tmp_path: Path, validator: Validator) -> None:
    path = write(tmp_path, f"{HEADER}\n\n0912345678,1,ha-long,resident,\n\n\n"
                           f"bad,1,ha-long,resident,\n\n")
    report = check(path, validator)
    assert (report.rows, report.valid, report.rejected) == (2, 1, 1)
    assert list(rejects_of(path, validator)) == [6]


def test_crlf_line_endings(tmp_path: Path, validator: Validator) -> None:
    path = write(tmp_path, f"{HEADER}\r\n0912345678,1,ha-long,resident,\r\n"
                           f"bad,1,ha-long,resident,\r\n")
    report = check(path, validator)
    assert (report.rows, report.valid, report.rejected) == (2, 1, 1)
    assert list(rejects_of(path, validator)) == [3]


def test_multiline_quoted_fields_keep_line_numbers(tmp_path: Path, validator: Validator) -> None:
    path = write(tmp_path, f'{HEADER}\n'
                           f'0912345678,1,"Hạ\nLong",resident,\n'  # lines 2-3: valid
                           f'bad,1,ha-long,resident,\n'  # line 4
                           f'0912345679,1,ha-long,official,"not\nan e-mail"\n'  # lines 5-6
                           f'0912345670,1,nowhere,resident,\n')  # line 7
    out = tmp_path / "rejects.csv"
    report = check(path, validator, rejects=out)
    assert (report.rows, report.valid, report.rejected) == (4, 1, 3)
    rejects = rejects_of(path, validator)
    assert {line: r.reason.split(":")[0] for line, r in rejects.items()} == {
        4: "msisdn", 5: "email", 7: "district",
    }
    assert rejects[5].fields[4] == "not\nan e-mail"
    assert [row[:2] for row in read_csv(out)[1:]] == [
        ["4", rejects[4].reason], ["5", rejects[5].reason], ["7", rejects[7].reason],
    ]


def test_nul_bytes_reject_the_row_not_the_file(tmp_path: Path, validator: Validator) -> None:
    path = write(tmp_path, (f"{HEADER}\n0912\x00345678,1,ha-long,resident,\n"
                            f"0912345679,1,ha-long\x00,resident,\n"
                            f"0912345670,1,ha-long,resident,\n").encode())
    report = check(path, validator)
    assert (report.rows, report.valid, report.rejected) == (3, 1, 2)
    rejects = rejects_of(path, validator)
    assert rejects[2].reason.startswith("msisdn:")
    assert rejects[3].reason.startswith("district:")


def test_progress_reaches_the_file_size(tmp_path: Path, validator: Validator) -> None:
    path = write(tmp_path, MIXED)
    seen: list[int] = []
    check(path, validator, progress=seen.append)
    assert seen and seen[-1] == path.stat().st_size


# --- the generator ------------------------------------------------------------------------------


def generate(path: Path, count: int, numbering: Numbering, province: Province, *,
             seed: int = 1, with_errors: bool = False) -> Path:
    written = audiencegen.generate(path, count, seed=seed, numbering=numbering,
                                   province=province, with_errors=with_errors)
    assert written == count
    return path


def test_generator_is_deterministic(
    tmp_path: Path, numbering: Numbering, province: Province
) -> None:
    a = generate(tmp_path / "a.csv", 3000, numbering, province, seed=5, with_errors=True)
    b = generate(tmp_path / "b.csv", 3000, numbering, province, seed=5, with_errors=True)
    c = generate(tmp_path / "c.csv", 3000, numbering, province, seed=6, with_errors=True)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    assert a.read_text(encoding="utf-8").splitlines()[0] == HEADER
    assert len(a.read_bytes().splitlines()) == 3001


def test_generator_zero_rows_is_a_header(
    tmp_path: Path, numbering: Numbering, province: Province, validator: Validator
) -> None:
    path = generate(tmp_path / "a.csv", 0, numbering, province)
    assert path.read_text(encoding="utf-8").splitlines() == [HEADER]
    assert check(path, validator).rows == 0


def test_generator_refuses_a_negative_count(numbering: Numbering, province: Province) -> None:
    with pytest.raises(InputError, match="0 or more"):
        list(audiencegen.rows(-1, seed=1, numbering=numbering, province=province))


def test_generated_audience_is_valid_and_realistic(
    tmp_path: Path, numbering: Numbering, province: Province, validator: Validator
) -> None:
    count = 20_000
    report = check(generate(tmp_path / "a.csv", count, numbering, province), validator)
    assert (report.rows, report.valid, report.duplicates, report.rejected) == (count, count, 0, 0)
    assert set(report.by_carrier) == set(audiencegen.CARRIER_SHARES)
    for carrier, share in audiencegen.CARRIER_SHARES.items():
        tolerance = 4 * math.sqrt(share * (1 - share) / count) + 0.001
        assert abs(report.by_carrier[carrier] / count - share) < tolerance, carrier
    assert set(province.districts) <= set(report.by_district)
    assert set(report.by_district) - set(province.districts) <= {"(none)"}
    # districts follow population: the biggest district has the most recipients
    biggest = max(province.districts.values(), key=lambda d: d.population)
    assert max(report.by_district, key=lambda k: report.by_district[k]) == biggest.id
    assert report.zalo / count == pytest.approx(audiencegen.ZALO_SHARE, abs=0.005)
    for kind, share in audiencegen.KIND_SHARES.items():
        assert report.by_kind[kind] / count == pytest.approx(share, abs=0.01), kind
    assert report.email == report.by_kind["official"]


def test_generated_officials_have_emails(
    tmp_path: Path, numbering: Numbering, province: Province, validator: Validator
) -> None:
    path = generate(tmp_path / "a.csv", 3000, numbering, province, seed=2)
    recipients = [r for r in scan(path, validator) if isinstance(r, Recipient)]
    assert len(recipients) == 3000
    officials = [r for r in recipients if r.kind is Kind.OFFICIAL]
    assert officials and all(r.email for r in officials)
    assert not any(r.email for r in recipients if r.kind is not Kind.OFFICIAL)
    assert len({r.msisdn for r in recipients}) == 3000


def test_generated_errors_are_caught(
    tmp_path: Path, numbering: Numbering, province: Province, validator: Validator
) -> None:
    count = 20_000
    path = generate(tmp_path / "a.csv", count, numbering, province, with_errors=True)
    out = tmp_path / "rejects.csv"
    report = check(path, validator, rejects=out)
    assert report.rows == count
    assert report.rejected > 0 and report.duplicates > 0
    bad = report.rejected + report.duplicates
    assert 0.005 < bad / count < 0.03
    assert len(read_csv(out)) == bad + 1
    reasons = {row[1].split(":")[0] for row in read_csv(out)[1:]}
    assert {"msisdn", "district", "kind", "email", "zalo"} <= reasons


# --- the command line ---------------------------------------------------------------------------


def test_cli_generate_then_check_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "a.csv"
    assert main(["audience", "generate", "--count", "500", "--seed", "3", "-o", str(path)]) == 0
    assert "500" in capsys.readouterr().out
    assert main(["audience", "check", str(path), "--json"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == 1
    report = json.loads(lines[0])
    assert {"rows", "valid", "duplicates", "rejected", "by_carrier", "by_district"} <= set(report)
    assert report["rows"] == report["valid"] == 500
    assert report["duplicates"] == report["rejected"] == 0
    assert sum(report["by_carrier"].values()) == 500
    assert sum(report["by_district"].values()) == 500
    assert captured.err == ""


def test_cli_check_human_output_and_rejects(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, MIXED)
    folder = tmp_path / ("rejects-of-the-morning-import-" * 4)  # a path wider than a terminal
    folder.mkdir()
    out = folder / "rejects.csv"
    assert main(["audience", "check", str(path), "--rejects", str(out)]) == 0
    printed = capsys.readouterr().out
    text = " ".join(printed.split())  # rich wraps long lines
    assert "18 rows: 7 valid, 1 duplicates, 10 rejected" in text
    assert f"written to {out}" in printed  # the path whole, to be copied
    assert len(read_csv(out)) == 12


def test_cli_check_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["audience", "check", str(tmp_path / "missing.csv")])
    captured = capsys.readouterr()
    assert status == 2
    assert captured.err.startswith("loa: error:")
    assert "missing.csv" in captured.err
    assert "Traceback" not in captured.err + captured.out


def test_cli_check_without_msisdn_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "phone\n0912345678\n")
    assert main(["audience", "check", str(path)]) == 2
    assert "msisdn" in capsys.readouterr().err


def test_cli_generate_negative_count(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "a.csv"
    status = main(["audience", "generate", "--count", "-1", "-o", str(path)])
    captured = capsys.readouterr()
    assert status == 2
    assert captured.err.startswith("loa: error:")
    assert "--count" in captured.err
    assert "Traceback" not in captured.err
    assert not path.exists()


def test_generated_numbers_avoid_a_longer_prefix_of_another_carrier() -> None:
    raw = {"national_digits": 4, "carriers": {
        "gmobile": {"name": "Gmobile", "prefixes": ["099"]},
        "itelecom": {"name": "Itelecom", "prefixes": ["0993"]}}}
    table = Numbering(msgspec.convert(raw, NumberingFile))
    numbers = _Numbers(table, random.Random(5))
    made = [numbers.next("gmobile") for _ in range(90)]  # 100 numbers under 99, 10 under 993
    assert len(set(made)) == 90
    assert all(table.normalize("0" + n) == ("84" + n, "gmobile") for n in made)
    with pytest.raises(InputError, match="too many numbers"):
        numbers.next("gmobile")
