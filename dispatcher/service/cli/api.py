"""``loa api``, ``loa token create|list|revoke`` and ``loa config init``: the HTTP API and its
setup."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dispatcher.domain.config import DEFAULT_CONFIG_DIR
from dispatcher.domain.errors import ConfigError, InputError
from dispatcher.engine import logs
from dispatcher.service import channels, failclosed
from dispatcher.service.auth import (
    DEFAULT_LIFETIME,
    add_token,
    check_user,
    parse_expires,
    parse_role,
)
from dispatcher.service.cli import logopts
from dispatcher.service.cli.runtime import run_async, until_signal
from dispatcher.service.tokenfile import read_tokens, revoke_tokens

if TYPE_CHECKING:
    from adapters.zalo.quota import ZaloQuotaReader
    from dispatcher.service.settings import Settings
    from dispatcher.store.base import Store

EXAMPLE = DEFAULT_CONFIG_DIR / "loa.example.toml"
log = logging.getLogger(__name__)


def _serve_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, metavar="FILE", required=True,
                        help="deployment file with an [api] table (`loa config init FILE`)")
    parser.add_argument("--port", type=int, metavar="P", help="port (default: [api] port)")
    parser.add_argument("--host", metavar="ADDR",
                        help="address to listen on (default: [api] host, 127.0.0.1)")
    parser.add_argument("--redis", metavar="URL",
                        help="Redis URL (default: [redis] url or LOA_REDIS_URL; none: this "
                             "process's memory)")
    parser.add_argument("--plan", type=Path, metavar="FILE",
                        help="plan file (default: shipped)")
    logopts.add_options(parser)


def register(sub: Any) -> None:
    run = sub.add_parser(
        "run", help="serve the API and run the engine in one process until SIGTERM",
        description="One Loa process: the HTTP API (as `loa api`) and the engine (as `loa "
                    "worker`: reconciler, fan-out, workers with the configured channels), "
                    "on uvloop, until SIGTERM or Ctrl-C; Zalo's delivery webhooks served by "
                    "the API count as deliveries.")
    _serve_options(run)
    run.set_defaults(func=cmd_run)

    api = sub.add_parser(
        "api", help="serve the HTTP API until SIGTERM",
        description="Serve the HTTP API (level, campaigns, preview, Zalo webhook, /metrics, "
                    "/healthz, /readyz; OpenAPI at /schema/openapi.json) on HOST:PORT "
                    "until SIGTERM or Ctrl-C; with [api] webhook_port, the Zalo webhook is "
                    "served there alone and not on PORT. Tokens come from the [[api.tokens]] "
                    "tables of the config file (`loa token create`), read again within [api] "
                    "token_reload_seconds when the file changes (`loa token revoke`).")
    _serve_options(api)
    api.set_defaults(func=cmd_api)

    token = sub.add_parser("token", help="API bearer tokens",
                           description="Bearer tokens of the HTTP API.")
    tgroup = token.add_subparsers(dest="token_command", metavar="COMMAND", required=True)
    create = tgroup.add_parser(
        "create", help="create a token; its hash goes into the config file",
        description="Create a token for USER with ROLE (viewer, operator, approver, admin), "
                    "append its SHA-256 and its expiry to FILE as an [[api.tokens]] table and "
                    "print the token as the last line of stdout. It is shown only this once.")
    create.add_argument("--config", type=Path, metavar="FILE", required=True)
    create.add_argument("--user", required=True, metavar="U")
    create.add_argument("--role", required=True, metavar="R",
                        help="viewer, operator, approver or admin")
    create.add_argument("--expires", metavar="WHEN",
                        help=f"days (30d) or an ISO date (2027-03-01, midnight UTC) or date and "
                             f"time; default {DEFAULT_LIFETIME.days}d")
    create.set_defaults(func=cmd_token_create)
    listing = tgroup.add_parser(
        "list", help="the tokens of the config file (never the tokens themselves)",
        description="One line per [[api.tokens]] table of FILE: id (the first hex digits of "
                    "its hash), user, role, created, expires (and whether it has expired).")
    listing.add_argument("--config", type=Path, metavar="FILE", required=True)
    listing.set_defaults(func=cmd_token_list)
    revoke = tgroup.add_parser(
        "revoke", help="remove a user's tokens (or one token) from the config file",
        description="Remove from FILE the [[api.tokens]] tables of every token of USER, or of "
                    "the one token with id ID (`loa token list`). A running `loa api`/`loa "
                    "run` refuses them within [api] token_reload_seconds, without a restart.")
    revoke.add_argument("--config", type=Path, metavar="FILE", required=True)
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("--user", metavar="U")
    which.add_argument("--id", metavar="ID", help="at least 4 hex digits of the token's id")
    revoke.set_defaults(func=cmd_token_revoke)

    config = sub.add_parser("config", help="the deployment configuration file",
                            description="The deployment configuration (TOML).")
    cgroup = config.add_subparsers(dest="config_command", metavar="COMMAND", required=True)
    init = cgroup.add_parser("init", help="write a complete, commented default config",
                             description="Write a complete deployment file with every setting "
                                         "at its default and commented examples.")
    init.add_argument("file", type=Path, metavar="FILE")
    init.add_argument("--force", action="store_true", help="overwrite an existing FILE")
    init.set_defaults(func=cmd_config_init)


def cmd_config_init(args: argparse.Namespace) -> int:
    path: Path = args.file
    if path.exists() and not args.force:
        raise InputError(f"{path} exists; give --force to overwrite it")
    try:
        example = EXAMPLE.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the shipped example: {exc.strerror}",
                          source=str(EXAMPLE)) from None
    try:
        path.write_text(example, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write: {exc.strerror}", source=str(path)) from None
    print(f"wrote {path}; create a token with `loa token create --config {path} --user U "
          f"--role R`")
    return 0


def cmd_token_create(args: argparse.Namespace) -> int:
    user, role = check_user(args.user), parse_role(args.role)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    expires = parse_expires(args.expires, now) if args.expires is not None else None
    token = add_token(args.config, user, role, now=now, expires=expires)
    until = _when(expires or now + DEFAULT_LIFETIME)
    print(f"token for {user} ({role}), valid until {until}, added to {args.config}; it is not "
          "shown again:", file=sys.stderr)
    print(token)
    return 0


def _when(when: dt.datetime | None) -> str:
    if when is None:
        return "-"
    aware = when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)
    return aware.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def cmd_token_list(args: argparse.Namespace) -> int:
    entries = read_tokens(args.config)
    now = dt.datetime.now(dt.UTC)
    rows = [("ID", "USER", "ROLE", "CREATED", "EXPIRES")]
    for e in entries:
        expires = _when(e.expires) if e.expires is not None else "never"
        rows.append((e.id, e.user, e.role.value, _when(e.created),
                     expires + (" (expired)" if e.expired(now) else "")))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1])
    if not entries:
        print(f"{args.config} has no [[api.tokens]]", file=sys.stderr)
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    removed = revoke_tokens(args.config, user=args.user, token_id=args.id)
    for e in removed:
        print(f"revoked {e.id} ({e.user}, {e.role.value})")
    print(f"removed from {args.config}; a running API refuses them within [api] "
          "token_reload_seconds", file=sys.stderr)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    return cmd_api(args, engine=True)


def cmd_api(args: argparse.Namespace, *, engine: bool = False) -> int:
    # imported here: the other commands do not need Litestar and uvicorn
    from dispatcher.domain.msisdn import load_numbering  # noqa: PLC0415
    from dispatcher.domain.plan import load_plan  # noqa: PLC0415
    from dispatcher.domain.province import load_province  # noqa: PLC0415
    from dispatcher.service.api import create_app, create_webhook_app, load_deployment  # noqa: PLC0415
    from dispatcher.service.settings import check_rates  # noqa: PLC0415
    from dispatcher.store import open_store  # noqa: PLC0415

    settings, api = load_deployment(args.config)
    logs.hide(logs.secrets_of(api))
    port = args.port if args.port is not None else api.port
    if not 0 < port < 65536:
        raise InputError(f"--port: {port} is not a port")
    url = args.redis or settings.redis.url
    plan, numbering, province = load_plan(args.plan), load_numbering(), load_province()
    check_rates(settings, numbering.carriers, str(args.config or "settings"))
    if not api.tokens:
        log.warning("%s has no [[api.tokens]]; every /v1 call will be refused (create one "
                    "with `loa token create`)", args.config)
    lasting = [t.id for t in api.tokens if t.expires is None]
    if lasting:
        log.warning("%s: tokens with no expiry (%s); replace them with `loa token create` "
                    "and `loa token revoke --id`", args.config, ", ".join(lasting))
    if not url:
        log.warning("no Redis (--redis, [redis] url): the API keeps everything in this "
                    "process's memory")

    async def serve() -> None:
        store = open_store(url or None)
        stop = asyncio.Event()
        running: asyncio.Task[None] | None = None
        try:
            on_zalo = None
            modes = channels.modes(settings)
            if not engine:
                failclosed.announce(modes)
            else:
                from dispatcher.service.process import build_engine, run_engine  # noqa: PLC0415
                from dispatcher.service.zalo_receipts import to_matcher  # noqa: PLC0415

                await failclosed.check(store, plan, modes, source=str(args.config))
                process = build_engine(store, settings, plan, province, numbering,
                                       reconcile=True)
                if process.receipts is not None:
                    on_zalo = to_matcher(process.receipts.add,
                                         process.incoming.add if process.incoming else None)
                running = asyncio.create_task(run_engine(process, stop))
            host = args.host or api.host
            listeners = [(create_app(store, settings, plan, province, numbering, api,
                                     on_zalo_events=on_zalo, tokens_file=args.config,
                                     zalo_quota=_zalo_quota(store, settings)), host, port)]
            if api.webhook_port:
                listeners.append((create_webhook_app(store, api, on_zalo_events=on_zalo),
                                  api.webhook_host or host, api.webhook_port))
            await _serve(listeners)
        finally:
            stop.set()
            if running is not None:
                await running
            await store.aclose()

    run_async(serve())
    return 0


def _zalo_quota(store: Store, settings: Settings) -> ZaloQuotaReader | None:
    """What reads the Zalo quota for the preview (None without Zalo): the tokens the workers
    keep, never renewed by the API."""
    zalo = settings.zalo
    if zalo is None:
        return None
    import os  # noqa: PLC0415

    from adapters.zalo.quota import ZaloQuotaReader  # noqa: PLC0415
    from dispatcher.service import zalo_tokens as zalotokens  # noqa: PLC0415

    tokens = zalotokens.token_store(store, settings, os.environ, owner="api")
    return ZaloQuotaReader(zalo.base_url, tokens, reset=f"{zalo.quota_reset} "
                           f"{zalo.quota_timezone}", timeout=min(zalo.timeout, 5.0))


async def _serve(listeners: list[tuple[Any, str, int]]) -> None:
    """Serve each (app, host, port) until a signal; the first that cannot bind stops them all."""
    import uvicorn  # noqa: PLC0415

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:  # signals are ours (until_signal)
            yield

    # uvicorn's loggers (uvicorn.error, uvicorn.access) propagate to Loa's handler
    servers = [(Server(uvicorn.Config(app, host=host, port=port, loop="none", lifespan="on",
                                      log_config=None, log_level=None, access_log=True)),
                host, port) for app, host, port in listeners]
    tasks = {asyncio.create_task(server.serve()): (server, host, port)
             for server, host, port in servers}
    stop = asyncio.create_task(until_signal())
    done, _ = await asyncio.wait({*tasks, stop}, return_when=asyncio.FIRST_COMPLETED)
    for server, _host, _port in servers:
        server.should_exit = True
    stop.cancel()
    failed: tuple[str, int] | None = None
    for task, (server, host, port) in tasks.items():
        try:
            await task
        except SystemExit:  # uvicorn's answer to a port it cannot bind
            failed = failed or (host, port)
            continue
        if task in done and not server.started:
            failed = failed or (host, port)
    if failed is not None:
        raise InputError(f"--port: cannot serve on {failed[0]}:{failed[1]} (in use?)")
