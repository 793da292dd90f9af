"""A private ``redis-server`` on a free loopback port, for benchmarks and tests.

It keeps nothing on disk unless asked (``appendonly``), and is stopped when the context ends.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dispatcher.errors import LoaError

START_ATTEMPTS = 5
START_SECONDS = 10.0


@dataclass(frozen=True)
class LocalRedis:
    host: str
    port: int
    dir: Path

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start(workdir: Path, *, appendonly: bool = False) -> tuple[subprocess.Popen[bytes], LocalRedis]:
    """Start ``redis-server`` in ``workdir``; raise :class:`LoaError` if it cannot start."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise LoaError("redis-server is not installed (Debian package redis-server)")
    for _ in range(START_ATTEMPTS):
        port = free_port()
        args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir),
                "--save", "", "--appendonly", "yes" if appendonly else "no",
                "--daemonize", "no", "--logfile", str(workdir / "redis.log")]
        if appendonly:
            args += ["--appendfsync", "everysec"]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline and proc.poll() is None:
            if _answers(port):
                return proc, LocalRedis("127.0.0.1", port, workdir)
            time.sleep(0.02)
        stop(proc)  # the port was taken meanwhile, or the server failed: try another port
    raise LoaError(f"redis-server did not start; see {workdir / 'redis.log'}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def running(workdir: Path, *, appendonly: bool = False) -> Iterator[LocalRedis]:
    proc, server = start(workdir, appendonly=appendonly)
    try:
        yield server
    finally:
        stop(proc)
