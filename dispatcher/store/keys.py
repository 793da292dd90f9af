"""Every Redis key Loa uses, in one place.

On Redis Cluster a script or a transaction may only touch keys of one hash slot, so keys used
together share a hash tag (the part in braces): a route's stream, retry schedule, dead letters
(its log, and per wave those not replayed), fan-out cursor and per-wave counters
``{r:<route>}``; a wave's sent bitmap, counters and lists of routes ``{w:<wave>}``; the level
and its history ``{level}``; the situation record and its history ``{situation}``; the plan's
texts' versions and those in force ``{plantexts}``; the current audience and the audiences'
descriptions ``{audience}``; a channel's suppression list ``{supp:<channel>}``; campaigns and
their revisions ``{campaigns}``; waves, their states and their times ``{waves}``; incoming
messages and opt-outs ``{incoming}``; the published public alerts (CAP) ``{cap}``; the Wi-Fi
controllers' cursors ``{wifi}``; a day's checklist marks and reminders ``{checklist:<day>}``; the
carriers' cell broadcasts and their Cancels ``{cb}``. The other keys are each read and written
alone (an audience's chunks, the skipped slots, an hour of channel message ids, a lease), so they
need no tag.
"""

from __future__ import annotations

PREFIX = "loa"
GROUP = "workers"  # the consumer group of every route stream

LEVEL = f"{PREFIX}:{{level}}"
LEVEL_HISTORY = f"{PREFIX}:{{level}}:history"
LEVEL_PENDING = f"{PREFIX}:{{level}}:pending"  # a level change waiting for its confirmation
SITUATION = f"{PREFIX}:{{situation}}"  # the situation record in force
SITUATION_HISTORY = f"{PREFIX}:{{situation}}:history"  # list, newest first, bounded
PLAN_TEXTS = f"{PREFIX}:{{plantexts}}"  # hash: id -> version of a plan text (all kept)
PLAN_TEXT_STATES = f"{PREFIX}:{{plantexts}}:states"  # hash: id -> proposed|approved|rejected
PLAN_TEXTS_IN_FORCE = f"{PREFIX}:{{plantexts}}:in-force"  # hash: "<level>:<channel>" -> id
AUDIENCE_CURRENT = f"{PREFIX}:{{audience}}:current"
#: Sorted set: the kept versions (lists of numbers), scored by their creation (epoch seconds).
AUDIENCE_LISTS = f"{PREFIX}:{{audience}}:lists"
CAMPAIGNS = f"{PREFIX}:{{campaigns}}"  # hash: id -> campaign
CAMPAIGN_REVISIONS = f"{PREFIX}:{{campaigns}}:revisions"  # hash: id -> revision
WAVES = f"{PREFIX}:{{waves}}"  # hash: id -> wave
WAVE_STATES = f"{PREFIX}:{{waves}}:states"  # hash: id -> state, read by every worker
#: Sorted set: every wave's id scored by its creation (epoch seconds), written with the wave (the
#: recent waves are a range of it, whatever the count made before them).
WAVE_TIMES = f"{PREFIX}:{{waves}}:by-time"
WAVES_PAUSED_UNSTARTED = f"{PREFIX}:{{waves}}:paused-unstarted"  # set: paused before fan-out
STOP = f"{PREFIX}:{{waves}}:stop"  # the emergency stop (watched, and read with the states)
STOP_HISTORY = f"{PREFIX}:{{waves}}:stop:history"
STOP_EVENTS = f"{PREFIX}:{{waves}}:stop:events"  # stream: each set or lift, for the workers
OPENINGS = f"{PREFIX}:{{waves}}:openings"  # hash: "<level>:<channel>" -> the last opening
OPENING_REVISIONS = f"{PREFIX}:{{waves}}:openings:revisions"  # hash: same field -> revision
INCOMING = f"{PREFIX}:{{incoming}}"  # stream: messages and events from citizens, trimmed by age
INCOMING_OPT_OUTS = f"{PREFIX}:{{incoming}}:opt-outs"  # stream: the opt-outs handed on
CAP_MESSAGES = f"{PREFIX}:{{cap}}:messages"  # hash: identifier -> packed CAP message
CAP_ORDER = f"{PREFIX}:{{cap}}:order"  # sorted set: identifiers by their number in the feed
CAP_SEQ = f"{PREFIX}:{{cap}}:seq"  # counter: the last number given
CAP_THREADS = f"{PREFIX}:{{cap}}:threads"  # hash: thread -> identifier of its last message
WIFI_CURSORS = f"{PREFIX}:{{wifi}}:cursors"  # hash: controller -> the last CAP number it took
WIFI_PUSH = "wifi-push"  # the lease (lease(WIFI_PUSH)) held by the process that pushes notices
CB_RECORDS = f"{PREFIX}:{{cb}}:broadcasts"  # hash: "<wave> <carrier>" -> packed Broadcast
CB_ORDER = f"{PREFIX}:{{cb}}:order"  # sorted set: the same fields by when they were recorded
CB_WITHDRAWALS = f"{PREFIX}:{{cb}}:withdrawals"  # hash: the same field -> its packed Cancel
CB_REQUESTS = f"{PREFIX}:{{cb}}:requests"  # hash: wave -> an operator's request to withdraw it


def suppressed(channel: str) -> str:
    """Hash: number -> its suppression entry on ``channel`` (read per fan-out step)."""
    return f"{PREFIX}:{{supp:{channel}}}"


def suppressed_order(channel: str) -> str:
    """Sorted set (all scores 0): the numbers of :func:`suppressed`, for pages in order."""
    return f"{PREFIX}:{{supp:{channel}}}:order"


