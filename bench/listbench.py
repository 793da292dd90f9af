"""An uploaded list of numbers against ``loa audience import``: ``python -m bench.listbench``.

A private redis-server; a generated audience of ``--recipients`` rows (1,000,000 by default)
written twice: as the province's audience file (every column) and as a list (the ``msisdn``
column only, the numbers as people write them). Then, one after the other, each timed on its own
empty database:

- ``import``: the audience file imported as ``loa audience import`` does (chunks of 1,024, with
  the number index);
- ``list``: the list checked and stored as ``POST /v1/lists`` does it
  (:func:`dispatcher.engine.numberlists.import_list`, the rows read in a worker thread);
- ``full_list``: the audience file itself (every column) stored as a list, the same rows and
  checks as ``import``;
- ``upload``: the list uploaded to the real API (``create_app`` served by uvicorn on a loopback
  port) by ``curl --data-binary`` in another process: the body streamed to a temporary file,
  checked and stored, the report answered.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgspec

from bench import audiencegen, localredis
from dispatcher.domain import numberlist
from dispatcher.domain.audience import Validator
from dispatcher.domain.msisdn import load_numbering
from dispatcher.domain.plan import load_plan
from dispatcher.domain.province import load_province
from dispatcher.engine import numberlists
from dispatcher.engine.importer import import_audience
from dispatcher.service.settings import EngineSettings, Settings
from dispatcher.store import RedisStore

CHUNK_SIZE = 1024
TOKEN = "loa_listbench-token"


class Result(msgspec.Struct):
    recipients: int
    list_bytes: int
    import_s: float
    list_s: float
    full_list_s: float
    upload_s: float
    list_valid: int
    upload_valid: int


def write_list(audience: Path, out: Path) -> None:
    """The ``msisdn`` column of ``audience``: the list people would upload."""
    with audience.open(encoding="utf-8", newline="") as f, \
            out.open("w", encoding="utf-8", newline="") as g:
        rows = csv.reader(f)
        at = next(rows).index("msisdn")
        g.write("msisdn\n")
        g.writelines(f"{row[at]}\n" for row in rows)


async def _flush(url: str) -> None:
    store = RedisStore(url)
    try:
        await store.client.flushall()
    finally:
        await store.aclose()


async def time_import(url: str, path: Path) -> float:
    await _flush(url)
    store = RedisStore(url)
    try:
        started = time.perf_counter()
        await import_audience(path, store, Validator(load_numbering(), load_province()),
                              chunk_size=CHUNK_SIZE)
        return time.perf_counter() - started
    finally:
        await store.aclose()


async def time_list(url: str, path: Path) -> tuple[float, int]:
    await _flush(url)
    store = RedisStore(url)
    try:
        started = time.perf_counter()
        report = await numberlists.import_list(
            path, numberlist.CSV, store, numberlist.validator(load_numbering(), load_province()),
            version="l-bench", name=path.name, chunk_size=CHUNK_SIZE)
        return time.perf_counter() - started, report.valid
    finally:
        await store.aclose()


async def time_upload(url: str, path: Path, tmp: Path) -> tuple[float, int]:
    """The list through the API served on loopback, uploaded by curl."""
    import uvicorn  # noqa: PLC0415 - the lab's only server

    from dispatcher.service.api import ApiConfig, create_app  # noqa: PLC0415
    from dispatcher.service.auth import Role, TokenEntry, hash_token  # noqa: PLC0415

    await _flush(url)
    store = RedisStore(url)
    api = ApiConfig(audit_log=str(tmp / "audit.jsonl"),
                    tokens=[TokenEntry("bench", Role.OPERATOR, hash_token(TOKEN))])
    settings = Settings(engine=EngineSettings(chunk_size=CHUNK_SIZE))
    app = create_app(store, settings, load_plan(), load_province(), load_numbering(), api)
    port = localredis.free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, loop="none",
                                           lifespan="on", log_config=None, access_log=False))
    serving = asyncio.create_task(server.serve())
    try:
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.05)
        started = time.perf_counter()
        curl = await asyncio.create_subprocess_exec(
            "curl", "-sS", "--fail-with-body", "-X", "POST", "-H",
            f"Authorization: Bearer {TOKEN}", "-H", "Content-Type: text/csv",
            "--data-binary", f"@{path}", f"http://127.0.0.1:{port}/v1/lists?name=bench",
            stdout=subprocess.PIPE)
        out, _ = await curl.communicate()
        elapsed = time.perf_counter() - started
        if curl.returncode != 0:
            raise RuntimeError(f"the upload failed: {out[:500]!r}")
        return elapsed, int(json.loads(out)["valid"])
    finally:
        server.should_exit = True
        await serving
        await store.aclose()


def run(count: int, seed: int = 19) -> Result:
    with tempfile.TemporaryDirectory(prefix="loa-listbench-") as name, \
            localredis.running(Path(name)) as server:
        tmp = Path(name)
        audience, listed = tmp / "audience.csv", tmp / "list.csv"
        audiencegen.generate(audience, count, seed=seed, numbering=load_numbering(),
                             province=load_province())
        write_list(audience, listed)
        import_s = asyncio.run(time_import(server.url, audience))
        list_s, list_valid = asyncio.run(time_list(server.url, listed))
        full_s, _ = asyncio.run(time_list(server.url, audience))
        upload_s, upload_valid = asyncio.run(time_upload(server.url, listed, tmp))
        return Result(count, listed.stat().st_size, round(import_s, 1), round(list_s, 1),
                      round(full_s, 1), round(upload_s, 1), list_valid, upload_valid)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.listbench",
                                     description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--recipients", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    sys.stdout.write(msgspec.json.encode(run(args.recipients)).decode() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
