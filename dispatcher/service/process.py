"""A Loa process: the engine (reconciler, fan-out, workers) with the configured channels,
running until SIGINT or SIGTERM and then stopping cleanly (batches in hand are finished or left
to be reclaimed; nothing is lost)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
from collections.abc import Mapping

from adapters.base import Adapter
from adapters.memory import MemoryAdapter
from adapters.smpp.adapter import SmppAdapter
from adapters.wifi.client import WifiClient
from adapters.zalo.adapter import ZaloAdapter
from dispatcher.domain.checklist import on_checklist
from dispatcher.domain.errors import ConfigError, LoaError
from dispatcher.domain.incoming import Keywords
from dispatcher.domain.model import Channel
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.engine import routing, suppressions
from dispatcher.engine.binds import BindLeases
from dispatcher.engine.incoming import IncomingIntake
from dispatcher.engine.process import Engine, default_name
from dispatcher.engine.receipts import ReceiptMatcher
from dispatcher.engine.reminders import Reminders
from dispatcher.engine.wifi import WifiPusher
from dispatcher.service import channels, zns_check
from dispatcher.service import zalo_tokens as zalotokens
from dispatcher.service.settings import Settings
from dispatcher.store import MemoryStore, Store
from dispatcher.store.incoming import Retention

log = logging.getLogger(__name__)


def intake(store: Store, settings: Settings, numbering: Numbering) -> IncomingIntake:
    """The intake of what citizens send, with the settings' retention and keywords; its
    opt-outs put their numbers on the channel's suppression list and are recorded in the store
    (``on_opt_outs``)."""
    config = settings.incoming
    store.incoming.retention = Retention(config.retention_days, config.max_items)
    return IncomingIntake(store, Keywords(config.opt_out_keywords),
                          suppressions.opt_out_handler(store, numbering))


def build_engine(store: Store, settings: Settings, plan: Plan, province: Province,
                 numbering: Numbering, *, reconcile: bool, name: str | None = None) -> Engine:
    """The engine of a process, with the adapters the settings configure. On a shared store
    (Redis), the SMPP binds are taken by lease, so that workers together never open more binds
    than a link has. A plan whose Zalo rows the configured templates would refuse is refused
    (ConfigError naming the parameter) before anything starts. A reconciling process also pushes
    the public notices to the ``[wifi]`` controllers (one at a time, by lease)."""
    zns_check.check_plan(plan, settings.zalo, "plan")
    name = name or default_name()
    matcher = ReceiptMatcher(store)
    incoming = intake(store, settings, numbering)
    shared = not isinstance(store, MemoryStore)
    adapters = channels.build(settings, on_receipt=matcher.add, on_incoming=incoming.add,
                              leased_binds=shared,
                              zalo_tokens=zalotokens.token_store(store, settings, os.environ,
                                                                 owner=name))
    sms = adapters.get(Channel.SMS)
    binds = gate = None
    if isinstance(sms, SmppAdapter) and shared:
        binds = BindLeases(store.leases, sms, {n: c.binds for n, c in settings.smpp.items()},
                           owner=name, ttl=settings.engine.lease_seconds,
                           interval=min(1.0, settings.engine.lease_seconds / 3))
        smpp = sms

        def gate(route: str) -> bool:
            return routing.channel_of(route) is not Channel.SMS or smpp.serves(route)

    return Engine(store, plan, settings, province, adapters, numbering.carriers, name=name,
                  reconcile=reconcile, receipts=matcher, numbering=numbering, binds=binds,
                  incoming=incoming,
                  gate=gate,
                  wifi=wifi_pusher(store, settings, plan, province, name) if reconcile else None,
                  reminders=reminders(store, settings, plan, adapters, name))


def wifi_pusher(store: Store, settings: Settings, plan: Plan, province: Province,
                name: str) -> WifiPusher | None:
    """The pusher of the public notices to the ``[wifi]`` controllers (None: none configured,
    or no public alert published: ``[cap] sender`` not set)."""
    config = settings.wifi
    if not config.controllers or not settings.cap.enabled:
        return None
    return WifiPusher(store, plan, province.name, config, WifiClient(config), name=name,
                      lease_seconds=settings.engine.lease_seconds)


def reminders(store: Store, settings: Settings, plan: Plan, adapters: Mapping[Channel, Adapter],
              owner: str) -> Reminders | None:
    """The checklist's daily reminder (``[checklist] remind_at``), through the e-mail channel;
    None when it is off. A unit of ``[checklist] units`` that leads no activity of the plan is
    refused (a name written differently would never be reminded)."""
    config = settings.checklist
    if not config.enabled:
        return None
    leads = sorted({a.lead for level in plan.levels.values() for a in on_checklist(level)})
    for unit in config.units:
        if unit not in leads:
            raise ConfigError(f"{unit!r} leads no activity of the plan (its lead units: "
                              f"{'; '.join(leads)})", key=f"checklist.units.{unit}")
    mail = adapters.get(Channel.EMAIL)
    if mail is None:
        raise ConfigError("the reminders go by e-mail: add the [email] table",
                          key="checklist.remind_at")
    if isinstance(mail, MemoryAdapter):
        log.warning("the checklist reminders go to the simulated e-mail channel: no one gets "
                    "them")
    return Reminders(store, plan, config, mail, owner=owner,
                     clock=lambda: dt.datetime.now(dt.UTC))


async def run_engine(engine: Engine, stop: asyncio.Event) -> None:
    """Run until ``stop``, with the Zalo tokens renewed on schedule (adapters.zalo.schedule);
    then close every channel."""
    schedules = [asyncio.create_task(adapter.schedule.run(), name="zalo-token-schedule")
                 for adapter in engine.adapters.values() if isinstance(adapter, ZaloAdapter)]
    try:
        await engine.run(stop)
    finally:
        for task in schedules:
            task.cancel()
        await asyncio.gather(*schedules, return_exceptions=True)
        for adapter in engine.adapters.values():
            with contextlib.suppress(LoaError, OSError):  # closing is best effort at shutdown
                await adapter.aclose()
        if engine.wifi is not None:
            with contextlib.suppress(LoaError, OSError):
                await engine.wifi.aclose()
