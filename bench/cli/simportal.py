"""``loa sim portal``: the portal simulator (WordPress sites, signed JSON CMSs) until SIGINT or
SIGTERM."""

from __future__ import annotations

import argparse
from typing import Any

from adapters.portal.simulator import (
    DEFAULT_SIGNED,
    DEFAULT_WORDPRESS,
    PortalSim,
    PortalSimConfig,
    WpAccount,
)
from bench.cli import options, simrun
from dispatcher.domain.errors import InputError
from dispatcher.domain.outlet import ID


def register(group: Any) -> None:
    account = WpAccount()
    defaults = PortalSimConfig()
    portal = group.add_parser(
        "portal", help="portals: WordPress sites and signed JSON CMSs (auth, 429, faults)",
        description="Run a portal simulator until SIGINT or SIGTERM: WordPress sites (GET and "
                    "POST /NAME/wp-json/wp/v2/posts with application passwords) and signed "
                    "JSON CMSs (POST /NAME/api/notices, signature and Idempotency-Key checked), "
                    "with throttling, errors, slow and lost answers. Prints one line per site "
                    "when it listens and its counters when it stops.")
    options.listen(portal, 8720)
    portal.add_argument("--wordpress", action="append", metavar="NAME=USER:PASSWORD",
                        help="a WordPress site and its user's application password "
                             f"(repeatable; default {DEFAULT_WORDPRESS}={account.user}:"
                             f"'{account.password}')")
    portal.add_argument("--signed", action="append", metavar="NAME=SECRET",
                        help="a signed JSON CMS and its secret (repeatable; default "
                             f"{DEFAULT_SIGNED}={defaults.signed[DEFAULT_SIGNED]})")
    portal.add_argument("--category", action="append", type=int, metavar="ID",
                        help="a category id the WordPress sites have (repeatable; default "
                             f"{', '.join(map(str, sorted(account.categories)))})")
    portal.add_argument("--revoked", action="append", metavar="NAME",
                        help="a site whose credentials are refused: 401 incorrect_password, or "
                             "401 to every signature (repeatable)")
    options.throttle(portal, "answer the first N requests 429", 2)
    portal.add_argument("--error-count", type=int, default=0, metavar="N",
                        help="answer the next N requests --error-status (default 0)")
    portal.add_argument("--error-status", type=int, default=500, metavar="STATUS",
                        help="the HTTP status of those answers (default 500)")
    options.answers(portal, "--hang-after-publish", "keep each post",
                    "an answer lost after the publication")
    options.ending(portal, cmd_portal)


def _pairs(items: list[str] | None, option: str, what: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not value.strip() or not ID.match(name):
            raise InputError(f"{option}: {item!r} is not {what} (NAME: lower-case letters, "
                             "digits, '.', '_' or '-')")
        found[name] = value.strip()
    return found


def _config(args: argparse.Namespace) -> PortalSimConfig:
    options.check_port(args.port)
    options.at_least_zero((("--throttle-count", args.throttle_count),
                           ("--retry-after", args.retry_after),
                           ("--error-count", args.error_count), ("--delay", args.delay),
                           ("--hang-after-publish", args.hang_after_publish)))
    if not 400 <= args.error_status <= 599:
        raise InputError(f"--error-status {args.error_status} is not an HTTP error status "
                         "(400-599)")
    categories = frozenset(args.category) if args.category else WpAccount().categories
    sites: dict[str, WpAccount] = {}
    for name, credentials in _pairs(args.wordpress, "--wordpress",
                                    "NAME=USER:PASSWORD").items():
        user, sep, password = credentials.partition(":")
        if not sep or not user or not password:
            raise InputError(f"--wordpress {name}: {credentials!r} is not USER:PASSWORD")
        sites[name] = WpAccount(user, password, categories)
    signed = _pairs(args.signed, "--signed", "NAME=SECRET")
    if not args.wordpress and not args.signed:
        sites = {DEFAULT_WORDPRESS: WpAccount(categories=categories)}
        signed = dict(PortalSimConfig().signed)
    if set(sites) & set(signed):
        raise InputError(f"{', '.join(sorted(set(sites) & set(signed)))}: a name is either a "
                         "WordPress site or a signed JSON CMS")
    unknown = set(args.revoked or ()) - set(sites) - set(signed)
    if unknown:
        raise InputError(f"--revoked {', '.join(sorted(unknown))}: no such site")
    return PortalSimConfig(wordpress=sites, signed=signed)


def cmd_portal(args: argparse.Namespace) -> int:
    config = _config(args)

    def make() -> PortalSim:
        sim = PortalSim(config)
        sim.revoked = set(args.revoked or ())
        sim.throttle_count, sim.retry_after = args.throttle_count, args.retry_after
        sim.error_count, sim.error_status = args.error_count, args.error_status
        sim.delay, sim.hang_after_publish = args.delay, args.hang_after_publish
        return sim

    def listening(sim: PortalSim) -> str:
        lines = [f"Portal simulator listening on {sim.url}"]
        lines += [f"  wordpress {name}: url = {sim.site_url(name)}" for name in config.wordpress]
        lines += [f"  signed_json {name}: url = {sim.endpoint(name)}" for name in config.signed]
        return "\n".join(lines)

    return simrun.run(args, "Portal simulator", make, listening, lambda sim: sim.stats)
