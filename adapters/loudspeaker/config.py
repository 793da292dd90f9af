"""The loudspeaker channel's settings (``[loudspeaker]``): the speech, and the systems.

Kept apart from the adapter so that what reads the settings (the settings loader, the plan's
view) does not load the channel's HTTP client. Each system is a target of the channel
(:class:`dispatcher.domain.outlet.Target`): an IP loudspeaker system (truyền thanh thông minh)
of a district or a commune, with its own HTTP API and bearer token, read from the environment
variable ``token_env`` when the settings are loaded (never from the file).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Mapping

import msgspec

from adapters.http.proxy import Proxies
from adapters.http.url import Url
from dispatcher.domain.errors import ConfigError
from dispatcher.domain.outlet import ID, Target
from dispatcher.domain.secret import from_env

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: espeak-ng's own bounds of the speaking rate (words per minute) and the pitch.
RATES = range(80, 451)
PITCHES = range(100)
MAX_REPEAT = 10


class Speech(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How a bulletin is rendered to audio (espeak-ng, :mod:`adapters.loudspeaker.speech`)."""

    voice: str = "vi"  # espeak-ng's voice: vi (northern), vi-vn-x-central, vi-vn-x-south
    rate: int = 150  # words per minute, 80-450 (espeak-ng's default is 175)
    pitch: int = 50  # 0-99
    binary: str = "espeak-ng"  # the program, found on PATH unless a path is given
    timeout: float = 30.0  # seconds one rendering may take

    def __post_init__(self) -> None:
        if self.rate not in RATES:
            raise ValueError(f"speech.rate {self.rate} must be 80 to 450 (words per minute)")
        if self.pitch not in PITCHES:
            raise ValueError(f"speech.pitch {self.pitch} must be 0 to 99")
        if not re.fullmatch(r"[A-Za-z0-9_+-]{1,40}", self.voice):
            raise ValueError(f"speech.voice {self.voice!r} is not an espeak-ng voice name (vi)")
        if not self.binary.strip():
            raise ValueError("speech.binary must name the espeak-ng program")
        if self.timeout <= 0:
            raise ValueError("speech.timeout must be more than 0 (seconds)")


