"""The options several lab commands share, and their checks: where a simulator listens, the
delays, throttling and errors it injects, and how a command ends (``--json`` and the log
options)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from typing import Any, ParamSpec, TypeVar

from dispatcher.domain.errors import InputError
from dispatcher.service.cli import logopts

COUNTERS = "end with the counters as one JSON line on stdout"
RESULT = "end with one JSON line on stdout"

P = ParamSpec("P")
T = TypeVar("T")


def listen(parser: argparse.ArgumentParser, port: int) -> None:
    """``--host`` and ``--port``: where a simulator listens (``port`` by default)."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default "
                                                            "127.0.0.1)")
    parser.add_argument("--port", type=int, default=port, help=f"port (default {port}; 0: any "
                                                               "free)")


def ending(parser: argparse.ArgumentParser, func: Callable[[argparse.Namespace], int], *,
           json: str = COUNTERS, default_level: str = "info") -> None:
    """``--json`` (what it prints: ``json``), the log options, and the command's ``func``."""
    parser.add_argument("--json", action="store_true", help=json)
    logopts.add_options(parser, default_level=default_level)
    parser.set_defaults(func=func)


def lab_ending(parser: argparse.ArgumentParser, func: Callable[[argparse.Namespace], int]) -> None:
    """The ending of a command that measures Loa: one JSON line of its result, logs at warning."""
    ending(parser, func, json=RESULT, default_level="warning")


def answers(parser: argparse.ArgumentParser, hang: str, taken: str, lost: str) -> None:
    """``--delay`` before every answer, and ``hang`` (``--hang-after-...``): the request is
    ``taken`` (\"keep each post\"), then its answer held so long that it is ``lost``."""
    parser.add_argument("--delay", type=float, default=0.0, metavar="S",
                        help="seconds before every answer (default 0)")
    parser.add_argument(hang, type=float, default=0.0, metavar="S",
                        help=f"{taken}, then hold its answer S seconds (longer than the client "
                             f"waits: {lost}; default 0)")


def throttle(parser: argparse.ArgumentParser, count: str, retry_after: int,
             retry: str = "the Retry-After of those answers, seconds") -> None:
    """``--throttle-count`` (which requests are answered 429: ``count``, \"the first N
    requests\") and ``--retry-after`` (``retry_after`` seconds by default)."""
    parser.add_argument("--throttle-count", type=int, default=0, metavar="N",
                        help=f"{count} (default 0)")
    parser.add_argument("--retry-after", type=int, default=retry_after, metavar="S",
                        help=f"{retry} (default {retry_after})")


def http_5xx(parser: argparse.ArgumentParser, status: int = 500) -> None:
    """``--http-5xx-ratio``: the share of requests answered HTTP ``status``."""
    parser.add_argument("--http-5xx-ratio", type=float, default=0.0, metavar="R",
                        help=f"share of requests answered HTTP {status} (default 0)")


def seed(parser: argparse.ArgumentParser, what: str = "the injected errors") -> None:
    """``--seed`` of ``what`` is drawn at random."""
    parser.add_argument("--seed", type=int, default=0, help=f"seed of {what}")


def check_port(port: int) -> None:
    if not 0 <= port <= 65535:
        raise InputError(f"--port {port} is not a port number")


def at_least_zero(values: Iterable[tuple[str, Any]]) -> None:
    """Each ``(option, value)`` is 0 or more, or a one-line error naming the first that is not."""
    for option, value in values:
        if value < 0:
            raise InputError(f"{option}: must be 0 or more")


def pairs(items: list[str] | None, option: str, what: str) -> dict[str, str]:
    """The ``KEY=VALUE`` items of a repeatable ``option`` (``what``: \"ID=TOKEN\"), in order."""
    found: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise InputError(f"{option}: {item!r} is not {what}")
        found[key.strip()] = value.strip()
    return found


def config(make: Callable[P, T], *args: P.args, **fields: P.kwargs) -> T:
    """``make(*args, **fields)``: a simulator's configuration, its refusal (a ValueError) a
    one-line error."""
    try:
        return make(*args, **fields)
    except ValueError as exc:
        raise InputError(str(exc)) from None
