"""``loa recipient NUMBER``: the number's row and what each recent wave did for it, read from
Redis; a bad number or one in no audience is one line on stderr."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path

import pytest

from dispatcher.domain.audience import Recipient
from dispatcher.domain.model import Campaign, Channel, Wave, WaveState
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.province import Province
from dispatcher.domain.suppression import Suppression
from dispatcher.store import RedisStore
from tests.conftest import imported
from tests.service.test_api import audience_file  # noqa: F401 - a fixture
from tests.service.test_cli_words import run


def seeded(url: str, path: Path, numbering: Numbering, province: Province) -> Recipient:
    """The audience of ``path`` in Redis, and a wave today that sent its first recipient."""
    async def go() -> Recipient:
        store = RedisStore(url)
        try:
            meta = await imported(store, path, numbering, province)
            chunk = (await store.audiences.chunks(meta.version, [meta.groups[0].chunks[0]]))[0]
            now = dt.datetime.now(dt.UTC)
            await store.campaigns.create(Campaign(
                id="c-1", title="Thông báo", channels=[Channel.SMS], texts={Channel.SMS: "x"},
                created_at=now, created_by="olga"))
            await store.waves.create(Wave(id="c-1-sms", campaign_id="c-1", channel=Channel.SMS,
                                          text="Đeo khẩu trang", created_at=now,
                                          audience_version=meta.version), WaveState.COMPLETED)
            await store.queue.mark_sent({"c-1-sms": [chunk.first_id]})
            return chunk.recipients[0]
        finally:
            await store.aclose()
    return asyncio.run(go())


def test_recipient_says_what_the_waves_did(
        capsys: pytest.CaptureFixture[str], redis_url: str, audience_file: Path,  # noqa: F811
        numbering: Numbering, province: Province) -> None:
    r = seeded(redis_url, audience_file, numbering, province)
    written = "+" + r.msisdn
    status, out, err = run(capsys, "recipient", written, "--redis", redis_url, "--json")
    assert status == 0, err
    view = json.loads(out)
    assert view["number"] == r.msisdn and view["row"]["district"] == r.district
    assert [(w["wave"], w["outcome"], w["text"]) for w in view["waves"]] == [
        ("c-1-sms", "sent", "Đeo khẩu trang")]
    status, out, _ = run(capsys, "recipient", "0" + r.msisdn[2:], "--redis", redis_url)
    lines = out.splitlines()
    assert status == 0 and lines[0].startswith(f"{r.msisdn}: {r.kind}")
    assert "sms   sent  c-1-sms  Thông báo" in lines[1] and lines[2].strip() == "Đeo khẩu trang"
    status, _, err = run(capsys, "recipient", "12345", "--redis", redis_url)
    assert status == 2 and err.startswith("loa: error: NUMBER: ") and len(err.splitlines()) == 1
    status, _, err = run(capsys, "recipient", "0912000001", "--redis", redis_url)
    assert status == 2 and "in no audience" in err and len(err.splitlines()) == 1
    status, _, err = run(capsys, "recipient", r.msisdn, "--days", "0", "--redis", redis_url)
    assert status == 2 and "--days" in err


def test_recipient_says_where_the_number_is_suppressed(
        capsys: pytest.CaptureFixture[str], redis_url: str, audience_file: Path,  # noqa: F811
        numbering: Numbering, province: Province) -> None:
    seeded(redis_url, audience_file, numbering, province)

    async def listed() -> str:
        store = RedisStore(redis_url)
        try:
            meta = await store.audiences.meta()
            assert meta is not None
            chunk = (await store.audiences.chunks(meta.version, [meta.groups[0].chunks[0]]))[0]
            number = chunk.recipients[1].msisdn  # the wave did not send it
            await store.suppressions.add([
                Suppression(Channel.SMS, number, 'keyword "TU CHOI"', 1.0, source="opt_out")])
            return number
        finally:
            await store.aclose()

    number = asyncio.run(listed())
    status, out, err = run(capsys, "recipient", number, "--redis", redis_url, "--json")
    assert status == 0, err
    view = json.loads(out)
    assert [(w["wave"], w["outcome"]) for w in view["waves"]] == [("c-1-sms", "suppressed")]
    assert [e["channel"] for e in view["suppressed"]] == ["sms"]
    status, out, _ = run(capsys, "recipient", number, "--redis", redis_url)
    assert status == 0
    assert out.splitlines()[1] == 'suppressed on sms (opt_out): keyword "TU CHOI"'
    assert "sms   suppressed  c-1-sms" in out
