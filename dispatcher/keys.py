"""Every Redis key Loa uses, in one place.

Keys of one route share the hash tag ``{r:<route>}`` and keys of one wave ``{w:<wave>}``, so
that on Redis Cluster each route's stream, retry schedule, dead letters and fan-out cursor live
in one slot (scripts and transactions over them stay legal), and so do a wave's sent bitmap and
counters.
"""

from __future__ import annotations

PREFIX = "loa"
GROUP = "workers"  # the consumer group of every route stream

LEVEL = f"{PREFIX}:level"
LEVEL_HISTORY = f"{PREFIX}:level:history"
AUDIENCE_CURRENT = f"{PREFIX}:audience:current"
CAMPAIGNS = f"{PREFIX}:campaigns"  # hash: id -> campaign
WAVES = f"{PREFIX}:waves"  # hash: id -> wave
WAVE_STATES = f"{PREFIX}:wave-states"  # hash: id -> state, read by every worker
SKIPPED_SLOTS = f"{PREFIX}:skipped-slots"  # set of slot ids missed beyond the catch-up window


def audience_meta(version: str) -> str:
    return f"{PREFIX}:audience:{version}:meta"


def audience_chunks(version: str) -> str:
    """Hash: chunk number -> packed chunk."""
    return f"{PREFIX}:audience:{version}:chunks"


def stream(route: str) -> str:
    return f"{PREFIX}:{{r:{route}}}:stream"


def retries(route: str) -> str:
    return f"{PREFIX}:{{r:{route}}}:retry"


def dead(route: str) -> str:
    return f"{PREFIX}:{{r:{route}}}:dead"


def dead_count(route: str) -> str:
    """Counter: dead letters of the route (so that counting them reads no stream)."""
    return f"{PREFIX}:{{r:{route}}}:dead-count"


def cursor(route: str) -> str:
    """Hash: wave -> last fan-out step enqueued on the route."""
    return f"{PREFIX}:{{r:{route}}}:cursor"


def sent(wave: str) -> str:
    """Bitmap: bit ``id`` is set once the message of recipient ``id`` is sent."""
    return f"{PREFIX}:{{w:{wave}}}:sent"


def progress(wave: str) -> str:
    return f"{PREFIX}:{{w:{wave}}}:progress"


def remote_ids(hour: int) -> str:
    """Hash: channel message id -> packed (wave, recipient, part), for the hour (since the
    epoch) the message was sent in; expires after the messages' validity period."""
    return f"{PREFIX}:remote-ids:{hour}"


def lease(name: str) -> str:
    return f"{PREFIX}:lease:{name}"
