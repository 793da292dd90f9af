"""``loa incoming list``: what citizens sent, read from Redis, newest first, by channel, in
pages; stored text never acts on the terminal; bad options are one line on stderr."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import pytest

from dispatcher.domain.incoming import OPT_OUT, UNFOLLOW, Incoming
from dispatcher.domain.model import Channel
from dispatcher.store import RedisStore
from tests.service.test_cli_words import run

AT = dt.datetime(2026, 12, 7, 1, 0, tzinfo=dt.UTC)


def seed(url: str) -> None:
    async def go() -> None:
        store = RedisStore(url)
        try:
            await store.incoming.add([
                Incoming(Channel.SMS, "84912345678", AT, text="Cho hỏi\x1b[2J", encoding="ucs2"),
                Incoming(Channel.SMS, "84912345679", AT, kind=OPT_OUT, text="Từ chối",
                         keyword="TU CHOI"),
                Incoming(Channel.ZALO, "u-1", AT, kind=UNFOLLOW)])
        finally:
            await store.aclose()
    asyncio.run(go())


def test_incoming_list_prints_newest_first_with_the_opt_outs(
        capsys: pytest.CaptureFixture[str], redis_url: str) -> None:
    seed(redis_url)
    status, out, err = run(capsys, "incoming", "list", "--redis", redis_url)
    assert status == 0, err
    lines = out.splitlines()
    assert "u-1" in lines[0] and "OPT-OUT (unfollow)" in lines[0]
    assert "84912345679" in lines[1] and "OPT-OUT (TU CHOI)" in lines[1] and "Từ chối" in lines[1]
    assert lines[2].startswith("2026-12-07 08:00:00") and "reply" in lines[2]
    assert "\x1b" not in out and "\\x1b[2J" in lines[2]
    status, out, err = run(capsys, "incoming", "list", "--redis", redis_url, "--channel", "sms",
                           "--limit", "1", "--json")
    assert status == 0, err
    body = json.loads(out)
    assert [i["number"] for i in body["items"]] == ["84912345679"] and body["next_cursor"]
    status, out, _ = run(capsys, "incoming", "list", "--redis", redis_url, "--channel", "sms",
                         "--cursor", body["next_cursor"])
    assert "84912345678" in out and "84912345679" not in out and "more:" not in out


def test_bad_options_are_one_line(capsys: pytest.CaptureFixture[str], redis_url: str) -> None:
    status, _, err = run(capsys, "incoming", "list", "--redis", redis_url, "--limit", "0")
    assert status == 2 and "--limit" in err and len(err.strip().splitlines()) == 1
    status, _, err = run(capsys, "incoming", "list", "--redis", redis_url, "--cursor", "x")
    assert status == 2 and "--cursor" in err and "Traceback" not in err
