"""The Facebook channel's settings (``[facebook]``): the Graph API, the pages and their tokens.

Kept apart from the adapter so that what reads the settings (the settings loader, the plan's
view) does not load the channel's HTTP client. Each page is a target of the channel
(:class:`dispatcher.domain.outlet.Target`): its ``id`` is Loa's name for it (the address of its
batches, the key of its sent bit), ``page_id`` Facebook's. Its access token is read from the
environment variable ``token_env`` when the settings are loaded (never from the file).
"""

from __future__ import annotations

import msgspec

from adapters.facebook.api import PAGE_ID, VERSION
from adapters.http.proxy import Proxies
from dispatcher.domain.outlet import Target, check_id
from dispatcher.domain.secret import Secret


class Page(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One Facebook page Loa posts to."""

    id: str  # Loa's id of the page: "province", "so-tttt", "ha-long"
    page_id: str  # Facebook's numeric id of the page
    token_env: str  # the environment variable holding the page access token
    name: str = ""  # for people: "Trang Sở Y tế Quảng Ninh"
    district: str = ""  # the district it speaks for (a province.toml id); "": the province
    token: str = ""  # filled in from token_env by the settings loader; never in the file

    def target(self) -> Target:
        return Target(self.id, self.name, self.district)


class FacebookConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The Graph API and the pages (see the module's documentation)."""

    graph_url: str = "https://graph.facebook.com"
    api_version: str = "v21.0"
    timeout: float = 10.0  # seconds per request, connection included
    concurrency: int = 4  # requests in flight
    # the proxy to Facebook: "" the environment's (HTTPS_PROXY, NO_PROXY), "direct" none, or
    # http://[user:password@]host:port; no_proxy: more hosts that bypass it
    proxy: str = ""
    no_proxy: str = ""
    pages: list[Page] = []
    throttle_pause: float = 60.0  # a rate limit answered: the route (or page) waits this long
    throttle_pause_max: float = 3600.0  # ... doubling while Facebook keeps refusing, up to this
    alert_probe_seconds: float = 300.0  # a page stopped (token, permission): tried this often
    outage_pause_max: float = 30.0  # longest pause of the route while Facebook answers 5xx
    unknown_code_limit: int = 5  # unlisted codes in a row that stop the route with an alert
    # the look for a wave's post reads the page's posts since the wave was made, less this
    # (clocks differ)
    clock_skew: float = 60.0

    def __post_init__(self) -> None:
        if not VERSION.match(self.api_version):
            raise ValueError(f"api_version {self.api_version!r} is not a Graph API version "
                             "(v21.0)")
        if not self.graph_url.startswith(("https://", "http://")):
            raise ValueError(f"graph_url {self.graph_url!r} is not an http(s) URL")
        if self.concurrency < 1 or self.timeout <= 0:
            raise ValueError("concurrency must be at least 1 and timeout positive")
        if not 0 < self.throttle_pause <= self.throttle_pause_max:
            raise ValueError("throttle_pause must be positive and at most throttle_pause_max")
        if self.alert_probe_seconds <= 0 or self.outage_pause_max <= 0:
            raise ValueError("alert_probe_seconds and outage_pause_max must be positive")
        if self.unknown_code_limit < 1:
            raise ValueError("unknown_code_limit must be at least 1")
        if self.clock_skew < 0:
            raise ValueError("clock_skew must be 0 or more")
        Proxies.configured(self.proxy, self.no_proxy, env={})  # ValueError naming the URL
        seen: set[str] = set()
        for index, page in enumerate(self.pages):
            where = f"pages[{index}]"
            check_id(where, page.id, seen)
            if not PAGE_ID.match(page.page_id):
                raise ValueError(f"{where} ({page.id}): page_id {page.page_id!r} is not a "
                                 "Facebook page id (digits)")
            if not page.token_env:
                raise ValueError(f"{where} ({page.id}): token_env must name the environment "
                                 "variable that holds the page access token")
            if page.token and not isinstance(page.token, Secret):
                msgspec.structs.force_setattr(page, "token", Secret(page.token))

    def targets(self) -> list[Target]:
        """The pages, as the engine knows them."""
        return [page.target() for page in self.pages]
