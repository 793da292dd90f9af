"""API errors as RFC 9457 problem details (``application/problem+json``).

Every refusal of the API is a :class:`Problem`: ``type`` (one of :data:`TYPES`, a URI under
:data:`PROBLEM_BASE`), ``title`` (the type's, the same for every problem of that type),
``status``, ``detail`` (the one-line message that says why, as the CLI prints it), ``instance``
(the request path) and, for bad input, ``field``: the dotted path of the value in error
(``texts.sms``). ``error`` repeats ``detail`` for the clients written before problem details; it
goes in the next release.

Which error is which problem is decided by two tables, nowhere else: :data:`BY_CLASS` for Loa's
own errors (:mod:`dispatcher.domain.errors`), :data:`BY_STATUS` for the HTTP errors of the framework
(authentication, routing, body size). A status neither table knows is ``about:blank`` with the
status's own phrase as its title, as RFC 9457 says.
"""

from __future__ import annotations

import http
from typing import Annotated

import msgspec
from litestar.exceptions import HTTPException
from msgspec import Meta

from adapters.zalo.webhook import WebhookRejected
from dispatcher.domain.errors import (
    AuditUnavailable,
    ChannelUnavailable,
    InputError,
    LoaError,
    NotFound,
    PermissionDenied,
    StateError,
    TextError,
    TooLarge,
)
from dispatcher.service.api.webhook_intake import WebhookBusy

MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "https://loa.example/problems/"


class Problem(msgspec.Struct, frozen=True, omit_defaults=True):
    """An error answer of the API (RFC 9457)."""

    type: Annotated[str, Meta(min_length=1)]
    title: Annotated[str, Meta(min_length=1)]
    status: Annotated[int, Meta(ge=400, le=599)]
    detail: Annotated[str, Meta(min_length=1)]
    instance: Annotated[str, Meta(min_length=1)]
    error: Annotated[str, Meta(min_length=1)]
    field: Annotated[str, Meta(min_length=1)] | None = None


class ProblemType(msgspec.Struct, frozen=True):
    """A kind of problem: its status, its slug (the last part of its ``type`` URI) and title."""

    status: int
    slug: str
    title: str

    @property
    def uri(self) -> str:
        return PROBLEM_BASE + self.slug if self.slug else "about:blank"


INVALID_INPUT = ProblemType(400, "invalid-input", "The request is not valid")
UNAUTHORIZED = ProblemType(401, "unauthorized", "No valid bearer token")
FORBIDDEN = ProblemType(403, "forbidden", "The token's role does not allow this")
NOT_PERMITTED = ProblemType(403, "not-permitted",
                            "This user may not do this (approving their own campaign)")
NOT_FOUND = ProblemType(404, "not-found", "Not found")
METHOD_NOT_ALLOWED = ProblemType(405, "method-not-allowed", "The path does not take this method")
CONFLICT = ProblemType(409, "conflict", "The state does not allow this")
BODY_TOO_LARGE = ProblemType(413, "body-too-large",
                             "The body is larger than request_max_body_size")
UNPROCESSABLE = ProblemType(422, "unprocessable",
                            "The request is valid but cannot be carried out as it is")
CHANNEL_NOT_CONFIGURED = ProblemType(
    422, "channel-not-configured",
    "The channel is neither configured nor declared simulated in this deployment")
WEBHOOK_REJECTED = ProblemType(401, "webhook-rejected",
                               "The webhook request is not signed, or not by Zalo")
TOO_MANY_SIGNINS = ProblemType(429, "too-many-sign-ins",
                               "Too many failed sign-ins; wait Retry-After seconds")
INTERNAL = ProblemType(500, "internal", "Internal error")
UNAVAILABLE = ProblemType(503, "unavailable", "The store does not answer")
AUDIT_UNAVAILABLE = ProblemType(503, "audit-unavailable",
                                "The audit log cannot be written: nothing was changed")
WEBHOOK_BUSY = ProblemType(503, "webhook-busy",
                           "Too many delivery events wait for the store: send them again later")

#: Every problem type the API answers with (``docs/api.md`` lists them).
TYPES = [INVALID_INPUT, UNAUTHORIZED, FORBIDDEN, NOT_PERMITTED, NOT_FOUND, METHOD_NOT_ALLOWED,
         CONFLICT, BODY_TOO_LARGE, UNPROCESSABLE, CHANNEL_NOT_CONFIGURED, WEBHOOK_REJECTED,
         TOO_MANY_SIGNINS, INTERNAL, UNAVAILABLE, AUDIT_UNAVAILABLE, WEBHOOK_BUSY]

#: Loa's errors, most specific first: the first class the error is an instance of decides.
#: A :class:`LoaError` none of them covers (a ``ConfigError``) is ours, not the caller's: 500.
BY_CLASS: list[tuple[type[LoaError], ProblemType]] = [
    (NotFound, NOT_FOUND),
    (PermissionDenied, NOT_PERMITTED),
    (StateError, CONFLICT),
    (ChannelUnavailable, CHANNEL_NOT_CONFIGURED),
    (TooLarge, BODY_TOO_LARGE),
    (InputError, INVALID_INPUT),
    (TextError, INVALID_INPUT),
    (WebhookRejected, WEBHOOK_REJECTED),
    (AuditUnavailable, AUDIT_UNAVAILABLE),
    (WebhookBusy, WEBHOOK_BUSY),
]

#: The framework's HTTP errors, by status.
BY_STATUS: dict[int, ProblemType] = {t.status: t for t in (
    INVALID_INPUT, UNAUTHORIZED, FORBIDDEN, NOT_FOUND, METHOD_NOT_ALLOWED, CONFLICT,
    BODY_TOO_LARGE, UNPROCESSABLE, TOO_MANY_SIGNINS, INTERNAL, UNAVAILABLE)}


def by_status(status: int) -> ProblemType:
    """The problem type of an HTTP status: the table's, or ``about:blank`` and its phrase."""
    known = BY_STATUS.get(status)
    if known is not None:
        return known
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = f"HTTP {status}"
    return ProblemType(status, "", phrase)


def problem_for(exc: Exception) -> ProblemType:
    """The problem type of ``exc``: :data:`BY_CLASS`, :data:`BY_STATUS`, else internal."""
    if isinstance(exc, LoaError):
        for cls, kind in BY_CLASS:
            if isinstance(exc, cls):
                if isinstance(exc, WebhookRejected) and exc.status != kind.status:
                    return by_status(exc.status)  # a body that is no event at all: 400
                return kind
        return INTERNAL
    if isinstance(exc, HTTPException):
        return by_status(exc.status_code)
    return INTERNAL


def problem(kind: ProblemType, detail: str, instance: str, field: str | None = None) -> Problem:
    """The problem of type ``kind`` for the request at ``instance``."""
    detail = detail.strip() or kind.title
    return Problem(type=kind.uri, title=kind.title, status=kind.status, detail=detail,
                   instance=instance or "/", error=detail, field=field or None)
