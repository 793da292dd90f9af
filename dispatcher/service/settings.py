"""Deployment settings: one typed object, read from TOML, overridden by environment variables.

Every setting has a default, so Loa runs with no file at all. A file (``--config FILE``) may
set any of them; then ``LOA_<SECTION>_<KEY>`` environment variables win (``LOA_REDIS_URL``,
``LOA_ENGINE_BATCH_SIZE``, ``LOA_RETRY_MAX_ATTEMPTS``). docs/configuration.md lists them all.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from adapters.cellbroadcast.config import CellBroadcastConfig, check_area
from adapters.email.adapter import EmailConfig, valid_address
from adapters.facebook.config import FacebookConfig
from adapters.http.proxy import Proxies
from adapters.loudspeaker.config import LoudspeakerConfig, check_districts, with_tokens
from adapters.portal import config as portal_config
from adapters.portal.config import PortalConfig
from adapters.smpp.adapter import LinkConfig
from adapters.webhook.adapter import WebhookConfig
from adapters.zalo.config import ZaloConfig
from dispatcher.domain import wifi as wifi_settings
from dispatcher.domain.cap import PROVINCE_AREA
from dispatcher.domain.config import convert, read_toml
from dispatcher.domain.errors import ConfigError, InputError
from dispatcher.domain.incoming import IncomingSettings, Keywords
from dispatcher.domain.model import OUTLETS, Channel, ZnsMessage
from dispatcher.domain.outlet import OutletConfig, Target
from dispatcher.domain.province import load_province
from dispatcher.domain.reminder import ReminderSettings, parse_time
from dispatcher.domain.secret import Secret, SecretUrl, from_env, refuse_inline
from dispatcher.domain.wifi import WifiSettings
from dispatcher.engine.logs import LogSettings
from dispatcher.engine.logs import check as check_log
from dispatcher.engine.settings import (
    MAX_FALLBACK_PER_DAY,
    ROUTES,
    EngineConfig,
    EngineSettings,
    RedisSettings,
    RetrySettings,
    check_engine,
    check_rate_keys,
    check_rates,
    known_routes,
)
from dispatcher.service import zns_check

__all__ = ["MAX_FALLBACK_PER_DAY", "ROUTES", "ChannelSettings", "EngineConfig", "EngineSettings",
           "RedisSettings", "RetrySettings", "Settings", "check_rates", "known_routes",
           "load_settings"]


class ChannelSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # channels declared simulated: they go to the in-process channel, which answers "sent" to
    # no one. A channel neither configured nor listed here refuses to start (docs/guarantees.md)
    simulate: list[Channel] = []


class Settings(EngineConfig, msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The deployment's settings: the engine's (:class:`EngineConfig`: ``redis``, ``engine``,
    ``retry``, ``sms_routes``, ``rates``) and the channels', the API's and the logs'."""

    channels: ChannelSettings = ChannelSettings()
    # SMPP links by name (the SMS route group they serve; "default" takes the rest)
    smpp: dict[str, LinkConfig] = {}
    zalo: ZaloConfig | None = None  # the e-government Zalo OA (ZNS by phone, OA by user id)
    # the Zalo OA's tokens without Redis (renewed ones are written back here); with Redis they
    # live in Redis (dispatcher/service/zalo_tokens.py) and this file only seeds them. Without the
    # file, LOA_ZALO_ACCESS_TOKEN and LOA_ZALO_REFRESH_TOKEN give the first pair.
    zalo_tokens_file: str = "zalo-tokens.json"
    app: WebhookConfig | None = None  # Smart Quảng Ninh app push (a JSON webhook)
    email: EmailConfig | None = None  # SMTP for civil servants' e-mail
    # the province's, the departments' and the districts' Facebook pages (an outlet channel)
    facebook: FacebookConfig | None = None
    # the grassroots radio's IP loudspeaker systems (an outlet channel)
    loudspeaker: LoudspeakerConfig | None = None
    # the provincial portal's Covid-19 section and the public-service portal (an outlet channel)
    portal: PortalConfig | None = None
    # the carriers' cell broadcast centres, which broadcast each wave's CAP alert to every phone
    # in its area (an outlet channel: one target per carrier)
    cell_broadcast: CellBroadcastConfig | None = None
    # the control API's own table ([api]: host, port, tokens...), read and checked by
    # dispatcher.service.api.config; kept here so that one file configures the whole process
    api: dict[str, Any] = {}
    log: LogSettings = LogSettings()  # format and level of the long-running commands' logs
    # messages and events from citizens: how long they are kept, the opt-out keywords
    incoming: IncomingSettings = IncomingSettings()
    # the public Wi-Fi controllers each new public notice is pushed to (dispatcher.engine.wifi)
    wifi: WifiSettings = WifiSettings()
    # the checklist's daily e-mail reminder to the lead units (dispatcher.engine.reminders)
    checklist: ReminderSettings = ReminderSettings()

    def check_zns(self, zns: ZnsMessage | None, channels: list[Channel]) -> None:
        """The engine's check, then the message against ``[zalo.templates]``."""
        zns_check.check(self.zalo, zns, channels)

    def outlet(self, channel: Channel) -> OutletConfig | None:
        """The settings table of an outlet channel (None: not configured)."""
        tables: dict[Channel, OutletConfig | None] = {Channel.FACEBOOK: self.facebook,
                                                      Channel.LOUDSPEAKER: self.loudspeaker,
                                                      Channel.PORTAL: self.portal,
                                                      Channel.CELL_BROADCAST: self.cell_broadcast}
        return tables.get(channel)

    def targets(self, channel: Channel) -> list[Target]:
        table = self.outlet(channel)
        return table.targets() if table is not None else []

    def urgent_outlets(self, level: int | None) -> list[Channel]:
        """Cell broadcast, for an urgent campaign while ``level`` is ``[cell_broadcast]
        urgent_level`` or higher and a carrier is configured."""
        table = self.cell_broadcast
        if table is None or not table.carriers or not table.urgent_level or level is None:
            return []
        return [Channel.CELL_BROADCAST] if level >= table.urgent_level else []