SKIPPED_SLOTS = f"{PREFIX}:skipped-slots"  # set of slot ids missed beyond the catch-up window
ZALO_TOKENS = f"{PREFIX}:zalo-tokens"  # the Zalo OA's access and refresh tokens (JSON)
ZALO_RENEWAL = "zalo-tokens"  # the lease (lease(ZALO_RENEWAL)) held by the one renewing them


def checklist_marks(day: str) -> str:
    """Hash: checklist item -> its mark done on ``day`` (YYYY-MM-DD), expiring with it."""
    return f"{PREFIX}:{{checklist:{day}}}:marks"


def checklist_reminded(day: str) -> str:
    """Hash: lead unit -> what became of its reminder of ``day`` (sent, or refused)."""
    return f"{PREFIX}:{{checklist:{day}}}:reminded"


def ledger(name: str) -> str:
    """String: per recipient id, (time, tag) pairs of u32 (dispatcher.domain.repeats)."""
    return f"{PREFIX}:ledger:{name}"


def plan_text_order(level: int | None = None, channel: str | None = None) -> str:
    """Sorted set: the ids of the plan's texts' versions by the time proposed (microseconds),
    all of them, or of one level, one channel, or one level's channel (pages of versions)."""
    tail = "".join(f":{part}" for part in (f"L{level}" if level is not None else None, channel)
                   if part is not None)
    return f"{PREFIX}:{{plantexts}}:order{tail}"


def audience_meta(version: str) -> str:
    return f"{PREFIX}:{{audience}}:{version}:meta"


def audience_chunks(version: str) -> str:
    """Hash: chunk number -> packed chunk."""
    return f"{PREFIX}:audience:{version}:chunks"


def stream(route: str) -> str:
    return f"{PREFIX}:{{r:{route}}}:stream"


def urgent_stream(route: str) -> str:
    """The route's urgent lane: read before :func:`stream`."""
    return f"{PREFIX}:{{r:{route}}}:urgent"


def retries(route: str) -> str:
    return f"{PREFIX}:{{r:{route}}}:retry"


def urgent_retries(route: str) -> str:
    """Retries of urgent waves: they go back to :func:`urgent_stream`."""
    return f"{PREFIX}:{{r:{route}}}:retry:urgent"


def dead(route: str) -> str:
    return f"{PREFIX}:{{r:{route}}}:dead"


def dead_count(route: str) -> str:
    """Counter: dead letters of the route not replayed (so that counting them reads no
    stream)."""
    return f"{PREFIX}:{{r:{route}}}:dead-count"


def dead_ids(route: str, wave: str) -> str:
    """Sorted set: the recipient ids (member and score) of the wave's dead letters on the route
    not replayed yet; their letters are in :func:`dead_letters`. Kept with the route, so that
    they are written with the entry's acknowledgement and replayed onto the route's retry
    schedule in one script, on Redis Cluster too."""
    return f"{PREFIX}:{{r:{route}}}:dead-ids:{wave}"


def dead_letters(route: str, wave: str) -> str:
    """Hash: recipient id -> packed dead letter, the letters of :func:`dead_ids`."""
    return f"{PREFIX}:{{r:{route}}}:dead-letters:{wave}"


def dead_routes(wave: str) -> str:
    """Set: the routes that hold dead letters of the wave (:func:`dead_ids`)."""
    return f"{PREFIX}:{{w:{wave}}}:dead-routes"


def cursor(route: str) -> str:
    """Hash: wave -> last fan-out step enqueued on the route."""
    return f"{PREFIX}:{{r:{route}}}:cursor"


def sent(wave: str) -> str:
    """Bitmap: bit ``id`` is set once the message of recipient ``id`` is sent."""
    return f"{PREFIX}:{{w:{wave}}}:sent"


def progress(wave: str) -> str:
    return f"{PREFIX}:{{w:{wave}}}:progress"


def wave_routes(wave: str) -> str:
    """Set: the routes that keep counters of the wave (:func:`route_progress`; cluster only)."""
    return f"{PREFIX}:{{w:{wave}}}:routes"


def route_progress(route: str, wave: str) -> str:
    """Hash: the wave's counters moved by the route's finished entries. On Redis Cluster they
    are kept with the route, so that they change in the transaction that acknowledges the
    entry; the wave's counters are then the sum of :func:`progress` and these."""
    return f"{PREFIX}:{{r:{route}}}:progress:{wave}"


def remote_ids(hour: int, shard: int) -> str:
    """Hash: channel message id -> packed (wave, recipient, part), for the hour (since the
    epoch) the message was sent in and the shard of its id
    (:mod:`dispatcher.store.receiptindex`); expires after the messages' validity period."""
    return f"{PREFIX}:remote-ids:{hour}:{shard}"


def remote_ids_unsharded(hour: int) -> str:
    """The hour's whole index, as a version that did not shard it wrote it (read until it
    expires)."""
    return f"{PREFIX}:remote-ids:{hour}"


def lease(name: str) -> str:
    return f"{PREFIX}:lease:{name}"


def seen(name: str, hour: int) -> str:
    """Set: the ids ``name`` (``webhook``: delivery webhook events) handled in the hour (since
    the epoch); the hours of one name share a hash tag, checked together by one script."""
    return f"{PREFIX}:{{seen:{name}}}:{hour}"


def delivered(wave: str) -> str:
    """Bitmap: bit ``id`` is set once a receipt or webhook said recipient ``id``'s message of
    the wave was delivered (set per pass of the receipt matcher)."""
    return f"{PREFIX}:{{w:{wave}}}:delivered"


def audience_numbers(version: str, bucket: int) -> str:
    """Hash: number // NUMBER_BUCKETS -> recipient id, for the numbers of the audience version
    whose value modulo NUMBER_BUCKETS is ``bucket`` (dispatcher.store.recipients)."""
    return f"{PREFIX}:audience:{version}:numbers:{bucket}"
