"""The loudspeaker channel against its simulator, over loopback: one broadcast per system with the
audio rendered once, each fault of the table handled (down, slow, throttled, token expired,
refused, unknown answers), and an upload whose answer was lost answered 409 on the next try
instead of being played twice. Broadcasts are counted at the far end."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest
from prometheus_client import REGISTRY

from adapters.base import HALTED, Abort, Envelope
from adapters.http.client import HttpClient
from adapters.http.multipart import Part, encode, field
from adapters.loudspeaker import broadcast
from adapters.loudspeaker.adapter import LoudspeakerAdapter, retry_after
from adapters.loudspeaker.codes import STATUSES, Outcome, lookup
from adapters.loudspeaker.config import LoudspeakerConfig, Speech, System
from adapters.loudspeaker.simulator import LoudspeakerSim, LoudspeakerSimConfig
from adapters.loudspeaker.speech import Speaker
from dispatcher.domain.errors import ConfigError
from dispatcher.domain.model import VN, Channel

pytestmark = pytest.mark.skipif(
    shutil.which("espeak-ng") is None,
    reason="espeak-ng is not installed (make test installs the Debian package espeak-ng)")

TOKENS = {"dongtrieu": "tok-dongtrieu", "halong": "tok-halong", "campha": "tok-campha"}
TEXT = ("Bản tin phòng, chống dịch Covid-19: thị xã Đông Triều ghi nhận thêm 12 ca mắc mới, "
        "tổng số 1.234 ca. Khi có sốt, ho, khó thở, gọi đường dây nóng 1900 9095.")
IDS = list(TOKENS)


@pytest.fixture
async def sim() -> AsyncIterator[LoudspeakerSim]:
    server = LoudspeakerSim(LoudspeakerSimConfig(systems=dict(TOKENS)))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def systems(sim: LoudspeakerSim) -> list[System]:
    return [System(id=s, url=sim.system_url(s), token_env=f"T_{s.upper()}", token=t,
                   zones=["phuong-a", "xa-b"] if s == "dongtrieu" else [],
                   play_at=["06:30", "17:00"] if s == "dongtrieu" else [])
            for s, t in TOKENS.items()]


def config(sim: LoudspeakerSim, **changes: object) -> LoudspeakerConfig:
    base = LoudspeakerConfig(systems=systems(sim), proxy="direct", timeout=1.0, repeat=3,
                             alert_probe_seconds=0.3, unknown_status_limit=3)
    return msgspec.structs.replace(base, **changes)


@pytest.fixture
async def adapter(sim: LoudspeakerSim) -> AsyncIterator[LoudspeakerAdapter]:
    made = LoudspeakerAdapter(config(sim))
    try:
        yield made
    finally:
        await made.aclose()


def envelope(addrs: list[str] | None = None, *, wave: str = "w-1", text: str = TEXT,
             urgent: bool = False, abort: Abort | None = None) -> Envelope:
    return Envelope(wave=wave, channel=Channel.LOUDSPEAKER, text=text,
                    addrs=IDS if addrs is None else addrs, route="loudspeaker", urgent=urgent,
                    abort=abort)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# -- the table and the schedule ------------------------------------------------------------------


def test_the_table_says_what_each_status_of_the_profile_calls_for() -> None:
    assert {s for s, st in STATUSES.items() if st.outcome is Outcome.SENT} == {200, 201}
    assert STATUSES[409].outcome is Outcome.TAKEN
    assert STATUSES[401].outcome is STATUSES[403].outcome is Outcome.TOKEN
    assert STATUSES[429].outcome is Outcome.THROTTLE
    assert {s for s, st in STATUSES.items() if st.outcome is Outcome.FAIL} == {400, 413, 415,
                                                                                422}
    assert lookup(507) is not None and lookup(507).outcome is Outcome.RETRY  # type: ignore[union-attr]
    assert lookup(418) is None and lookup(302) is None
    assert retry_after("7", 0) == 7.0
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470.0) == 10.0
    assert retry_after("soon", 0) is None


def test_a_broadcast_plays_at_the_days_times_still_to_come() -> None:
    system = System(id="s", url="http://x", token_env="T", play_at=["17:00", "06:30"])
    at = dt.datetime(2021, 12, 7, 7, 0, tzinfo=VN)
    assert broadcast.iso(broadcast.schedule(system, at, urgent=False)) == [
        "2021-12-07T17:00:00+07:00"]
    assert broadcast.iso(broadcast.schedule(system, at.replace(hour=5), urgent=False)) == [
        "2021-12-07T06:30:00+07:00", "2021-12-07T17:00:00+07:00"]
    assert broadcast.iso(broadcast.schedule(system, at.replace(hour=18), urgent=False)) == [
        "2021-12-08T06:30:00+07:00"]  # none left today: the first of the next day
    assert broadcast.iso(broadcast.schedule(system, at, urgent=True)) == [
        "2021-12-07T07:00:00+07:00", "2021-12-07T17:00:00+07:00"]  # urgent: at once too
    at_once = System(id="s", url="http://x", token_env="T")
    utc = dt.datetime(2021, 12, 7, 0, 5, 9, 123, tzinfo=dt.UTC)
    assert broadcast.iso(broadcast.schedule(at_once, utc, urgent=False)) == [
        "2021-12-07T07:05:09+07:00"]


# -- sent, once ----------------------------------------------------------------------------------


async def test_each_system_gets_the_broadcast_once_with_its_audio_rendered_once(
        sim: LoudspeakerSim) -> None:
    clock = dt.datetime(2021, 12, 7, 7, 0, tzinfo=VN).timestamp()
    adapter = LoudspeakerAdapter(config(sim), clock=lambda: clock)
    try:
        results = await adapter.send(envelope(wave="L1-loudspeaker-20211207T0700"))
        assert sorted(results.sent) == [0, 1, 2] and not results.retry and not results.failed
        assert sorted(results.remote_ids) == ["b-1", "b-2", "b-3"]
        assert adapter.speaker.renders == 1  # one text, three systems: one rendering
        again = await adapter.send(envelope(wave="L1-loudspeaker-20211207T0700"))
        assert sorted(again.sent) == [0, 1, 2]  # 409: taken already, counted sent
        assert adapter.speaker.renders == 1 and adapter.renderings.hits == 1
    finally:
        await adapter.aclose()
    assert sim.stats.broadcasts == 3 and sim.stats.taken == 3
    for system in IDS:
        assert sim.count(f"L1-loudspeaker-20211207T0700:{system}") == 1
    kept = sim.broadcasts["dongtrieu"][0]
    assert kept.text == TEXT and kept.title == "Bản tin phòng, chống dịch" and kept.repeat == 3
    assert kept.zones == ["phuong-a", "xa-b"]
    assert kept.schedule == ["2021-12-07T17:00:00+07:00"]
    assert kept.duration_ms == kept.audio_ms > 5000
    assert sim.broadcasts["halong"][0].zones == []
    assert sim.broadcasts["halong"][0].schedule == ["2021-12-07T07:00:00+07:00"]


async def test_an_answer_lost_after_the_upload_never_plays_twice(
        sim: LoudspeakerSim, adapter: LoudspeakerAdapter) -> None:
    sim.set_config(hang_after_accept=3.0)  # longer than the adapter's 1 s
    lost = await adapter.send(envelope(["halong"]))
    assert lost.retry and "may have arrived" in lost.retry[0][1] and not lost.sent
    assert adapter.stats.unanswered == 1 and sim.count("w-1:halong") == 1
    sim.set_config(hang_after_accept=0.0)
    retried = await adapter.send(envelope(["halong"]))
    assert retried.sent == [0] and retried.remote_ids == ["b-1"]  # the system's own id
    assert sim.count("w-1:halong") == 1 and sim.stats.taken == 1


async def test_a_slow_system_is_waited_for(sim: LoudspeakerSim,
                                           adapter: LoudspeakerAdapter) -> None:
    sim.set_config(delay=0.3)
    results = await adapter.send(envelope())
    assert sorted(results.sent) == [0, 1, 2] and sim.stats.broadcasts == 3


async def test_a_system_that_is_down_gets_its_bulletin_requeued(
        sim: LoudspeakerSim, adapter: LoudspeakerAdapter) -> None:
    await sim.stop()
    results = await adapter.send(envelope(["dongtrieu"]))
    assert [i for i, _ in results.requeue] == [0] and not results.retry
    assert "cannot connect" in results.requeue[0][1]


@pytest.mark.parametrize("status", [500, 503, 408])
async def test_a_failing_system_is_retried(sim: LoudspeakerSim, adapter: LoudspeakerAdapter,
                                           status: int) -> None:
    sim.set_config(status=status)
    results = await adapter.send(envelope(["halong"]))
    assert [i for i, _ in results.retry] == [0] and f"HTTP {status}" in results.retry[0][1]
    assert sim.stats.broadcasts == 0
    assert (await adapter.send(envelope(["halong"]))).sent == [0]


@pytest.mark.parametrize(("status", "words"), [
    (400, "malformed upload"), (413, "too large"), (415, "audio type"), (422, "zone or a time")])
async def test_a_refused_upload_fails_with_its_reason(
        sim: LoudspeakerSim, adapter: LoudspeakerAdapter, status: int, words: str) -> None:
    sim.set_config(status=status)
    results = await adapter.send(envelope(["halong"]))
    assert [i for i, _ in results.failed] == [0]
    assert results.failed[0][1].startswith(f"halong: HTTP {status} (") and words in \
        results.failed[0][1]
    assert f"injected {status}" in results.failed[0][1]


async def test_throttled_the_system_waits_for_retry_after(
        sim: LoudspeakerSim, adapter: LoudspeakerAdapter) -> None:
    sim.set_config(throttle_count=1, retry_after=30)
    before = time.time()
    results = await adapter.send(envelope(["halong"]))
    assert [i for i, _ in results.requeue] == [0] and "waits 30 s" in results.requeue[0][1]
    assert before + 29 <= results.pause_until <= time.time() + 31  # the route waits too
    assert results.urgent_passes
    requests = sim.stats.requests
    mixed = await adapter.send(envelope())  # the others go; halong waits without a request
    assert sorted(mixed.sent) == [0, 2] and [i for i, _ in mixed.requeue] == [1]
    assert mixed.pause_until == 0.0 and sim.stats.requests == requests + 2


async def test_an_expired_token_stops_the_system_with_an_alert_and_loses_nothing(
        sim: LoudspeakerSim, adapter: LoudspeakerAdapter,
        caplog: pytest.LogCaptureFixture) -> None:
    sim.set_config(expired=frozenset({"tok-campha"}))
    alerts = sample("loa_loudspeaker_alerts_total", reason="token")
    with caplog.at_level(logging.ERROR, logger="adapters.loudspeaker.adapter"):
        results = await adapter.send(envelope())
    assert sorted(results.sent) == [0, 1] and [i for i, _ in results.requeue] == [2]
    assert "token expired" in results.requeue[0][1]
    assert adapter.stopped == {"campha": "token"}
    assert sample("loa_loudspeaker_system_stopped", system="campha", reason="token") == 1
    assert sample("loa_loudspeaker_alerts_total", reason="token") == alerts + 1
    assert any(r.message.startswith("ALERT loudspeaker (token): system campha stopped")
               for r in caplog.records)
    held = await adapter.send(envelope(["campha"]))  # stopped: no request, the route waits
    assert [i for i, _ in held.requeue] == [0] and held.pause_until > time.time()
    assert sim.stats.unauthorized == 1
    sim.set_config(expired=frozenset())  # a new token given
    await asyncio.sleep(0.35)  # alert_probe_seconds: one upload tries
    probe = await adapter.send(envelope(["campha"]))
    assert probe.sent == [0] and adapter.stopped == {}
    assert sample("loa_loudspeaker_system_stopped", system="campha", reason="token") == 0
    assert sim.count("w-1:campha") == 1


async def test_answers_loa_does_not_know_are_retried_then_stop_the_system(
        sim: LoudspeakerSim, adapter: LoudspeakerAdapter) -> None:
    sim.set_config(status=418, status_count=10)
    for _ in range(2):
        results = await adapter.send(envelope(["halong"]))
        assert [i for i, _ in results.retry] == [0]
        assert "a status Loa does not know" in results.retry[0][1]
    stopped = await adapter.send(envelope(["halong"]))  # the third in a row: stop, alert
    assert [i for i, _ in stopped.requeue] == [0] and "3 answers in a row" in \
        stopped.requeue[0][1]
    assert adapter.stopped == {"halong": "unknown"}


async def test_a_halted_envelope_sends_nothing_more(sim: LoudspeakerSim,
                                                     adapter: LoudspeakerAdapter) -> None:
    abort = Abort()
    abort.halted = True
    results = await adapter.send(envelope(abort=abort))
    assert sorted(results.requeue) == [(0, HALTED), (1, HALTED), (2, HALTED)]
    assert sim.stats.requests == 0 and adapter.speaker.renders == 0


async def test_an_unknown_system_or_an_empty_text_fails(sim: LoudspeakerSim,
                                                          adapter: LoudspeakerAdapter) -> None:
    results = await adapter.send(envelope(["nowhere", "halong"]))
    assert results.failed == [(0, "no system 'nowhere' in [loudspeaker] systems")]
    assert results.sent == [1]
    empty = await adapter.send(envelope(["halong"], wave="w-2", text=" * "))
    assert empty.failed == [(0, "nothing to read: the text is empty")]


async def test_without_the_speech_program_bulletins_wait_with_an_alert(
        sim: LoudspeakerSim, tmp_path: Path) -> None:
    missing = Speech(binary=str(tmp_path / "espeak-ng"))
    with pytest.raises(ConfigError, match=r"loudspeaker.speech.binary: .* is not installed"):
        LoudspeakerAdapter(config(sim, speech=missing))
    adapter = LoudspeakerAdapter(config(sim), speaker=Speaker(missing))
    alerts = sample("loa_loudspeaker_alerts_total", reason="speech")
    try:
        results = await adapter.send(envelope())
    finally:
        await adapter.aclose()
    assert len(results.requeue) == 3 and "install the Debian package espeak-ng" in \
        results.requeue[0][1]
    assert sample("loa_loudspeaker_alerts_total", reason="speech") == alerts + 1
    assert sim.stats.requests == 0


# -- the simulator's checks ----------------------------------------------------------------------


async def upload(sim: LoudspeakerSim, parts: list[Part], *, token: str = "tok-halong",
                 system: str = "halong") -> tuple[int, dict[str, str]]:
    client = HttpClient(1, 5.0)
    try:
        content_type, body = encode(parts)
        response = await client.request(
            "POST", client.url(sim.system_url(system) + broadcast.PATH), body,
            {"Authorization": f"Bearer {token}", "Content-Type": content_type})
        return response.status, json.loads(response.body)
    finally:
        await client.aclose()


async def good_parts(**changes: str) -> list[Part]:
    audio = await Speaker(Speech()).render(TEXT)
    values = {"id": "w-9:halong", "title": "t", "text": TEXT, "repeat": "1",
              "schedule": "2021-12-07T17:00:00+07:00", "duration_ms": str(audio.duration_ms),
              **changes}
    parts = [field(name, value) for name, value in values.items() if value != "-"]
    return [*parts, Part("audio", audio.wav, "bulletin.wav", "audio/wav")]


@pytest.mark.parametrize(("change", "status", "words"), [
    ({"duration_ms": "1000"}, 422, "duration_ms: 1000 ms, the audio lasts"),
    ({"text": "Xin chào"}, 422, "implausible for 7 characters"),
    ({"text": TEXT * 30}, 422, "implausible for"),
    ({"schedule": "17:00"}, 400, "schedule: '17:00' is not ISO 8601"),
    ({"schedule": "2021-12-07T17:00:00"}, 400, "with an offset"),
    ({"id": "w-9:dongtrieu"}, 400, "is not <wave>:halong"),
    ({"repeat": "-"}, 400, "repeat: one is required"),
])
async def test_the_simulator_checks_an_upload_as_a_vendor_would(
        sim: LoudspeakerSim, change: dict[str, str], status: int, words: str) -> None:
    answer = await upload(sim, await good_parts(**change))
    assert answer[0] == status and words in answer[1]["error"]
    assert sim.stats.broadcasts == 0
    assert (await upload(sim, await good_parts()))[0] == 201


async def test_the_simulator_checks_the_audio_and_the_token(sim: LoudspeakerSim) -> None:
    parts = await good_parts()
    not_wav = [*parts[:-1], Part("audio", b"RIFF1234WAVEjunk", "bulletin.wav", "audio/wav")]
    assert (await upload(sim, not_wav))[0] == 422
    mp3 = [*parts[:-1], Part("audio", b"ID3", "bulletin.mp3", "audio/mpeg")]
    assert (await upload(sim, mp3))[0] == 415
    assert (await upload(sim, parts, token="tok-dongtrieu")) == (
        401, {"error": "token missing or invalid"})
    assert sim.stats.unauthorized == 1 and sim.stats.invalid == 2 and sim.stats.broadcasts == 0


# -- loa sim loudspeaker -------------------------------------------------------------------------


def test_loa_sim_loudspeaker_serves_until_sigterm_and_prints_its_counters() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "dispatcher.service.cli", "sim", "loudspeaker", "--port", "0",
         "--system", "halong=tok-halong", "--system", "campha=tok-campha", "--expired",
         "tok-campha", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("loudspeaker simulator listening on http://127.0.0.1:"), line
        url = line.split()[4]

        async def post() -> list[int]:
            made = [System(id=s, url=f"{url}/{s}", token_env="T", token=f"tok-{s}")
                    for s in ("halong", "campha")]
            adapter = LoudspeakerAdapter(LoudspeakerConfig(systems=made, proxy="direct"))
            try:
                results = await adapter.send(envelope(["halong", "campha"]))
                return results.sent + [i for i, _ in results.requeue]
            finally:
                await adapter.aclose()

        assert asyncio.run(post()) == [0, 1]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    stats = json.loads(out.strip().splitlines()[-1])
    assert stats["broadcasts"] == 1 and stats["unauthorized"] == 1
