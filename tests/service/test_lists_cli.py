"""``loa list upload|show`` and ``loa campaign create --list``: through the API with a token, or
--admin-direct into Redis with an audit record; rejected rows by line; one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dispatcher.service.audit import PENDING, read_audit
from tests.service.test_cli_gate import Api, api, no_api  # noqa: F401 - fixtures
from tests.service.test_cli_words import run


def write_list(path: Path, n: int) -> Path:
    rows = ["msisdn", *(f"0912 {i:03d} {i * 3 % 1000:03d}" for i in range(n)), "0203 3825 123"]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_upload_then_a_campaign_to_the_list_through_the_api(
        capsys: pytest.CaptureFixture[str], api: Api, tmp_path: Path) -> None:  # noqa: F811
    path = write_list(tmp_path / "bar.csv", 150)
    status, out, err = run(capsys, "list", "upload", str(path), *api.as_("olga"))
    assert status == 0, err
    assert "150 numbers of 151 rows (0 duplicates, 1 rejected)" in out
    assert "line 152: msisdn:" in out
    status, out, err = run(capsys, "list", "upload", str(path), "--name", "Quán bar X",
                           *api.as_("olga"), "--json")
    assert status == 0, err
    report = json.loads(out)
    assert report["name"] == "Quán bar X" and report["rejects"][0]["line"] == 152
    status, out, err = run(capsys, "campaign", "create", "--title", "Quán bar X", "--text",
                           "O nha, goi y te.", "--list", report["id"], *api.as_("olga"),
                           "--json")
    assert status == 0, err
    campaign = json.loads(out)  # the threshold is 100
    assert (campaign["state"], campaign["audience_size"]) == ("pending_approval", 150)
    assert campaign["audience_list"] == report["id"]
    status, out, err = run(capsys, "list", "show", report["id"], "--redis", api.redis)
    assert status == 0 and "150 numbers" in out, err
    status, out, err = run(capsys, "list", "show", "--redis", api.redis)
    assert status == 0 and out.count("\n") == 1 and report["id"] in out, err
    status, _, err = run(capsys, "campaign", "create", "--title", "x", "--text", "y", "--list",
                         "l-00", *api.as_("olga"))
    assert status == 2 and err.count("\n") == 1 and "audience_list" in err
    (tmp_path / "bad.csv").write_text("name\nAn\n", encoding="utf-8")
    status, _, err = run(capsys, "list", "upload", str(tmp_path / "bad.csv"), *api.as_("olga"))
    assert status == 2 and err.count("\n") == 1 and "msisdn" in err
    assert "Traceback" not in err
    status, out, err = run(capsys, "campaign", "approve", campaign["id"], *api.as_("carol"),
                           "--json")
    assert status == 0 and json.loads(out)["campaign"]["state"] == "approved", err


def test_campaign_create_uploads_a_list_file_first(
        capsys: pytest.CaptureFixture[str], api: Api, tmp_path: Path) -> None:  # noqa: F811
    path = write_list(tmp_path / "cho.csv", 30)
    status, out, err = run(capsys, "campaign", "create", "--title", "Chợ Hạ Long", "--text",
                           "O nha, goi y te.", "--list", str(path), *api.as_("olga"))
    assert status == 0, err
    assert "30 numbers of 31 rows (0 duplicates, 1 rejected" in out
    assert "approved (30 recipients)" in out  # under the threshold of 100
    status, _, err = run(capsys, "campaign", "create", "--title", "x", "--text", "y", "--list",
                         str(tmp_path / "missing.csv"), *api.as_("olga"))
    assert status == 2 and err.count("\n") == 1 and "audience_list" in err


def test_admin_direct_upload_is_audited(capsys: pytest.CaptureFixture[str], redis_url: str,
                                        tmp_path: Path) -> None:
    config = tmp_path / "loa.toml"
    audit = tmp_path / "audit.jsonl"
    config.write_text(f'[api]\naudit_log = "{audit}"\n', encoding="utf-8")
    path = tmp_path / "bar.json"
    path.write_text(json.dumps(["0912000001", 84912000002, "12"]), encoding="utf-8")
    status, out, err = run(capsys, "list", "upload", str(path), "--admin-direct", "--user",
                           "root", "--config", str(config), "--redis", redis_url, "--json")
    assert status == 0, err
    report = json.loads(out)
    assert (report["valid"], report["rejected"], report["format"]) == (2, 1, "json")
    assert [(r.action, r.target, r.outcome) for r in read_audit(audit)] == [
        ("list.upload", report["id"], PENDING), ("list.upload", report["id"], "ok")]
    path.write_text('["12"]', encoding="utf-8")
    status, _, err = run(capsys, "list", "upload", str(path), "--admin-direct", "--user",
                         "root", "--config", str(config), "--redis", redis_url)
    assert status == 2 and err.count("\n") == 1 and "no valid number" in err
    assert str(path) in err


def test_check_a_list_without_storing_it(capsys: pytest.CaptureFixture[str],
                                         tmp_path: Path) -> None:
    path = write_list(tmp_path / "bar.csv", 12)
    rejects = tmp_path / "rejects.csv"
    status, out, err = run(capsys, "list", "check", str(path), "--rejects", str(rejects))
    assert status == 0, err
    assert "13 rows: 12 valid, 0 duplicates, 1 rejected" in out  # no district needed
    lines = rejects.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "line,reason,msisdn" and lines[1].startswith("14,msisdn: ")
    status, out, err = run(capsys, "audience", "check", str(path))
    assert "13 rows: 0 valid" in out  # the province's audience needs a district
    listed = tmp_path / "bar.json"
    listed.write_text(json.dumps(["0912000001", "0912000001", 12, "84912000002"]),
                      encoding="utf-8")
    status, out, err = run(capsys, "list", "check", str(listed), "--json", "--rejects",
                           str(rejects))
    assert status == 0, err
    report = json.loads(out)
    assert (report["rows"], report["valid"], report["duplicates"], report["rejected"]) == \
        (4, 2, 1, 1)
    assert [line.split(",")[0] for line in
            rejects.read_text(encoding="utf-8").splitlines()] == ["line", "2", "3"]
    status, _, err = run(capsys, "list", "check", str(tmp_path / "none.csv"))
    assert status == 2 and err.count("\n") == 1 and "cannot read" in err
