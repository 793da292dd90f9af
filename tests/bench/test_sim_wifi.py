"""``loa sim wifi``: the Wi-Fi controller simulator as a process of its own, pushed to over
loopback, with a fault from the command line; and its arguments checked."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import urllib.request

import pytest

from adapters.wifi.client import WifiClient
from dispatcher.domain.wifi import PushOutcome, WifiController, WifiSettings
from dispatcher.service.cli import main

BODY = json.dumps({"identifier": "loa.level.L4-1", "msgType": "Alert"}).encode()


async def test_loa_sim_wifi_takes_signed_notices_and_fails_on_demand() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "dispatcher.service.cli", "sim", "wifi",
                             "--port", "0", "--secret", "lab-secret", "--fault", "500",
                             "--fault-count", "1", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = await asyncio.to_thread(proc.stdout.readline)
        assert line.startswith("Wi-Fi controller simulator listening on http://127.0.0.1:"), (
            line, proc.stderr)
        url = line.split()[-1]
        controller = WifiController(id="lab", url=url, secret_env="S", secret="lab-secret")
        client = WifiClient(WifiSettings(controllers=[controller], proxy="direct"))
        try:
            first = await client.push(controller, BODY, "loa.level.L4-1:lab")
            second = await client.push(controller, BODY, "loa.level.L4-1:lab")
            wrong = await client.push(
                WifiController(id="lab", url=url, secret_env="S", secret="old"), BODY, "k")
        finally:
            await client.aclose()
        assert [first.outcome, second.outcome, wrong.outcome] == [
            PushOutcome.ERROR, PushOutcome.PUSHED, PushOutcome.REFUSED]
        kept_url = url.replace("/loa-notice", "/notices")
        with await asyncio.to_thread(urllib.request.urlopen, kept_url, None, 10) as answer:
            assert json.loads(answer.read()) == [json.loads(BODY)]
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.to_thread(proc.communicate, None, 30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
    assert proc.returncode == 0, err
    assert json.loads(out.strip().splitlines()[-1]) == {
        "requests": 3, "notices": 1, "replays": 0, "bad_signatures": 1, "stale": 0,
        "faults": 1, "malformed": 0}


@pytest.mark.parametrize(("argv", "expected"), [
    (["--port", "70000"], "loa: error: --port 70000 is not a port number"),
    (["--delay", "-1"], "loa: error: --delay: must be 0 or more"),
    (["--secret", ""], "loa: error: --secret: give the key the pushes are signed with"),
])
def test_wrong_arguments_are_one_line(capsys: pytest.CaptureFixture[str], argv: list[str],
                                      expected: str) -> None:
    assert main(["sim", "wifi", *argv]) == 2
    assert capsys.readouterr().err.strip() == expected
