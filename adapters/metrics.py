"""Prometheus metrics of the channels, on the default registry; no engine imports here.

What a channel knows at every moment (an SMPP bind's window in flight, its rate in force, whether
it is bound; Zalo's remaining quota; the Facebook pages stopped) is read when Prometheus scrapes,
by :class:`ChannelGauges`, from the links and adapters that registered themselves with
:func:`track_link`, :func:`track_zalo` and :func:`track_facebook` (weakly: a closed and forgotten
adapter drops out). Nothing is counted per message. Labels are bounded: ``link`` is a configured
SMPP link name, ``page`` a configured Facebook page id, ``result`` a fixed word.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

#: Receipts by what became of them: ``matched`` to a sent message, ``unmatched`` after the hold
#: time, ``malformed`` (unreadable receipt PDU). Counted per matching pass, never per receipt on
#: the send path.
RECEIPTS = Counter("loa_receipts", "Delivery receipts by result (matched, unmatched, malformed)",
                   ["result"])
RECEIPTS_MATCHED = RECEIPTS.labels(result="matched")
RECEIPTS_UNMATCHED = RECEIPTS.labels(result="unmatched")
RECEIPTS_MALFORMED = RECEIPTS.labels(result="malformed")

#: Submit to delivery, from the dates a receipt carries (the SMSC's clock, minute or second
#: resolution): observed once per read from the socket, for the receipts it brought.
# What citizens send: replies, opt-outs, follows, unfollows, unreadable and binary SMS (counted
# by the engine's intake, once per batch) and delivery receipts sent as data_sm (by the session)
INCOMING = Counter("loa_incoming", "Messages and events from citizens by channel and kind",
                   ["channel", "kind"])
DATA_SM_RECEIPTS = INCOMING.labels(channel="sms", kind="data_sm_receipt")

DELIVERY_SECONDS = Histogram(
    "loa_delivery_seconds", "Seconds from submission to the handset, from receipts",
    ["channel"], buckets=(1, 5, 15, 30, 60, 120, 300, 900, 1800, 3600, 7200, 21600, 86400))
SMS_DELIVERY_SECONDS = DELIVERY_SECONDS.labels(channel="sms")


class _Rate(Protocol):
    @property
    def rate(self) -> float: ...


class _Stats(Protocol):
    @property
    def reconnects(self) -> int: ...

    @property
    def malformed(self) -> int: ...

    @property
    def oversized(self) -> int: ...

    @property
    def unknown_commands(self) -> int: ...


class _Session(Protocol):
    @property
    def rate(self) -> _Rate: ...

    @property
    def stats(self) -> _Stats: ...

    @property
    def in_flight(self) -> int: ...

    @property
    def is_bound(self) -> bool: ...


class _LinkConfig(Protocol):
    @property
    def binds(self) -> int: ...


class _Link(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def config(self) -> _LinkConfig: ...

    @property
    def sessions(self) -> Sequence[_Session]: ...

    @property
    def all_sessions(self) -> Sequence[_Session]: ...


class _Issued(Protocol):
    @property
    def at(self) -> float: ...


class _Tokens(Protocol):
    @property
    def issued(self) -> _Issued: ...

    @property
    def failures(self) -> int: ...


class _Schedule(Protocol):
    @property
    def failing(self) -> bool: ...


class _Zalo(Protocol):
    @property
    def tokens(self) -> _Tokens: ...

    @property
    def schedule(self) -> _Schedule: ...

    @property
    def remaining_quota(self) -> int | None: ...

    @property
    def paused_until(self) -> float: ...

    @property
    def pause_kind(self) -> str: ...

    @property
    def alert(self) -> str: ...


class _Facebook(Protocol):
    @property
    def stopped(self) -> dict[str, str]: ...


ZALO_PAUSE_REASONS = ("quota", "night", "configuration", "balance", "unknown")
#: Why a Facebook page stops (an operator must act), and the other alerts of the channel.
FACEBOOK_STOP_REASONS = ("token", "permission")
FACEBOOK_ALERT_REASONS = (*FACEBOOK_STOP_REASONS, "blocked", "unknown")
#: Alerts the Facebook channel raised: a page stopped for its token or a permission, a post
#: blocked for a policy violation, the route stopped for codes Loa does not know.
FACEBOOK_ALERTS = Counter("loa_facebook_alerts", "Alerts of the Facebook channel by reason "
                          "(token, permission: a page stopped; blocked: a post refused for a "
                          "policy violation; unknown: the route stopped for unknown codes)",
                          ["reason"])
_lock = threading.Lock()  # scrapes run on the HTTP server's thread
_links: weakref.WeakSet[_Link] = weakref.WeakSet()
_zalo: weakref.WeakSet[_Zalo] = weakref.WeakSet()
_facebook: weakref.WeakSet[_Facebook] = weakref.WeakSet()


def track_link(link: _Link) -> None:
    """Report ``link``'s binds until :func:`untrack_link` (or until it is garbage)."""
    with _lock:
        _links.add(link)


