"""What the benchmark reads from outside the processes it measures: CPU time and peak RSS from
``/proc`` (Linux), Prometheus text from a ``/metrics`` endpoint, and Redis's own counters."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio.cluster import RedisCluster

from dispatcher.store import keys

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu(pids: Mapping[str, int]) -> dict[str, float]:
    """User + system CPU seconds of each process so far (0 for one that is gone)."""
    out = {}
    for name, pid in pids.items():
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as f:
                fields = f.read().rpartition(")")[2].split()
            out[name] = (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime
        except (OSError, IndexError, ValueError):
            out[name] = 0.0
    return out


def peak_rss(pids: Mapping[str, int]) -> dict[str, float]:
    """Peak resident memory (VmHWM) of each process, in MB (0 for one that is gone)."""
    out = {}
    for name, pid in pids.items():
        out[name] = 0.0
        try:
            with open(f"/proc/{pid}/status", encoding="ascii") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        out[name] = round(int(line.split()[1]) / 1024, 1)
        except (OSError, ValueError):
            pass
    return out


async def http_get(host: str, port: int, path: str, timeout: float = 5.0) -> str:
    """The body of a plain HTTP/1.0 GET (enough for a Prometheus exporter)."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        writer.write(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        data = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.") or head.split(b" ", 2)[1] != b"200":
        raise OSError(f"GET {path} on port {port}: {head[:60]!r}")
    return body.decode()


def metric_sum(text: str, name: str) -> float:
    """The sum of every sample of the metric ``name`` in Prometheus text."""
    return sum(s.value for family in text_string_to_metric_families(text)
               for s in family.samples if s.name == name)


def _buckets(texts: Iterable[str], histogram: str) -> dict[float, float]:
    """A histogram's cumulative bucket counts by upper bound, summed over label sets and
    exporters."""
    buckets: dict[float, float] = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == f"{histogram}_bucket":
                    le = float(s.labels["le"])
                    buckets[le] = buckets.get(le, 0.0) + s.value
    return buckets


def largest(text: str, histogram: str) -> float:
    """The upper bound of the bucket holding the largest observation of a histogram (0: none
    observed; ``inf`` when it lies beyond the last bound)."""
    buckets = _buckets([text], histogram)
    count = buckets.get(float("inf"), 0.0)
    return min((le for le, n in buckets.items() if n >= count), default=0.0) if count else 0.0


def quantiles(texts: Iterable[str], histogram: str, qs: Iterable[float]) -> dict[str, float]:
    """Quantiles of a histogram summed over label sets and exporters (linear within buckets);
    keys like ``p50``, ``p99``. Empty when there are no observations."""
    buckets = _buckets(texts, histogram)
    if not buckets or buckets.get(float("inf"), 0.0) == 0:
        return {}
    bounds = sorted(buckets)
    count = buckets[float("inf")]
    out = {}
    for q in qs:
        rank, lower, below = q * count, 0.0, 0.0
        for bound in bounds:
            if buckets[bound] >= rank:
                if bound == float("inf"):
                    value = lower
                else:
                    inside = buckets[bound] - below
                    value = lower + (bound - lower) * ((rank - below) / inside if inside else 1)
                break
            lower, below = bound, buckets[bound]
        out[f"p{q * 100:g}"] = value
    return out


def _nodes(info: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """INFO of one server, or of every node of a cluster (a mapping by node)."""
    if info and all(isinstance(v, Mapping) for v in info.values()):
        return list(info.values())
    return [info]


async def redis_info(client: Any, section: str, field: str) -> float:
    """``field`` of INFO ``section``, summed over the masters of a cluster."""
    if isinstance(client, RedisCluster):
        info = await client.info(section, target_nodes=RedisCluster.PRIMARIES)
    else:
        info = await client.info(section)
    return float(sum(node.get(field, 0) for node in _nodes(info)))


async def redis_cpu(client: Any) -> float:
    return (await redis_info(client, "cpu", "used_cpu_user")
            + await redis_info(client, "cpu", "used_cpu_sys"))


async def sent_bitmap_bytes(client: Any, wave: str) -> int:
    return int(await client.memory_usage(keys.sent(wave)) or 0)
