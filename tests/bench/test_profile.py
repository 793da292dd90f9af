"""`loa bench --profile`: py-spy's samples of each process, their parts and their flame graph."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest

from bench import attribution, flamegraph, profiler
from dispatcher.domain.errors import InputError

ROOT = ("_run_module_as_main (<frozen runpy>:198);main (dispatcher/service/cli/__init__.py:99);"
        "run (uvloop/__init__.py:92);Runner.run (asyncio/runners.py:118)")
COMPLETION = (ROOT + ";Worker._loop (dispatcher/engine/worker.py:130);Worker._complete "
              "(dispatcher/engine/worker.py:360);RedisQueue.complete (dispatcher/store/redis.py:"
              "800);Pipeline.execute (redis/asyncio/client.py:2486)")
FAN_OUT = (ROOT + ";Engine._fan_out (dispatcher/engine/process.py:323);fan_out (dispatcher/"
           "engine/fanout.py:90);RedisSuppressions.mask (dispatcher/store/suppressions.py:40)")
ZALO = (ROOT + ";ZaloAdapter._one (adapters/zalo/adapter.py:473);HttpClient.post (adapters/http/"
        "client.py:76)")
LOOP = ROOT + ";StreamWriter.writelines (asyncio/streams.py:300)"


def test_each_sample_goes_to_the_part_of_the_frame_nearest_its_leaf() -> None:
    stacks = Counter({COMPLETION: 30, FAN_OUT: 20, ZALO: 40, LOOP: 10})
    parts = attribution.attribute(stacks)
    assert {name: sum(c.values()) for name, c in parts.items()} == {
        "completion": 30, "fan-out": 20, "Zalo: HTTP": 40, attribution.EVENT_LOOP: 10}
    # where the leaf is: redis-py under the completion, Loa's store under the fan-out
    assert parts["completion"] == Counter({"redis-py": 30})
    assert parts["fan-out"] == Counter({"Loa": 20})
    assert parts[attribution.EVENT_LOOP] == Counter({"asyncio": 10})
    rows = attribution.table(parts, us_per_msg=20.0)
    assert rows[2].startswith("| Zalo: HTTP | 40.0% | 8.00 |")  # largest first, share of 20 µs
    assert rows[-1].startswith("| **all** | 100% | **20.00** | 6.00 | 2.00 | 12.00 | 0.00 |")


def test_the_flame_graph_draws_each_frame_as_wide_as_its_samples() -> None:
    stacks = Counter({COMPLETION: 30, FAN_OUT: 20, ZALO: 40, LOOP: 10})
    drawn = ET.fromstring(flamegraph.svg(stacks, "worker"))
    ns = "{http://www.w3.org/2000/svg}"
    widths = {g.find(f"{ns}title").text.split(" — ")[0]:  # type: ignore[union-attr]
              float(g.find(f"{ns}rect").get("width", "0"))  # type: ignore[union-attr]
              for g in drawn.iter(f"{ns}g")}
    assert widths["worker"] == flamegraph.WIDTH
    zalo = next(w for name, w in widths.items() if name.startswith("ZaloAdapter._one"))
    fan_out = next(w for name, w in widths.items() if name.startswith("Engine._fan_out"))
    assert zalo == pytest.approx(0.4 * flamegraph.WIDTH) and fan_out == pytest.approx(
        0.2 * flamegraph.WIDTH)


def test_a_missing_py_spy_is_one_line_naming_the_flag(monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(InputError) as raised:
        profiler.py_spy()
    assert raised.value.field == "--profile" and "py-spy is not installed" in str(raised.value)


def test_a_small_wave_profiled(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "dispatcher.service.cli", "bench", "--json",
                           "--recipients", "4000", "--zalo", "3900", "--profile",
                           str(tmp_path)], check=False, capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    folder = tmp_path / "workers-1"
    for name in ("bench-w0", "smsc", "zalo"):  # a simulator may idle through a short wave
        ET.parse(folder / f"{name}.svg")  # a well-formed SVG
        assert "| **all** | 100% |" in (folder / f"{name}.md").read_text(encoding="utf-8")
    assert attribution.read(folder / "bench-w0.txt")  # the worker's samples were taken
    parts = result["profile"]["bench-w0"]
    # the parts add up to the worker's measured CPU per message
    assert sum(parts.values()) == pytest.approx(result["cpu_us_per_msg"], rel=0.05)
    known = {name for name, _ in attribution.PARTS} | {attribution.EVENT_LOOP,
                                                         attribution.OTHER_LOA}
    assert set(parts) <= known and "Zalo: HTTP" in parts  # the largest part of a worker


async def test_a_process_py_spy_cannot_sample_is_one_line_before_the_wave(
        tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          check=True, capture_output=True, text=True)
    gone = int(done.stdout)  # a process that has ended
    with pytest.raises(InputError) as raised:
        async with profiler.recording({"gone": gone}, tmp_path):
            pytest.fail("the wave must not begin")
    assert raised.value.field == "--profile"
    assert str(raised.value).startswith("--profile: py-spy could not sample gone: ")
    assert "\n" not in str(raised.value) and "no reason given" not in str(raised.value)