class System(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One IP loudspeaker system Loa uploads bulletins to."""

    id: str  # Loa's id of it: "dongtrieu" (the address of its batches, the key of its sent bit)
    url: str  # the base URL of its HTTP API; broadcasts are POSTed to {url}/broadcasts
    token_env: str  # the environment variable holding its bearer token
    name: str = ""  # for people: "Truyền thanh thông minh TX Đông Triều"
    district: str = ""  # the district it speaks for (a province.toml id); "": the province
    zones: list[str] = []  # the zones (communes) it plays the bulletins in; empty: all of them
    play_at: list[str] = []  # "HH:MM" times it broadcasts at; empty: at once
    # filled in from token_env by the settings loader (a Secret: it never shows in a repr);
    # never written in the file
    token: str = ""

    def __post_init__(self) -> None:
        if not ID.match(self.id):
            raise ValueError(f"id {self.id!r} must be lower-case letters, digits, '.', '_' or "
                             "'-' (at most 64)")
        try:
            Url(self.url)
        except ValueError:
            raise ValueError(f"url {self.url!r} ({self.id}) is not an http(s) URL") from None
        if not _ENV_NAME.match(self.token_env):
            raise ValueError(f"token_env ({self.id}) must name the environment variable that "
                             "holds the system's token")
        for index, zone in enumerate(self.zones):
            if not zone.strip() or len(zone) > 64 or any(
                    unicodedata.category(c).startswith("C") for c in zone):
                raise ValueError(f"zones[{index}] {zone!r} ({self.id}) must be a zone name of "
                                 "1 to 64 printable characters")
        if len(set(self.zones)) != len(self.zones):
            raise ValueError(f"zones ({self.id}) names a zone twice")
        for index, time in enumerate(self.play_at):
            if not _HHMM.match(time):
                raise ValueError(f"play_at[{index}] {time!r} ({self.id}) is not a time HH:MM")
        if len(set(self.play_at)) != len(self.play_at):
            raise ValueError(f"play_at ({self.id}) gives a time twice")

    @property
    def times(self) -> list[tuple[int, int]]:
        """``play_at`` as (hour, minute), earliest first."""
        return sorted((int(t[:2]), int(t[3:])) for t in self.play_at)

    def target(self) -> Target:
        return Target(self.id, self.name, self.district)


class LoudspeakerConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The speech and the systems (see the module's documentation)."""

    timeout: float = 30.0  # seconds for one upload, connecting included
    connect_timeout: float = 5.0  # seconds to connect; then the bulletin waits (requeued)
    concurrency: int = 4  # uploads in flight, all systems together
    repeat: int = 2  # times each bulletin plays at each of its broadcast times (1-10)
    title: str = "Bản tin phòng, chống dịch"  # the broadcast's title when the wave has none
    speech: Speech = Speech()
    systems: list[System] = []
    # the proxy to the systems: "" the environment's (HTTPS_PROXY, NO_PROXY), "direct" none, or
    # http://[user:password@]host:port; no_proxy: more hosts that bypass it
    proxy: str = ""
    no_proxy: str = ""
    throttle_pause: float = 60.0  # 429 without Retry-After: the system waits this long
    throttle_pause_max: float = 3600.0  # the longest wait a Retry-After may ask
    alert_probe_seconds: float = 300.0  # a system stopped (token, unknown): tried this often
    unknown_status_limit: int = 5  # answers Loa does not know in a row that stop a system

    def __post_init__(self) -> None:
        if not 1 <= self.repeat <= MAX_REPEAT:
            raise ValueError(f"repeat {self.repeat} must be 1 to {MAX_REPEAT}")
        if self.concurrency < 1 or self.timeout <= 0 or self.connect_timeout <= 0:
            raise ValueError("concurrency must be at least 1, timeout and connect_timeout "
                             "more than 0")
        if not 0 < self.throttle_pause <= self.throttle_pause_max:
            raise ValueError("throttle_pause must be more than 0 and at most "
                             "throttle_pause_max")
        if self.alert_probe_seconds <= 0 or self.unknown_status_limit < 1:
            raise ValueError("alert_probe_seconds must be more than 0 and unknown_status_limit "
                             "at least 1")
        if not self.title.strip() or len(self.title) > 200:
            raise ValueError("title must be 1 to 200 characters")
        Proxies.configured(self.proxy, self.no_proxy, env={})  # ValueError naming the URL
        seen: set[str] = set()
        for index, system in enumerate(self.systems):
            if system.id in seen:
                raise ValueError(f"systems[{index}]: id {system.id!r} is given twice")
            seen.add(system.id)

    def targets(self) -> list[Target]:
        """The systems, as the engine knows them."""
        return [system.target() for system in self.systems]


def check_districts(config: LoudspeakerConfig, districts: Collection[str], province: str,
                    source: str) -> None:
    """Every system's district is one of the province's (config/province.toml)."""
    for index, system in enumerate(config.systems):
        if system.district and system.district not in districts:
            raise ConfigError(f"{system.district!r} ({system.id}) is not a district of "
                              f"{province}: one of {', '.join(districts)}", source=source,
                              key=f"loudspeaker.systems[{index}].district")


def with_tokens(config: LoudspeakerConfig, env: Mapping[str, str],
                source: str) -> LoudspeakerConfig:
    """``config`` with each system's token read from its ``token_env`` (or ``NAME_FILE``); a
    token written in the file is refused."""
    systems = []
    for index, system in enumerate(config.systems):
        key = f"loudspeaker.systems[{index}]"
        if system.token:
            raise ConfigError("a secret is not written in this file: set token_env to the name "
                              "of an environment variable holding it (or NAME_FILE naming a "
                              "file that holds it)", source=source, key=f"{key}.token")
        token = from_env(system.token_env, env, source=source, key=f"{key}.token_env")
        if not token.strip():
            raise ConfigError(f"the environment variable {system.token_env} is empty",
                              source=source, key=f"{key}.token_env")
        systems.append(msgspec.structs.replace(system, token=token))
    return msgspec.structs.replace(config, systems=systems)
