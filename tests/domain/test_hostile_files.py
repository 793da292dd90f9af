"""Hostile input files: audience CSVs that are not what they claim, and configuration files with
every field wrong in turn.

An audience file gets one line of error (exit status 2) when it cannot be read as a whole, or
per-row rejects with a reason; never a traceback, and never rows silently lost (rows = valid +
duplicates + rejected). A configuration error names the file and the field.
"""

from __future__ import annotations

import gzip
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dispatcher.domain.audience import Validator, check
from dispatcher.domain.config import DEFAULT_CONFIG_DIR
from dispatcher.domain.errors import AudienceError, ConfigError
from dispatcher.domain.msisdn import Numbering, load_numbering
from dispatcher.domain.plan import load_plan
from dispatcher.domain.province import Province, load_province
from dispatcher.service.cli import main
from dispatcher.service.settings import load_settings

HEADER = "msisdn,zalo,district,kind,email\n"
GOOD = "0912345678,1,ha-long,resident,\n"


@pytest.fixture
def validator(numbering: Numbering, province: Province) -> Validator:
    return Validator(numbering, province)


# -- whole-file errors: one line, exit status 2 ---------------------------------------------------

FILE_ERRORS: dict[str, tuple[bytes, str]] = {
    "empty": (b"", "the file is empty"),
    "blank lines only": (b"\n\n\n", "no msisdn column (found: nothing)"),
    "utf-16 with BOM": ((HEADER + GOOD).encode("utf-16"), "is UTF-16 text"),
    "utf-16 without BOM": ((HEADER + GOOD * 5).encode("utf-16-le"), "looks like UTF-16 text"),
    "gzip": (gzip.compress((HEADER + GOOD).encode()), "is compressed (gzip)"),
    "xlsx": (b"PK\x03\x04" + bytes(200), "is a ZIP archive"),
    "binary": (bytes(range(256)) * 40, "is not text"),
    "wrong columns": (b"phone,zalo,district\n0912345678,1,ha-long\n", "no msisdn column"),
    "no header": (GOOD.encode() * 3, "no msisdn column"),
    "semicolons": (b"msisdn;zalo;district\n0912345678;1;ha-long\n", "separated by ';'"),
    "duplicated column": (b"msisdn,District,district\n0912345678,ha-long,ha-long\n",
                          "names the column 'district' twice"),
    "NUL in the header": (b"msisdn\x00,zalo\n0912345678,1\n", r"found: msisdn\x00, zalo"),
    "a field over the limit": (HEADER.encode() + b"0912345678,1,ha-long,resident,"
                               + b"a" * 300_000 + b"\n" + GOOD.encode(),
                               "line 2: a field is longer than 131,072 characters"),
    "a quote never closed": (HEADER.encode() + b'0912345678,1,"ha-long,resident,\n'
                             + GOOD.encode() * 20_000, "a quote (\") opened and never closed"),
}


