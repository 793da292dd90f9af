"""The signature of Loa's signed JSON POSTs (app push, a portal's signed JSON profile), and the
receiver's check of it: one definition for every channel that signs.

A signed request carries ``X-Loa-Timestamp: <unix seconds>`` and ``X-Loa-Signature:
sha256=<hex>``, the HMAC-SHA256 with the shared secret of the timestamp, a dot and the raw body.
The receiver recomputes it over the timestamp header, a dot and the bytes it read, compares in
constant time, and refuses a timestamp more than ``max_age`` seconds from its clock
(:func:`verify`): a request captured on the way cannot be sent again later.
"""

from __future__ import annotations

import hashlib
import hmac
import re

SIGNATURE_HEADER = "X-Loa-Signature"
TIMESTAMP_HEADER = "X-Loa-Timestamp"


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The signature header's value: ``sha256=`` and the hex HMAC-SHA256 of
    ``<timestamp>.<raw body>`` (the timestamp in unix seconds, as in the timestamp header)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode(), hashlib.sha256)
    mac.update(body)
    return "sha256=" + mac.hexdigest()


_SECONDS = re.compile(r"[0-9]{1,12}")


def verify(secret: str, body: bytes, timestamp: str, signature: str, *, now: float,
           max_age: float = 300.0) -> str | None:
    """Why a request is not to be trusted (``None``: it is): the receiver's check, in constant
    time. ``timestamp`` must be unix seconds (digits only) within ``max_age`` of ``now``."""
    if not signature:
        return "bad signature"
    if not _SECONDS.fullmatch(timestamp):
        return "no timestamp, or one that is not unix seconds"
    if abs(now - int(timestamp)) > max_age:
        return f"timestamp {int(now - int(timestamp)):+d} s off (more than {max_age:g} s)"
    if not hmac.compare_digest(signature.encode(), sign(secret, body, int(timestamp)).encode()):
        return "bad signature"
    return None
