"""``loa sim facebook``: the Graph API simulator (page posts) until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
from typing import Any

import msgspec

from adapters.facebook.codes import lookup
from adapters.facebook.simulator import DEFAULT_PAGES, FacebookSim, FacebookSimConfig
from bench.cli.simrun import until_stopped
from dispatcher.domain.errors import InputError
from dispatcher.service.cli import logopts
from dispatcher.service.cli.output import print_json
from dispatcher.service.cli.runtime import run_async


def register(group: Any) -> None:
    page, token = next(iter(DEFAULT_PAGES.items()))
    fb = group.add_parser(
        "facebook", help="the Graph API for page posts (tokens, rate limits, errors)",
        description="Run a Graph API simulator until SIGINT or SIGTERM: page posts (POST "
                    "/{version}/{page-id}/feed) and reads of a page's posts (GET "
                    "/{version}/{page-id}/feed), with page access tokens, rate limits, "
                    "injected errors and lost answers. Prints one line when it listens and its "
                    "counters when it stops.")
    fb.add_argument("--host", default="127.0.0.1", help="address to listen on (default "
                                                        "127.0.0.1)")
    fb.add_argument("--port", type=int, default=8710, help="port (default 8710; 0: any free)")
    fb.add_argument("--page", action="append", metavar="PAGE_ID=TOKEN",
                    help=f"a page and its access token (repeatable; default {page}={token})")
    fb.add_argument("--api-version", default="v21.0", help="the Graph API version in the paths "
                                                           "(default v21.0)")
    fb.add_argument("--expired", action="append", metavar="TOKEN",
                    help="a token answered 190/463, session expired (repeatable)")
    fb.add_argument("--error-page", action="append", metavar="PAGE_ID=CODE",
                    help="answer CODE to every request of the page: 10 permission, 190 token, "
                         "368 blocked ... (repeatable)")
    fb.add_argument("--throttle-code", type=int, default=0, metavar="CODE",
                    help="a rate-limit code (4, 17, 32, 613, 80001) answered to the next "
                         "--throttle-count requests (default: none)")
    fb.add_argument("--throttle-count", type=int, default=1, metavar="N",
                    help="requests answered --throttle-code (default 1)")
    fb.add_argument("--error-code", type=int, default=0, metavar="CODE",
                    help="the code answered to --error-ratio of the posts (default: none)")
    fb.add_argument("--error-ratio", type=float, default=0.0, metavar="R",
                    help="share of posts answered --error-code (default 0)")
    fb.add_argument("--http-5xx-ratio", type=float, default=0.0, metavar="R",
                    help="share of requests answered HTTP 500 (default 0)")
    fb.add_argument("--delay", type=float, default=0.0, metavar="S",
                    help="seconds before every answer (default 0)")
    fb.add_argument("--hang-after-publish", type=float, default=0.0, metavar="S",
                    help="publish each post, then hold its answer S seconds (longer than the "
                         "client waits: an answer lost after the publication; default 0)")
    fb.add_argument("--no-duplicates", action="store_true",
                    help="accept a post identical to the page's last one (default: 506)")
    fb.add_argument("--seed", type=int, default=0, help="seed of the injected errors")
    fb.add_argument("--json", action="store_true", help="end with the counters as one JSON "
                                                        "line on stdout")
    logopts.add_options(fb)
    fb.set_defaults(func=cmd_facebook)


def _pairs(items: list[str] | None, option: str, what: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise InputError(f"{option}: {item!r} is not {what}")
        found[key.strip()] = value.strip()
    return found


def _code(value: int, option: str) -> int:
    if value and lookup(value) is None:
        raise InputError(f"{option}: {value} is not a code of the Graph API table "
                         "(docs/channels.md)")
    return value


def _config(args: argparse.Namespace) -> FacebookSimConfig:
    if not 0 <= args.port <= 65535:
        raise InputError(f"--port {args.port} is not a port number")
    pages = _pairs(args.page, "--page", "PAGE_ID=TOKEN") or dict(DEFAULT_PAGES)
    errors: dict[str, int] = {}
    for page, code in _pairs(args.error_page, "--error-page", "PAGE_ID=CODE").items():
        if not code.isdigit():
            raise InputError(f"--error-page: {code!r} is not a Graph API code (190)")
        errors[page] = _code(int(code), "--error-page")
    try:
        return FacebookSimConfig(
            pages=pages, api_version=args.api_version, expired=frozenset(args.expired or ()),
            error_pages=errors, throttle_code=_code(args.throttle_code, "--throttle-code"),
            throttle_count=args.throttle_count if args.throttle_code else 0,
            error_code=_code(args.error_code, "--error-code"), error_ratio=args.error_ratio,
            http_5xx_ratio=args.http_5xx_ratio, delay=args.delay,
            hang_after_publish=args.hang_after_publish, duplicates=not args.no_duplicates,
            seed=args.seed)
    except ValueError as exc:
        raise InputError(str(exc)) from None


async def serve_facebook(config: FacebookSimConfig, host: str, port: int) -> FacebookSim:
    """Run the simulator until SIGINT or SIGTERM; the simulator, for its counters."""
    sim = FacebookSim(config)
    await until_stopped(sim.start(host, port), sim.stop, host, port,
                        lambda: f"Facebook Graph API simulator listening on {sim.url}")
    return sim


def cmd_facebook(args: argparse.Namespace) -> int:
    sim = run_async(serve_facebook(_config(args), args.host, args.port))
    stats = sim.snapshot()
    if args.json:
        print_json(stats)
    else:
        counters = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in
                             msgspec.structs.asdict(stats).items() if isinstance(v, int))
        print(f"Facebook simulator stopped: {counters}", flush=True)
    return 0