@pytest.mark.parametrize("name", FILE_ERRORS)
def test_unreadable_files_are_one_line_errors(name: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    data, expected = FILE_ERRORS[name]
    path = tmp_path / "audience.csv"
    path.write_bytes(data)
    assert main(["audience", "check", str(path), "--rejects", str(tmp_path / "r.csv")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"loa: error: {path}: "), err
    assert expected in err, err
    assert "Traceback" not in err and "\x00" not in err
    assert all(c.isprintable() for c in err.strip()), err  # control bytes are escaped
    assert len(err) < 500


# -- per-row rejects: counted, with a reason, written to the rejects file -------------------------

ROW_CASES: dict[str, tuple[bytes, tuple[int, int, int, int], dict[int, str]]] = {
    # name: (file, (rows, valid, duplicates, rejected), {line: reason starts with})
    "windows-1258": (HEADER.encode() + GOOD.encode()
                     + "0912345679,có,Uông Bí,resident,\n".encode("cp1258"),
                     (2, 1, 0, 1), {3: "not UTF-8 text"}),
    "latin-1": (HEADER.encode() + "0912345679,1,Uông Bí,resident,\n".encode("latin-1")
                + GOOD.encode(), (2, 1, 0, 1), {2: "not UTF-8 text"}),
    "invalid UTF-8 bytes": (HEADER.encode() + b"09123\xff45678,1,ha-long,resident,\n"
                            + b"0912345679,1,H\xc3\x28Long,resident,\n" + GOOD.encode(),
                            (3, 1, 0, 2), {2: "not UTF-8 text", 3: "not UTF-8 text"}),
    "embedded NUL": (HEADER.encode() + b"0912345679,1,ha\x00long,resident,\n" + GOOD.encode(),
                     (2, 1, 0, 1), {2: "district: 'ha\\x00long'"}),
    "short and long rows": (HEADER.encode() + b"0912345679,1\n"
                            + b"0912345670,1,ha-long,resident,,extra\n" + GOOD.encode(),
                            (3, 1, 0, 2), {2: "expected 5 fields, found 2",
                                           3: "expected 5 fields, found 6"}),
    "a quote not closed": (HEADER.encode() + b'0912345679,1,"ha-long,resident,\n'
                           + GOOD.encode(), (1, 0, 0, 1), {2: "expected 5 fields, found 3; a "
                                                              "quoted field runs from line 2 "
                                                              "to line 3"}),
    "a long line": (HEADER.encode() + b"0912345679,1,ha-long,resident," + b"x@" * 30_000
                    + b"\n" + GOOD.encode(), (2, 1, 0, 1), {2: "email: 'x@x@"}),
    "many columns": (HEADER.encode() + b"0912345679" + b",1" * 50_000 + b"\n" + GOOD.encode(),
                     (2, 1, 0, 1), {2: "expected 5 fields, found 50001"}),
    "duplicates": (HEADER.encode() + GOOD.encode() + b"+84 912 345 678,1,ha-long,resident,\n",
                   (2, 1, 1, 0), {3: "msisdn: 84912345678 appears earlier"}),
    "header only": (HEADER.encode(), (0, 0, 0, 0), {}),
    "header only, no line end": (HEADER.strip().encode(), (0, 0, 0, 0), {}),
    "CR line ends": ((HEADER + GOOD).replace("\n", "\r").encode(), (1, 1, 0, 0), {}),
    "UTF-8 BOM": (b"\xef\xbb\xbf" + (HEADER + GOOD).encode(), (1, 1, 0, 0), {}),
}


def _reasons(rejects: Path) -> dict[int, str]:
    import csv  # noqa: PLC0415

    with rejects.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0][:2] == ["line", "reason"]
    return {int(row[0]): row[1] for row in rows[1:]}


@pytest.mark.parametrize("name", ROW_CASES)
def test_bad_rows_are_rejected_with_a_reason(name: str, tmp_path: Path, validator: Validator,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    data, counts, reasons = ROW_CASES[name]
    path, rejects = tmp_path / "audience.csv", tmp_path / "rejects.csv"
    path.write_bytes(data)
    report = check(path, validator, rejects=rejects)
    assert (report.rows, report.valid, report.duplicates, report.rejected) == counts
    found = _reasons(rejects)
    assert set(found) == set(reasons)
    for line, reason in reasons.items():
        assert found[line].startswith(reason), found[line]
        assert len(found[line]) < 300  # a huge bad value is cut in the reason
    assert main(["audience", "check", str(path), "--json"]) == 0
    _, err = capsys.readouterr()
    assert err == ""


def test_import_refuses_unreadable_files_and_keeps_the_audience(
        tmp_path: Path, redis_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.csv"
    good.write_text(HEADER + GOOD + "0912345679,1,cam-pha,resident,\n", encoding="utf-8")
    assert main(["audience", "import", str(good), "--redis", redis_url, "--json"]) == 0
    version = re.search(r'"version":\s*"(\w+)"', capsys.readouterr().out)
    assert version is not None
    hostile = {name: data for name, (data, _) in FILE_ERRORS.items()}
    hostile["header only"] = HEADER.encode()
    hostile["every row rejected"] = (HEADER + "0203382555,1,ha-long,resident,\n").encode()
    for name, data in hostile.items():
        path = tmp_path / "hostile.csv"
        path.write_bytes(data)
        assert main(["audience", "import", str(path), "--redis", redis_url]) == 2, name
        _, err = capsys.readouterr()
        assert err.count("\n") == 1 and err.startswith(f"loa: error: {path}: "), (name, err)
    assert main(["audience", "import", str(good), "--redis", redis_url]) == 0
    assert f"audience {version.group(1)} is already current" in capsys.readouterr().out


def test_import_takes_good_rows_and_counts_the_bad(tmp_path: Path, redis_url: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    data, (_, valid, duplicates, rejected), _ = ROW_CASES["invalid UTF-8 bytes"]
    path = tmp_path / "audience.csv"
    path.write_bytes(data)
    assert main(["audience", "import", str(path), "--redis", redis_url]) == 0
    out = capsys.readouterr().out
    assert (f"{valid} recipients" in out and f"{duplicates} duplicates and {rejected} rejected"
            in out), out


# -- 10 million rows: memory does not grow with rows ----------------------------------------------

PREFIXES = ["32", "33", "34", "35", "36", "37", "38", "39", "86", "96", "97", "98", "81", "82",
            "83", "84", "85", "88", "91", "94", "70", "76", "77", "78", "79", "89", "90", "93"]
DISTRICTS = ["ha-long", "cam-pha", "uong-bi", "mong-cai", "dong-trieu", "quang-yen"]


def write_audience(path: Path, rows: int) -> tuple[int, int]:
    """A valid audience of ``rows`` rows, fast: numbers spread over every mobile prefix, one row
    in 100 repeats the row before it and one in 100 is a landline. Returns (duplicates, bad)."""
    duplicates = bad = 0
    with path.open("w", encoding="utf-8") as f:
        f.write(HEADER)
        block: list[str] = []
        for i in range(rows):
            if i % 100 == 99:
                block.append(block[-1] if block else GOOD)
                duplicates += 1
            elif i % 100 == 49:
                block.append(f"0203{i % 10_000_000:07d},1,ha-long,resident,\n")
                bad += 1
            else:
                prefix = PREFIXES[i % len(PREFIXES)]
                block.append(f"0{prefix}{i // len(PREFIXES):07d},1,"
                             f"{DISTRICTS[i % len(DISTRICTS)]},resident,\n")
            if len(block) == 100_000:
                f.write("".join(block))
                block = []
        f.write("".join(block))
    return duplicates, bad


def _peak_rss_mb(rows: int, tmp_path: Path) -> float:
    path = tmp_path / f"audience-{rows}.csv"
    duplicates, bad = write_audience(path, rows)
    # VmHWM is the peak of this process's own memory; getrusage's ru_maxrss would also carry
    # the peak of the parent it was forked from (Linux keeps it across fork and exec)
    script = ("import sys\nfrom dispatcher.service.cli import main\nstatus = main(sys.argv[1:])\n"
              "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')]\n"
              "print(hwm[0].split()[1], file=sys.stderr)\n"
              "sys.exit(status)\n")
    done = subprocess.run([sys.executable, "-c", script, "audience", "check", str(path),
                           "--json"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert f'"duplicates":{duplicates}' in done.stdout.replace(" ", "")
    assert f'"rejected":{bad}' in done.stdout.replace(" ", "")
    path.unlink()
    return int(done.stderr.split()[-1]) / 1024


#: Interpreter, libraries and configuration take ~60 MB; the duplicate bitmap is at most
#: 10**9 bits = 125 MB however many rows (and only its touched pages count: ~1.25 MB per mobile
#: prefix of 10 million numbers). A set of seen numbers took ~65 bytes a row: ~700 MB at 10M.
PEAK_RSS_MB = 200


@pytest.mark.slow
def test_five_million_rows_in_bounded_memory(tmp_path: Path) -> None:
    # five times the province, sized for CI's time budget (10,000,000 rows: docs/audience.md)
    peak = _peak_rss_mb(5_000_000, tmp_path)
    print(f"loa audience check, 5,000,000 rows: peak RSS {peak:.0f} MB")
    assert peak < PEAK_RSS_MB


def test_memory_does_not_grow_with_rows(tmp_path: Path) -> None:
    # the first ~200,000 rows warm the allocator up (~15 MB); then memory stays flat, where a
    # set of 200,000 more numbers took ~13 MB more
    warm, twice = _peak_rss_mb(200_000, tmp_path), _peak_rss_mb(400_000, tmp_path)
    assert twice - warm < 4, (warm, twice)
    assert twice < PEAK_RSS_MB


# -- configuration files: every field wrong in turn -----------------------------------------------

SETTINGS = """\
[redis]
url = "redis://127.0.0.1:6379/0"
[engine]
batch_size = 500
chunk_size = 512
chunks_per_step = 16
approval_threshold = 10000
reconcile_seconds = 5.0
lease_seconds = 30.0
state_refresh_seconds = 0.25
consumers_per_route = 4
fanout_concurrency = 4
[retry]
max_attempts = 5
base_seconds = 2.0
max_seconds = 300.0
jitter = 0.2
[sms_routes]
itelecom = "vinaphone"
[rates]
"sms.viettel" = 500
[smpp.viettel]
host = "smsc.example"
port = 2775
system_id = "quangninh"
password_env = "LOA_TEST_SMPP_PASSWORD"
bind_type = "transceiver"
binds = 2
window = 64
tps = 100
source_ton = 5
response_timeout = 10.0
[zalo]
app_id = "app"
secret_key_env = "LOA_TEST_ZALO_SECRET"
mode = "zns"
template_id = "loa-alert"
concurrency = 64
timeout = 10.0
[app]
url = "https://app.example/push"
mode = "batch"
concurrency = 8
timeout = 10.0
[email]
host = "smtp.example"
port = 587
pool_size = 4
sender = "loa@quangninh.gov.vn"
timeout = 30.0
"""
ENV = {"LOA_TEST_SMPP_PASSWORD": "pw", "LOA_TEST_ZALO_SECRET": "zs"}


def _settings_loader(path: Path) -> Any:
    return load_settings(path, ENV)


LOADERS = {
    "settings": (None, _settings_loader),
    "plan": (DEFAULT_CONFIG_DIR / "plan.toml", load_plan),
    "province": (DEFAULT_CONFIG_DIR / "province.toml", load_province),
    "numbering": (DEFAULT_CONFIG_DIR / "numbering.toml", load_numbering),
}
ASSIGNMENT = re.compile(r'^(?P<key>"[^"]+"|[A-Za-z_][\w-]*)\s*=\s*(?P<value>.+?)\s*(#.*)?$')


def _wrong(value: str) -> str:
    """A value of another TOML type than ``value``."""
    if value.startswith('"'):
        return "12345"
    if value.startswith("["):
        return '"not a list"'
    if value in ("true", "false"):
        return '"yes"'
    return '"not a number"' if re.fullmatch(r"[-+\d._:TZ]+", value) else "[1, 2]"


def _mutations(text: str) -> Iterator[tuple[str, str, str]]:
    """(what, file text, key name the error must give): each field of another type in turn, and
    an unknown key in each table."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        found = ASSIGNMENT.match(line)
        if found and not line.lstrip().startswith("#"):
            key = found.group("key").strip('"')
            wrong = f"{found.group('key')} = {_wrong(found.group('value'))}"
            yield f"line {i + 1} {key}: wrong type", "\n".join(
                [*lines[:i], wrong, *lines[i + 1:]]), key
        if line.startswith("[") and not line.lstrip().startswith("#"):
            yield f"line {i + 1}: unknown key", "\n".join(
                [*lines[:i + 1], "bogus_field = 1", *lines[i + 1:]]), "bogus_field"
    yield "top: unknown key", "bogus_field = 1\n" + text, "bogus_field"


@pytest.mark.parametrize("kind", LOADERS)
def test_every_field_of_another_type_names_file_and_field(kind: str, tmp_path: Path) -> None:
    source, load = LOADERS[kind]
    text = SETTINGS if source is None else source.read_text(encoding="utf-8")
    path = tmp_path / f"{kind}.toml"
    path.write_text(text, encoding="utf-8")
    load(path)  # the file as it is loads
    tried = 0
    for what, mutated, key in _mutations(text):
        path.write_text(mutated, encoding="utf-8")
        with pytest.raises(ConfigError) as info:
            load(path)
        message = str(info.value)
        assert message.startswith(f"{path}: "), (what, message)
        assert key in message, (what, message)
        assert "\n" not in message and len(message) < 400, (what, message)
        tried += 1
    assert tried > 10


OUT_OF_RANGE: list[tuple[str, str, str, str]] = [
    # (loader, old text, new text, the key the error names)
    ("settings", "batch_size = 500", "batch_size = 0", "engine.batch_size"),
    ("settings", "jitter = 0.2", "jitter = 1.5", "retry.jitter"),
    ("settings", "max_attempts = 5", "max_attempts = -1", "retry.max_attempts"),
    ("settings", '"sms.viettel" = 500', '"sms.viettel" = -5', "rates.sms.viettel"),
    ("settings", "port = 2775", "port = 70000", "smpp.viettel.port"),
    ("settings", "binds = 2", "binds = 0", "smpp.viettel.binds"),
    ("settings", "source_ton = 5", "source_ton = 300", "smpp.viettel.source_ton"),
    ("settings", "tps = 100", "tps = -1", "smpp.viettel.tps"),
    ("settings", 'bind_type = "transceiver"', 'bind_type = "sideways"', "smpp.viettel.bind_type"),
    ("settings", 'mode = "zns"', 'mode = "sms"', "zalo.mode"),
    ("settings", "concurrency = 64", "concurrency = 0", "zalo: concurrency"),
    ("settings", '"sms.viettel" = 500', '"smss" = 500', "rates.smss"),
    ("settings", 'mode = "batch"', 'mode = "bulk"', "app.mode"),
    ("settings", "timeout = 10.0\n[email]", "timeout = -1.0\n[email]", "app.timeout"),
    ("settings", "pool_size = 4", "pool_size = 0", "email.pool_size"),
    ("settings", "port = 587", "port = 0", "email.port"),
    ("settings", 'password_env = "LOA_TEST_SMPP_PASSWORD"', 'password_env = "LOA_UNSET_X"',
     "smpp.viettel.password_env"),
    ("plan", 'timezone = "Asia/Ho_Chi_Minh"', 'timezone = "Mars/Olympus"', "timezone"),
    ("plan", "catch_up_minutes = 60", "catch_up_minutes = -1", "catch_up_minutes"),
    ("plan", 'sending_hours = ["07:00", "21:00"]', 'sending_hours = ["07:00", "25:00"]',
     "sending_hours[1]"),
    ("plan", "period_days = 7", "period_days = 0", "levels[0].channels.sms.period_days"),
    ("plan", 'kinds = ["resident", "visitor", "official"]', 'kinds = ["alien"]',
     "levels[0].channels.sms.kinds[0]"),
    ("plan", 'follows = "zalo"', 'follows = "fax"', "levels[0].channels.email.follows"),
    ("plan", "min_cases = 1", "min_cases = 0", "levels[0].min_cases"),
    ("plan", 'hotline = "1900 9095"', 'hotline = "gọi 1900"', "hotline"),
    ("plan", 'sms_diacritics = "strip"', 'sms_diacritics = "none"', "sms_diacritics"),
    ("plan", "sms_max_parts = 3", "sms_max_parts = 0", "sms_max_parts"),
    ("province", 'id = "ha-long"', 'id = "Hạ Long!"', "districts[0].id"),
    ("numbering", "national_digits = 9", "national_digits = 0", "national_digits"),
]


@pytest.mark.parametrize(("kind", "old", "new", "key"), OUT_OF_RANGE,
                         ids=[f"{k}:{key}" for k, _, _, key in OUT_OF_RANGE])
def test_out_of_range_and_bad_enum_name_file_and_field(kind: str, old: str, new: str, key: str,
                                                       tmp_path: Path) -> None:
    source, load = LOADERS[kind]
    text = SETTINGS if source is None else source.read_text(encoding="utf-8")
    assert f"\n{old}" in text
    path = tmp_path / f"{kind}.toml"
    path.write_text(text.replace(f"\n{old}", f"\n{new}", 1), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load(path)
    assert str(info.value).startswith(f"{path}: {key}"), str(info.value)


def test_a_config_file_that_is_not_text(tmp_path: Path) -> None:
    for kind, (_, load) in LOADERS.items():
        path = tmp_path / f"{kind}.toml"
        for data in (b"\xff\xfe" + "name = 1".encode("utf-16-le"), bytes(range(256)), b"[a\n"):
            path.write_bytes(data)
            with pytest.raises(ConfigError) as info:
                load(path)
            assert str(info.value).startswith(f"{path}: "), str(info.value)


def test_audience_errors_are_input_errors(tmp_path: Path, validator: Validator) -> None:
    path = tmp_path / "audience.csv"
    path.write_bytes(FILE_ERRORS["gzip"][0])
    with pytest.raises(AudienceError):
        check(path, validator)
