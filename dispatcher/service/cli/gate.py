"""The one gate of the state-changing verbs (``campaign create|approve|pause|resume|cancel``,
``level set|confirm``, ``stop``, ``dead-letters replay``, ``suppression add|remove``,
``plan texts propose|approve|reject``, ``checklist done|undo``): they go through the Loa API
with a token, like any client, so the API's roles, approval rules and audit log apply to them.

``--api URL`` (or ``LOA_API_URL``) names the API; the token comes from ``--token-file FILE`` or
``LOA_TOKEN`` (never the command line, where ``ps`` shows it) and says who acts. Without them
the verb is refused with one line. ``--admin-direct`` writes to Redis directly instead: that is
the power of whoever holds the Redis credentials, and each such action is written to the audit
log (``[api] audit_log`` of ``--config``, role ``redis-admin``): its intent before the change,
which is refused when it cannot be written, then its outcome.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from adapters.http.client import HttpClient, TransportFailure
from adapters.http.proxy import Proxies
from dispatcher.domain.errors import (
    InputError,
    LoaError,
    NotFound,
    PermissionDenied,
    ServiceUnavailable,
    StateError,
)
from dispatcher.service import audit
from dispatcher.service.api.config import load_deployment
from dispatcher.service.audit import AuditLog

T = TypeVar("T")

TIMEOUT_SECONDS = 30.0
DIRECT_ROLE = "redis-admin"  # the audit log's role for --admin-direct actions

#: The API's answers, by status, as the errors the CLI reports (one line, their exit status).
STATUS_ERRORS: dict[int, type[LoaError]] = {
    400: InputError, 401: PermissionDenied, 403: PermissionDenied, 404: NotFound,
    409: StateError, 413: InputError, 422: InputError,
}

NO_GATE = ("goes through the Loa API: give --api URL (or LOA_API_URL) and a token (LOA_TOKEN or "
           "--token-file FILE); --admin-direct writes to Redis directly instead (the Redis "
           "administrator's power, audited)")


class Api(msgspec.Struct, frozen=True):
    """Where the API is, and the bearer token that says who acts."""

    url: str
    token: str

    def __repr__(self) -> str:
        return f"Api(url={self.url!r}, token='***')"


class Direct(msgspec.Struct, frozen=True):
    """Straight to Redis, as ``user``, recorded in the audit log at ``audit_log``."""

    user: str
    audit_log: str


def add_options(parser: argparse.ArgumentParser) -> None:
    """``--api``, ``--token-file``, ``--admin-direct`` and ``--user`` (with the last only)."""
    parser.add_argument("--api", metavar="URL",
                        help="the Loa API, e.g. http://127.0.0.1:8080 (default: LOA_API_URL)")
    parser.add_argument("--token-file", type=Path, metavar="FILE",
                        help="a file holding the API token (default: the LOA_TOKEN variable)")
    parser.add_argument("--admin-direct", action="store_true",
                        help="write to Redis directly, not through the API: the Redis "
                             "administrator's power, recorded in the audit log")
    parser.add_argument("--user", default=None,
                        help="with --admin-direct: who acts (default $USER); through the API "
                             "the token says who")


def gate(args: argparse.Namespace, verb: str) -> Api | Direct:
    """How ``verb`` reaches the deployment: the API (the default), or Redis directly."""
    if args.admin_direct:
        user = args.user if args.user is not None else os.environ.get("USER", "")
        if not user.strip():
            raise InputError("--user: say who acts (with --admin-direct; $USER is empty)")
        _, api = load_deployment(args.config)
        return Direct(user.strip(), api.audit_log)
    if args.user is not None:
        raise InputError("--user: through the API the token says who acts; --user goes with "
                         "--admin-direct only")
    url = (args.api or os.environ.get("LOA_API_URL", "")).strip()
    token = _token(args.token_file)
    if not url or not token:
        raise InputError(f"{verb} {NO_GATE}")
    if not url.startswith(("http://", "https://")):
        raise InputError(f"--api: {url!r} is not an http:// or https:// URL")
    return Api(url.rstrip("/"), token)


def _token(path: Path | None) -> str:
    if path is None:
        return os.environ.get("LOA_TOKEN", "").strip()
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise InputError(f"--token-file: cannot read {path}: {exc.strerror}") from None
    if not token:
        raise InputError(f"--token-file: {path} is empty")
    return token


async def call(api: Api, method: str, path: str, body: Any = None, *,
               raw: bytes | None = None, content_type: str = "",
               timeout: float = TIMEOUT_SECONDS) -> tuple[int, Any]:
    """The API's status and JSON answer to ``method path`` (``body`` as JSON, or ``raw`` bytes
    of ``content_type``); a refusal raises the error of its status (:data:`STATUS_ERRORS`) with
    the API's one-line detail."""
    headers = {"Authorization": f"Bearer {api.token}", "Accept": "application/json"}
    data = raw if raw is not None else None if body is None else msgspec.json.encode(body)
    if data is not None:
        headers["Content-Type"] = content_type or "application/json"
    # straight to the API, as before: the environment's proxy is for the channels' endpoints
    try:
        async with HttpClient(1, timeout, proxies=Proxies()) as client:
            response = await client.request(method, client.url(api.url + path), data or b"",
                                            headers)
    except TransportFailure as exc:
        raise ServiceUnavailable(f"the API at {api.url} does not answer ({exc.reason})") from None
    except ValueError as exc:  # not an http(s) URL
        raise ServiceUnavailable(f"the API at {api.url} does not answer ({exc})") from None
    raw, status = response.body, response.status
    try:
        answer = msgspec.json.decode(raw) if raw else None
    except msgspec.DecodeError:
        answer = None
    if status < 300:
        return status, answer
    detail = answer.get("detail") if isinstance(answer, dict) else None
    message = str(detail or f"HTTP {status}")
    error = STATUS_ERRORS.get(status)
    if error is None:
        raise ServiceUnavailable(f"the API at {api.url} answered {status}: {message}")
    raise error(message)


async def audited(direct: Direct, action: str, target: str, work: Awaitable[T],
                  detail: dict[str, Any] | None = None) -> T:
    """Await ``work`` (a direct write to Redis) as the API does: its intent is written to the
    audit log first (refused, and ``work`` never run, when it cannot be), then its outcome."""
    return await audit.audited(AuditLog(direct.audit_log), who=direct.user, role=DIRECT_ROLE,
                               action=action, target=target, work=work,
                               detail={"via": "admin-direct", **(detail or {})})
