"""Where a process without the API serves its metrics: ``--metrics-host`` and ``--metrics-port``
on ``loa worker`` and ``loa demo``."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from dispatcher.domain.errors import InputError
from dispatcher.service.cli import build_parser
from dispatcher.service.cli.metricsopts import serve_metrics


def fetch(host: str, port: int) -> bytes:
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as answer:
        body: bytes = answer.read()
    return body


@pytest.mark.parametrize("command", [["worker"], ["demo"]])
def test_metrics_listen_on_the_host_given(command: list[str]) -> None:
    # 127.0.0.2 is loopback too: an address other than the default, reachable here
    args = build_parser().parse_args([*command, "--metrics-host", "127.0.0.2",
                                      "--metrics-port", "0"])
    server = serve_metrics(args)
    assert server is not None
    try:
        assert b"loa_store_up" in fetch("127.0.0.2", server.port)
        with pytest.raises(urllib.error.URLError):
            fetch("127.0.0.1", server.port)
    finally:
        server.close()


def test_the_default_host_is_loopback_and_no_port_serves_nothing() -> None:
    args = build_parser().parse_args(["worker", "--metrics-port", "0"])
    assert args.metrics_host == "127.0.0.1"
    server = serve_metrics(args)
    assert server is not None
    try:
        assert b"loa_store_up" in fetch("127.0.0.1", server.port)
    finally:
        server.close()
    assert serve_metrics(build_parser().parse_args(["worker"])) is None


def test_an_address_that_cannot_be_served_is_one_line_naming_the_option() -> None:
    args = build_parser().parse_args(["worker", "--metrics-host", "192.0.2.1",
                                      "--metrics-port", "0"])
    with pytest.raises(InputError, match=r"^--metrics-host: cannot serve /metrics on "
                                         r"192\.0\.2\.1:0: .+"):
        serve_metrics(args)
