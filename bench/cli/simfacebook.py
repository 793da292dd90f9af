"""``loa sim facebook``: the Graph API simulator (page posts) until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
from typing import Any

from adapters.facebook.codes import lookup
from adapters.facebook.simulator import DEFAULT_PAGES, FacebookSim, FacebookSimConfig
from bench.cli import options, simrun
from dispatcher.domain.errors import InputError


def register(group: Any) -> None:
    page, token = next(iter(DEFAULT_PAGES.items()))
    fb = group.add_parser(
        "facebook", help="the Graph API for page posts (tokens, rate limits, errors)",
        description="Run a Graph API simulator until SIGINT or SIGTERM: page posts (POST "
                    "/{version}/{page-id}/feed) and reads of a page's posts (GET "
                    "/{version}/{page-id}/feed), with page access tokens, rate limits, "
                    "injected errors and lost answers. Prints one line when it listens and its "
                    "counters when it stops.")
    options.listen(fb, 8710)
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
    options.http_5xx(fb)
    options.answers(fb, "--hang-after-publish", "publish each post",
                    "an answer lost after the publication")
    fb.add_argument("--no-duplicates", action="store_true",
                    help="accept a post identical to the page's last one (default: 506)")
    options.seed(fb)
    options.ending(fb, cmd_facebook)


def _code(value: int, option: str) -> int:
    if value and lookup(value) is None:
        raise InputError(f"{option}: {value} is not a code of the Graph API table "
                         "(docs/channels.md)")
    return value


def _config(args: argparse.Namespace) -> FacebookSimConfig:
    options.check_port(args.port)
    pages = options.pairs(args.page, "--page", "PAGE_ID=TOKEN") or dict(DEFAULT_PAGES)
    errors: dict[str, int] = {}
    for page, code in options.pairs(args.error_page, "--error-page", "PAGE_ID=CODE").items():
        if not code.isdigit():
            raise InputError(f"--error-page: {code!r} is not a Graph API code (190)")
        errors[page] = _code(int(code), "--error-page")
    return options.config(
        FacebookSimConfig,
        pages=pages, api_version=args.api_version, expired=frozenset(args.expired or ()),
        error_pages=errors, throttle_code=_code(args.throttle_code, "--throttle-code"),
        throttle_count=args.throttle_count if args.throttle_code else 0,
        error_code=_code(args.error_code, "--error-code"), error_ratio=args.error_ratio,
        http_5xx_ratio=args.http_5xx_ratio, delay=args.delay,
        hang_after_publish=args.hang_after_publish, duplicates=not args.no_duplicates,
        seed=args.seed)


def cmd_facebook(args: argparse.Namespace) -> int:
    config = _config(args)
    return simrun.run(args, "Facebook simulator", lambda: FacebookSim(config),
                      lambda sim: f"Facebook Graph API simulator listening on {sim.url}",
                      FacebookSim.snapshot)
