"""The engine's own settings: what the engine reads (its store, batches, retries, routes and
rates), with no channel's configuration in them.

:class:`EngineConfig` is the part of the deployment's settings that the engine needs;
:class:`dispatcher.service.settings.Settings` is it plus the channels' tables (SMPP links, the Zalo
OA, app push, e-mail), the API's and the logs'. Loading, environment overrides and secrets are
:func:`dispatcher.service.settings.load_settings`'s.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from dispatcher.domain.cap import CapSettings, check_settings
from dispatcher.domain.errors import ConfigError
from dispatcher.domain.model import OUTLETS, Channel, ZnsMessage
from dispatcher.domain.numberlist import ListSettings
from dispatcher.domain.outlet import Target
from dispatcher.domain.zns import check_channels


class RedisSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    url: str = ""  # empty: keep everything in this process's memory


class EngineSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    batch_size: int = 500  # messages per stream entry
    chunk_size: int = 512  # recipients per stored audience chunk
    chunks_per_step: int = 16  # audience chunks per fan-out step (one checkpoint)
    approval_threshold: int = 10_000  # campaigns reaching more need approval by another user
    # ... and campaigns sending more SMS parts (recipients x parts, with the SMS fallback's)
    approval_threshold_pdus: int = 30_000
    reconcile_seconds: float = 5.0
    lease_seconds: float = 30.0  # a batch held this long without a heartbeat is reclaimed
    state_refresh_seconds: float = 0.25  # how fast pause and cancel reach every worker
    consumers_per_route: int = 4  # batches in flight per route and worker
    fanout_concurrency: int = 4  # waves fanned out at once per process (and urgent ones)
    # routine batches a route may hold that no worker has read yet: fan-out waits above it
    ahead_batches: int = 64
    # how often sent bits are written while batches are being sent (0: only at a batch's end)
    sent_flush_seconds: float = 0.005
    # SMS a recipient Zalo cannot reach gets by fallback per local day, beyond the plan's SMS
    fallback_max_per_day: int = 1
    # after a pause, a route's rate ([rates]) lets at most this many seconds of it go at once
    rate_burst_seconds: float = 0.1


class RetrySettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    max_attempts: int = 5  # sends of one message before it is dead-lettered
    base_seconds: float = 2.0  # wait before the first retry; doubles each time
    max_seconds: float = 300.0
    jitter: float = 0.2  # +/- share of the wait, so retries do not arrive together


class EngineConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The tables of the settings that the engine reads."""

    redis: RedisSettings = RedisSettings()
    engine: EngineSettings = EngineSettings()
    retry: RetrySettings = RetrySettings()
    # carrier -> SMS route ("link group"); carriers not listed use their own name
    sms_routes: dict[str, str] = {}
    # route -> messages per second (0 or absent: no limit); routes: sms.<group>, zalo, email, app
    rates: dict[str, float] = {}
    # the public alerts published as CAP 1.2 messages (dispatcher.engine.cap): who sends them
    cap: CapSettings = CapSettings()
    # the uploaded lists of numbers: how long they are kept (dispatcher.engine.retention)
    lists: ListSettings = ListSettings()

    def check_zns(self, zns: ZnsMessage | None, channels: list[Channel]) -> None:
        """Refuse a campaign's typed Zalo message the engine alone can tell is wrong (no Zalo
        among its channels). The deployment's settings also check it against the templates."""
        check_channels(zns, channels)

    def sms_route(self, carrier: str) -> str:
        return f"{Channel.SMS}.{self.sms_routes.get(carrier, carrier)}"

    def rate(self, route: str) -> float:
        return self.rates.get(route, 0.0)

    def targets(self, channel: Channel) -> list[Target]:
        """The configured targets of an outlet channel (none here: the deployment's settings
        read them from the channel's table, :class:`dispatcher.domain.outlet.OutletConfig`)."""
        return []

    def urgent_outlets(self, level: int | None) -> list[Channel]:
        """Outlet channels an urgent campaign also goes by while ``level`` is in force (none
        here: the deployment's settings say, from the channels' tables)."""
        return []


MAX_FALLBACK_PER_DAY = 8
# and sms.<link group>
ROUTES = frozenset({"zalo", "email", "app", *(c.value for c in OUTLETS)})


def check_engine(settings: EngineConfig, source: str) -> None:
    """Refuse engine numbers that would stop the work, and rates that name no kind of route."""
    positive = {
        "engine.batch_size": settings.engine.batch_size,
        "engine.chunk_size": settings.engine.chunk_size,
        "engine.chunks_per_step": settings.engine.chunks_per_step,
        "engine.consumers_per_route": settings.engine.consumers_per_route,
        "engine.fanout_concurrency": settings.engine.fanout_concurrency,
        "engine.ahead_batches": settings.engine.ahead_batches,
        "retry.max_attempts": settings.retry.max_attempts,
        "engine.lease_seconds": settings.engine.lease_seconds,
        "engine.reconcile_seconds": settings.engine.reconcile_seconds,
        "engine.state_refresh_seconds": settings.engine.state_refresh_seconds,
    }
    for key, value in positive.items():
        if value <= 0:
            raise ConfigError("must be more than 0", source=source, key=key)
    if not 0 <= settings.engine.fallback_max_per_day <= MAX_FALLBACK_PER_DAY:
        raise ConfigError(f"must be 0 (no fallback SMS) to {MAX_FALLBACK_PER_DAY}",
                          source=source, key="engine.fallback_max_per_day")
    if not 0 <= settings.retry.jitter < 1:
        raise ConfigError("must be at least 0 and below 1", source=source, key="retry.jitter")
    if settings.lists.retention_days < 0:
        raise ConfigError("must be 0 (kept for good) or more", source=source,
                          key="lists.retention_days")
    check_settings(settings.cap, source)


def check_rate_keys(settings: EngineConfig, source: str) -> None:
    """Every ``[rates]`` key is a kind of route, and every rate 0 (no limit) or more."""
    for route, rate in settings.rates.items():
        if route not in ROUTES and not (route.startswith("sms.") and len(route) > 4):
            raise ConfigError("not a route: sms.<link group>, zalo, email or app",
                              source=source, key=f"rates.{route}")
        if rate < 0:
            raise ConfigError("must be 0 (no limit) or more", source=source, key=f"rates.{route}")


def known_routes(settings: EngineConfig, carriers: Iterable[str]) -> list[str]:
    """Every route the carriers of the numbering table and ``[sms_routes]`` make."""
    return sorted({settings.sms_route(c) for c in carriers}) + sorted(ROUTES)


def check_rates(settings: EngineConfig, carriers: Iterable[str], source: str) -> None:
    """Every ``[rates]`` key names a route: one naming none would limit nothing."""
    routes = known_routes(settings, carriers)
    for route in settings.rates:
        if route not in routes:
            raise ConfigError(f"names no route; the routes are {', '.join(routes)} (an SMPP "
                              "link's own rate is smpp.<link>.tps)", source=source,
                              key=f'rates."{route}"')
