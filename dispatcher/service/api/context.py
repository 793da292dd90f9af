"""What every route of the API uses: the services (:class:`Services`, kept on the app's state),
the caller and their role (bearer tokens, the role guards ``VIEWER`` ... ``ADMIN``, failed
sign-ins in the audit log), strict JSON bodies, the audit of a state-changing call, and the
OpenAPI description of error answers. The routes of :mod:`dispatcher.service.api.app` and of
the modules beside it (situation, plan texts, dead letters, recipients, lists, incoming,
suppressions) import it; :func:`~dispatcher.service.api.app.create_app` puts them together.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import math
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import msgspec
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.exceptions import (
    NotAuthorizedException,
    PermissionDeniedException,
    TooManyRequestsException,
)
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi import ResponseSpec
from litestar.types import Guard

from adapters.base import QuotaReader
from adapters.zalo.webhook import WebhookVerifier
from dispatcher.domain.errors import AuditUnavailable, InputError
from dispatcher.domain.msisdn import Numbering
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.engine.campaigns import Campaigns
from dispatcher.service import channels as registry
from dispatcher.service.api import signin
from dispatcher.service.api.config import ApiConfig
from dispatcher.service.api.problems import MEDIA_TYPE as PROBLEM_JSON
from dispatcher.service.api.problems import Problem
from dispatcher.service.api.webhook import OnZaloEvents, ZaloWebhook
from dispatcher.service.api.webhook_intake import WebhookIntake
from dispatcher.service.audit import AuditLog, audited
from dispatcher.service.auth import Refusal, Role, User
from dispatcher.service.settings import Settings
from dispatcher.service.tokenfile import TokenSource
from dispatcher.store.base import Store
from dispatcher.store.seen import HOUR

Clock = Callable[[], dt.datetime]
T = TypeVar("T")

SHOWN_TOKEN_CHARS = 8  # of a refused token, in the audit log: `loa_` and 4 more


def webhook_for(store: Store, api: ApiConfig, on_events: OnZaloEvents | None,
                  clock: Clock) -> ZaloWebhook:
    verifier = (WebhookVerifier(api.zalo_app_id, str(api.zalo_oa_secret),
                                api.zalo_max_age_seconds,
                                max_ahead_seconds=api.zalo_max_skew_seconds)
                if api.zalo_app_id and api.zalo_oa_secret else None)
    # an event may come again (Zalo's tries, a replay) until it is zalo_max_age_seconds old:
    # its id is kept at least that long after it was taken, and the clock skew more
    seen = store.webhook_seen
    seen.keep(math.ceil((api.zalo_max_age_seconds + api.zalo_max_skew_seconds) / HOUR))
    def now() -> float:
        return clock().timestamp()

    intake = WebhookIntake(seen, on_events, now, wait=api.zalo_webhook_wait_seconds,
                           capacity=api.zalo_webhook_queue)
    return ZaloWebhook(verifier, intake, now)


class Services:
    """What the routes use, kept on ``app.state.services``."""

    def __init__(self, store: Store, settings: Settings, plan: Plan, province: Province,
                 numbering: Numbering, api: ApiConfig, audit: AuditLog,
                 on_zalo_events: OnZaloEvents | None, clock: Clock,
                 tokens_file: Path | None = None, zalo_quota: QuotaReader | None = None) -> None:
        self.store = store
        self.settings = settings
        self.plan = plan
        self.province = province
        self.numbering = numbering
        self.api = api
        self.audit = audit
        self.clock = clock
        self.campaigns = Campaigns(store, settings, province)
        self.modes = registry.modes(settings)  # which channels send, and how (fail closed)
        self.tokens = TokenSource(api.tokens, tokens_file, interval=api.token_reload_seconds,
                                  clock=clock)
        self.signin = signin.SignInLimiter(api.signin_max_failures, api.signin_window_seconds)
        self.webhook = webhook_for(store, api, on_zalo_events, clock)
        # (audience version, selector) -> recipients per carrier: an audience version never
        # changes, so a count is good for as long as the version is kept
        self.carrier_counts: dict[tuple[str, bytes], dict[str, int]] = {}
        self.zalo_quota = zalo_quota  # reads the OA's quota for the preview (None: unknown)


ERRORS = {
    400: "bad input; the message names the field",
    401: "no bearer token, or an unknown or expired one",
    403: "the token's role does not allow this (or approving one's own campaign)",
    404: "no such campaign or wave, or nothing set yet",
    409: "the campaign's or wave's state (or the store's: no audience) does not allow this",
    413: "the body is larger than request_max_body_size",
    422: "a channel of the campaign is not configured in this deployment (the message names it)",
    500: "not processed; Zalo sends the events again",
    429: "too many failed sign-ins from this address or with this token prefix "
         "(Retry-After says when to try again)",
    503: "the store does not answer",
}
BEARER: list[dict[str, list[str]]] = [{"BearerToken": []}]


def errors(*codes: int) -> dict[int, ResponseSpec]:
    """The OpenAPI description of the error answers ``codes``: problem details each."""
    return {code: ResponseSpec(Problem, description=ERRORS[code], generate_examples=False,
                               media_type=PROBLEM_JSON)
            for code in codes}


AUTH = (401, 403, 429)


def services_of(state: State) -> Services:
    services: Services = state.services
    return services


# -- authentication and roles ---------------------------------------------------------------------


UNAUTHORIZED_DETAIL = {
    Refusal.MISSING: "missing bearer token (Authorization: Bearer <token>)",
    Refusal.UNKNOWN: "unknown token",
    Refusal.EXPIRED: "token expired",
}


def _bearer(connection: ASGIConnection[Any, Any, Any, Any]) -> User:
    """The caller, as their bearer token says; refused (401), or limited (429) after too many
    failures from their address or with their token's prefix
    (:mod:`dispatcher.service.api.signin`)."""
    s = services_of(connection.app.state)
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip() if scheme.lower() == "bearer" else ""
    address = connection.client.host if connection.client else "unknown"
    now = s.clock()
    keys = signin.keys(address, token)
    wait = s.signin.retry_after(keys, now)
    if wait is not None:
        signin.record(Refusal.LIMITED, address, token)
        raise TooManyRequestsException(
            f"too many failed sign-ins; try again in {wait} s",
            headers={"Retry-After": str(wait)})
    result = s.tokens.table().authenticate(token, now) if token else Refusal.MISSING
    if isinstance(result, User):
        return result
    s.signin.failed(keys, now)
    signin.record(result, address, token)
    raise NotAuthorizedException(UNAUTHORIZED_DETAIL[result],
                                 headers={"WWW-Authenticate": "Bearer"})


def require(role: Role) -> Guard:
    """A guard letting through callers whose token's role allows ``role``."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        try:
            user = _bearer(connection)
        except NotAuthorizedException as exc:
            await _record_failed_signin(connection, exc)
            raise
        if not user.role.allows(role):
            raise PermissionDeniedException(f"{user.name} is {user.role}: this needs the "
                                            f"{role} role or higher")
        connection.state.user = user

    return guard


