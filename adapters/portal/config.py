"""The portal channel's settings (``[portal]``): the sites Loa publishes to, and how.

Kept apart from the adapter so that what reads the settings (the settings loader, the plan's
view) does not load the channel's HTTP client. Each site is a target of the channel
(:class:`dispatcher.domain.outlet.Target`): its ``id`` is the address of its batches and the key
of its sent bit. A site speaks one profile:

* ``wordpress``: the WordPress REST API (``{url}/wp-json/wp/v2/posts``), as ``user`` with an
  application password read from the environment variable ``password_env``; ``category`` (a
  WordPress category id) and ``status`` (``publish``, or ``draft``/``pending``/``private`` for
  an editor to release) go with each post;
* ``signed_json``: a JSON POST to ``url``, signed with the secret read from the environment
  variable ``secret_env`` (:mod:`adapters.portal.signed`).

Passwords and secrets are filled in from the environment when the settings are loaded, never
read from the file. :func:`check` gives the first fault of a table as a
:class:`~dispatcher.domain.errors.ConfigError` naming its key (``portal.sites[1].secret_env``).
"""

from __future__ import annotations

import msgspec

from adapters.http.proxy import Proxies
from adapters.http.url import Url
from dispatcher.domain.errors import ConfigError
from dispatcher.domain.outlet import ID, Target
from dispatcher.domain.secret import Secret

PROFILES = ("wordpress", "signed_json")
#: What a WordPress post may be created as: published at once, or kept for an editor.
STATUSES = ("publish", "draft", "pending", "private")
#: Keys of a site that only one profile reads: given to a site of the other, they are refused.
ONLY = {"user": "wordpress", "password_env": "wordpress", "category": "wordpress",
        "secret_env": "signed_json"}


class Site(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One portal Loa publishes to (see the module's documentation)."""

    id: str  # Loa's id of the site: "qn-portal", "dichvucong"
    profile: str  # "wordpress" or "signed_json"
    url: str  # wordpress: the site's root; signed_json: the endpoint
    name: str = ""  # for people: "Cổng thông tin điện tử tỉnh – chuyên mục Covid-19"
    district: str = ""  # the district it speaks for (a province.toml id); "": the province
    user: str = ""  # wordpress: the user the application password belongs to
    password_env: str = ""  # wordpress: the environment variable holding it
    category: int | None = None  # wordpress: the category id of the posts (none: the default)
    status: str = "publish"  # wordpress: publish, draft, pending or private
    secret_env: str = ""  # signed_json: the environment variable holding the HMAC secret
    # filled in from password_env and secret_env by the settings loader; never in the file
    password: str = ""
    secret: str = ""

    def target(self) -> Target:
        return Target(self.id, self.name, self.district)

    @property
    def wordpress(self) -> bool:
        return self.profile == "wordpress"


class PortalConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The sites and how Loa reaches them (see the module's documentation)."""

    sites: list[Site] = []
    timeout: float = 10.0  # seconds per request, connection included
    concurrency: int = 4  # requests in flight, every site together
    # the proxy to the sites: "" the environment's (HTTPS_PROXY, NO_PROXY), "direct" none, or
    # http://[user:password@]host:port; no_proxy: more hosts that bypass it
    proxy: str = ""
    no_proxy: str = ""
    throttle_pause: float = 60.0  # 429 without Retry-After: the site waits this long
    throttle_pause_max: float = 3600.0  # the longest a 429 holds a site (Retry-After included)
    outage_pause_max: float = 60.0  # a site down: held 1 s, doubling up to this
    alert_probe_seconds: float = 300.0  # a site stopped for an operator: tried this often
    unknown_code_limit: int = 5  # answers Loa does not know, in a row, that stop a site

    def targets(self) -> list[Target]:
        """The sites, as the engine knows them."""
        return [site.target() for site in self.sites]

    def __post_init__(self) -> None:
        for site in self.sites:
            for field in ("password", "secret"):
                value = getattr(site, field)
                if value and not isinstance(value, Secret):
                    msgspec.structs.force_setattr(site, field, Secret(value))


def check(config: PortalConfig, source: str | None = None) -> PortalConfig:
    """``config`` if it can be used, else the :class:`ConfigError` of its first fault, naming its
    key under ``portal``."""
    numbers = (("timeout", config.timeout), ("concurrency", config.concurrency),
               ("throttle_pause", config.throttle_pause),
               ("throttle_pause_max", config.throttle_pause_max),
               ("outage_pause_max", config.outage_pause_max),
               ("alert_probe_seconds", config.alert_probe_seconds),
               ("unknown_code_limit", config.unknown_code_limit))
    for key, value in numbers:
        if value <= 0:
            raise ConfigError("must be more than 0", source=source, key=f"portal.{key}")
    if config.throttle_pause > config.throttle_pause_max:
        raise ConfigError("must be at most throttle_pause_max", source=source,
                          key="portal.throttle_pause")
    try:
        Proxies.configured(config.proxy, config.no_proxy, env={})
    except ValueError as exc:
        raise ConfigError(str(exc), source=source, key="portal.proxy") from None
    seen: dict[str, int] = {}
    for index, site in enumerate(config.sites):
        _check_site(site, f"portal.sites[{index}]", seen, source)
        seen[site.id] = index
    return config


def _check_site(site: Site, key: str, seen: dict[str, int], source: str | None) -> None:
    def fail(field: str, message: str) -> ConfigError:
        return ConfigError(message, source=source, key=f"{key}.{field}")

    if not ID.match(site.id):
        raise fail("id", f"{site.id!r} must be lower-case letters, digits, '.', '_' or '-' "
                         "(at most 64, starting with a letter or digit)")
    if site.id in seen:
        raise fail("id", f"{site.id!r} is the id of portal.sites[{seen[site.id]}] too: each "
                         "site needs its own")
    if site.profile not in PROFILES:
        raise fail("profile", f"{site.profile!r} is not a profile: {' or '.join(PROFILES)}")
    try:
        Url(site.url)
    except ValueError:
        raise fail("url", f"{site.url!r} is not an http:// or https:// URL") from None
    for field, profile in ONLY.items():
        if getattr(site, field) not in ("", None) and profile != site.profile:
            raise fail(field, f"is a key of the {profile} profile, not of {site.profile}")
    if site.wordpress:
        if not site.user:
            raise fail("user", "the WordPress user the application password belongs to")
        if not site.password_env and not site.password:
            raise fail("password_env", "must name the environment variable that holds the "
                                       "application password")
        if site.status not in STATUSES:
            raise fail("status", f"{site.status!r} is not one of {', '.join(STATUSES)}")
        if site.category is not None and site.category <= 0:
            raise fail("category", "must be a WordPress category id (more than 0)")
    else:
        if site.status != "publish":
            raise fail("status", "is a key of the wordpress profile, not of signed_json")
        if not site.secret_env and not site.secret:
            raise fail("secret_env", "must name the environment variable that holds the "
                                     "secret the requests are signed with")
