"""Prometheus metrics of the cell broadcast channel, on the default registry.

``loa_cell_broadcast_carrier_stopped{carrier,reason}`` is read when Prometheus scrapes, from the
adapters that registered themselves with :func:`track` (weakly: a closed and forgotten adapter
drops out); ``loa_cell_broadcast_alerts_total{reason}`` counts the channel's alerts. Labels are
bounded: ``carrier`` is a configured carrier id, ``reason`` a fixed word. The broadcasts' states
(``loa_cell_broadcast_status``) are the engine's: :mod:`dispatcher.engine.broadcasts`.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable
from typing import Protocol

from prometheus_client import REGISTRY, Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

#: Why a carrier stops until an operator acts, and the channel's other alerts.
STOP_REASONS = ("credentials", "endpoint", "unknown")
ALERT_REASONS = (*STOP_REASONS, "rejected", "cancel")
ALERTS = Counter("loa_cell_broadcast_alerts", "Alerts of the cell broadcast channel by reason "
                 "(credentials, endpoint, unknown: a carrier stopped; rejected: a CBC refused "
                 "the CAP document; cancel: a CBC refused a Cancel)", ["reason"])


class _Adapter(Protocol):
    @property
    def stopped(self) -> dict[str, str]: ...


_lock = threading.Lock()  # scrapes run on the HTTP server's thread
_adapters: weakref.WeakSet[_Adapter] = weakref.WeakSet()


def track(adapter: _Adapter) -> None:
    with _lock:
        _adapters.add(adapter)


def untrack(adapter: _Adapter) -> None:
    with _lock:
        _adapters.discard(adapter)


class CarrierGauges(Collector):
    """1 for each carrier stopped for a fault an operator must fix, by reason."""

    def describe(self) -> Iterable[Metric]:
        return [self._family()]

    def collect(self) -> Iterable[Metric]:
        with _lock:
            adapters = list(_adapters)
        stopped: dict[tuple[str, str], float] = {}
        for adapter in adapters:
            for carrier, reason in adapter.stopped.items():
                stopped[(carrier, reason)] = 1.0
        family = self._family()
        for (carrier, reason), value in sorted(stopped.items()):
            family.add_metric([carrier, reason], value)
        return [family]

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "loa_cell_broadcast_carrier_stopped", "1 while a carrier's cell broadcast centre is "
            "stopped for a fault an operator must fix (credentials: refused or expired; "
            "endpoint: the URL is not the CBC's; unknown: answers Loa does not know); its "
            "alerts wait, they are not lost", labels=["carrier", "reason"])


REGISTRY.register(CarrierGauges())
