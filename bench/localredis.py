"""A private ``redis-server`` on a free loopback port, for benchmarks and tests; or a private
Redis Cluster of several of them (:func:`cluster`).

It keeps nothing on disk unless asked (``appendonly``), and is stopped when the context ends.
A test of what a Redis crash costs kills one (:func:`kill`), may cut its AOF back to what an
``fsync`` a second earlier held (:func:`aof_file`), and starts it again on the same port and
folder (:func:`restart`).
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

from dispatcher.domain.errors import LoaError

START_ATTEMPTS = 5
START_SECONDS = 10.0
CLUSTER_SECONDS = 30.0  # for the nodes to agree that every slot is served


class LocalRedisError(LoaError):
    """A private redis-server or cluster could not be started."""


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


def start(workdir: Path, *, appendonly: bool = False, port: int = 0,
          ) -> tuple[subprocess.Popen[bytes], LocalRedis]:
    """Start ``redis-server`` in ``workdir`` on ``port`` (0: a free one); raise
    :class:`LocalRedisError` if it cannot start. Started again with the same port and
    ``workdir``, an ``appendonly`` server loads what its AOF kept."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise LocalRedisError("redis-server is not installed (Debian package redis-server)")
    for _ in range(START_ATTEMPTS if not port else 1):
        port = port or free_port()
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
        port = 0
    raise LocalRedisError(f"redis-server did not start; see {workdir / 'redis.log'}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def kill(proc: subprocess.Popen[bytes]) -> None:
    """Kill the server as a crash would (SIGKILL): no shutdown, no last write."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def restart(server: LocalRedis, *, appendonly: bool = True) -> subprocess.Popen[bytes]:
    """Start a server again on the port and folder of ``server`` (after :func:`kill` or
    :func:`stop`); it loads what its AOF holds and answers once it has."""
    for _ in range(START_ATTEMPTS):  # the port may still be held for a moment
        try:
            proc, _ = start(server.dir, appendonly=appendonly, port=server.port)
        except LocalRedisError:
            time.sleep(0.2)
            continue
        return proc
    raise LocalRedisError(f"redis-server did not start again on port {server.port}; see "
                          f"{server.dir / 'redis.log'}")


def aof_file(server: LocalRedis) -> Path | None:
    """The AOF file the server appends to now (Redis 7 keeps a base and increments in
    ``appendonlydir``; before 7, one ``appendonly.aof``), or None without persistence."""
    folder = server.dir / "appendonlydir"
    manifests = sorted(folder.glob("*.manifest")) if folder.is_dir() else []
    if manifests:
        current = None
        for line in manifests[0].read_text().splitlines():
            fields = line.split()
            if len(fields) >= 6 and fields[0] == "file" and fields[5] == "i":
                current = folder / fields[1]
        return current
    single = server.dir / "appendonly.aof"
    return single if single.exists() else None


@contextmanager
def running(workdir: Path, *, appendonly: bool = False) -> Iterator[LocalRedis]:
    proc, server = start(workdir, appendonly=appendonly)
    try:
        yield server
    finally:
        stop(proc)


@dataclass(frozen=True)
class LocalCluster:
    host: str
    ports: tuple[int, ...]
    dir: Path

    @property
    def url(self) -> str:
        """The store's URL of the cluster: any node serves as the seed."""
        return f"redis+cluster://{self.host}:{self.ports[0]}"


def _start_node(binary: str, workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    """One cluster-enabled node without persistence, in ``workdir``; (process, port)."""
    workdir.mkdir(parents=True, exist_ok=True)
    for _ in range(START_ATTEMPTS):
        port, bus = free_port(), free_port()
        args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir),
                "--save", "", "--appendonly", "no", "--daemonize", "no",
                "--logfile", str(workdir / "redis.log"),
                "--cluster-enabled", "yes", "--cluster-port", str(bus),
                "--cluster-config-file", str(workdir / "nodes.conf"),
                "--cluster-node-timeout", "5000"]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline and proc.poll() is None:
            if _answers(port):
                return proc, port
            time.sleep(0.02)
        stop(proc)
        (workdir / "nodes.conf").unlink(missing_ok=True)
    raise LocalRedisError(f"a cluster node did not start; see {workdir / 'redis.log'}")


def _cluster_state(cli: str, port: int) -> str:
    answer = subprocess.run([cli, "-h", "127.0.0.1", "-p", str(port), "cluster", "info"],
                            capture_output=True, text=True, timeout=5, check=False)
    for line in answer.stdout.splitlines():
        if line.startswith("cluster_state:"):
            return line.split(":", 1)[1].strip()
    return ""


@contextmanager
def cluster(directory: Path, masters: int = 3) -> Iterator[LocalCluster]:
    """A Redis Cluster of ``masters`` primaries (no replicas, no persistence) on free loopback
    ports, each node in a folder of ``directory``; every node is stopped when the context ends,
    also when the cluster failed to form."""
    binary, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if binary is None:
        raise LocalRedisError("redis-server is not installed (Debian package redis-server)")
    if cli is None:
        raise LocalRedisError("redis-cli is not installed (Debian package redis-tools)")
    if masters < 3:
        raise LocalRedisError("a Redis Cluster needs at least 3 masters")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        ports = []
        for n in range(masters):
            proc, port = _start_node(binary, directory / f"node-{n}")
            procs.append(proc)
            ports.append(port)
        created = subprocess.run(
            [cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports),
             "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True, text=True, timeout=CLUSTER_SECONDS, check=False)
        if created.returncode != 0:
            raise LocalRedisError(f"redis-cli --cluster create failed: "
                                  f"{(created.stderr or created.stdout).strip()[-500:]}")
        deadline = time.monotonic() + CLUSTER_SECONDS
        waiting = list(ports)
        while waiting:
            waiting = [p for p in waiting if _cluster_state(cli, p) != "ok"]
            if waiting and time.monotonic() > deadline:
                raise LocalRedisError(
                    f"the cluster did not form within {CLUSTER_SECONDS:.0f} s: nodes on ports "
                    f"{waiting} are not ok; see {directory}/node-*/redis.log")
            if waiting:
                time.sleep(0.05)
        yield LocalCluster("127.0.0.1", tuple(ports), directory)
    finally:
        for proc in procs:
            stop(proc)
