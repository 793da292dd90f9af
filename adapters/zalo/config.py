"""The Zalo channel's settings (``[zalo]``): the OA, its templates, and how Loa reaches it.

Kept apart from the adapter so that what reads the settings (the settings loader, the API's
checks) does not load the channel's HTTP client.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

import msgspec

from adapters.http.proxy import Proxies
from adapters.zalo import oa
from adapters.zalo.codes import FALLBACK_CODES
from adapters.zalo.quota import next_reset, reset_time, time_zone
from adapters.zalo.templates import ZnsTemplate
from dispatcher.domain.model import VN
from dispatcher.domain.secret import Secret


def next_hour(now: float, hour: int) -> float:
    """Epoch seconds of the next ``hour``:00 in Vietnam."""
    local = dt.datetime.fromtimestamp(now, VN)
    at = local.replace(hour=hour, minute=0, second=0, microsecond=0)
    return (at if at > local else at + dt.timedelta(days=1)).timestamp()


def next_quota_reset(now: float, at: dt.time = dt.time(0), tz: dt.tzinfo = VN) -> float:
    """Epoch seconds of the next ``at`` in ``tz`` (midnight in Vietnam by default), when Zalo's
    daily quota resets."""
    return next_reset(now, at, tz)


class ZaloConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The Zalo OA and how to reach it. ``secret_key`` (the app's, for OAuth) is filled in from
    the environment variable named by ``secret_key_env`` by the settings loader."""

    base_url: str = "https://business.openapi.zalo.me"  # ZNS
    oa_url: str = "https://openapi.zalo.me"  # OA API ("": base_url)
    oauth_url: str = "https://oauth.zaloapp.com"
    app_id: str = ""
    secret_key_env: str = ""
    secret_key: str = ""
    # the single-parameter mode (OA, tests): the ZNS template whose parameter template_param
    # takes a message's whole text, for messages without a typed template
    template_id: str = ""
    template_param: str = "content"
    templates: dict[str, ZnsTemplate] = {}  # typed ZNS templates by name ([zalo.templates.<name>])
    # zns: every address is a phone; oa: every address is a Zalo user id; auto: 84 + 9 digits
    # is a phone, anything else a user id
    mode: Literal["zns", "oa", "auto"] = "zns"
    concurrency: int = 64  # requests in flight per route
    timeout: float = 10.0  # seconds per request, connection included
    # the proxy to Zalo: "" the environment's (HTTPS_PROXY, NO_PROXY), "direct" none, or
    # http://[user:password@]host:port; no_proxy: more hosts that bypass it (NO_PROXY's syntax)
    proxy: str = ""
    no_proxy: str = ""
    client: str = ""  # removed: refused when set (every call uses Loa's own HTTP client)
    sms_fallback_codes: frozenset[int] = FALLBACK_CODES
    token_retry_after: float = 10.0  # after a failed renewal, seconds before the next one
    quota_probe_seconds: float = 300.0  # while out of quota: a batch is tried this often
    outage_pause_max: float = 30.0  # longest pause of a route while Zalo answers 5xx
    alert_probe_seconds: float = 60.0  # paused for a configuration or money fault: try this often
    unknown_code_limit: int = 20  # unlisted codes in a row that pause the route with an alert
    night_end_hour: int = 6  # -133/-234: routine messages wait until this hour (Vietnam)
    # OA messages (to a Zalo user id): the type (adapters.zalo.oa), its template_type ("": the
    # type's default), the header element and the language of Zalo's own labels
    oa_message_type: oa.OaType = "transaction"
    oa_template_type: str = ""
    oa_header: str = "Thông báo phòng chống dịch"
    oa_language: Literal["VI", "EN"] = "VI"
    # the token pair is renewed at least this often (a refresh token lives 3 months)
    refresh_every_days: float = 30.0
    quota_reset: str = "00:00"  # when the daily ZNS quota resets (HH:MM in quota_timezone)
    quota_timezone: str = "Asia/Ho_Chi_Minh"

    def __post_init__(self) -> None:
        oa.check(self.oa_message_type, self.oa_template_type, self.oa_header)
        if self.oa_language not in ("VI", "EN"):
            raise ValueError("oa_language must be VI or EN")
        if not 0 < self.refresh_every_days <= 80:
            raise ValueError("refresh_every_days must be more than 0 and at most 80 (a refresh "
                             "token lives 3 months)")
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.alert_probe_seconds <= 0:
            raise ValueError("alert_probe_seconds must be positive")
        if self.unknown_code_limit < 1:
            raise ValueError("unknown_code_limit must be at least 1")
        if not 0 <= self.night_end_hour <= 23:
            raise ValueError("night_end_hour must be between 0 and 23")
        if self.timeout <= 0:
            raise ValueError("timeout must be positive")
        reset_time(self.quota_reset)  # ValueError naming the key
        time_zone(self.quota_timezone)
        if self.quota_probe_seconds <= 0 or self.outage_pause_max <= 0:
            raise ValueError("quota_probe_seconds and outage_pause_max must be positive")
        if self.mode not in ("zns", "oa", "auto"):
            raise ValueError("mode must be zns, oa or auto")
        if self.client:
            raise ValueError("client is no longer a setting: Loa's own HTTP client makes every "
                             "call (remove the key)")
        Proxies.configured(self.proxy, self.no_proxy, env={})  # ValueError naming the URL
        if self.mode != "oa" and not self.template_id and not self.templates:
            raise ValueError("ZNS needs template_id or [zalo.templates.<name>]")
        if self.secret_key and not isinstance(self.secret_key, Secret):
            msgspec.structs.force_setattr(self, "secret_key", Secret(self.secret_key))
