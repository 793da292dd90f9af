"""``loa suppression``: list and export from Redis, add and remove through the API with a token
or with --admin-direct (audited); one-line errors naming the option, no traceback."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path

import pytest

from dispatcher.domain.model import Channel
from dispatcher.domain.suppression import Suppression
from dispatcher.service.audit import PENDING, read_audit
from dispatcher.store import RedisStore
from tests.service.test_cli_gate import Api, api, no_api  # noqa: F401 - fixtures
from tests.service.test_cli_words import run
from tests.service.test_dead_letters_cli import admin


def seeded(url: str, n: int) -> None:
    async def go() -> None:
        store = RedisStore(url)
        try:
            await store.suppressions.add([
                Suppression(Channel.SMS, f"849120{i:05d}", 'keyword "TU CHOI"', 1765000000.0,
                            source="opt_out") for i in range(n)])
        finally:
            await store.aclose()
    asyncio.run(go())


def test_list_pages_and_export_writes_csv(capsys: pytest.CaptureFixture[str],
                                          redis_url: str, tmp_path: Path) -> None:
    seeded(redis_url, 5)
    numbers, cursor = [], ""
    for _ in range(10):  # bounded: 3 pages are expected
        status, out, err = run(capsys, "suppression", "list", "--channel", "sms", "--limit", "2",
                               *(("--cursor", cursor) if cursor else ()), "--redis", redis_url,
                               "--json")
        assert status == 0, err
        page = json.loads(out)
        assert page["total"] == 5
        numbers += [e["number"] for e in page["entries"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert numbers == [f"849120{i:05d}" for i in range(5)]
    status, out, _ = run(capsys, "suppression", "list", "--limit", "1", "--redis", redis_url)
    lines = out.splitlines()
    assert status == 0 and lines[0] == "sms: 5 numbers on the suppression list"
    assert "84912000000" in lines[1] and "opt_out" in lines[1] and "TU CHOI" in lines[1]
    assert lines[-1] == "more: --cursor 84912000000"
    target = tmp_path / "list.csv"
    status, _, err = run(capsys, "suppression", "export", "--channel", "sms", "-o", str(target),
                         "--redis", redis_url)
    assert status == 0, err
    rows = list(csv.reader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert rows[0][:3] == ["channel", "number", "reason"] and len(rows) == 6
    status, out, _ = run(capsys, "suppression", "export", "--redis", redis_url)
    assert status == 0 and out.count("\n") == 6


def test_add_and_remove_with_admin_direct_are_audited(capsys: pytest.CaptureFixture[str],
                                                      redis_url: str, tmp_path: Path) -> None:
    how = admin(tmp_path)
    status, out, err = run(capsys, "suppression", "add", "0912 345 678", "--channel", "sms",
                           "--reason", "asked at the hotline", *how, "--redis", redis_url,
                           "--json")
    assert status == 0, err
    assert (json.loads(out)["number"], json.loads(out)["by"]) == ("84912345678", "root")
    status, out, err = run(capsys, "suppression", "remove", "+84912345678", "--channel", "sms",
                           "--reason", "by mistake", *how, "--redis", redis_url)
    assert status == 0, err
    assert out.strip() == "84912345678 off the sms suppression list: asked at the hotline"
    records = [(r.who, r.action, r.target, r.outcome, r.detail.get("via"))
               for r in read_audit(tmp_path / "audit.jsonl")]
    assert records == [("root", f"suppression.{verb}", "sms:84912345678", outcome,
                        "admin-direct") for verb in ("add", "remove")
                       for outcome in (PENDING, "ok")]


@pytest.mark.parametrize(("argv", "message"), [
    (("add", "0203 123 456", "--channel", "sms", "--reason", "x"), "number: '0203 123 456'"),
    (("add", "0912345678", "--channel", "sms", "--reason", " "), "reason: say why"),
    (("remove", "0912345678", "--channel", "sms", "--reason", "x"),
     "84912345678 is not on the sms suppression list"),
    (("list", "--limit", "0"), "--limit: 0 is not between 1 and 1000"),
    (("list", "--cursor", "x" * 300), "cursor:"),
])
def test_errors_are_one_line(capsys: pytest.CaptureFixture[str], redis_url: str,
                             tmp_path: Path, argv: tuple[str, ...], message: str) -> None:
    how = admin(tmp_path) if argv[0] in ("add", "remove") else ()
    status, out, err = run(capsys, "suppression", *argv, *how, "--redis", redis_url)
    assert status == 2 and out == "" and "Traceback" not in err
    assert err.count("\n") == 1 and message in err, err


def test_add_and_remove_through_the_api(capsys: pytest.CaptureFixture[str],
                                        api: Api) -> None:  # noqa: F811
    status, out, err = run(capsys, "suppression", "add", "0912345678", "--channel", "zalo",
                           "--reason", "asked", *api.as_("olga"), "--json")
    assert status == 0, err
    assert (json.loads(out)["channel"], json.loads(out)["by"]) == ("zalo", "olga")
    status, _, err = run(capsys, "suppression", "remove", "0912345678", "--channel", "zalo",
                         "--reason", "by mistake", *api.as_("olga"))
    assert status == 0, err
    status, _, err = run(capsys, "suppression", "remove", "0912345678", "--channel", "zalo",
                         "--reason", "again", *api.as_("olga"))
    assert status == 2 and "not on the zalo suppression list" in err
    actions = [(r.who, r.action, r.outcome) for r in read_audit(api.audit) if r.outcome == "ok"]
    assert actions == [("olga", "suppression.add", "ok"), ("olga", "suppression.remove", "ok")]