def _check(settings: Settings, source: str) -> Settings:
    check_engine(settings, source)
    check_log(settings.log, source)
    check_rate_keys(settings, source)
    for name, link in settings.smpp.items():
        if not 0 < link.tps_floor <= 1:
            raise ConfigError("must be more than 0 and at most 1 (a share of tps)",
                              source=source, key=f"smpp.{name}.tps_floor")
    tables: list[tuple[str, msgspec.Struct | None]] = [
        ("engine", settings.engine), ("retry", settings.retry),
        *((f"smpp.{name}", link) for name, link in settings.smpp.items()),
        ("zalo", settings.zalo), ("app", settings.app), ("email", settings.email),
        ("facebook", settings.facebook), ("loudspeaker", settings.loudspeaker),
        ("cell_broadcast", settings.cell_broadcast)]
    for table, struct in tables:
        if struct is not None:
            _check_numbers(table, struct, source)
    configured = {Channel.SMS: bool(settings.smpp), Channel.ZALO: settings.zalo is not None,
                  Channel.EMAIL: settings.email is not None, Channel.APP: settings.app is not None,
                  **{c: settings.outlet(c) is not None for c in OUTLETS}}
    for channel in settings.channels.simulate:
        if configured[channel]:
            raise ConfigError(f"{channel} is configured and declared simulated: remove one of "
                              "the two", source=source, key="channels.simulate")
    if settings.app is not None and settings.app.mode not in ("batch", "message"):
        raise ConfigError("must be batch (a POST per batch) or message (a POST per message)",
                          source=source, key="app.mode")
    _check_incoming(settings.incoming, source)
    if settings.facebook is not None:
        _check_districts(settings.facebook.targets(), "facebook.pages", source)
    if settings.loudspeaker is not None and settings.loudspeaker.systems:
        province = load_province()
        check_districts(settings.loudspeaker, province.districts, province.name, source)
    if settings.portal is not None:
        portal_config.check(settings.portal, source)
        _check_districts(settings.portal.targets(), "portal.sites", source)
    _check_cell_broadcast(settings, source)
    wifi_settings.check(settings.wifi, cap_enabled=settings.cap.enabled, source=source)
    try:
        Proxies.configured(settings.wifi.proxy, env={})
    except ValueError as exc:
        raise ConfigError(str(exc), source=source, key="wifi.proxy") from None
    _check_reminders(settings, source)
    for name, link in settings.smpp.items():
        if link.urgent_priority_flag > 3:
            raise ConfigError("must be 0 to 3 (SMPP 3.4 priority_flag: 0 normal, 1-3 priority)",
                              source=source, key=f"smpp.{name}.urgent_priority_flag")
        if link.bind_type not in ("transceiver", "transmitter", "pair"):
            raise ConfigError("must be transceiver, pair (a transmitter and a receiver bind) "
                              "or transmitter (no receipts)", source=source,
                              key=f"smpp.{name}.bind_type")
    return settings


