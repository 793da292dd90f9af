"""The OA's daily ZNS quota: read from Zalo before a wave, and when it resets.

``GET {base_url}/message/quota`` with the ``access_token`` header answers
``{"error": 0, "data": {"dailyQuota": "5000", "remainingQuota": "4321"}}`` (numbers as strings,
as Zalo writes them). Zalo does not publish when the daily quota resets: ``[zalo] quota_reset``
and ``quota_timezone`` say it (midnight in Asia/Ho_Chi_Minh unless told otherwise).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import zoneinfo

import msgspec

from adapters.base import DailyQuota
from adapters.http.client import HttpClient, TransportFailure
from adapters.http.proxy import Proxies
from adapters.zalo.api import Quota
from adapters.zalo.tokens import TokenError, TokenStore

log = logging.getLogger(__name__)

QUOTA_PATH = "/message/quota"
RESET = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")


class QuotaAnswer(msgspec.Struct):
    """The answer of ``GET /message/quota``."""

    error: int = 0
    message: str = ""
    data: Quota | None = None


quota_decoder = msgspec.json.Decoder(QuotaAnswer)


def parse_quota(status: int, body: bytes) -> DailyQuota | None:
    """The quota in an answer of ``GET /message/quota``; None when it carries none."""
    if status != 200:
        return None
    try:
        answer = quota_decoder.decode(body)
    except msgspec.DecodeError:
        return None
    if answer.error or answer.data is None:
        return None
    remaining = answer.data.remaining()
    if remaining is None:
        return None
    daily = answer.data.daily_quota
    return DailyQuota(remaining=max(0, remaining),
                     daily=int(daily) if daily is not None and str(daily).isdigit() else None)


def reset_time(text: str) -> dt.time:
    """``"HH:MM"`` (24-hour) as a time; ValueError naming ``quota_reset`` otherwise."""
    match = RESET.fullmatch(text)
    if match is None:
        raise ValueError(f"quota_reset must be a time HH:MM (24-hour), not {text!r}")
    return dt.time(int(match[1]), int(match[2]))


def time_zone(name: str) -> zoneinfo.ZoneInfo:
    """The zone ``name``; ValueError naming ``quota_timezone`` when it is not one."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"quota_timezone: unknown time zone {name!r}") from None


def next_reset(now: float, at: dt.time, tz: dt.tzinfo) -> float:
    """Epoch seconds of the next ``at`` in ``tz`` after ``now``: when the daily quota resets."""
    local = dt.datetime.fromtimestamp(now, tz)
    day = local.date()
    for _ in range(3):  # today, tomorrow (a gap of a change of clocks: the day after)
        candidate = dt.datetime.combine(day, at, tz)
        if candidate > local:
            return candidate.timestamp()
        day += dt.timedelta(days=1)
    return dt.datetime.combine(day, at, tz).timestamp()


async def fetch_quota(url: str, token: str, timeout: float, reset: str,
                      proxies: Proxies | None = None) -> DailyQuota | None:
    """``GET url`` (``{base_url}/message/quota``) with ``token``: the quota, or None (logged)
    when Zalo does not answer one. One short-lived connection (through ``proxies``, by default
    the environment's): this is read once a wave."""
    client = HttpClient(1, timeout, peer="Zalo", proxies=proxies)
    try:
        answer = await client.request("GET", client.url(url), b"", {"access_token": token})
    except TransportFailure as exc:
        log.warning("Zalo quota unknown: %s", exc.reason, extra={"channel": "zalo"})
        return None
    finally:
        await client.aclose()
    quota = parse_quota(answer.status, answer.body)
    if quota is None:
        log.warning("Zalo quota unknown: HTTP %d %r", answer.status, answer.body[:200],
                    extra={"channel": "zalo"})
        return None
    return msgspec.structs.replace(quota, reset=reset)


class ZaloQuotaReader:
    """Reads the OA's quota with the access token kept in ``tokens`` (for a process that does
    not send, such as the API's preview: it never renews the token)."""

    def __init__(self, base_url: str, tokens: TokenStore, *, reset: str,
                 timeout: float = 5.0) -> None:
        self.url = base_url.rstrip("/") + QUOTA_PATH
        self.tokens = tokens
        self.reset = reset
        self.timeout = timeout

    async def quota(self) -> DailyQuota | None:
        try:
            token, _ = await self.tokens.get()
        except TokenError as exc:
            log.warning("Zalo quota unknown: no access token: %s", exc, extra={"channel": "zalo"})
            return None
        if not token:
            return None
        return await fetch_quota(self.url, token, self.timeout, self.reset)