def untrack_link(link: _Link) -> None:
    with _lock:
        _links.discard(link)


def track_zalo(adapter: _Zalo) -> None:
    with _lock:
        _zalo.add(adapter)


def untrack_zalo(adapter: _Zalo) -> None:
    with _lock:
        _zalo.discard(adapter)


def track_facebook(adapter: _Facebook) -> None:
    with _lock:
        _facebook.add(adapter)


def untrack_facebook(adapter: _Facebook) -> None:
    with _lock:
        _facebook.discard(adapter)


class ChannelGauges(Collector):
    """The channels' state, read at scrape time: no cost on the send path."""

    def describe(self) -> Iterable[Metric]:
        return [*self._families(), _facebook_pages(())]

    def collect(self) -> Iterable[Metric]:
        with _lock:
            links = list(_links)
            zalo = list(_zalo)
            facebook = list(_facebook)
        return [*self._families(links, zalo), _facebook_pages(facebook)]

    @staticmethod
    def _families(links: Sequence[_Link] = (), zalo: Sequence[_Zalo] = ()) -> Iterator[Metric]:
        in_flight = GaugeMetricFamily(
            "loa_smpp_window_in_flight", "submit_sm awaiting their response, summed over the "
            "link's binds", labels=["link"])
        bind_up = GaugeMetricFamily(
            "loa_smpp_bind_up", "Sending binds of the link bound now in this process (0 also "
            "when it holds none of the link's bind leases: the link is down when the sum over "
            "every worker is 0)", labels=["link"])
        binds = GaugeMetricFamily("loa_smpp_binds",
                                  "Sending binds of the link open in this process",
                                  labels=["link"])
        granted = GaugeMetricFamily(
            "loa_smpp_binds_granted", "Binds the carrier granted the link (its configured "
            "binds, shared by every worker: the same in each)", labels=["link"])
        tps = GaugeMetricFamily(
            "loa_smpp_tps", "submit_sm per second in force, summed over the link's binds "
            "(0: unthrottled)", labels=["link"])
        reconnects = CounterMetricFamily(
            "loa_smpp_reconnects", "Reconnections of the link's binds", labels=["link"])
        malformed = CounterMetricFamily(
            "loa_smpp_malformed", "PDUs from the SMSC that could not be read (a body that ends "
            "early, a command_length under 16)", labels=["link"])
        oversized = CounterMetricFamily(
            "loa_smpp_oversized", "PDUs from the SMSC claiming a command_length above the "
            "maximum PDU size (the connection is closed and bound again)", labels=["link"])
        unknown = CounterMetricFamily(
            "loa_smpp_unknown_commands", "PDUs from the SMSC with a command the ESME does not "
            "serve: requests (answered generic_nack), responses to commands it never sends",
            labels=["link"])
        sums: dict[str, list[float]] = {}
        grants: dict[str, int] = {}
        for link in links:
            grants[link.name] = max(grants.get(link.name, 0), link.config.binds)
            s = sums.setdefault(link.name, [0.0] * 8)
            for session in link.sessions:
                s[0] += session.in_flight
                s[1] += session.is_bound
                s[2] += 1
                s[3] += session.rate.rate
            for session in link.all_sessions:
                stats = session.stats
                s[4] += stats.reconnects
                s[5] += stats.malformed
                s[6] += stats.oversized
                s[7] += stats.unknown_commands
        for name, (flight, up, n, rate, again, bad, huge, odd) in sorted(sums.items()):
            in_flight.add_metric([name], flight)
            bind_up.add_metric([name], up)
            binds.add_metric([name], n)
            granted.add_metric([name], grants[name])
            tps.add_metric([name], rate)
            reconnects.add_metric([name], again)
            malformed.add_metric([name], bad)
            oversized.add_metric([name], huge)
            unknown.add_metric([name], odd)
        quota = GaugeMetricFamily(
            "loa_zalo_remaining_quota", "ZNS messages Zalo still allows today (its last answer)")
        paused = GaugeMetricFamily(
            "loa_zalo_paused", "1 while the Zalo channel is paused (quota, night or a fault)")
        route_paused = GaugeMetricFamily(
            "loa_zalo_route_paused", "1 while a Zalo route is paused for this reason (quota, "
            "night; configuration, balance, unknown: an operator must act)", labels=["reason"])
        known = [a.remaining_quota for a in zalo if a.remaining_quota is not None]
        if known:
            quota.add_metric([], min(known))
        if zalo:
            now = time.time()
            paused.add_metric([], float(any(a.paused_until > now for a in zalo)))
            for reason in ZALO_PAUSE_REASONS:
                route_paused.add_metric([reason], float(any(
                    (a.pause_kind == reason and a.paused_until > now) or a.alert == reason
                    for a in zalo)))
        yield from (in_flight, bind_up, binds, granted, tps, reconnects, malformed, oversized,
                    unknown, quota, paused, route_paused, *_zalo_tokens(zalo))


