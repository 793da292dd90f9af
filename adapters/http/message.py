"""HTTP/1.1 messages: the parsed types, their heads, and the bytes of requests and responses.

* :func:`request_head` and :func:`encode_request` build a request (``Host``, the caller's
  headers, ``Content-Length``); a client keeps the head of a request it repeats and appends only
  the length and the body (RFC 9112).
* :func:`encode_response` builds a response with a ``Content-Length`` body.
* :func:`parse_headers`, :func:`parse_request_line` and :func:`parse_status_line` read a head
  for the parsers of :mod:`adapters.http.codec`. Keep-alive peers send the same start lines and
  header blocks again and again: the latest are remembered as parsed (emptied when full).

Header names are lower-cased; a repeated header's values are joined with ``", "``. Malformed
input (a control byte other than tab in a value, a folded line, a space before the colon) raises
:class:`HttpError`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from http import HTTPStatus
from urllib.parse import parse_qsl, unquote

MAX_HEAD = 64 * 1024  # request or status line and headers
MAX_TRAILERS = 8 * 1024  # the trailer section of a chunked body
MAX_BODY = 16 * 1024 * 1024

_TOKEN = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}


class HttpError(ValueError):
    """Bytes that are not HTTP/1.1 this codec accepts; ``status`` is the answer a server gives
    to such a request (400 unless the request is too large or uses what is not implemented)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class Response:
    """A parsed response."""

    __slots__ = ("body", "headers", "keep_alive", "reason", "status")

    def __init__(self, status: int, reason: str, headers: dict[str, str], body: bytes,
                 keep_alive: bool) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self.keep_alive = keep_alive  # False: the connection ends after this response


class Request:
    """A parsed request. ``path`` is percent-decoded, without the query string."""

    __slots__ = ("_query", "body", "headers", "keep_alive", "method", "path", "query_string",
                 "target")

    def __init__(self, method: str, target: str, headers: dict[str, str], body: bytes,
                 keep_alive: bool) -> None:
        self.method = method
        self.target = target
        path, _, self.query_string = target.partition("?")
        self.path = unquote(path) if "%" in path else path
        self.headers = headers
        self.body = body
        self.keep_alive = keep_alive
        self._query: dict[str, str] | None = None

    @property
    def query(self) -> dict[str, str]:
        """The query string's parameters (the last value of a repeated one)."""
        if self._query is None:
            self._query = dict(parse_qsl(self.query_string, keep_blank_values=True))
        return self._query

    def form(self) -> dict[str, str]:
        """An ``application/x-www-form-urlencoded`` body's fields; {} for another type."""
        kind = self.headers.get("content-type", "").partition(";")[0].strip().lower()
        if kind != "application/x-www-form-urlencoded":
            return {}
        try:
            text = self.body.decode()
        except UnicodeDecodeError:
            raise HttpError("a form body that is not UTF-8") from None
        return dict(parse_qsl(text, keep_blank_values=True))


# -- building -----------------------------------------------------------------------------------


def _check_header(name: str, value: str) -> bytes:
    try:
        raw, text = name.encode("latin-1"), value.encode("latin-1")
    except UnicodeEncodeError:
        raise HttpError(f"header {name!r} is not Latin-1: encode its value") from None
    if not raw or raw.translate(None, _TOKEN):
        raise HttpError(f"header name {name!r} is not a token")
    if any(c in value for c in "\r\n\0"):
        raise HttpError(f"header {name!r} has a line break in its value")
    return raw + b": " + text + b"\r\n"


def request_head(method: str, target: str, host: str, headers: Mapping[str, str]) -> bytes:
    """A request up to ``Content-Length: ``: append the length, ``\\r\\n\\r\\n`` and the body."""
    if not method.encode().isalpha() or not target or any(c in target for c in " \r\n\0"):
        raise HttpError(f"cannot build a request {method} {target!r}")
    lines = [f"{method} {target} HTTP/1.1\r\n".encode()]
    names = {name.lower() for name in headers}
    if names & {"content-length", "transfer-encoding"}:
        raise HttpError("Content-Length and Transfer-Encoding are the codec's")
    if "host" not in names:
        lines.append(_check_header("Host", host))
    lines.extend(_check_header(name, value) for name, value in headers.items())
    lines.append(b"Content-Length: ")
    return b"".join(lines)


def encode_request(method: str, target: str, host: str, headers: Mapping[str, str],
                   body: bytes = b"") -> bytes:
    return request_head(method, target, host, headers) + b"%d\r\n\r\n" % len(body) + body


_status_lines: dict[tuple[int, str], bytes] = {}