def known_query(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Refuse query parameters the route does not take (its ``opt["query"]``): a misspelt
    ``?limt=5`` is an error, not an option silently ignored."""
    taken = handler.opt.get("query", ())
    unknown = sorted(set(connection.query_params) - set(taken))
    if unknown:
        takes = f"it takes {', '.join(taken)}" if taken else "it takes none"
        raise InputError(f"unknown query parameter {', '.join(map(repr, unknown))}; {takes}")


VIEWER = [require(Role.VIEWER), known_query]
OPERATOR = [require(Role.OPERATOR), known_query]
APPROVER = [require(Role.APPROVER), known_query]
ADMIN = [require(Role.ADMIN), known_query]


MISSING_FIELD = re.compile(r"^Object missing required field `(?P<key>[^`]+)`$")
_AT = re.compile(r" - at `\$\.?(?P<key>[^`]*)`$")


async def strict_body(request: Request[Any, Any, Any], type_: type[T]) -> T:
    """The request's JSON body as ``type_``, with JSON's own types only.

    Litestar converts bodies by msgspec's lax rules, where a number is taken for a date (seconds
    since 1970) and ``"5"`` for an integer; the body it passes has been checked by those rules
    (unknown and missing fields, bounds), this is the check that every value has its type. A
    number with no fraction is an integer, whether written ``5`` or ``5.0`` (as JSON Schema says).
    """
    try:
        body = await request.body()
        raw = msgspec.json.decode(body)
        _unique_keys(body)
        return msgspec.convert(_integral(raw), type_, strict=True)
    except msgspec.ValidationError as exc:
        text = str(exc)
        found = _AT.search(text)
        if found and found.group("key"):
            raise InputError(text[:found.start()], field=found.group("key")) from None
        raise InputError(f"invalid request: {text}") from None
    except msgspec.DecodeError as exc:
        raise InputError(f"invalid request: not JSON ({exc})") from None


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise InputError(f"the key {key!r} is given twice in one object", field=key)
        seen[key] = value
    return seen


def _unique_keys(body: bytes) -> None:
    """Refuse a JSON body with a key twice in one object (JSON parsers differ on which wins:
    an intermediary and Loa must not read two different requests). Bodies are small (the
    request size limit): the standard library's parser with a hook does it."""
    if body.count(b'"') >= 4:  # fewer quotes: at most one key, nothing to compare
        json.loads(body, object_pairs_hook=_refuse_duplicates)


async def optional_body(request: Request[Any, Any, Any], type_: type[T]) -> T | None:
    """The request's JSON body as ``type_`` (:func:`strict_body`), or None when it has none
    (no bytes, or ``null``)."""
    body = (await request.body()).strip()
    if not body or body == b"null":
        return None
    return await strict_body(request, type_)


def _integral(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral(v) for v in value]
    return value


def caller(request: Request[Any, Any, Any]) -> User:
    user: User = request.state.user
    return user


async def audited_call(request: Request[Any, Any, Any], action: str, target: str,
                   work: Awaitable[T], detail: dict[str, Any] | None = None,
                   after: Callable[[T], dict[str, Any] | None] | None = None) -> T:
    """Record the intent of the call, await ``work``, record its outcome (refused or not,
    ``after(result)`` its detail); ``work`` is not run when the intent cannot be recorded
    (503, :func:`dispatcher.service.audit.audited`)."""
    user = caller(request)
    return await audited(services_of(request.app.state).audit, who=user.name, role=user.role,
                         action=action, target=target, work=work, detail=detail, after=after)


async def _record_failed_signin(connection: ASGIConnection[Any, Any, Any, Any],
                                exc: NotAuthorizedException) -> None:
    """A 401 in the audit log: the path, the client, why, and the first characters of the
    token presented (never the token)."""
    _, _, token = connection.headers.get("authorization", "").partition(" ")
    client = connection.client.host if connection.client else ""
    detail = {"method": connection.scope.get("method", ""), "client": client,
              "reason": str(exc.detail), "token_prefix": token.strip()[:SHOWN_TOKEN_CHARS]}
    with contextlib.suppress(AuditUnavailable):  # logged there; the caller is refused anyway
        await asyncio.to_thread(services_of(connection.app.state).audit.write, who="", role="",
                                action="signin.failed", target=connection.url.path,
                                outcome="NotAuthorized", detail=detail)
