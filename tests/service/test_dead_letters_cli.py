"""``loa dead-letters``: list a wave's from Redis, replay them through the API with a token or
with --admin-direct (audited); one-line errors, no traceback."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from dispatcher.domain.model import WaveState
from dispatcher.service.audit import PENDING, read_audit
from dispatcher.store import RedisStore
from dispatcher.store.base import DeadLetter
from tests.service.test_cli_gate import Api, api, no_api  # noqa: F401 - fixtures
from tests.service.test_cli_words import run
from tests.service.test_dead_letters_api import dead_wave


def seeded(url: str, wave: str = "c-1-sms", *,
           state: WaveState = WaveState.COMPLETED) -> list[DeadLetter]:
    async def go() -> list[DeadLetter]:
        store = RedisStore(url)
        try:
            return await dead_wave(store, wave, state=state)
        finally:
            await store.aclose()
    return asyncio.run(go())


def admin(tmp_path: Path) -> tuple[str, ...]:
    config = tmp_path / "loa.toml"
    config.write_text(f'[api]\naudit_log = "{tmp_path / "audit.jsonl"}"\n', encoding="utf-8")
    return ("--admin-direct", "--user", "root", "--config", str(config))


def test_list_pages_through_a_waves_dead_letters(capsys: pytest.CaptureFixture[str],
                                                 redis_url: str) -> None:
    letters = seeded(redis_url)
    ids, cursor = [], ""
    while True:
        status, out, err = run(capsys, "dead-letters", "list", "c-1-sms", "--limit", "4",
                               *(("--cursor", cursor) if cursor else ()), "--redis", redis_url,
                               "--json")
        assert status == 0, err
        page = json.loads(out)
        assert page["total"] == len(letters)
        ids += [d["id"] for d in page["letters"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert ids == [d.id for d in letters]
    status, out, _ = run(capsys, "dead-letters", "list", "c-1-sms", "--limit", "2", "--redis",
                         redis_url)
    lines = out.splitlines()
    assert status == 0 and lines[0] == "wave c-1-sms: 6 dead letters not replayed"
    assert "sms.mobifone" in lines[1] and letters[0].addr in lines[1]
    assert "1 attempt  invalid destination" in lines[1]
    assert lines[-1].startswith("more: --cursor sms.mobifone:")


def test_replay_with_admin_direct_is_audited_and_takes_each_letter_once(
        capsys: pytest.CaptureFixture[str], redis_url: str, tmp_path: Path) -> None:
    letters = seeded(redis_url)
    how = admin(tmp_path)
    status, out, err = run(capsys, "dead-letters", "replay", "c-1-sms", "--reason", "fixed",
                           *how, "--redis", redis_url, "--json")
    assert status == 0, err
    assert json.loads(out) == {"wave": "c-1-sms", "requeued": len(letters), "skipped": 0,
                               "state": "sending", "reopened": True, "covered": 0}
    status, out, err = run(capsys, "dead-letters", "replay", "c-1-sms", *how, "--redis",
                           redis_url)
    assert status == 0, err
    assert out.strip() == ("wave c-1-sms: 0 dead letters sent again, 0 skipped (already sent); "
                           "sending")
    records = [(r.who, r.role, r.action, r.target, r.outcome, r.detail.get("via"))
               for r in read_audit(tmp_path / "audit.jsonl")]
    assert records == [("root", "redis-admin", "dead_letters.replay", "c-1-sms", outcome,
                        "admin-direct") for _ in range(2) for outcome in (PENDING, "ok")]


@pytest.mark.parametrize(("argv", "message"), [
    (("replay", "gone-sms"), "gone-sms is cancelled: its dead letters are not replayed"),
    (("replay", "nope"), "no wave 'nope'"),
    (("list", "nope"), "no wave 'nope'"),
    (("list", "gone-sms", "--cursor", "zz"), "cursor: 'zz' is not a cursor"),
    (("list", "gone-sms", "--limit", "0"), "--limit: 0 is not between 1 and 1000"),
])
def test_errors_are_one_line(capsys: pytest.CaptureFixture[str], redis_url: str,
                             tmp_path: Path, argv: tuple[str, ...], message: str) -> None:
    seeded(redis_url, "gone-sms", state=WaveState.CANCELLED)
    how = admin(tmp_path) if argv[0] == "replay" else ()
    status, out, err = run(capsys, "dead-letters", *argv, *how, "--redis", redis_url)
    assert status == 2 and out == "" and "Traceback" not in err
    assert err.count("\n") == 1 and message in err, err


def test_replay_without_a_token_is_refused(capsys: pytest.CaptureFixture[str],
                                           redis_url: str) -> None:
    status, out, err = run(capsys, "dead-letters", "replay", "c-1-sms", "--redis", redis_url)
    assert status == 2 and out == "" and "goes through the Loa API" in err


def test_replay_through_the_api(capsys: pytest.CaptureFixture[str],
                                api: Api) -> None:  # noqa: F811
    letters = seeded(api.redis)
    status, out, err = run(capsys, "dead-letters", "replay", "c-1-sms", "--reason", "fixed",
                           *api.as_("olga"), "--json")
    assert status == 0, err
    assert (json.loads(out)["requeued"], json.loads(out)["reopened"]) == (len(letters), True)
    status, _, err = run(capsys, "dead-letters", "replay", "nope", *api.as_("olga"))
    assert status == 2 and err.strip() == "loa: error: no wave 'nope'"
    actions = [(r.who, r.action, r.outcome, r.detail.get("requeued"))
               for r in read_audit(api.audit) if r.outcome == "ok"]
    assert actions == [("olga", "dead_letters.replay", "ok", len(letters))]