def _check_districts(targets: list[Target], key: str, source: str) -> None:
    """Every target's district is one of the province's (config/province.toml); ``key`` is
    where the table lists them (``portal.sites``)."""
    named = [(index, target) for index, target in enumerate(targets) if target.district]
    if not named:
        return
    province = load_province()
    for index, target in named:
        if target.district not in province.districts:
            raise ConfigError(f"{target.district!r} ({target.id}) is not a district of "
                              f"{province.name}: one of {', '.join(province.districts)}",
                              source=source, key=f"{key}[{index}].district")


def _check_reminders(settings: Settings, source: str) -> None:
    config = settings.checklist
    for unit, address in config.units.items():
        if not unit.strip():
            raise ConfigError("a unit's name is empty", source=source, key="checklist.units")
        if not valid_address(address):
            raise ConfigError(f"{address!r} is not an e-mail address", source=source,
                              key=f"checklist.units.{unit}")
    if not config.remind_at:
        return
    if parse_time(config.remind_at) is None:
        raise ConfigError(f"{config.remind_at!r} is not a time (HH:MM, 24-hour)", source=source,
                          key="checklist.remind_at")
    if not config.units:
        raise ConfigError("no unit to remind: give checklist.units (the lead unit's name as the "
                          "plan writes it = its e-mail address)", source=source,
                          key="checklist.units")
    if settings.email is None and Channel.EMAIL not in settings.channels.simulate:
        raise ConfigError("the reminders go by e-mail: add the [email] table (or declare e-mail "
                          "simulated)", source=source, key="checklist.remind_at")


def _check_cell_broadcast(settings: Settings, source: str) -> None:
    """Cell broadcast carriers need a CAP sender and a shape for every district (areas: the
    table's own, else ``[cap] areas``)."""
    table = settings.cell_broadcast
    if table is None or not table.carriers:
        return
    if not (table.sender or settings.cap.sender):
        raise ConfigError("the carriers know the alerts by their CAP sender: set [cap] sender "
                          "or [cell_broadcast] sender", source=source,
                          key="cell_broadcast.sender")
    where, areas = ("cell_broadcast.areas", table.areas) if table.areas else (
        "cap.areas", settings.cap.areas)
    province = load_province()
    for name, area in areas.items():
        if name != PROVINCE_AREA and name not in province.districts:
            raise ConfigError(f"not a district of {province.name} (config/province.toml) nor "
                              f"{PROVINCE_AREA!r}", source=source, key=f"{where}.{name}")
        try:
            check_area(f"{where}.{name}", area)
        except ValueError as exc:
            raise ConfigError(str(exc), source=source) from None
    missing = [d for d in province.districts if d not in areas]
    if missing:
        raise ConfigError(f"a cell broadcast goes to cells: give each district its polygons "
                          f"or geocodes; none for {', '.join(missing)}", source=source,
                          key=f"{where}.{missing[0]}")


def _check_incoming(incoming: IncomingSettings, source: str) -> None:
    if incoming.retention_days <= 0:
        raise ConfigError("must be more than 0 (days)", source=source,
                          key="incoming.retention_days")
    if incoming.max_items <= 0:
        raise ConfigError("must be more than 0", source=source, key="incoming.max_items")
    try:
        Keywords(incoming.opt_out_keywords)
    except InputError as exc:
        raise ConfigError(exc.reason, source=source, key=exc.field) from None


#: Numbers that must be more than 0 wherever they appear (0 would stop the work or divide by it).
POSITIVE = frozenset({
    "binds", "window", "port", "concurrency", "timeout", "connect_timeout", "batch_size",
    "pool_size", "messages_per_connection", "response_timeout", "enquire_link_seconds",
    "bind_wait", "max_seconds"})
#: Numbers that are one byte of an SMPP PDU.
BYTES = frozenset({"source_ton", "source_npi", "registered_delivery"})


