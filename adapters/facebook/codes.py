"""The Graph API's error codes a page post can meet, each with what Loa does about it.

Sources: Meta's "Handling Errors" guide of the Graph API (developers.facebook.com/docs/graph-api/
guides/error-handling) and its rate-limiting overview (/docs/graph-api/overview/rate-limiting),
which name the codes and their recovery (see docs/channels.md). An error answer is
``{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}``, mostly with HTTP 400
or 403. The outcomes:

* ``retry``: transient (Facebook's own downtime): tried again, using one of its attempts;
* ``throttle``: the application or the account is over its rate limit: the route backs off
  (its messages wait, no attempt used), for ``throttle_pause`` seconds, doubling up to
  ``throttle_pause_max`` while Facebook keeps refusing;
* ``page_throttle``: the page is over its own limit: the same, for that page only;
* ``token``: the page's access token expired, was revoked or is invalid, and ``permission``: the
  application or the token lacks a permission (``pages_manage_posts``...) or a capability: no
  post can go to the page until an operator gives it a new token or the permission. The page
  stops (its posts wait, no attempt used), an ALERT is logged, ``loa_facebook_page_stopped`` is 1,
  and one post is tried every ``alert_probe_seconds`` until Facebook accepts again;
* ``blocked``: the page is blocked for a policy violation: the post fails with Facebook's
  reason (a dead letter an operator may replay once the block is lifted) and an ALERT is logged;
* ``duplicate``: Facebook refuses a post identical to the page's last one: the page shows the
  text already, so the post counts as sent, and nothing more is posted (a plan text repeated
  within Facebook's window of duplicates appears once);
* ``fail``: the request is wrong (an invalid parameter): the post fails.

A code not in the table is retried; ``unknown_code_limit`` of them in a row stop the route with
an alert (reason ``unknown``), so an unknown wave-wide fault never dead-letters a wave.
"""

from __future__ import annotations

import enum

import msgspec


class Outcome(enum.Enum):
    """What the adapter does with a post after Facebook's answer."""

    RETRY = "retry"
    THROTTLE = "throttle"
    PAGE_THROTTLE = "page_throttle"
    TOKEN = "token"
    PERMISSION = "permission"
    BLOCKED = "blocked"
    DUPLICATE = "duplicate"
    FAIL = "fail"


class Code(msgspec.Struct, frozen=True):
    """One of the Graph API's codes: its name in Meta's words and what Loa does."""

    name: str
    outcome: Outcome


R, T, P = Outcome.RETRY, Outcome.THROTTLE, Outcome.PAGE_THROTTLE
K, N = Outcome.TOKEN, Outcome.PERMISSION

_TABLE: list[tuple[int, str, Outcome]] = [
    (1, "API unknown: possibly a temporary issue due to downtime", R),
    (2, "API service: temporary issue due to downtime", R),
    (3, "API method: the application lacks a capability or permission", N),
    (4, "API too many calls: application-level throttling", T),
    (10, "API permission denied", N),
    (17, "API user too many calls: account-level throttling", T),
    (32, "page request limit reached: page-level throttling", P),
    (100, "invalid parameter", Outcome.FAIL),
    (102, "API session: the access token expired, was revoked or is invalid", K),
    (190, "access token expired, revoked or invalid", K),
    (341, "application limit reached", T),
    (368, "temporarily blocked for policy violations", Outcome.BLOCKED),
    (506, "duplicate post: the same text as the page's last post", Outcome.DUPLICATE),
    (613, "calls within one hour exceeded the rate limit", T),
    (80001, "too many calls to this page account (business use case rate limit)", P),
    (1609005, "error posting a link", Outcome.FAIL),
]

#: Graph API ``code`` -> its name and what Loa does (200-299: see :func:`lookup`).
CODES: dict[int, Code] = {code: Code(name, outcome) for code, name, outcome in _TABLE}
#: 200-299 are the permission errors, one code per permission.
PERMISSION_CODES = range(200, 300)
PERMISSION = Code("API permission denied (a permission the token lacks)", N)
#: The codes that call for backing off: the application's limits and the page's.
THROTTLE_CODES = frozenset(c for c, code in CODES.items()
                           if code.outcome in (Outcome.THROTTLE, Outcome.PAGE_THROTTLE))


def lookup(code: int) -> Code | None:
    """What ``code`` means and calls for; None for a code Loa does not know."""
    found = CODES.get(code)
    if found is None and code in PERMISSION_CODES:
        return PERMISSION
    return found
