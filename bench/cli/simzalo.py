"""``loa sim zalo``: the Zalo ZNS / OA API simulator until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
from typing import Any

from adapters.zalo.codes import CODES
from adapters.zalo.simulator import ZaloSim, ZaloSimConfig
from bench.cli import options, simrun
from dispatcher.domain.errors import InputError


def register(group: Any) -> None:
    zalo = group.add_parser(
        "zalo", help="the Zalo ZNS / OA API (tokens, quota, errors, signed delivery webhooks)",
        description="Run a Zalo API simulator until SIGINT or SIGTERM: ZNS template messages "
                    "(POST /message/template), OA messages (POST /v3.0/oa/message/cs, "
                    "/transaction, /promotion) and "
                    "OAuth v4 token renewal (POST /v4/oa/access_token), with quota, injected "
                    "errors and signed user_received_message webhooks. Prints one line when it "
                    "listens and its counters when it stops.")
    options.listen(zalo, 8700)
    zalo.add_argument("--access-token", action="append", metavar="TOKEN",
                      help="an access token valid at start (repeatable; default "
                           "sim-access-token)")
    zalo.add_argument("--refresh-token", action="append", metavar="TOKEN",
                      help="a refresh token that works once (repeatable; default "
                           "sim-refresh-token)")
    zalo.add_argument("--token-ttl", type=float, default=0.0, metavar="S",
                      help="access tokens expire S seconds after they are issued (default 0: "
                           "never)")
    zalo.add_argument("--app-id", default="sim-app", help="the app id (default sim-app)")
    zalo.add_argument("--secret-key", default="sim-app-secret",
                      help="the app's secret key, for OAuth (default sim-app-secret)")
    zalo.add_argument("--oa-secret", default="sim-oa-secret",
                      help="the OA secret key that signs webhooks (default sim-oa-secret)")
    zalo.add_argument("--template", action="append", metavar="ID[:PARAM[=MAX],...]",
                      help="an accepted ZNS template, its parameters and their length limits "
                           "(-1122 one missing, -1121 one longer; repeatable; default "
                           "loa-alert:content)")
    zalo.add_argument("--unapproved", action="append", metavar="ID",
                      help="a template Zalo has not approved yet: answered -131 (repeatable)")
    zalo.add_argument("--daily-quota", type=int, default=0, metavar="N",
                      help="messages accepted per day before -144, the OA's daily limit "
                           "(default 0: unlimited)")
    zalo.add_argument("--balance", type=int, default=0, metavar="N",
                      help="ZNS messages the account pays for, then -115, balance too low "
                           "(default 0: unlimited)")
    zalo.add_argument("--night-template", action="append", metavar="ID",
                      help="a template that may not go 22:00-06:00 Vietnam time: -133 then "
                           "(repeatable)")
    zalo.add_argument("--not-zalo-share", type=float, default=0.0, metavar="R",
                      help="share of phones that are not Zalo accounts: -118 (default 0)")
    zalo.add_argument("--error-ratio", type=float, default=0.0, metavar="R",
                      help="share of messages answered --error-code (default 0; 1 with -115, "
                           "-131 or -133: a balance, template or night fault on every message)")
    zalo.add_argument("--error-code", default="-100", metavar="C",
                      help="the code of injected errors, any code of Zalo's table "
                           "(default -100)")
    zalo.add_argument("--refusal", action="append", metavar="CODE=SHARE",
                      help="answer CODE, any code of Zalo's table, to a fixed share of "
                           "phones, by hash: --refusal=-141=0.02 (refused ZNS from this OA); "
                           "with '=' after --refusal, as the code is negative (repeatable)")
    zalo.add_argument("--error-phone", action="append", metavar="PHONE=CODE",
                      help="always answer CODE to PHONE (repeatable)")
    zalo.add_argument("--oa-not-follower-share", type=float, default=0.0, metavar="R",
                      help="share of OA user ids that do not follow the OA: -213 to every OA "
                           "message type (default 0)")
    zalo.add_argument("--oa-inactive-share", type=float, default=0.0, metavar="R",
                      help="share of followers that did not interact with the OA in 7 days: "
                           "-230 to cs messages (default 0)")
    zalo.add_argument("--oa-night", choices=("off", "on", "clock"), default="off",
                      help="-234 to the OA types of --oa-night-type: never (off, default), "
                           "always (on), or 22:00-06:00 in Vietnam (clock)")
    zalo.add_argument("--oa-night-type", action="append", choices=("cs", "transaction",
                                                                   "promotion"),
                      help="an OA message type the night rule covers (repeatable; default "
                           "promotion)")
    zalo.add_argument("--http-429-ratio", type=float, default=0.0, metavar="R",
                      help="share of requests answered HTTP 429 (default 0)")
    options.http_5xx(zalo, 503)
    zalo.add_argument("--delay", type=float, default=0.0, metavar="S",
                      help="seconds before every message answer (default 0)")
    zalo.add_argument("--webhook-url", metavar="URL",
                      help="post signed user_received_message events there (default: none)")
    zalo.add_argument("--webhook-delay", type=float, default=0.0, metavar="S",
                      help="seconds from acceptance to the webhook (default 0)")
    zalo.add_argument("--webhook-retry", default="0.2,0.2", metavar="S,S,...",
                      help="seconds before each new try of a webhook not answered 200, the same "
                           "event again (default 0.2,0.2; Zalo's: 30,300,900,1800,3600)")
    zalo.add_argument("--webhook-layout", choices=("nested", "flat"), default="nested",
                      help="msg_id under \"message\" (nested, default) or at the top level")
    options.seed(zalo)
    zalo.add_argument("--mark", default="", metavar="TEXT",
                      help="count messages whose text contains TEXT apart: marked, "
                           "marked_recipients, first_marked_at, ... (loa bench --urgent-at)")
    options.ending(zalo, cmd_zalo)


def _templates(items: list[str] | None) -> tuple[dict[str, list[str]], dict[str, dict[str, int]]]:
    """The templates and their parameters' length limits (``ID:title=65,area=200``)."""
    if not items:
        return {"loa-alert": ["content"]}, {}
    templates: dict[str, list[str]] = {}
    limits: dict[str, dict[str, int]] = {}
    for item in items:
        tid, _, params = item.partition(":")
        tid = tid.strip()
        if not tid:
            raise InputError(f"--template: {item!r} has no template id")
        names = templates[tid] = []
        for param in filter(None, (p.strip() for p in params.split(","))):
            name, sep, limit = param.partition("=")
            names.append(name.strip())
            if sep:
                if not limit.strip().isdigit() or int(limit) < 1:
                    raise InputError(f"--template: {param!r}: the limit must be a number of "
                                     "characters, e.g. area=200")
                limits.setdefault(tid, {})[name.strip()] = int(limit)
    return templates, limits