def _check_numbers(table: str, struct: msgspec.Struct, source: str) -> None:
    """Every number of a table is 0 or more; ports, counts, sizes and timeouts more than 0."""
    for name in struct.__struct_fields__:
        value = getattr(struct, name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        key = f"{table}.{name}"
        if name in POSITIVE and value <= 0:
            raise ConfigError("must be more than 0", source=source, key=key)
        if value < 0:
            raise ConfigError("must be 0 or more", source=source, key=key)
        if name == "port" and value > 65535:
            raise ConfigError("must be a port (1 to 65535)", source=source, key=key)
        if name in BYTES and value > 255:
            raise ConfigError("must be 0 to 255 (one byte of the PDU)", source=source, key=key)


T = TypeVar("T", bound=msgspec.Struct)


def _secret(config: T, field: str, env_field: str, env: Mapping[str, str], key: str,
            source: str) -> T:
    """``config`` with ``field`` read from the environment variable named by ``env_field`` (or
    kept from the file) and wrapped so that it never shows in a repr."""
    name = getattr(config, env_field)
    if name:
        value = from_env(name, env, source=source, key=f"{key}.{env_field}")
        return msgspec.structs.replace(config, **{field: value})
    value = getattr(config, field)
    return msgspec.structs.replace(config, **{field: Secret(value)}) if value else config


def _secrets(settings: Settings, env: Mapping[str, str], source: str) -> Settings:
    """Fill in passwords and secrets from the environment variables the file names."""
    links = {name: _secret(link, "password", "password_env", env, f"smpp.{name}", source)
             for name, link in settings.smpp.items()}
    app = settings.app and _secret(settings.app, "secret", "secret_env", env, "app", source)
    if app and app.headers_env:
        filled = {header: from_env(name, env, source=source, key=f"app.headers_env.{header}")
                  for header, name in app.headers_env.items()}
        app = msgspec.structs.replace(app, headers={**app.headers, **filled})
    email = settings.email and _secret(settings.email, "password", "password_env", env,
                                       "email", source)
    zalo = settings.zalo and _secret(settings.zalo, "secret_key", "secret_key_env", env, "zalo",
                                     source)
    facebook = settings.facebook and msgspec.structs.replace(settings.facebook, pages=[
        msgspec.structs.replace(page, token=from_env(
            page.token_env, env, source=source, key=f"facebook.pages.{page.id}.token_env"))
        for page in settings.facebook.pages])
    loudspeaker = settings.loudspeaker and with_tokens(settings.loudspeaker, env, source)
    portal = settings.portal and _portal_secrets(settings.portal, env, source)
    cell_broadcast = settings.cell_broadcast and msgspec.structs.replace(
        settings.cell_broadcast, carriers=[
            _secret(_secret(carrier, "password", "password_env", env,
                            f"cell_broadcast.carriers.{carrier.id}", source),
                    "token", "token_env", env, f"cell_broadcast.carriers.{carrier.id}", source)
            for carrier in settings.cell_broadcast.carriers])
    redis = msgspec.structs.replace(settings.redis, url=SecretUrl(settings.redis.url))
    controllers = [_secret(c, "secret", "secret_env", env, f"wifi.controllers[{i}]", source)
                   for i, c in enumerate(settings.wifi.controllers)]
    wifi = msgspec.structs.replace(settings.wifi, controllers=controllers)
    return msgspec.structs.replace(settings, redis=redis, smpp=links, app=app, email=email,
                                   zalo=zalo, facebook=facebook, loudspeaker=loudspeaker,
                                   portal=portal, cell_broadcast=cell_broadcast,
                                   wifi=wifi)


def _portal_secrets(portal: PortalConfig, env: Mapping[str, str], source: str) -> PortalConfig:
    """Each portal site with its application password or secret from the environment."""
    sites = [_secret(_secret(site, "password", "password_env", env, f"portal.sites[{i}]",
                             source),
                     "secret", "secret_env", env, f"portal.sites[{i}]", source)
             for i, site in enumerate(portal.sites)]
    return msgspec.structs.replace(portal, sites=sites)


def _env_overrides(data: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    for section, struct in (("redis", RedisSettings), ("engine", EngineSettings),
                            ("retry", RetrySettings), ("log", LogSettings)):
        for name in struct.__struct_fields__:
            value = env.get(f"LOA_{section}_{name}".upper())
            if value is not None:
                data.setdefault(section, {})[name] = value
    if "LOA_REDIS_URL" not in env and env.get("LOA_REDIS_URL_FILE"):
        # the URL may hold a password: from a file rather than the command line or the config
        url = from_env("LOA_REDIS_URL", env, source="environment", key="redis.url")
        data.setdefault("redis", {})["url"] = str.__str__(url)
    return data


def load_settings(path: Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Settings from ``path`` (or defaults), with ``LOA_*`` environment overrides."""
    env = os.environ if env is None else env
    source = str(path) if path else "defaults"
    data: dict[str, Any] = {}
    if path:
        raw = read_toml(path)
        refuse_inline(raw, source)
        wifi_settings.refuse_inline(raw, source)
        data = msgspec.to_builtins(convert(raw, Settings, source=source))
    data = _env_overrides(data, env)
    try:
        settings = msgspec.convert(data, Settings, strict=False)
    except msgspec.ValidationError:
        # Say which key, with the environment named: convert() again to get the path.
        settings = convert(data, Settings, source=f"{source} + LOA_* environment")
    return _secrets(_check(settings, source), env, source)
