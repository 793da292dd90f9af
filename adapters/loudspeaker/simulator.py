"""A loudspeaker system's HTTP API (the generic profile of docs/channels.md), for tests, the
demo and ``loa sim loudspeaker``.

It serves several systems at once, each at ``/<system>/broadcasts`` (its ``url`` for Loa is
``<simulator>/<system>``), with a bearer token each. An upload is checked as a vendor would:
the token (401), the form (400 naming the field; 415 for audio that is not WAV), the audio (422
when it is not a valid WAV, when its length differs from ``duration_ms`` by more than
``duration_slack_ms``, or when it is implausible for the text: outside ``ms_per_char`` of its
characters, see docs/channels.md), the schedule (ISO 8601 with an offset). A broadcast id seen
before is answered 409 and not kept again; ``broadcasts`` holds what each system took, counted
at the far end.

Faults, changed between (and during) uploads with :meth:`LoudspeakerSim.set_config`: an error
status for the next uploads or a share of them (``status``, ``error_ratio``), 429 with
``Retry-After`` (``throttle_count``), an expired token (``expired``), slow answers (``delay``),
and the broadcast kept but its answer held longer than the client waits (``hang_after_accept``:
an answer lost after the upload arrived). Down is the simulator stopped (:meth:`stop`).
"""

from __future__ import annotations

import datetime as dt
import io
import wave
from collections.abc import Awaitable
from typing import Any

import msgspec

from adapters.http.message import Request
from adapters.http.multipart import MultipartError, Part, parse
from adapters.http.server import HttpServer, Response
from adapters.http.sim import SimServer
from adapters.loudspeaker import broadcast

#: system id -> its bearer token
DEFAULT_SYSTEMS = {"dongtrieu": "loa-sim-dongtrieu", "halong": "loa-sim-halong"}
AUDIO_TYPES = frozenset({"audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave"})
#: A bulletin's plausible length per character of its text, in ms: espeak-ng's Vietnamese voice
#: measured from 450 down to 80 words per minute on the plan's bulletins, with margins (see
#: docs/channels.md, "The simulator").
MS_PER_CHAR = (15.0, 400.0)


class LoudspeakerSimConfig(msgspec.Struct, frozen=True, kw_only=True):
    systems: dict[str, str] = msgspec.field(default_factory=lambda: dict(DEFAULT_SYSTEMS))
    expired: frozenset[str] = frozenset()  # tokens answered 401, expired
    status: int = 0  # answered to the next status_count uploads (0: none)
    status_count: int = 1
    error_status: int = 503  # answered to error_ratio of the uploads
    error_ratio: float = 0.0
    throttle_count: int = 0  # the next uploads answered 429
    retry_after: int = 2  # seconds, in the 429's Retry-After
    delay: float = 0.0  # seconds before every answer
    hang_after_accept: float = 0.0  # keep the broadcast, then hold the answer this long
    ms_per_char: tuple[float, float] = MS_PER_CHAR
    duration_slack_ms: int = 50  # duration_ms may differ from the audio's length this much
    max_bytes: int = 12 * 1024 * 1024  # a larger upload is answered 413
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.error_ratio <= 1:
            raise ValueError("error_ratio must be 0 to 1")
        if self.delay < 0 or self.hang_after_accept < 0:
            raise ValueError("delay and hang_after_accept must be 0 or more")
        for status in (self.status, self.error_status):
            if status and not 100 <= status <= 599:
                raise ValueError(f"{status} is not an HTTP status")
        if not 0 < self.ms_per_char[0] < self.ms_per_char[1]:
            raise ValueError("ms_per_char must be (low, high) with 0 < low < high")
        for system in self.systems:
            if not system or "/" in system:
                raise ValueError(f"system id {system!r} must be a path segment")


class Broadcast(msgspec.Struct, frozen=True):
    """A broadcast a system took (its audio's size, not the audio)."""

    id: str  # the system's own id, "b-<n>"
    key: str  # Loa's idempotency id, <wave>:<system>
    system: str
    title: str
    text: str
    zones: list[str]
    schedule: list[str]
    repeat: int
    duration_ms: int
    audio_bytes: int
    audio_ms: int  # as measured from the WAV


