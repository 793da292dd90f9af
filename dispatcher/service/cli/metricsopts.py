"""``--metrics-host`` and ``--metrics-port``: where a process without the API (``loa worker``,
``loa demo``) serves its Prometheus ``/metrics``.

The host is 127.0.0.1 unless told otherwise: the metrics carry no secret, but they say what the
province is being sent and how fast, and the exporter has no authentication, so listening on
every interface is a decision for the deployment (``--metrics-host 0.0.0.0``, or the address of
the interface Prometheus reaches, behind the firewall), never a default.
"""

from __future__ import annotations

import argparse

from dispatcher.domain.errors import InputError
from dispatcher.engine import metrics

DEFAULT_HOST = "127.0.0.1"


def add_options(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--metrics-port", type=int, metavar="P",
                        help=f"serve {what} Prometheus /metrics on port P (0: a free port)")
    parser.add_argument("--metrics-host", default=DEFAULT_HOST, metavar="ADDR",
                        help="the address /metrics listens on, with --metrics-port (default "
                             f"{DEFAULT_HOST}: this host only; 0.0.0.0 for a remote "
                             "Prometheus, docs/operations.md)")


def serve_metrics(args: argparse.Namespace) -> metrics.MetricsServer | None:
    """The exporter the options ask for (None without ``--metrics-port``); a host or port that
    cannot be served is one line naming the option."""
    if args.metrics_port is None:
        return None
    host, port = args.metrics_host, args.metrics_port
    try:
        return metrics.serve(port, host)
    except OSError as exc:  # includes an unknown host name (socket.gaierror)
        raise InputError(f"--metrics-host: cannot serve /metrics on {host}:{port}: "
                         f"{exc.strerror or exc}") from None