def encode_response(status: int, body: bytes, content_type: str = "application/json", *,
                    keep_alive: bool = True, headers: Mapping[str, str] | None = None) -> bytes:
    """A response with a ``Content-Length`` body; ``Connection: close`` unless ``keep_alive``."""
    start = _status_lines.get((status, content_type))
    if start is None:
        if not 100 <= status <= 999:
            raise HttpError(f"status {status} is not three digits")
        reason = _REASONS.get(status, b"Unknown")
        start = b"HTTP/1.1 %d %s\r\n%s" % (status, reason, _check_header("Content-Type",
                                                                          content_type))
        if len(_status_lines) < 256:
            _status_lines[(status, content_type)] = start
    extra = b"".join(_check_header(n, v) for n, v in headers.items()) if headers else b""
    if not keep_alive:
        extra += b"Connection: close\r\n"
    return b"%s%sContent-Length: %d\r\n\r\n%s" % (start, extra, len(body), body)


# -- reading heads ------------------------------------------------------------------------------


def ascii_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


# a value holds tab, space, visible ASCII and bytes above it, no other control (RFC 9110 §5.5)
_HEADER = re.compile(rb"^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*([^\x00-\x08\x0a-\x1f\x7f]*)\r\n",
                     re.M)
_names: dict[bytes, str] = {}  # header names as sent -> lower-cased
_CACHED = 256
_blocks: dict[bytes, dict[str, str]] = {}
_request_lines: dict[bytes, tuple[str, str, bytes]] = {}
_status_lines_in: dict[bytes, tuple[bytes, int, str]] = {}


def parse_headers(block: bytes) -> dict[str, str]:
    """The header lines of a head, each ending with CRLF."""
    known = _blocks.get(block)
    if known is not None:
        return known.copy()
    found = _HEADER.findall(block)
    if len(found) != block.count(b"\n"):  # a line that is not ``name: value`` CRLF
        for line in block.split(b"\r\n")[:-1]:
            if _HEADER.fullmatch(line + b"\r\n") is None:
                raise HttpError(f"malformed header line {line[:60]!r}")
        raise HttpError("a bare CR or LF in the head")
    names = _names
    headers: dict[str, str] = {}
    for raw, value in found:
        name = names.get(raw)
        if name is None:
            name = raw.decode("ascii").lower()
            if len(names) < 512:
                names[raw] = name
        text = value.decode("latin-1").rstrip(" \t")
        headers[name] = f"{headers[name]}, {text}" if name in headers else text
    if len(_blocks) >= _CACHED:
        _blocks.clear()
    _blocks[block] = headers.copy()
    return headers


def is_keep_alive(version: bytes, headers: dict[str, str]) -> bool:
    tokens = headers.get("connection")
    if version == b"HTTP/1.1":
        return tokens is None or "close" not in tokens.lower()
    return tokens is not None and "keep-alive" in tokens.lower()


def parse_request_line(line: bytes) -> tuple[str, str, bytes]:
    """Method, target (origin form) and version of a request line (without its CRLF)."""
    known = _request_lines.get(line)
    if known is not None:
        return known
    if len(_request_lines) >= _CACHED:
        _request_lines.clear()
    known = _request_lines[line] = _request_line(line)
    return known


def _request_line(line: bytes) -> tuple[str, str, bytes]:
    parts = line.split(b" ")
    if len(parts) != 3 or parts[2] not in (b"HTTP/1.1", b"HTTP/1.0") or not parts[0] or (
            parts[0].translate(None, _TOKEN)):
        raise HttpError(f"malformed request line {line[:60]!r}")
    method, target, version = parts
    if not target.startswith(b"/"):
        if target != b"*" and not target.startswith((b"http://", b"https://")):
            raise HttpError(f"bad request target {target[:60]!r}")
        if target != b"*":  # absolute form: keep the path and query
            slash = target.find(b"/", target.find(b"//") + 2)
            target = target[slash:] if slash > 0 else b"/"
    try:
        return method.decode("ascii"), target.decode("ascii"), version
    except UnicodeDecodeError:
        raise HttpError("request target is not ASCII") from None


def parse_status_line(line: bytes) -> tuple[bytes, int, str]:
    """Version, status and reason of a status line (without its CRLF)."""
    known = _status_lines_in.get(line)
    if known is not None:
        return known
    version, _, rest = line.partition(b" ")
    code, _, reason = rest.partition(b" ")
    if (version not in (b"HTTP/1.1", b"HTTP/1.0") or len(code) != 3
            or not code.isdigit() or b"\n" in reason or b"\r" in reason):
        raise HttpError(f"malformed status line {line[:60]!r}")
    if len(_status_lines_in) >= _CACHED:
        _status_lines_in.clear()
    known = _status_lines_in[line] = (version, int(code), reason.decode("latin-1"))
    return known
