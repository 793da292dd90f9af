"""The generic HTTP profile of a loudspeaker system: what a broadcast upload carries.

``POST {url}/broadcasts`` with ``Authorization: Bearer <token>`` and a ``multipart/form-data``
body (:mod:`adapters.http.multipart`) of these parts:

=============== ==========================================================================
``id``          the broadcast's idempotency id, ``<wave>:<system>``: the same on every try
``title``       for the system's display and log
``text``        the bulletin as written (what the audio says)
``zones``       one part per zone to play in; none: every zone of the system
``schedule``    one part per broadcast time: ISO 8601 with the offset, ``2021-12-07T17:00:00+07:00``
``repeat``      how many times it plays at each time
``duration_ms`` the audio's length in milliseconds
``audio``       the file: ``bulletin.wav``, ``audio/wav`` (PCM 16-bit mono)
=============== ==========================================================================

The answer: 201 (or 200) with ``{"id": "<the system's id of the broadcast>"}``; 409 when the id
is taken (this bulletin reached the system before); errors as in :mod:`adapters.loudspeaker.codes`,
with ``{"error": "<why>"}``.
"""

from __future__ import annotations

import datetime as dt

import msgspec

from adapters.http.multipart import Part, encode, field
from adapters.loudspeaker.config import System
from adapters.loudspeaker.speech import Audio
from dispatcher.domain.model import VN

PATH = "/broadcasts"
AUDIO_TYPE = "audio/wav"
AUDIO_NAME = "bulletin.wav"
FIELDS = ("id", "title", "text", "zones", "schedule", "repeat", "duration_ms", "audio")


class Answer(msgspec.Struct):
    """What a system answers: its id of the broadcast, or why not."""

    id: str = ""
    error: str = ""


def broadcast_id(wave: str, system: str) -> str:
    """The idempotency id of ``wave``'s broadcast on ``system``."""
    return f"{wave}:{system}"


def schedule(system: System, now: dt.datetime, *, urgent: bool) -> list[dt.datetime]:
    """When ``system`` plays a bulletin uploaded at ``now``: at once without ``play_at``;
    otherwise at the times of ``play_at`` still to come that day (none left: the first one of
    the next day). An urgent notice also plays at once."""
    local = now.astimezone(VN).replace(microsecond=0)
    if not system.play_at:
        return [local]
    day = local.date()
    times = [dt.datetime.combine(day, dt.time(h, m), VN) for h, m in system.times]
    ahead = [t for t in times if t > local]
    if not ahead:
        ahead = [t + dt.timedelta(days=1) for t in times[:1]]
    return [local, *ahead] if urgent else ahead


def iso(times: list[dt.datetime]) -> list[str]:
    return [t.isoformat(timespec="seconds") for t in times]


def form(*, wave: str, system: System, title: str, text: str, times: list[dt.datetime],
         repeat: int, audio: Audio) -> tuple[str, bytes]:
    """The upload's ``Content-Type`` and body."""
    parts = [field("id", broadcast_id(wave, system.id)), field("title", title),
             field("text", text), *(field("zones", zone) for zone in system.zones),
             *(field("schedule", t) for t in iso(times)), field("repeat", str(repeat)),
             field("duration_ms", str(audio.duration_ms)),
             Part("audio", audio.wav, AUDIO_NAME, AUDIO_TYPE)]
    return encode(parts)


_answers = msgspec.json.Decoder(Answer)


def answer(body: bytes) -> Answer:
    """A system's JSON answer; an empty one for a body that is not."""
    if not body.lstrip().startswith(b"{"):
        return Answer()
    try:
        return _answers.decode(body)
    except msgspec.MsgspecError:
        return Answer()
