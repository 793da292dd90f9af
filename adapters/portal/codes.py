"""What a portal's answer means, by table: WordPress's error codes, then the HTTP status.

Sources: the WordPress REST API handbook (developer.wordpress.org/rest-api: the posts endpoint,
authentication with application passwords) and WordPress's own code for the errors it answers
(``WP_REST_Posts_Controller``, ``wp_authenticate_application_password``), see
docs/channels.md. A WordPress error answer is ``{"code", "message", "data": {"status"}}``. The
outcomes:

* ``sent``: the portal took the post;
* ``retry``: transient (5xx, a request timeout): the post is tried again;
* ``throttle``: 429: the site backs off for its ``Retry-After`` (or ``throttle_pause``); its
  posts wait without using an attempt;
* ``credentials``: the site refuses Loa (a revoked or expired application password, an unknown
  user, a wrong secret, a user who may not create or publish posts): nothing can go to it until
  an operator acts. The site stops (its posts wait), an ALERT is logged,
  ``loa_portal_site_paused{reason="credentials"}`` is 1, and one post is tried every
  ``alert_probe_seconds``;
* ``configuration``: the URL is wrong (404: no such route, 405, 410, a redirect): the same, with
  reason ``configuration``;
* ``fail``: the portal refused this post for good (an invalid parameter, empty content): it is
  dead-lettered with the portal's reason.

A code Loa does not know (a plugin's own) with a status the table does not decide, and a status
outside every class, is ``unknown``: retried; ``unknown_code_limit`` of them in a row stop the
site as ``unknown``, so a site-wide fault Loa cannot read never dead-letters a wave.
"""

from __future__ import annotations

import enum

import msgspec


class Outcome(enum.Enum):
    """What the adapter does with a post after the portal's answer."""

    SENT = "sent"
    RETRY = "retry"
    THROTTLE = "throttle"
    CREDENTIALS = "credentials"
    CONFIGURATION = "configuration"
    FAIL = "fail"
    UNKNOWN = "unknown"


class Code(msgspec.Struct, frozen=True):
    """One of WordPress's error codes: its message in WordPress's words and what Loa does."""

    message: str
    outcome: Outcome


C, F, R = Outcome.CREDENTIALS, Outcome.FAIL, Outcome.RETRY

_TABLE: list[tuple[str, str, Outcome]] = [
    # -- authentication (application passwords): 401 ------------------------------------------
    ("incorrect_password", "The provided password is an invalid application password.", C),
    ("invalid_username", "Unknown username. Check again or try your email address.", C),
    ("invalid_email", "Unknown email address. Check again or try your username.", C),
    ("application_passwords_disabled", "Application passwords are not available.", C),
    ("application_passwords_disabled_for_user",
     "Application passwords are not available for your account.", C),
    ("rest_not_logged_in", "You are not currently logged in.", C),
    # -- permissions: 401 without a user, 403 with one -----------------------------------------
    ("rest_cannot_create", "Sorry, you are not allowed to create posts as this user.", C),
    ("rest_cannot_publish", "Sorry, you are not allowed to publish posts in this post type.", C),
    ("rest_cannot_assign_term", "Sorry, you are not allowed to assign the provided terms.", C),
    ("rest_forbidden_status", "Status is forbidden.", C),
    ("rest_forbidden", "Sorry, you are not allowed to do that.", C),
    # -- the request --------------------------------------------------------------------------
    ("rest_invalid_param", "Invalid parameter(s).", F),
    ("rest_missing_callback_param", "Missing parameter(s).", F),
    ("rest_invalid_json", "Invalid JSON body passed.", F),
    ("rest_post_exists", "Cannot create existing post.", F),
    ("empty_content", "Content, title, and excerpt are empty.", F),
    ("rest_no_route", "No route was found matching the URL and request method.",
     Outcome.CONFIGURATION),
    # -- the site -----------------------------------------------------------------------------
    ("db_insert_error", "Could not insert post into the database.", R),
]

#: WordPress ``code`` -> its message and what Loa does.
CODES: dict[str, Code] = {code: Code(message, out) for code, message, out in _TABLE}

#: HTTP status -> outcome, where the status alone decides (before its class).
STATUSES: dict[int, Outcome] = {
    401: C, 403: C,  # Loa itself is refused: its posts wait for an operator
    404: Outcome.CONFIGURATION, 405: Outcome.CONFIGURATION, 410: Outcome.CONFIGURATION,
    408: R, 409: R, 425: R,  # the request timed out, or the same key is still being processed
    429: Outcome.THROTTLE,
}
#: status class (first digit) -> outcome: 2xx sent, 3xx a redirect (the URL moved), 5xx retry.
CLASSES: dict[int, Outcome] = {2: Outcome.SENT, 3: Outcome.CONFIGURATION, 5: R}


def outcome(status: int, code: str = "") -> Outcome:
    """What an answer with HTTP ``status`` and WordPress error ``code`` ("": none) means."""
    known = CODES.get(code) if code else None
    if known is not None:
        return known.outcome
    by_status = STATUSES.get(status) or CLASSES.get(status // 100)
    if by_status is not None:
        return by_status
    if code:  # a 4xx with a code Loa does not know: a plugin's, maybe site-wide
        return Outcome.UNKNOWN
    return F if status // 100 == 4 else Outcome.UNKNOWN
