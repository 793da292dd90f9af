"""The cost of Loa's HTTP/1.1 server per request, two ways, each with a trivial handler in a
process of its own and a ZNS-like POST:

* over loopback: keep-alive connections from this process send the request one at a time each;
  requests per second and the server's CPU (``time.process_time()`` in its process) per request;
* in process: the same request handed to the server's connection as if read from a socket, and
  its answer to a transport that keeps nothing; CPU per request, the best of 7 loops (what the
  server's own code costs, with neither the sockets nor the load of the machine in it).

Run: ``.venv/bin/python -m bench.http_server_rate [--requests 20000] [--connections 8]
[--rounds 3] [--src DIR ...]``. Each ``--src`` is a source tree whose ``adapters/http`` serves
(the checkout by default); several trees are measured in turn, round after round, so that an A/B
comparison shares the machine's load. Results in bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from pathlib import Path

SERVER = """
import asyncio, sys, time
from adapters.http.server import HttpServer, Response

async def main():
    server = HttpServer()
    ok = b'{"error":0,"message":"Success","data":{"msg_id":"1"}}'
    server.route("POST", "/message/template", lambda request: Response(ok))
    server.route("GET", "/cpu", lambda request: Response(b"%.6f" % time.process_time()))
    await server.start()
    print(server.port, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await server.close()

asyncio.run(main())
"""

INPROC = """
import asyncio, sys, time
from adapters.http.server import HttpServer, Response, _Connection

class Sink(asyncio.Transport):
    def write(self, data): pass
    def is_closing(self): return False
    def close(self): pass

server = HttpServer()
ok = b'{"error":0,"message":"Success","data":{"msg_id":"1"}}'
server.route("POST", "/message/template", lambda request: Response(ok))
conn = _Connection(server)
conn.connection_made(Sink())
request, count = sys.stdin.buffer.read(), int(sys.argv[1])
best = float("inf")
for _ in range(7):
    start = time.process_time()
    for _ in range(count):
        conn.data_received(request)
    best = min(best, time.process_time() - start)
print(best / count * 1e6)
"""

BODY = (b'{"phone":"84912345678","template_id":"231245","template_data":{"name":"Nguyen Van A",'
        b'"date":"07/12/2026"},"tracking_id":"L4-zalo-20261207T0930:123456"}')
REQUEST = (b"POST /message/template HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json"
           b"\r\naccess_token: tok\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY))


async def answer(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    return await reader.readexactly(length)


async def cpu(port: int) -> float:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /cpu HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    seconds = float(await answer(reader))
    writer.close()
    return seconds


async def load(port: int, requests: int, connections: int) -> float:
    async def one(count: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(count):
            writer.write(REQUEST)
            await answer(reader)
        writer.close()

    start = time.perf_counter()
    async with asyncio.TaskGroup() as tasks:
        for n in range(connections):
            tasks.create_task(one(requests // connections + (n < requests % connections)))
    return time.perf_counter() - start


async def measure(src: Path, requests: int, connections: int) -> tuple[float, float]:
    """Requests per second and server µs of CPU per request."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SERVER, cwd=src, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        port = int(await proc.stdout.readline())
        await load(port, min(requests, 2000), connections)  # warm the caches
        before = await cpu(port)
        wall = await load(port, requests, connections)
        used = await cpu(port) - before
    finally:
        proc.stdin.write(b"\n")
        await proc.wait()
    return requests / wall, used / requests * 1e6


def inproc(src: Path, requests: int) -> float:
    """Server µs of CPU per request, in process."""
    done = subprocess.run([sys.executable, "-c", INPROC, str(requests)], cwd=src, input=REQUEST,
                          capture_output=True, check=True)
    return float(done.stdout)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--src", type=Path, action="append")
    args = parser.parse_args()
    sources: list[Path] = args.src or [Path(__file__).resolve().parent.parent]
    results: dict[Path, list[tuple[float, float, float]]] = {src: [] for src in sources}
    for _ in range(args.rounds):
        for src in sources:
            rate, us = await measure(src, args.requests, args.connections)
            results[src].append((rate, us, inproc(src, args.requests)))
    for src, runs in results.items():
        rates = ", ".join(f"{rate:,.0f}" for rate, _, _ in runs)
        cpus = ", ".join(f"{us:.1f}" for _, us, _ in runs)
        inner = ", ".join(f"{us:.2f}" for _, _, us in runs)
        print(f"{src}:\n  loopback: req/s {rates}; server µs CPU/request {cpus} (median "
              f"{statistics.median(us for _, us, _ in runs):.1f})\n  in process: µs CPU/request "
              f"{inner} (best {min(us for _, _, us in runs):.2f})")


if __name__ == "__main__":
    asyncio.run(main())
