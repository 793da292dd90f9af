"""The operator console: a few static files the API serves at ``/console/`` (``/`` redirects).

The page (``static/index.html``) is plain HTML rendered here once, in Vietnamese: every element
with ``data-i18n="key"`` gets the text of ``key`` from ``static/i18n/vi.json``, and
``data-i18n-attr="attribute:key"`` sets that attribute, so the page reads right before any script
runs. ``static/console.js`` calls the same ``/v1`` API with the bearer token the user typed
(kept in the tab's ``sessionStorage`` only) and switches the language with the same dictionaries.

Every answer under ``/console/`` carries a strict Content-Security-Policy (scripts and styles from
this origin only, no inline script, Trusted Types required so that no HTML string can be written
into the page, no framing, no form submission), ``X-Frame-Options: DENY`` and ``nosniff``.
"""

from __future__ import annotations

import html
import json
import re
from importlib import resources
from typing import Any

from litestar import Request, Response, get
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.response import Redirect

from dispatcher.domain.errors import ConfigError, NotFound

STATIC = resources.files(__name__) / "static"
LANGUAGES = ("vi", "en")
DEFAULT_LANGUAGE = "vi"

CSP = "; ".join([
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
    "require-trusted-types-for 'script'",
    "trusted-types 'none'",
])
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-cache",
}
MEDIA_TYPES = {
    ".html": "text/html",  # Litestar adds "; charset=utf-8" to text types
    ".js": "text/javascript",
    ".css": "text/css",
    ".json": "application/json",
    ".svg": "image/svg+xml",
}
#: The files served, by their path under /console/.
FILES = ("index.html", "console.js", "console.css", "favicon.svg",
         *(f"i18n/{lang}.json" for lang in LANGUAGES))

_TEXT = re.compile(r'(<(?P<tag>[a-z0-9]+)\b[^<>]*?\sdata-i18n="(?P<key>[\w.-]+)"[^<>]*>)'
                   r"(?P<end></(?P=tag)>)")
_ATTR = re.compile(r'data-i18n-attr="(?P<attr>[a-z-]+):(?P<key>[\w.-]+)"')


def dictionary(lang: str) -> dict[str, str]:
    """The strings of ``lang`` (``static/i18n/<lang>.json``)."""
    data: Any = json.loads((STATIC / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ConfigError("expected one object of strings", source=f"console i18n/{lang}.json")
    return data


def render(page: str, strings: dict[str, str]) -> str:
    """``page`` with its ``data-i18n`` elements and ``data-i18n-attr`` attributes filled in."""

    def text(m: re.Match[str]) -> str:
        return m.group(1) + html.escape(_string(strings, m.group("key"))) + m.group("end")

    def attr(m: re.Match[str]) -> str:
        value = html.escape(_string(strings, m.group("key")), quote=True)
        return f'{m.group(0)} {m.group("attr")}="{value}"'

    return _ATTR.sub(attr, _TEXT.sub(text, page))


def _string(strings: dict[str, str], key: str) -> str:
    try:
        return strings[key]
    except KeyError:
        raise ConfigError(f"no string {key!r}", source="console i18n") from None


def load_files() -> dict[str, tuple[bytes, str]]:
    """Every served file as (body, media type), the page rendered in the default language:
    read once, when the app is created (kept on ``app.state.console_files``)."""
    files: dict[str, tuple[bytes, str]] = {}
    for name in FILES:
        suffix = name[name.rfind("."):]
        body = (STATIC / name).read_bytes()
        if name == "index.html":
            body = render(body.decode("utf-8"), dictionary(DEFAULT_LANGUAGE)).encode("utf-8")
        files[name] = (body, MEDIA_TYPES[suffix])
    return files


def _file(state: State, name: str) -> Response[bytes]:
    files: dict[str, tuple[bytes, str]] = state.console_files
    found = files.get(name)
    if found is None:
        raise NotFound(f"no console file {name}")
    body, media_type = found
    return Response(body, media_type=media_type, headers=HEADERS)


@get("/", include_in_schema=False)
async def root() -> Redirect:
    return Redirect("/console/")


@get("/console", include_in_schema=False)
async def console_index(request: Request[Any, Any, Any], state: State) -> Response[bytes]:
    # Litestar routes /console and /console/ here alike; the page's relative links need the slash
    raw = request.scope.get("raw_path") or request.scope["path"].encode()
    if not raw.split(b"?", 1)[0].endswith(b"/"):
        return Redirect("/console/")
    return _file(state, "index.html")


@get("/console/{name:path}", include_in_schema=False)
async def console_file(state: State, name: FromPath[str]) -> Response[bytes]:
    return _file(state, name.lstrip("/"))


ROUTES = [root, console_index, console_file]
