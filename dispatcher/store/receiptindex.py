"""The receipt index in Redis: channel message id -> (wave, recipient, part), by hour and shard.

A message's id (the SMSC's ``message_id``, Zalo's ``msg_id``) is written when its batch
completes, into the hash of the hour it was sent in and of its *shard*, a hash of the id
(:data:`SHARDS`); a receipt finds its shard from its id alone. One hash per hour held every
message of the hour: on a Redis Cluster one slot, so one master, took the whole index and every
lookup (docs/scaling.md, *What stops scaling first*); sharded, the index and its commands spread
over the masters. A completion writes one ``HSET`` per shard its batch touches; the matcher reads
one ``HMGET`` per shard its pass's ids fall in, newest hour first, in one pipeline per hour.

Hashes written by a version that did not shard (``remote-ids:<hour>``) are still read by the
full lookups, for the ids not found in the shards, until they expire (the messages' validity,
48 hours).
"""

from __future__ import annotations

import time
import zlib
from typing import Any

import msgspec

from dispatcher.store import keys

SHARDS = 16  # shards per hour: fixed, since a receipt must find the shard its message went to
# The last characters of an id do not choose its shard: a channel's ids mostly count up (the
# SMSC's message ids), so the ids of one batch, and of one pass's receipts, fall in one or two
# shards (a command each), while the shards take turns as the ids grow.
LOCAL_CHARS = 3
HOURS = 48  # receipts are matched for this long (the default validity: two days)
TTL = HOURS * 3600 + 3600  # a hash outlives the last message of its hour by the validity

_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder(tuple[str, int, int])


def shard(remote_id: str) -> int:
    return zlib.crc32(remote_id[:-LOCAL_CHARS].encode()) % SHARDS


def write(pipe: Any, remote: dict[str, tuple[str, int, int]], now: float | None = None) -> None:
    """Queue on ``pipe`` the index entries of ``remote`` (id -> wave, recipient, part), in the
    hour of ``now`` (default: the clock's)."""
    hour = int((time.time() if now is None else now) // 3600)
    by_shard: dict[int, dict[str, bytes]] = {}
    for remote_id, value in remote.items():
        by_shard.setdefault(shard(remote_id), {})[remote_id] = _enc.encode(value)
    for n, mapping in by_shard.items():
        bucket = keys.remote_ids(hour, n)
        pipe.hset(bucket, mapping=mapping)
        pipe.expire(bucket, TTL)


async def match(client: Any, remote_ids: list[str], *, recent: bool = False,
                now: float | None = None) -> dict[str, tuple[str, int, int]]:
    """The entries of ``remote_ids`` that are in the index (``recent``: the last two hours')."""
    found: dict[str, tuple[str, int, int]] = {}
    wanted = list(dict.fromkeys(remote_ids))
    hour = int((time.time() if now is None else now) // 3600)
    for back in range(2 if recent else HOURS + 1):  # newest first: receipts mostly come quickly
        if not wanted:
            break
        wanted = await _look(client, hour - back, wanted, found)
        if wanted and not recent:  # a message sent before the index was sharded: not recent
            wanted = await _look_unsharded(client, hour - back, wanted, found)
    return found


async def _look(client: Any, hour: int, wanted: list[str],
                found: dict[str, tuple[str, int, int]]) -> list[str]:
    """Look ``wanted`` up in the hour's shards (one pipeline); the ids still not found."""
    by_shard: dict[int, list[str]] = {}
    for remote_id in wanted:
        by_shard.setdefault(shard(remote_id), []).append(remote_id)
    async with client.pipeline(transaction=False) as pipe:
        for n, ids in by_shard.items():
            pipe.hmget(keys.remote_ids(hour, n), ids)
        answers = await pipe.execute()
    left: list[str] = []
    for ids, values in zip(by_shard.values(), answers, strict=True):
        left += _collect(ids, values, found)
    return left


async def _look_unsharded(client: Any, hour: int, wanted: list[str],
                          found: dict[str, tuple[str, int, int]]) -> list[str]:
    """Look ``wanted`` up in the hour's hash of a version that did not shard."""
    return _collect(wanted, await client.hmget(keys.remote_ids_unsharded(hour), wanted), found)


def _collect(ids: list[str], values: list[bytes | None],
             found: dict[str, tuple[str, int, int]]) -> list[str]:
    """Decode into ``found`` the entries an HMGET of ``ids`` answered; the ids it did not."""
    left = []
    for remote_id, value in zip(ids, values, strict=True):
        if value is None:
            left.append(remote_id)
        else:
            found[remote_id] = _dec.decode(value)
    return left