def _zalo_tokens(zalo: Sequence[_Zalo]) -> Iterator[Metric]:
    """The Zalo token pair's age (absent while unknown) and the renewals that failed."""
    access = GaugeMetricFamily(
        "loa_zalo_access_token_age_seconds", "Seconds since Zalo issued the access token in "
        "use (it lives about 25 h; renewed at 80 % of its life)")
    refresh = GaugeMetricFamily(
        "loa_zalo_refresh_token_age_seconds", "Seconds since Zalo issued the refresh token in "
        "the store (it dies after 3 months; renewed every [zalo] refresh_every_days)")
    failures = CounterMetricFamily(
        "loa_zalo_token_refresh_failures", "Zalo token renewals that failed (scheduled or after "
        "a refused token)")
    failing = GaugeMetricFamily(
        "loa_zalo_token_renewal_failing", "1 while the last scheduled renewal of the Zalo "
        "tokens failed and none has succeeded since (it is tried again with a back-off)")
    issued = [a.tokens.issued.at for a in zalo if a.tokens.issued.at]
    if issued:
        now = time.time()
        access.add_metric([], now - min(issued))
        refresh.add_metric([], now - min(issued))
    if zalo:
        failures.add_metric([], sum(a.tokens.failures for a in zalo))
        failing.add_metric([], float(any(a.schedule.failing for a in zalo)))
    yield from (access, refresh, failures, failing)


def _facebook_pages(facebook: Sequence[_Facebook]) -> Metric:
    """1 for each Facebook page stopped for its token or a permission, by reason."""
    stopped = GaugeMetricFamily(
        "loa_facebook_page_stopped", "1 while a Facebook page is stopped for a fault an operator "
        "must fix (token: its access token expired or is invalid; permission: a permission is "
        "missing); its posts wait, they are not lost", labels=["page", "reason"])
    pages: dict[tuple[str, str], float] = {}
    for adapter in facebook:
        for page, reason in adapter.stopped.items():
            pages[(page, reason)] = 1.0
    for (page, reason), value in sorted(pages.items()):
        stopped.add_metric([page, reason], value)
    return stopped


CHANNEL_GAUGES = ChannelGauges()
REGISTRY.register(CHANNEL_GAUGES)


# -- the loudspeaker channel ------------------------------------------------------------------
# Set by the adapter as things happen (never per bulletin sent): ``system`` is a configured
# system id of [loudspeaker] systems, ``reason`` a fixed word.
#: Why a loudspeaker system stops (an operator must act), and the other alerts of the channel.
LOUDSPEAKER_STOP_REASONS = ("token", "unknown")
LOUDSPEAKER_ALERT_REASONS = (*LOUDSPEAKER_STOP_REASONS, "speech")
LOUDSPEAKER_STOPPED = Gauge(
    "loa_loudspeaker_system_stopped", "1 while a loudspeaker system is stopped for a fault an "
    "operator must fix (token: it refuses Loa's token, 401/403; unknown: answers Loa does not "
    "know); its bulletins wait, they are not lost", ["system", "reason"])
LOUDSPEAKER_ALERTS = Counter(
    "loa_loudspeaker_alerts", "Alerts of the loudspeaker channel by reason (token, unknown: a "
    "system stopped; speech: the text-to-speech program cannot be run)", ["reason"])
LOUDSPEAKER_SPEECH_SECONDS = Histogram(
    "loa_loudspeaker_speech_seconds", "Seconds to render one bulletin to speech (espeak-ng)",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
