"""The cell broadcast channel against the broadcast centre simulator, over loopback: one CAP
alert per carrier and wave, each fault of the table handled (down, slow, throttled, credentials
expired, rejected, 5xx, an acceptance whose answer was lost), the alert never taken twice, its
state read and its Cancel referencing it. Alerts are counted at the far end."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest
from prometheus_client import REGISTRY

from adapters.base import HALTED, Abort, Envelope, Results, Withdrawable
from adapters.cellbroadcast import CellBroadcastAdapter, CellBroadcastConfig
from adapters.cellbroadcast.codes import CANCEL_CODES, CODES, STATES, Outcome, lookup, state_of
from adapters.cellbroadcast.config import CarrierOptions
from adapters.cellbroadcast.profile import Profile
from adapters.cellbroadcast.simulator import CbcSim, CbcSimConfig
from dispatcher.domain.broadcast import State
from dispatcher.domain.cap import NAMESPACE, to_xml
from dispatcher.domain.errors import ChannelError
from dispatcher.domain.model import Channel
from dispatcher.service.cli import main
from tests.capschema import assert_valid
from tests.cellbroadcast import CAP, CARRIERS, CREDENTIALS, PROVINCE, SENDER, carriers, config

NS = {"cap": NAMESPACE}
TEXT = "KHẨN: Covid-19 lây lan rộng tại Quảng Ninh. Chỉ ra ngoài khi thật cần thiết."


@pytest.fixture
async def sim() -> AsyncIterator[CbcSim]:
    server = CbcSim(CbcSimConfig(carriers=CREDENTIALS))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def make(cfg: CellBroadcastConfig) -> CellBroadcastAdapter:
    return CellBroadcastAdapter(cfg, CAP, PROVINCE)


@pytest.fixture
async def adapter(sim: CbcSim) -> AsyncIterator[CellBroadcastAdapter]:
    made = make(config(sim))
    try:
        yield made
    finally:
        await made.aclose()


def envelope(text: str = TEXT, addrs: list[str] | None = None, *, wave: str = "w-1",
             created_at: float | None = None, districts: dict[str, str] | None = None,
             level: int | None = 4, urgent: bool = False,
             abort: Abort | None = None) -> Envelope:
    return Envelope(wave=wave, channel=Channel.CELL_BROADCAST, text=text,
                    addrs=CARRIERS if addrs is None else addrs, route="cell_broadcast",
                    created_at=time.time() - 1 if created_at is None else created_at,
                    districts=districts or {}, level=level, urgent=urgent, abort=abort)


def gauge(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def root(document: bytes) -> ET.Element:
    return ET.fromstring(document)


def text(parent: ET.Element, path: str) -> str:
    found = parent.find(path, NS)
    assert found is not None, path
    return found.text or ""


# -- the table -----------------------------------------------------------------------------------


def test_the_table_says_what_each_answer_calls_for() -> None:
    assert {CODES[c][1] for c in (200, 201, 202)} == {Outcome.ACCEPTED}
    assert CODES[409][1] is Outcome.DUPLICATE
    assert CODES[401][1] is CODES[403][1] is Outcome.CREDENTIALS
    assert CODES[429][1] is Outcome.THROTTLE
    assert {CODES[c][1] for c in (500, 502, 503, 504, 408)} == {Outcome.RETRY}
    assert CODES[400][1] is CODES[422][1] is Outcome.REJECTED
    assert lookup(404) == CODES[404] and CODES[404][1] is Outcome.ENDPOINT
    assert lookup(404, cancel=True)[1] is Outcome.ABSENT  # type: ignore[index]
    assert lookup(418) is None
    assert state_of("Broadcasting") is State.BROADCASTING
    assert state_of("canceled") is state_of("withdrawn") is State.CANCELLED
    assert state_of("in-progress") is State.BROADCASTING
    assert state_of("what") is State.UNKNOWN


def test_the_docs_list_every_answer_and_state_word_of_the_tables() -> None:
    text = (Path(__file__).parents[2] / "docs" / "channels.md").read_text(encoding="utf-8")
    section = text[text.index("## Cell broadcast"):text.index("## Simulators")]
    for status in [*CODES, *CANCEL_CODES]:
        assert re.search(rf"\b{status}\b", section), status
    for word in STATES:
        assert f"`{word}`" in section, word


# -- submitting ----------------------------------------------------------------------------------


async def test_each_carrier_gets_the_waves_cap_alert_once(sim: CbcSim,
                                                         adapter: CellBroadcastAdapter) -> None:
    made = time.time() - 5
    results = await adapter.send(envelope(created_at=made))
    assert sorted(results.sent) == [0, 1] and not results.retry and not results.failed
    assert sorted(results.remote_ids) == sorted(
        sim.alerts(c)[0].reference for c in CARRIERS)
    assert {c: [a.identifier for a in sim.alerts(c)] for c in CARRIERS} == {
        c: ["loa.cb.w-1"] for c in CARRIERS}
    document = sim.alerts("viettel")[0].document
    assert_valid(document)
    alert = root(document)
    assert text(alert, "cap:sender") == SENDER
    assert text(alert, "cap:msgType") == "Alert"
    assert text(alert, "cap:sent") == time.strftime(  # the wave's time, in whole seconds
        "%Y-%m-%dT%H:%M:%S+07:00", time.gmtime(int(made) + 7 * 3600))
    info = alert.find("cap:info", NS)
    assert info is not None
    assert text(info, "cap:description") == TEXT
    assert text(info, "cap:urgency") == "Immediate" and text(info, "cap:severity") == "Extreme"
    assert text(info, "cap:event").endswith("Cấp độ IV")
    # the whole province: every district's shape (no shape of the province itself is given)
    assert len(info.findall("cap:area", NS)) == len(PROVINCE.districts)
    assert not results.receipts


async def test_the_areas_are_the_waves_districts(sim: CbcSim,
                                                 adapter: CellBroadcastAdapter) -> None:
    await adapter.send(envelope(districts={"ha-long": "", "co-to": ""}))
    info = root(sim.alerts("viettel")[0].document).find("cap:info", NS)
    assert info is not None
    areas = info.findall("cap:area", NS)
    assert [text(a, "cap:areaDesc") for a in areas] == ["Cô Tô, tỉnh Quảng Ninh",
                                                        "Hạ Long, tỉnh Quảng Ninh"]
    assert areas[1].find("cap:polygon", NS) is not None


async def test_a_text_per_district_makes_an_info_per_district(
        sim: CbcSim, adapter: CellBroadcastAdapter) -> None:
    await adapter.send(envelope(districts={"ha-long": "Hạ Long: ở nhà.",
                                           "cam-pha": "Cẩm Phả: ở nhà."}))
    document = sim.alerts("vinaphone")[0].document
    assert_valid(document)
    infos = root(document).findall("cap:info", NS)
    assert [(text(i, "cap:description"), text(i, "cap:area/cap:areaDesc")) for i in infos] == [
        ("Cẩm Phả: ở nhà.", "Cẩm Phả, tỉnh Quảng Ninh"),
        ("Hạ Long: ở nhà.", "Hạ Long, tỉnh Quảng Ninh")]


async def test_the_carriers_options_go_into_the_alert(sim: CbcSim) -> None:
    options = CarrierOptions(language="vi", repetition_seconds=600,
                             parameters={"channel": "4370"})
    adapter = make(config(sim, carriers=carriers(sim, options=options)))
    try:
        await adapter.send(envelope(level=None, urgent=True))
    finally:
        await adapter.aclose()
    info = root(sim.alerts("viettel")[0].document).find("cap:info", NS)
    assert info is not None
    assert text(info, "cap:language") == "vi"
    assert {text(p, "cap:valueName"): text(p, "cap:value")
            for p in info.findall("cap:parameter", NS)} == {"channel": "4370",
                                                            "repetitionPeriod": "600"}
    assert text(info, "cap:event").endswith("thông báo khẩn")
    assert text(info, "cap:urgency") == "Immediate" and text(info, "cap:severity") == "Extreme"


async def test_a_carrier_not_configured_fails_naming_it(sim: CbcSim,
                                                        adapter: CellBroadcastAdapter) -> None:
    results = await adapter.send(envelope(addrs=["viettel", "gone"]))
    assert results.sent == [0]
    assert results.failed == [(1, "cell_broadcast: no carrier 'gone' in [cell_broadcast] "
                                  "carriers")]


async def test_a_halted_envelope_submits_nothing(sim: CbcSim,
                                                 adapter: CellBroadcastAdapter) -> None:
    abort = Abort()
    abort.halted = True
    results = await adapter.send(envelope(abort=abort))
    assert sorted(results.requeue) == [(0, HALTED), (1, HALTED)]
    assert sim.requests == 0


async def test_an_expired_wave_and_a_text_too_long_fail(sim: CbcSim) -> None:
    options = CarrierOptions(max_chars=40)
    adapter = make(config(sim, carriers=carriers(sim)[:1] + carriers(sim, options=options)[1:],
                          duration_hours=1.0))
    try:
        old = await adapter.send(envelope(created_at=time.time() - 3601))
        assert [i for i, _ in old.failed] == [0, 1]
        assert "expired" in old.failed[0][1]
        long = await adapter.send(envelope(wave="w-2"))
        assert long.sent == [0]
        assert long.failed == [(1, f"cell_broadcast: {len(TEXT)} characters, more than "
                                   "vinaphone's max_chars (40)")]
    finally:
        await adapter.aclose()
    assert sim.snapshot().by_carrier == {"viettel": 1, "vinaphone": 0}


# -- never twice -----------------------------------------------------------------------------------


async def test_a_second_submission_is_answered_duplicate_and_counts_sent(
        sim: CbcSim, adapter: CellBroadcastAdapter) -> None:
    await adapter.send(envelope())
    again = await adapter.send(envelope())  # a reclaimed batch, a replayed dead letter
    assert sorted(again.sent) == [0, 1]
    assert adapter.stats.duplicates == 2 and sim.answered[409] == 2
    assert sim.snapshot().by_carrier == dict.fromkeys(CARRIERS, 1)


async def test_an_acceptance_whose_answer_was_lost_is_not_broadcast_twice(sim: CbcSim) -> None:
    adapter = make(config(sim, timeout=0.3))
    try:
        sim.hang_after_accept = 2.0  # taken, then the answer comes after the timeout
        first = await adapter.send(envelope())
        assert sorted(i for i, _ in first.retry + first.requeue) == [0, 1]
        assert not first.sent and adapter.stats.unanswered == 2
        sim.hang_after_accept = 0.0
        again = await adapter.send(envelope())  # the retry, as the engine sends it
        assert sorted(again.sent) == [0, 1] and adapter.stats.duplicates == 2
        assert sim.snapshot().by_carrier == dict.fromkeys(CARRIERS, 1)
    finally:
        await adapter.aclose()


# -- faults ----------------------------------------------------------------------------------------


async def test_every_centre_down_requeues_and_pauses_the_route(
        sim: CbcSim, adapter: CellBroadcastAdapter) -> None:
    sim.down = True
    results = await adapter.send(envelope())
    assert sorted(i for i, _ in results.requeue) == [0, 1] and not results.retry
    assert results.pause_until > time.time() and adapter.stats.outage_pauses == 1
    sim.down = False
    assert sorted((await adapter.send(envelope())).sent) == [0, 1]
    assert sim.snapshot().by_carrier == dict.fromkeys(CARRIERS, 1)


async def test_a_slow_centre_is_retried_and_found_taken(sim: CbcSim) -> None:
    adapter = make(config(sim, timeout=0.2))
    try:
        sim.delay = 0.5
        slow = await adapter.send(envelope(addrs=["viettel"]))
        assert not slow.sent and [i for i, _ in slow.retry + slow.requeue] == [0]
        await asyncio.sleep(0.5)  # the slow request is served meanwhile
        sim.delay = 0.0
        assert (await adapter.send(envelope(addrs=["viettel"]))).sent == [0]
        assert len(sim.alerts("viettel")) == 1
    finally:
        await adapter.aclose()


async def test_a_server_error_is_retried(sim: CbcSim, adapter: CellBroadcastAdapter) -> None:
    sim.http_5xx_ratio = 1.0
    results = await adapter.send(envelope(addrs=["viettel"]))
    assert [i for i, _ in results.requeue] == [0]  # the only request met a 500: away
    assert "HTTP 500" in results.requeue[0][1]
    assert results.pause_until > time.time()
    sim.http_5xx_ratio = 0.0
    assert (await adapter.send(envelope(addrs=["viettel"]))).sent == [0]


async def test_a_throttled_carrier_waits_for_retry_after(sim: CbcSim,
                                                         adapter: CellBroadcastAdapter) -> None:
    sim.throttle_left, sim.retry_after = 1, 1
    results = await adapter.send(envelope(addrs=["viettel"]))
    assert [i for i, _ in results.requeue] == [0] and not results.retry
    assert "429" in results.requeue[0][1] and "paused for 1 s" in results.requeue[0][1]
    assert 0 < results.pause_until - time.time() <= 1.0 and results.urgent_passes
    held = await adapter.send(envelope(addrs=["viettel"]))  # before Retry-After: no request
    assert [i for i, _ in held.requeue] == [0] and sim.answered[429] == 1
    await asyncio.sleep(1.05)
    assert (await adapter.send(envelope(addrs=["viettel"]))).sent == [0]


async def test_expired_credentials_stop_the_carrier_with_an_alert_and_lose_nothing(
        sim: CbcSim, adapter: CellBroadcastAdapter) -> None:
    before = gauge("loa_cell_broadcast_alerts_total", reason="credentials")
    sim.expired.add("vinaphone")
    results = await adapter.send(envelope())
    assert results.sent == [0]
    assert [i for i, _ in results.requeue] == [1] and not results.failed
    assert "credentials expired" in results.requeue[0][1]
    assert adapter.stopped == {"vinaphone": "credentials"}
    assert gauge("loa_cell_broadcast_carrier_stopped", carrier="vinaphone",
                 reason="credentials") == 1
    assert gauge("loa_cell_broadcast_alerts_total", reason="credentials") == before + 1
    # the next batch of it waits without a request until the probe's time
    held = await adapter.send(envelope(addrs=["vinaphone"]))
    assert [i for i, _ in held.requeue] == [0] and held.urgent_passes
    assert sim.answered[401] == 1
    sim.expired.discard("vinaphone")  # new credentials
    await asyncio.sleep(0.35)  # alert_probe_seconds
    assert (await adapter.send(envelope(addrs=["vinaphone"]))).sent == [0]
    assert adapter.stopped == {}
    assert gauge("loa_cell_broadcast_carrier_stopped", carrier="vinaphone",
                 reason="credentials") == 0
    assert sim.snapshot().by_carrier == dict.fromkeys(CARRIERS, 1)


async def test_a_rejected_document_fails_with_the_reason_and_an_alert(
        sim: CbcSim, adapter: CellBroadcastAdapter) -> None:
    before = gauge("loa_cell_broadcast_alerts_total", reason="rejected")
    sim.reject_left = 1
    results = await adapter.send(envelope(addrs=["viettel"]))
    assert results.failed == [(0, "cell_broadcast viettel: HTTP 400 (the CAP document is "
                                  "refused): the CAP document is refused (simulated)")]
    assert gauge("loa_cell_broadcast_alerts_total", reason="rejected") == before + 1


async def test_no_connection_requeues_without_an_attempt(sim: CbcSim) -> None:
    gone = [msgspec.structs.replace(c, url="http://127.0.0.1:9/cap") for c in carriers(sim)]
    adapter = make(config(sim, carriers=gone))
    try:
        results = await adapter.send(envelope())
        assert sorted(i for i, _ in results.requeue) == [0, 1] and not results.retry
    finally:
        await adapter.aclose()


# -- state and Cancel ------------------------------------------------------------------------------


async def test_the_state_is_read_as_the_centre_says_it(sim: CbcSim,
                                                       adapter: CellBroadcastAdapter) -> None:
    assert isinstance(adapter, Withdrawable)
    sim.broadcast_after = 0.2
    wave = envelope()
    await adapter.send(wave)
    first = await adapter.standing(wave, "viettel")
    assert first is not None and first.state is State.ACCEPTED
    assert first.reference == sim.alerts("viettel")[0].reference
    await asyncio.sleep(0.25)
    later = await adapter.standing(wave, "viettel")
    assert later is not None and later.state is State.BROADCASTING
    unknown = await adapter.standing(envelope(wave="never"), "viettel")
    assert unknown is not None and unknown.state is State.ABSENT
    assert adapter.live_until(wave) == int(wave.created_at) + 6 * 3600


async def test_a_cancel_references_the_alert_and_is_taken_once(
        sim: CbcSim, adapter: CellBroadcastAdapter) -> None:
    wave = envelope()
    await adapter.send(wave)
    done = await adapter.withdraw(wave, "viettel")
    assert done.state is State.CANCELLED
    original, = sim.alerts("viettel")
    cancel, = sim.cancels("viettel")
    assert_valid(cancel.document)
    doc = root(cancel.document)
    assert text(doc, "cap:msgType") == "Cancel"
    assert text(doc, "cap:identifier") == "loa.cb.w-1.cancel"
    assert text(doc, "cap:references") == f"{SENDER},loa.cb.w-1,{original.sent}"
    assert sim.state("viettel", "loa.cb.w-1") == "cancelled"
    again = await adapter.withdraw(wave, "viettel")  # another process, after a crash
    assert again.state is State.CANCELLED
    assert len(sim.cancels("viettel")) == 1 and sim.answered[409] == 1
    # a carrier that never had it says so: nothing to withdraw
    absent = await adapter.withdraw(envelope(wave="never"), "vinaphone")
    assert absent.state is State.ABSENT and not sim.cancels("vinaphone")


async def test_a_cancel_that_cannot_go_now_raises_a_retryable_error(
        sim: CbcSim, adapter: CellBroadcastAdapter) -> None:
    wave = envelope()
    await adapter.send(wave)
    sim.down = True
    with pytest.raises(ChannelError) as raised:
        await adapter.withdraw(wave, "viettel")
    assert raised.value.retryable and "503" in str(raised.value)
    sim.down = False
    assert (await adapter.withdraw(wave, "viettel")).state is State.CANCELLED


# -- the simulator checks what it takes ---------------------------------------------------------


async def test_the_simulator_refuses_a_document_without_an_area(sim: CbcSim) -> None:
    adapter = make(config(sim))
    try:
        alert = Profile(config(sim), CAP, PROVINCE).alert(envelope(), carriers(sim)[0])
        bare = msgspec.structs.replace(alert, infos=[msgspec.structs.replace(
            alert.infos[0], areas=[])])
        status, body, _ = await adapter._call("POST", adapter._submit_url(carriers(sim)[0]),
                                              to_xml(bare), carriers(sim)[0],
                                              content_type="application/cap+xml")
        assert status == 400 and b"without an area" in body
        status, body, _ = await adapter._call("POST", adapter._submit_url(carriers(sim)[0]),
                                              b"<alert/>", carriers(sim)[0])
        assert status == 400 and b"not a CAP 1.2 alert" in body
    finally:
        await adapter.aclose()
    assert not sim.alerts("viettel")


# -- loa sim cellbroadcast -------------------------------------------------------------------------


def test_loa_sim_cellbroadcast_serves_until_sigterm_and_prints_its_counters() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "dispatcher.service.cli", "sim", "cellbroadcast", "--port", "0",
         "--carrier", "viettel=loa:vt-secret", "--carrier", "vinaphone=vnp-token",
         "--expired", "vinaphone", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("cell broadcast centre simulator listening on http://127.0.0.1:")
        url = line.split()[6]

        async def submit() -> Results:
            adapter = make(config(url))
            try:
                return await adapter.send(envelope())
            finally:
                await adapter.aclose()

        results = asyncio.run(submit())
        assert results.sent == [0] and [i for i, _ in results.requeue] == [1]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    stats = json.loads(out.strip().splitlines()[-1])
    assert stats["alerts"] == 1 and stats["by_carrier"] == {"viettel": 1, "vinaphone": 0}
    assert stats["answered"] == {"201": 1, "401": 1}


@pytest.mark.parametrize(("argv", "words"), [
    (["--carrier", "viettel"], "--carrier: 'viettel' is not ID=CREDENTIAL"),
    (["--expired", "mobifone"], "--expired: 'mobifone' is not one of the carriers (viettel)"),
    (["--http-5xx-ratio", "2"], "http_5xx_ratio must be between 0 and 1"),
    (["--port", "70000"], "--port 70000 is not a port number"),
])
def test_loa_sim_cellbroadcast_refuses_bad_options_in_one_line(
        argv: list[str], words: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "cellbroadcast", "--port", "0", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and "\n" not in err