def _code(text: str, option: str) -> int:
    """A code of Zalo's table (adapters/zalo/codes.py), or a one-line error naming ``option``."""
    try:
        code = int(text)
    except ValueError:
        raise InputError(f"{option}: {text!r} is not a Zalo error code (-141)") from None
    if code not in CODES or code == 0:
        raise InputError(f"{option}: {code} is not a code of Zalo's table "
                         "(docs/channels.md)")
    return code


def _error_phones(items: list[str] | None) -> dict[str, int]:
    phones: dict[str, int] = {}
    for item in items or []:
        phone, sep, code = item.partition("=")
        if not sep or not phone.strip():
            raise InputError(f"--error-phone: {item!r} is not PHONE=CODE")
        phones[phone.strip()] = _code(code.strip(), "--error-phone")
    return phones


def _refusals(items: list[str] | None) -> dict[int, float]:
    refusals: dict[int, float] = {}
    for item in items or []:
        code, sep, share = item.partition("=")
        try:
            value = float(share)
        except ValueError:
            raise InputError(f"--refusal: {item!r} is not CODE=SHARE (-141=0.02)") from None
        if not sep or not 0 < value <= 1:
            raise InputError(f"--refusal: {item!r}: SHARE must be above 0 and at most 1")
        refusals[_code(code.strip(), "--refusal")] = value
    if sum(refusals.values()) > 1:
        raise InputError("--refusal: the shares add up to more than 1")
    return refusals


def _schedule(text: str) -> tuple[float, ...]:
    try:
        delays = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise InputError(f"--webhook-retry: {text!r} is not seconds separated by commas "
                         "(30,300,900)") from None
    if any(not delay >= 0 for delay in delays):
        raise InputError(f"--webhook-retry: {text!r}: each delay must be 0 or more seconds")
    return delays


def _config(args: argparse.Namespace) -> ZaloSimConfig:
    options.check_port(args.port)
    templates, limits = _templates(args.template)
    return options.config(
        ZaloSimConfig,
        access_tokens=frozenset(args.access_token or ["sim-access-token"]),
        refresh_tokens=frozenset(args.refresh_token or ["sim-refresh-token"]),
        token_ttl=args.token_ttl, app_id=args.app_id, secret_key=args.secret_key,
        oa_secret=args.oa_secret, templates=templates, limits=limits,
        unapproved=frozenset(args.unapproved or ()),
        daily_quota=args.daily_quota, balance=args.balance,
        night_templates=frozenset(args.night_template or ()),
        not_zalo_share=args.not_zalo_share,
        error_ratio=args.error_ratio, error_code=_code(args.error_code, "--error-code"),
        error_phones=_error_phones(args.error_phone), refusals=_refusals(args.refusal),
        http_429_ratio=args.http_429_ratio,
        http_5xx_ratio=args.http_5xx_ratio, delay=args.delay,
        webhook_url=args.webhook_url, webhook_delay=args.webhook_delay,
        webhook_retry_schedule=_schedule(args.webhook_retry),
        webhook_layout=args.webhook_layout, seed=args.seed, mark=args.mark,
        oa_not_follower_share=args.oa_not_follower_share,
        oa_inactive_share=args.oa_inactive_share, oa_night=args.oa_night,
        oa_night_types=frozenset(args.oa_night_type or ["promotion"]))


def cmd_zalo(args: argparse.Namespace) -> int:
    config = _config(args)
    return simrun.run(args, "Zalo simulator", lambda: ZaloSim(config),
                      lambda sim: f"Zalo simulator listening on {sim.url}", ZaloSim.snapshot)