class LoudspeakerSimStats(msgspec.Struct):
    requests: int = 0
    broadcasts: int = 0
    taken: int = 0  # 409: a broadcast id seen before
    unauthorized: int = 0  # 401: no token, a wrong one or an expired one
    invalid: int = 0  # 400, 413, 415, 422
    injected: int = 0  # error statuses the faults answered
    throttled: int = 0  # 429
    hung: int = 0  # answers held after the broadcast was kept


class _Invalid(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _json(status: int, **body: Any) -> Response:
    return Response(msgspec.json.encode(body), status)


def wav_ms(data: bytes) -> int:
    """The length of a WAV file in ms (:class:`_Invalid` 422 if it is not a valid one)."""
    try:
        with wave.open(io.BytesIO(data), "rb") as file:
            frames, rate = file.getnframes(), file.getframerate()
            width, channels = file.getsampwidth(), file.getnchannels()
    except (wave.Error, EOFError) as exc:
        raise _Invalid(422, f"audio is not a valid WAV file: {exc}") from None
    if not rate or width not in (1, 2) or channels not in (1, 2):
        raise _Invalid(422, f"audio format not played: {channels} channel(s), {8 * width} bits, "
                            f"{rate} Hz")
    if frames * width * channels > len(data):
        raise _Invalid(422, "audio is shorter than its header says")
    return frames * 1000 // rate


class LoudspeakerSim(SimServer):
    """The systems on ``127.0.0.1`` (a free port unless given): ``await start()``, then upload
    to ``system_url(system)``."""

    GRACE = 0.2

    def __init__(self, config: LoudspeakerSimConfig | None = None) -> None:
        self._config = config or LoudspeakerSimConfig()
        super().__init__(self._config.seed)
        self.stats = LoudspeakerSimStats()
        self.broadcasts: dict[str, list[Broadcast]] = {}  # system -> what it took, in order
        self._keys: dict[str, str] = {}  # idempotency id -> the system's id of it

    @property
    def config(self) -> LoudspeakerSimConfig:
        return self._config

    def set_config(self, **changes: Any) -> LoudspeakerSimConfig:
        self._config = msgspec.structs.replace(self._config, **changes)
        return self._config

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def system_url(self, system: str) -> str:
        return f"{self.url}/{system}"

    def count(self, key: str) -> int:
        """How many times the broadcast ``<wave>:<system>`` was kept (never more than 1)."""
        return sum(b.key == key for taken in self.broadcasts.values() for b in taken)

    def _route(self, server: HttpServer) -> None:
        for system in self._config.systems:
            server.route("POST", f"/{system}{broadcast.PATH}", self._handler(system))
            server.route("GET", f"/{system}{broadcast.PATH}", self._listing(system))

    # -- handlers ------------------------------------------------------------------------------

    def _listing(self, system: str) -> Any:
        def handler(request: Request) -> Response:
            if (refused := self._token(request, system)) is not None:
                return refused
            return Response(msgspec.json.encode(self.broadcasts.get(system, [])))
        return handler

    def _handler(self, system: str) -> Any:
        def handler(request: Request) -> Response | Awaitable[Response]:
            self.stats.requests += 1
            answer, hang = self._answer(request, system)
            config = self._config
            wait = hang or config.delay
            if not wait:
                return answer

            async def later() -> Response:
                await self._wait(wait)
                return answer
            return later()
        return handler

    def _token(self, request: Request, system: str) -> Response | None:
        config = self._config
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or token != config.systems.get(system):
            self.stats.unauthorized += 1
            return _json(401, error="token missing or invalid")
        if token in config.expired:
            self.stats.unauthorized += 1
            return _json(401, error="token expired")
        return None

    def _fault(self) -> Response | None:
        config = self._config
        if config.throttle_count > 0:
            self.set_config(throttle_count=config.throttle_count - 1)
            self.stats.throttled += 1
            return Response(b'{"error": "too many uploads"}', 429,
                            headers={"Retry-After": str(config.retry_after)})
        if config.status:
            left = config.status_count - 1
            self.set_config(**({"status_count": left} if left > 0 else
                               {"status": 0, "status_count": 1}))
            self.stats.injected += 1
            return _json(config.status, error=f"injected {config.status}")
        if self._chance(config.error_ratio):
            self.stats.injected += 1
            return _json(config.error_status, error=f"injected {config.error_status}")
        return None

    def _answer(self, request: Request, system: str) -> tuple[Response, float]:
        """The answer, and how long to hold it after the broadcast was kept."""
        if (refused := self._token(request, system)) is not None:
            return refused, 0.0
        if (fault := self._fault()) is not None:
            return fault, 0.0
        try:
            found = self._read(request, system)
        except _Invalid as invalid:
            self.stats.invalid += 1
            return _json(invalid.status, error=invalid.reason), 0.0
        taken = self._keys.get(found.key)
        if taken is not None:
            self.stats.taken += 1
            return _json(409, id=taken, error="broadcast id taken"), 0.0
        kept = msgspec.structs.replace(found, id=f"b-{len(self._keys) + 1}")
        self._keys[found.key] = kept.id
        self.broadcasts.setdefault(system, []).append(kept)
        self.stats.broadcasts += 1
        hang = self._config.hang_after_accept
        if hang:
            self.stats.hung += 1
        return _json(201, id=kept.id), hang

    def _read(self, request: Request, system: str) -> Broadcast:
        config = self._config
        if len(request.body) > config.max_bytes:
            raise _Invalid(413, f"upload of {len(request.body)} bytes, at most {config.max_bytes}")
        try:
            parts = parse(request.headers.get("content-type", ""), request.body)
            fields: dict[str, list[Part]] = {}
            for part in parts:
                fields.setdefault(part.name, []).append(part)

            def one(name: str) -> str:
                if len(fields.get(name, [])) != 1:
                    raise _Invalid(400, f"{name}: one is required")
                return fields[name][0].text

            key, title, text = one("id"), one("title"), one("text")
            zones = [p.text for p in fields.get("zones", [])]
            schedule = [p.text for p in fields.get("schedule", [])]
            repeat_text, duration_text = one("repeat"), one("duration_ms")
        except MultipartError as exc:
            raise _Invalid(400, f"not a valid form: {exc}") from None
        if not key.endswith(f":{system}") or len(key) > 200:
            raise _Invalid(400, f"id: {key[:80]!r} is not <wave>:{system}")
        if not text.strip():
            raise _Invalid(400, "text: empty")
        if not repeat_text.isdigit() or not 1 <= int(repeat_text) <= 10:
            raise _Invalid(400, f"repeat: {repeat_text[:20]!r} is not 1 to 10")
        if not duration_text.isdigit():
            raise _Invalid(400, f"duration_ms: {duration_text[:20]!r} is not a number")
        if not schedule:
            raise _Invalid(400, "schedule: at least one time is required")
        for when in schedule:
            try:
                parsed = dt.datetime.fromisoformat(when)
            except ValueError:
                parsed = None
            if parsed is None or parsed.tzinfo is None:
                raise _Invalid(400, f"schedule: {when[:40]!r} is not ISO 8601 with an offset")
        audio = fields.get("audio", [])
        if len(audio) != 1 or not audio[0].filename:
            raise _Invalid(400, "audio: one file is required")
        if audio[0].content_type.split(";")[0].strip().lower() not in AUDIO_TYPES:
            raise _Invalid(415, f"audio: {audio[0].content_type[:40]!r} is not audio/wav")
        measured = wav_ms(audio[0].value)
        said = int(duration_text)
        if abs(measured - said) > config.duration_slack_ms:
            raise _Invalid(422, f"duration_ms: {said} ms, the audio lasts {measured} ms")
        chars = len("".join(text.split()))
        low, high = config.ms_per_char
        if not low * chars <= measured <= high * chars:
            raise _Invalid(422, f"audio of {measured} ms is implausible for {chars} characters "
                                f"of text ({low:g}-{high:g} ms each)")
        return Broadcast("", key, system, title, text, zones, schedule, int(repeat_text), said,
                         len(audio[0].value), measured)
