"""`loa bench`: a small full wave through worker processes and the simulators, on one Redis and
on a Redis Cluster; nothing lost, nothing twice, and the figures it promises are there."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bench import procstat

FIELDS = {"messages", "seconds", "msgs_per_s", "duplicates", "lost", "per_channel",
          "cpu_us_per_msg", "peak_rss_mb", "submit_latency_ms", "receipts_matched",
          "redis_used_mb", "scaling", "runs"}


def bench(*args: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-m", "dispatcher.service.cli", "bench", "--json",
                           *args], check=False, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("where", [[], ["--redis-cluster"]], ids=["redis", "cluster"])
def test_a_small_wave_through_two_workers_reaches_everyone_once(where: list[str]) -> None:
    result = bench("--recipients", "3000", "--zalo", "2900", "--workers", "2",
                   "--error-ratio", "0.01", *where)
    assert set(result) >= FIELDS
    assert result["lost"] == 0 and result["duplicates"] == 0
    assert result["messages"] == 5900
    channels = result["per_channel"]
    assert isinstance(channels, dict)
    assert channels["sms"]["reached"] == 3000 and channels["zalo"]["reached"] == 2900
    assert channels["sms"]["errors_injected"] > 0  # retried, and still everyone reached
    assert result["receipts_matched"] == 3000
    processes = result["runs"][0]["processes"]  # type: ignore[index]
    assert {"bench-w0", "bench-w1", "smsc", "zalo", "redis"} <= set(processes)


def test_an_urgent_campaign_during_the_routine_wave_is_measured_and_reaches_everyone_once(
        ) -> None:
    result = bench("--recipients", "6000", "--zalo", "5800", "--urgent-at", "0.5",
                   "--urgent-recipients", "1000")
    assert result["priority"] == "normal"  # the full wave is routine
    assert result["lost"] == 0 and result["duplicates"] == 0 and result["messages"] == 11800
    channels = result["per_channel"]
    assert isinstance(channels, dict)  # the routine wave's figures, the urgent ones apart
    assert channels["sms"]["reached"] == 6000 and channels["zalo"]["reached"] == 5800
    assert channels["sms"]["pdus"] == 6000
    urgent = result["urgent"]
    assert isinstance(urgent, dict) and urgent["recipients"] == 1000
    assert urgent["lost"] == 0 and urgent["duplicates"] == 0
    assert urgent["per_channel"]["sms"]["reached"] == 1000
    assert urgent["per_channel"]["zalo"]["reached"] == urgent["per_channel"]["zalo"]["total"]
    assert urgent["messages"] == 1000 + urgent["per_channel"]["zalo"]["total"]
    assert urgent["per_channel"]["sms"]["pdus"] >= 1000  # sent with a priority_flag
    assert urgent["first_message_ms"] > 0 and urgent["first_zalo_ms"] > 0
    assert urgent["complete_s"] > 0 and urgent["at_s"] >= 0.5


def test_bad_options_are_refused_without_a_traceback() -> None:
    done = subprocess.run([sys.executable, "-m", "dispatcher.service.cli", "bench",
                           "--workers", "0"], check=False, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode != 0 and "--workers" in done.stderr
    assert "Traceback" not in done.stderr
    done = subprocess.run([sys.executable, "-m", "dispatcher.service.cli", "bench", "--recipients",
                           "100", "--zalo", "50", "--urgent-at", "1", "--urgent-recipients", "101"],
                          check=False, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "--urgent-recipients" in done.stderr
    assert "Traceback" not in done.stderr


def test_quantiles_of_a_histogram_summed_over_exporters() -> None:
    text = """# TYPE h histogram
h_bucket{le="0.1",route="a"} 50
h_bucket{le="1.0",route="a"} 100
h_bucket{le="+Inf",route="a"} 100
h_count{route="a"} 100
h_sum{route="a"} 10
"""
    q = procstat.quantiles([text, text], "h", (0.5, 0.99))
    assert q["p50"] == pytest.approx(0.1)
    assert q["p99"] == pytest.approx(0.1 + 0.9 * 0.98)
    assert procstat.quantiles([], "h", (0.5,)) == {}
