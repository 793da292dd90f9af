"""``loa bench --profile DIR``: py-spy samples each process of the wave while it runs.

py-spy (from PyPI, a dev dependency) reads a running process's Python stacks from outside it,
so the worker runs unchanged. Each process gets a ``py-spy record --format raw`` of its own
(``--nonblocking``: the process is never paused to read it), started once the workers are
ready and stopped with SIGINT when the wave is completed; it writes the collapsed stacks
(``frame;frame;... count``) to ``DIR/<process>.txt``. Only samples taken while a thread is
on the CPU are kept (py-spy's default, no ``--idle``), so samples are CPU time:
:mod:`bench.attribution` turns them into microseconds per message by part, and
:mod:`bench.flamegraph` draws them.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import sys
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

from bench import attribution, flamegraph
from dispatcher.domain.errors import InputError

RATE = 200  # samples per second per process
STOP_SECONDS = 30.0  # py-spy writes its file when interrupted; then it is killed
SETTLE_SECONDS = 1.0  # py-spy attaches to its process before the measured work begins


def py_spy() -> str:
    """The py-spy program: beside this Python (a virtualenv's) or on the PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if not found:
        raise InputError("py-spy is not installed (pip install py-spy; it is among Loa's dev "
                         "dependencies)", field="--profile")
    return found


@contextlib.asynccontextmanager
async def recording(pids: Mapping[str, int], folder: Path,
                    rate: int = RATE) -> AsyncIterator[dict[str, Path]]:
    """Sample each of ``pids`` (name -> pid) into ``folder/<name>.txt`` until the block ends;
    yields those paths (a file is complete once the block has ended)."""
    program = py_spy()
    folder.mkdir(parents=True, exist_ok=True)
    paths = {name: folder / f"{name}.txt" for name in pids}
    procs = []
    try:
        for name, pid in pids.items():
            with paths[name].with_suffix(".log").open("wb") as log:  # py-spy's own messages
                procs.append(await asyncio.create_subprocess_exec(
                    program, "record", "--pid", str(pid), "--rate", str(rate), "--format",
                    "raw", "--nonblocking", "--output", str(paths[name]),
                    stdout=asyncio.subprocess.DEVNULL, stderr=log))
        await asyncio.sleep(SETTLE_SECONDS)
        for name, proc in zip(pids, procs, strict=True):
            if proc.returncode is not None:  # it could not attach (e.g. ptrace not permitted)
                said = paths[name].with_suffix(".log").read_text(errors="replace")
                why = next((line.removeprefix("Error:").strip() for line in said.splitlines()
                            if line.startswith("Error:")), "no reason given")
                raise InputError(f"py-spy could not sample {name}: {why}", field="--profile")
        yield paths
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.send_signal(signal.SIGINT)
        for proc in procs:
            try:
                await asyncio.wait_for(proc.wait(), STOP_SECONDS)
            except TimeoutError:
                proc.kill()
                await proc.wait()


def report(path: Path, us_per_msg: float, title: str) -> dict[str, float]:
    """Beside the samples at ``path``: its flame graph (``.svg``) and its table of CPU per
    message by part (``.md``); returns part -> µs per message."""
    stacks = attribution.read(path)
    path.with_suffix(".svg").write_text(flamegraph.svg(stacks, title), encoding="utf-8")
    parts = attribution.attribute(stacks)
    path.with_suffix(".md").write_text(
        f"{title}\n\n" + "\n".join(attribution.table(parts, us_per_msg)) + "\n",
        encoding="utf-8")
    total = sum(sum(c.values()) for c in parts.values()) or 1
    return {name: round(sum(c.values()) / total * us_per_msg, 2)
            for name, c in sorted(parts.items(), key=lambda item: -sum(item[1].values()))}
